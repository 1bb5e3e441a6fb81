import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { StabilizerClient } from '../../src/client/index.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, openClient, startServer, waitFor } from '../helpers/server.js';

afterEach(closeAllServers);

// `manager.counters.heartbeatAnswers` / `heartbeatRttMsTotal`: answers to the sweep's pings and their round trips,
// read by the dashboard. Any other frame is liveness, not an answer.
describe('heartbeat round trips in manager.counters', () => {
  it('counts a plain socket’s ws pong, with the time since the ping', async () => {
    const ts = await startServer({ pingIntervalMs: 100, pongTimeoutMs: 5000 });
    const ws = await openClient(ts.url);
    await waitFor(() => ts.manager.counters.heartbeatAnswers >= 2, 'two answered pings', 10_000);
    const { heartbeatAnswers, heartbeatRttMsTotal } = ts.manager.counters;
    expect(heartbeatRttMsTotal).toBeGreaterThanOrEqual(0);
    expect(heartbeatRttMsTotal / heartbeatAnswers).toBeLessThan(5000); // a mean of real round trips, not clock times
    ws.terminate();
  });

  it('counts a protocol client’s pong frame (the bundled client answers pings)', async () => {
    const ts = await startServer({ pingIntervalMs: 100, pongTimeoutMs: 5000 });
    const client = new StabilizerClient(ts.url, { WebSocket: WebSocket as never });
    await waitFor(() => ts.manager.counters.heartbeatAnswers >= 2, 'two answered pings', 10_000);
    expect(ts.manager.counters.heartbeatRttMsTotal / ts.manager.counters.heartbeatAnswers).toBeLessThan(5000);
    client.close();
  });

  it('does not count a pong that answers no ping, nor other frames', async () => {
    const ts = await startServer({ pingIntervalMs: 60_000, pongTimeoutMs: 5000 });
    const { client } = await RawProtocolClient.handshake(ts.url);
    client.send({ t: 'pong', s: 0 });
    client.send({ t: 'ack', s: 0 });
    client.send({ t: 'ping' });
    await client.waitFor((f) => f.t === 'pong'); // the frames before it were handled
    const plain = await openClient(ts.url);
    await waitFor(() => ts.manager.getConnectionCount() === 2, 'the plain socket');
    plain.pong();
    plain.close(); // its close comes after the pong: once it is gone, the pong was handled
    await waitFor(() => ts.manager.getConnectionCount() === 1, 'the plain socket to close');
    expect(ts.manager.counters.heartbeatAnswers).toBe(0);
    expect(ts.manager.counters.heartbeatRttMsTotal).toBe(0);
    client.ws.terminate();
  });
});
