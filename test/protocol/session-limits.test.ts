import * as promClient from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { registerPrometheusMetrics } from '../../src/metrics/index.js';
import { WebSocket } from 'ws';
import { StabilizerClient } from '../../src/client/index.js';
import { CloseCode } from '../../src/protocol/index.js';
import {
  resolveConfig,
  type ManagerEvents,
  type WebSocketConnectionManager,
} from '../../src/server/index.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, startServer, waitFor } from '../helpers/server.js';

const secret = 'session-limits-secret-0123456789abcdef0123456789';
const clients: StabilizerClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await closeAllServers();
});

function endsOf(manager: WebSocketConnectionManager): Array<ManagerEvents['session-end']> {
  const ends: Array<ManagerEvents['session-end']> = [];
  manager.on('session-end', (e) => {
    ends.push(e);
  });
  return ends;
}

/** A new session's hello over a cap: a reconnect hint, an error SESSION_LIMIT, close 1013. */
async function expectRefused(url: string): Promise<void> {
  const c = await RawProtocolClient.open(url);
  c.send({ t: 'hello', v: 1 });
  expect((await c.waitClose()).code).toBe(CloseCode.TryAgainLater);
  expect(c.frames.map((f) => f.t)).toEqual(['reconnect', 'error']);
  expect(c.frames[1]).toMatchObject({ code: 'SESSION_LIMIT' });
}

describe('session caps', () => {
  it('maxSessionsPerIp refuses new sessions from that IP, never a resume', async () => {
    const s = await startServer({ tokens: { secret }, maxSessionsPerIp: 2 });
    const a = await RawProtocolClient.handshake(s.url);
    const b = await RawProtocolClient.handshake(s.url);
    await expectRefused(s.url);
    a.client.ws.terminate();
    await waitFor(() => s.manager.getStats().detachedSessions === 1, 'a detached');
    await expectRefused(s.url); // a detached session still counts
    const back = await RawProtocolClient.handshake(s.url, {
      token: a.welcome.token,
      sessionId: a.welcome.sessionId,
      lastSeq: 0,
    });
    expect(back.welcome.resume).toBe('resumed');
    back.client.ws.close(1000); // ends it: a slot is free again
    await waitFor(() => s.manager.getStats().sessions === 1, 'a ended');
    expect((await RawProtocolClient.handshake(s.url)).welcome.resume).toBe('fresh');
    expect(s.manager.isConnected(b.welcome.sessionId)).toBe(true);
  });

  it('maxSessionsPerPrincipal counts sessions by the principal authenticate returned', async () => {
    const s = await startServer(
      { tokens: { secret }, maxSessionsPerPrincipal: 2 },
      { authenticate: (req) => ({ principal: new URL(req.url!, 'http://x').searchParams.get('u')! }) },
    );
    await RawProtocolClient.handshake(`${s.url}?u=alice`);
    await RawProtocolClient.handshake(`${s.url}?u=alice`);
    await expectRefused(`${s.url}?u=alice`);
    expect((await RawProtocolClient.handshake(`${s.url}?u=bob`)).welcome.resume).toBe('fresh');
  });

  it('over maxSessions a new session evicts the oldest detached one; with none detached it is refused', async () => {
    const s = await startServer({ tokens: { secret }, maxSessions: 2 });
    const ends = endsOf(s.manager);
    const a = await RawProtocolClient.handshake(s.url);
    const b = await RawProtocolClient.handshake(s.url);
    await expectRefused(s.url); // both live: never evicted for a new one
    a.client.ws.terminate();
    await waitFor(() => s.manager.getStats().detachedSessions === 1, 'a detached');
    b.client.ws.terminate();
    await waitFor(() => s.manager.getStats().detachedSessions === 2, 'both detached');
    const c = await RawProtocolClient.handshake(s.url);
    expect(c.welcome.resume).toBe('fresh');
    expect(ends).toEqual([{ clientId: a.welcome.sessionId, reason: 'evicted' }]);
    const late = await RawProtocolClient.handshake(s.url, {
      token: a.welcome.token,
      sessionId: a.welcome.sessionId,
      lastSeq: 0,
    });
    // Its resume says why: evicted (b, the other detached one, made room for this new session).
    expect(late.welcome).toMatchObject({ resume: 'fresh', reason: 'evicted' });
    expect(ends.map((e) => e.clientId)).toEqual([a.welcome.sessionId, b.welcome.sessionId]);
  });

  it('refused clients of the bundled client retry after the hint and get in once a slot frees up', async () => {
    const s = await startServer({ tokens: { secret }, maxSessions: 1, shutdownRetryAfterMs: 20 });
    const first = await RawProtocolClient.handshake(s.url);
    const c = new StabilizerClient(s.url, { WebSocket: WebSocket as never, minDelayMs: 10, maxDelayMs: 50 });
    clients.push(c);
    await waitFor(() => c.state === 'reconnecting', 'refused once');
    first.client.ws.close(1000);
    await waitFor(() => c.state === 'open', 'admitted', 5000);
  });
});

describe('detached-session memory budget', () => {
  it('a flood of hello-and-vanish clients under broadcast and direct load stays under the budget; live clients lose nothing', async () => {
    const budgetBytes = 256 * 1024;
    const s = await startServer({ tokens: { secret }, maxDetachedSessionBytes: budgetBytes });
    const ends = endsOf(s.manager);
    const got: unknown[][] = [[], [], []];
    for (const list of got) {
      const c = new StabilizerClient<number>(s.url, {
        WebSocket: WebSocket as never,
        minDelayMs: 10,
        maxDelayMs: 50,
      });
      clients.push(c as StabilizerClient);
      c.on('message', (m) => {
        list.push(m);
      });
    }
    await waitFor(() => clients.every((c) => c.state === 'open'), 'live clients');
    const heapBeforeBytes = process.memoryUsage().heapUsed;
    const filler = 'x'.repeat(300);
    let firstVanished: { token: string; sessionId: string } | undefined;
    let maxSeenBytes = 0;
    let seq = 0;
    for (let round = 0; round < 20; round++) {
      const vanishing = await Promise.all(
        Array.from({ length: 25 }, () => RawProtocolClient.handshake(s.url, {}, false)),
      );
      for (const v of vanishing) v.client.ws.terminate();
      firstVanished ??= { token: vanishing[0]!.welcome.token, sessionId: vanishing[0]!.welcome.sessionId };
      await waitFor(() => s.manager.getConnectionCount() === 3, 'vanished clients detached');
      for (let i = 0; i < 20; i++) {
        // Broadcasts wait in the `$all` history, once for everyone; direct messages fill each session's inbox.
        s.manager.broadcast({ n: seq++, filler });
        for (const v of vanishing) {
          try {
            s.manager.sendToClient(v.welcome.sessionId, filler);
          } catch (err) {
            expect(err).toMatchObject({ code: 'UNKNOWN_CLIENT' }); // evicted already
          }
          maxSeenBytes = Math.max(maxSeenBytes, s.manager.getStats().detachedSessionBytes);
        }
      }
      await new Promise((r) => setImmediate(r));
    }
    const stats = s.manager.getStats();
    expect(maxSeenBytes).toBeLessThanOrEqual(budgetBytes);
    expect(stats.detachedSessionBytes).toBeLessThanOrEqual(budgetBytes);
    expect(stats.detachedSessions).toBeGreaterThan(0);
    expect(ends.filter((e) => e.reason === 'evicted').length).toBeGreaterThan(400);
    expect(ends.every((e) => e.reason === 'evicted')).toBe(true);
    // Coarse: 500 sessions × 20 direct messages kept in full would be far more; the budget caps it at 256 KiB.
    expect(process.memoryUsage().heapUsed - heapBeforeBytes).toBeLessThan(64 * 1024 * 1024);

    await waitFor(() => got.every((list) => list.length === seq), 'live clients got everything', 10_000);
    const expected = Array.from({ length: seq }, (_, n) => ({ n, filler }));
    for (const list of got) expect(list).toEqual(expected);

    const late = await RawProtocolClient.handshake(s.url, { ...firstVanished, lastSeq: 0 });
    expect(late.welcome).toMatchObject({ resume: 'fresh', reason: 'evicted' });
  });
});

describe('the bundled client and eviction', () => {
  it("hears fresh with reason 'evicted' when its detached session was evicted", async () => {
    const s = await startServer({ tokens: { secret }, maxDetachedSessionBytes: 4096 });
    const c = new StabilizerClient(s.url, {
      WebSocket: WebSocket as never,
      minDelayMs: 300,
      maxDelayMs: 300,
    });
    clients.push(c);
    const fresh: string[] = [];
    c.on('fresh', ({ reason }) => {
      fresh.push(reason);
    });
    await waitFor(() => c.state === 'open', 'open');
    const id = c.sessionId!;
    await s.manager.disconnect(id, CloseCode.HeartbeatTimeout, 'drop'); // retryable: the session is kept
    expect(s.manager.getStats().detachedSessions).toBe(1);
    s.manager.broadcast('z'.repeat(1000)); // a broadcast waits in the shared history: the session holds nothing
    expect(s.manager.getStats().detachedSessions).toBe(1);
    for (let i = 0; i < 5 && s.manager.getStats().detachedSessions > 0; i++)
      s.manager.sendToClient(id, 'z'.repeat(1000));
    expect(s.manager.getStats().detachedSessions).toBe(0);
    await waitFor(() => fresh.length === 2, 'second welcome', 5000);
    expect(fresh).toEqual(['new', 'evicted']);
    expect(c.sessionId).not.toBe(id);
  });
});

describe('session limits: stats, metrics and config', () => {
  it('getStats and the metrics expose the detached count and bytes, and evictions by reason', async () => {
    const s = await startServer({ tokens: { secret }, maxDetachedSessionBytes: 8 * 1024 });
    const registry = new promClient.Registry();
    registerPrometheusMetrics(s.manager, { promClient, registry });
    const a = await RawProtocolClient.handshake(s.url);
    a.client.ws.terminate();
    await waitFor(() => s.manager.getStats().detachedSessions === 1, 'detached');
    const atRest = s.manager.getStats().detachedSessionBytes;
    expect(atRest).toBeGreaterThan(0);
    s.manager.broadcast('y'.repeat(1000));
    expect(s.manager.getStats().detachedSessionBytes).toBe(atRest); // broadcasts are not copied per session
    s.manager.sendToClient(a.welcome.sessionId, 'y'.repeat(1000));
    const grown = s.manager.getStats().detachedSessionBytes;
    expect(grown).toBeGreaterThanOrEqual(atRest + 1000);
    let text = await registry.metrics();
    expect(text).toContain(`websocket_stabilizer_detached_session_bytes ${grown}`);
    expect(text).toMatch(/websocket_stabilizer_detached_sessions 1/);
    for (let i = 0; i < 10 && s.manager.getStats().detachedSessions > 0; i++) {
      s.manager.sendToClient(a.welcome.sessionId, 'y'.repeat(1000));
    }
    expect(s.manager.getStats()).toMatchObject({ detachedSessions: 0, detachedSessionBytes: 0 });
    text = await registry.metrics();
    expect(text).toMatch(/websocket_stabilizer_session_ends_total\{reason="evicted"\} 1/);
  });

  it('validates the new options and fills in their defaults', () => {
    expect(resolveConfig({})).toMatchObject({
      maxSessions: 100_000,
      maxSessionsPerIp: 1000,
      maxSessionsPerPrincipal: 100,
      maxDetachedSessionBytes: 256 * 1024 * 1024,
    });
    expect(() => resolveConfig({ maxSessions: 0 })).toThrow(/maxSessions must be positive/);
    expect(() => resolveConfig({ maxDetachedSessionBytes: 1.5 })).toThrow(/must be an integer/);
  });
});
