import { afterEach, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { StabilizerClient } from '../../src/client/index.js';
import type { RunningProxy } from '../helpers/proxy-process.js';
import { closeAllServers, openClient, startServer, waitFor } from '../helpers/server.js';

/** Starts the proxy under test, with its documented config, in front of `upstreamPort`; `port` to restart it. */
export type StartProxy = (upstreamPort: number, timeoutS: number, port?: number) => Promise<RunningProxy>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const secret = 'proxy-test-secret-0123456789abcdef0123456789';

/**
 * The same three tests for every reverse proxy, run against its documented config with a 1 s idle timeout (standing
 * in for the 60 s of the defaults, scaled down): the heartbeat keeps a silent connection open past the timeout;
 * without pings the proxy cuts it (the control case, which shows the timeout is in force); and a client whose proxy
 * went away resumes through it once it is back, with every message, once.
 */
export function proxyScenarios(name: string, startProxy: StartProxy): void {
  const stops: Array<() => Promise<void>> = [];
  const clients: StabilizerClient[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await Promise.all(stops.splice(0).map((s) => s()));
    await closeAllServers();
  });

  async function silentClient(config: { pingIntervalMs: number; pongTimeoutMs: number }) {
    const s = await startServer(config);
    const proxy = await startProxy(s.port, 1);
    stops.push(proxy.stop);
    const ws = await openClient(`ws://127.0.0.1:${proxy.port}/ws`);
    const state: { closedCode?: number } = {};
    ws.on('close', (code) => (state.closedCode = code));
    await waitFor(() => s.manager.getConnectionCount() === 1);
    return { s, ws, state };
  }

  it(`${name}: the heartbeat keeps a silent client connected past the proxy idle timeout`, async () => {
    const { s, ws, state } = await silentClient({ pingIntervalMs: 300, pongTimeoutMs: 2000 });
    await sleep(3000); // three proxy timeouts of silence from both applications
    expect(state.closedCode).toBeUndefined();
    const got: string[] = [];
    ws.on('message', (d) => got.push(d.toString()));
    expect(s.manager.broadcast('still here').delivered).toBe(1);
    await waitFor(() => got.length === 1);
    expect(got[0]).toBe('still here');
  });

  it(`${name}: without pings in time, the same proxy cuts the connection (the control case)`, async () => {
    const { s, state } = await silentClient({ pingIntervalMs: 60_000, pongTimeoutMs: 10_000 });
    await waitFor(() => state.closedCode !== undefined, 'the proxy to cut the idle connection', 10_000);
    expect(state.closedCode).toBe(1006);
    await waitFor(() => s.manager.getConnectionCount() === 0, 'server to notice');
  });

  it(`${name}: the bundled client stays through idle time, then resumes through the restarted proxy`, async () => {
    const s = await startServer({ tokens: { secret }, pingIntervalMs: 300, pongTimeoutMs: 2000 });
    let proxy = await startProxy(s.port, 1);
    stops.push(() => proxy.stop());
    const c = new StabilizerClient<number>(`ws://127.0.0.1:${proxy.port}/ws`, {
      WebSocket: WebSocket as never,
      minDelayMs: 100,
      maxDelayMs: 300,
    });
    clients.push(c as StabilizerClient);
    const received: number[] = [];
    const opens: string[] = [];
    c.on('message', (m) => received.push(m));
    c.on('fresh', ({ reason }) => opens.push(`fresh:${reason}`));
    c.on('resumed', () => opens.push('resumed'));
    await waitFor(() => c.state === 'open');
    const id = c.sessionId!;
    for (let n = 1; n <= 5; n++) s.manager.sendToClient(id, n);
    await waitFor(() => received.length === 5);

    await sleep(3000); // idle: three proxy timeouts, kept open by the heartbeat
    expect(opens).toEqual(['fresh:new']);
    expect(c.state).toBe('open');

    await proxy.stop(); // the proxy goes away: the client's TCP connection is cut
    await waitFor(() => c.state === 'reconnecting', 'the client to notice');
    await waitFor(() => s.manager.getConnectionCount() === 0, 'the server to notice');
    for (let n = 6; n <= 10; n++) s.manager.sendToClient(id, n); // kept for the session while it is away
    proxy = await startProxy(s.port, 1, proxy.port); // back, on the same address
    await waitFor(() => opens.length === 2 && received.length === 10, 'resume through the proxy', 10_000);
    expect(opens).toEqual(['fresh:new', 'resumed']);
    expect(c.sessionId).toBe(id);
    expect(received).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });
}
