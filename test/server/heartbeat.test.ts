import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CloseCode, type ManagerEvents } from '../../src/server/index.js';
import { closeAllServers, closed, startServer, waitFor } from '../helpers/server.js';
import { cleanup, client, idFromQuery } from './support.js';

afterEach(async () => {
  await closeAllServers();
  await cleanup();
});

// Small intervals keep the suite fast; the sweep runs every 50 ms.
const FAST = { pingIntervalMs: 100, pongTimeoutMs: 200 };

async function setup() {
  const s = await startServer(FAST, { authenticate: idFromQuery });
  const disconnects: Array<ManagerEvents['disconnect']> = [];
  s.manager.on('disconnect', (e) => void disconnects.push(e));
  const join = async (id: string, options: ConstructorParameters<typeof WebSocket>[2] = {}) => {
    const ws = await client(`${s.url}?id=${id}`, options);
    await waitFor(() => s.manager.isConnected(id), `${id} registered`);
    let pings = 0;
    ws.on('ping', () => pings++);
    return { ws, pings: () => pings };
  };
  return { s, disconnects, join };
}

describe('heartbeat', () => {
  it('terminates a client that stops answering pings, with reason heartbeat-timeout', async () => {
    const { s, disconnects, join } = await setup();
    const mute = await join('mute', { autoPong: false });
    const muteClosed = closed(mute.ws);
    await waitFor(() => disconnects.length === 1, 'heartbeat disconnect');
    expect(disconnects[0]).toMatchObject({ clientId: 'mute', reason: 'heartbeat-timeout' });
    expect(mute.pings()).toBeGreaterThanOrEqual(1);
    expect(s.manager.isConnected('mute')).toBe(false);
    // The server sends 4000 and terminates right after; the client sees 4000 or, if the close frame was cut, 1006.
    expect([CloseCode.HeartbeatTimeout, 1006]).toContain((await muteClosed).code);
  });

  it('keeps a client that answers pings connected over several intervals', async () => {
    const { s, disconnects, join } = await setup();
    const alive = await join('alive');
    await waitFor(() => alive.pings() >= 4, 'four pings', 10_000);
    expect(s.manager.isConnected('alive')).toBe(true);
    expect(alive.ws.readyState).toBe(WebSocket.OPEN);
    expect(disconnects).toEqual([]);
  });

  it('counts any inbound message as liveness (no pong, but chatty)', async () => {
    const { s, disconnects, join } = await setup();
    const chatty = await join('chatty', { autoPong: false });
    const timer = setInterval(() => chatty.ws.send('still here'), 30);
    try {
      await waitFor(() => chatty.pings() >= 4, 'four unanswered pings', 10_000);
      expect(s.manager.isConnected('chatty')).toBe(true);
      expect(disconnects).toEqual([]);
    } finally {
      clearInterval(timer);
    }
  });

  it('handlePong(id) counts as liveness for clients that answer at application level', async () => {
    const { s, disconnects, join } = await setup();
    const app = await join('app', { autoPong: false });
    const timer = setInterval(() => s.manager.handlePong('app'), 30);
    try {
      await waitFor(() => app.pings() >= 4, 'four pings', 10_000);
      expect(s.manager.isConnected('app')).toBe(true);
      expect(disconnects).toEqual([]);
    } finally {
      clearInterval(timer);
    }
    // Once the application stops vouching for it, the silent client expires.
    await waitFor(() => disconnects.length === 1, 'expiry after handlePong stops');
    expect(disconnects[0]).toMatchObject({ clientId: 'app', reason: 'heartbeat-timeout' });
  });

  it('handlePong returns true for a connected id and false for an unknown one', async () => {
    const { s, join } = await setup();
    await join('known');
    expect(s.manager.handlePong('known')).toBe(true);
    expect(s.manager.handlePong('unknown')).toBe(false);
  });

  it('a dead client is dropped while a healthy one on the same server stays', async () => {
    const { s, disconnects, join } = await setup();
    const alive = await join('alive');
    await join('dead', { autoPong: false });
    await waitFor(() => disconnects.length === 1, 'dead dropped');
    expect(disconnects[0]!.clientId).toBe('dead');
    const pingsAtDrop = alive.pings();
    await waitFor(() => alive.pings() >= pingsAtDrop + 2, 'two more pings for the healthy client', 10_000);
    expect(s.manager.getActiveConnections()).toEqual(['alive']);
  });

  it('the sweep can be driven by hand: idle connection pinged, silent one expired after pongTimeoutMs', async () => {
    // Long intervals so the real timer stays out of the way; the test supplies the clock.
    const s = await startServer(
      { pingIntervalMs: 60_000, pongTimeoutMs: 60_000 },
      { authenticate: idFromQuery },
    );
    const reasons: string[] = [];
    s.manager.on('disconnect', (e) => void reasons.push(e.reason));
    const ws = await client(`${s.url}?id=manual`, { autoPong: false });
    await waitFor(() => s.manager.isConnected('manual'), 'registered');
    let pings = 0;
    ws.on('ping', () => pings++);
    const t0 = s.manager.nowMs;
    s.manager.sweep(t0 + 1_000); // not idle long enough
    s.manager.sweep(t0 + 60_000); // idle: ping
    await waitFor(() => pings === 1, 'one ping');
    s.manager.sweep(t0 + 60_000 + 59_999); // deadline not reached
    expect(s.manager.isConnected('manual')).toBe(true);
    s.manager.sweep(t0 + 120_000); // no answer within pongTimeoutMs
    await waitFor(() => reasons.length === 1, 'expired');
    expect(reasons).toEqual(['heartbeat-timeout']);
  });
});
