import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import {
  CloseCode,
  SUBPROTOCOL,
  WebSocketConnectionManager,
  type ManagerEvents,
} from '../../src/server/index.js';
import { closeAllServers, closed, startServer, upgradeStatus, waitFor } from '../helpers/server.js';
import {
  cleanup,
  client,
  directPair,
  directServer,
  idFromQuery,
  rawSocket,
  upgradeResponse,
} from './support.js';

afterEach(async () => {
  await closeAllServers();
  await cleanup();
});

async function withClients(n: number, config = {}) {
  const s = await startServer(config, { authenticate: idFromQuery });
  const disconnects: Array<ManagerEvents['disconnect']> = [];
  s.manager.on('disconnect', (e) => void disconnects.push(e));
  const clients: WebSocket[] = [];
  for (let i = 0; i < n; i++) clients.push(await client(`${s.url}?id=c${i}`));
  await waitFor(() => s.manager.getConnectionCount() === n, `${n} registered`);
  return { s, clients, disconnects };
}

describe('graceful shutdown', () => {
  it('closes every client with 1001 and a retry-after hint in the reason; stats count them as closed', async () => {
    const { s, clients, disconnects } = await withClients(3);
    const closes = clients.map((ws) => closed(ws));
    const stats = await s.manager.gracefulShutdown({ timeoutMs: 2_000 });
    for (const c of await Promise.all(closes)) {
      expect(c.code).toBe(CloseCode.GoingAway);
      expect(c.reason).toBe('shutting down; retry-after=1000');
    }
    expect(stats).toMatchObject({ closed: 3, terminated: 0, failed: 0 });
    expect(typeof stats.durationMs).toBe('number');
    expect(stats.durationMs).toBeGreaterThanOrEqual(0);
    expect(s.manager.getConnectionCount()).toBe(0);
    expect(disconnects.map((d) => [d.code, d.reason])).toEqual([
      [1001, 'shutdown'],
      [1001, 'shutdown'],
      [1001, 'shutdown'],
    ]);
  });

  it('restart: true closes with 1012; retryAfterMs overrides the configured hint', async () => {
    const { s, clients } = await withClients(2, { shutdownRetryAfterMs: 5_000 });
    const closes = clients.map((ws) => closed(ws));
    await s.manager.gracefulShutdown({ restart: true, retryAfterMs: 250, timeoutMs: 2_000 });
    for (const c of await Promise.all(closes)) {
      expect(c).toEqual({ code: CloseCode.ServiceRestart, reason: 'restarting; retry-after=250' });
    }
  });

  it('uses shutdownRetryAfterMs as the default hint', async () => {
    const { s, clients } = await withClients(1, { shutdownRetryAfterMs: 4_200 });
    const c = closed(clients[0]!);
    await s.manager.gracefulShutdown({ timeoutMs: 2_000 });
    expect((await c).reason).toContain('retry-after=4200');
  });

  it('new upgrades get HTTP 503 with Retry-After while shutting down and afterwards', async () => {
    const { s, clients } = await withClients(1, { shutdownRetryAfterMs: 2_500 });
    rawSocket(clients[0]!).pause(); // keeps the shutdown pending until its timeout
    const done = s.manager.gracefulShutdown({ timeoutMs: 300 });
    expect(s.manager.isShuttingDown).toBe(true);
    expect(await upgradeResponse(s.port, '/ws')).toEqual({ status: 503, retryAfter: '3' });
    const stats = await done;
    expect(stats.terminated).toBe(1);
    expect(await upgradeStatus(s.url)).toBe(503);
    expect(s.manager.getStats().shuttingDown).toBe(true);
  });

  it('a client that never completes the close handshake is terminated at timeoutMs and counted', async () => {
    const { s, clients, disconnects } = await withClients(3);
    const stuck = clients[1]!;
    rawSocket(stuck).pause();
    const stuckClosed = closed(stuck);
    const stats = await s.manager.gracefulShutdown({ timeoutMs: 300 });
    expect(stats).toMatchObject({ closed: 2, terminated: 1, failed: 0 });
    expect(s.manager.getConnectionCount()).toBe(0);
    expect(disconnects).toHaveLength(3);
    // The terminated client's TCP connection is gone; once it reads again it sees the end.
    rawSocket(stuck).resume();
    expect([1001, 1006]).toContain((await stuckClosed).code);
    expect(clients[0]!.readyState).toBe(WebSocket.CLOSED);
  });

  it('a socket whose close throws is terminated and counted as failed', async () => {
    const m = new WebSocketConnectionManager();
    const d = await directServer();
    const ok = await directPair(d);
    const broken = await directPair(d);
    await m.connect(ok.serverSide, 'ok');
    await m.connect(broken.serverSide, 'broken');
    broken.serverSide.close = () => {
      throw new Error('socket in a bad state');
    };
    const brokenClosed = closed(broken.ws);
    const okClosed = closed(ok.ws);
    const stats = await m.gracefulShutdown({ timeoutMs: 1_000 });
    expect(stats).toMatchObject({ closed: 1, terminated: 0, failed: 1 });
    expect((await okClosed).code).toBe(1001);
    expect((await brokenClosed).code).toBe(1006);
  });

  it('is idempotent: a second call returns the same promise and statistics', async () => {
    const { s } = await withClients(2);
    const first = s.manager.gracefulShutdown({ timeoutMs: 2_000 });
    const second = s.manager.gracefulShutdown({ timeoutMs: 1, restart: true });
    expect(second).toBe(first);
    const [a, b] = await Promise.all([first, second]);
    expect(b).toBe(a);
    expect(a).toMatchObject({ closed: 2, terminated: 0, failed: 0 });
    expect(await s.manager.gracefulShutdown()).toBe(a);
  });

  it('with no clients resolves with zero counts', async () => {
    const s = await startServer();
    expect(await s.manager.gracefulShutdown({ timeoutMs: 100 })).toMatchObject({
      closed: 0,
      terminated: 0,
      failed: 0,
    });
  });

  it('a socket passed to connect() after shutdown is closed with 1001 and rejected with SHUTTING_DOWN', async () => {
    const m = new WebSocketConnectionManager();
    await m.gracefulShutdown({ timeoutMs: 100 });
    const d = await directServer();
    const late = await directPair(d);
    const c = closed(late.ws);
    await expect(m.connect(late.serverSide)).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
    expect((await c).code).toBe(CloseCode.GoingAway);
    expect(m.getConnectionCount()).toBe(0);
  });

  it('closes a protocol client that is still in its handshake (no hello yet) and counts it', async () => {
    const s = await startServer();
    const ws = await client(s.url, {}, SUBPROTOCOL);
    await waitFor(() => s.manager.getStats().handshaking === 1, 'handshaking');
    const c = closed(ws);
    const stats = await s.manager.gracefulShutdown({ timeoutMs: 2_000 });
    expect((await c).code).toBe(CloseCode.GoingAway);
    expect(stats).toMatchObject({ closed: 1, terminated: 0, failed: 0 });
    expect(s.manager.getStats()).toMatchObject({ connections: 0, handshaking: 0 });
  });

  it('protocol clients get a reconnect hint before the close', async () => {
    const s = await startServer();
    const ws = await client(s.url, {}, SUBPROTOCOL);
    expect(ws.protocol).toBe(SUBPROTOCOL);
    const frames: Array<Record<string, unknown>> = [];
    ws.on('message', (d) => frames.push(JSON.parse(d.toString()) as Record<string, unknown>));
    ws.send(JSON.stringify({ t: 'hello', v: 1 }));
    await waitFor(() => frames.some((f) => f.t === 'welcome'), 'welcome');
    const c = closed(ws);
    await s.manager.gracefulShutdown({ retryAfterMs: 700, timeoutMs: 2_000 });
    expect((await c).code).toBe(CloseCode.GoingAway);
    expect(frames.at(-1)).toEqual({ t: 'reconnect', retryAfterMs: 700, reason: 'shutdown' });
  });
});
