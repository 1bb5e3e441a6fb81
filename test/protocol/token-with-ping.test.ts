import { afterEach, describe, expect, it } from 'vitest';
import type { Connection } from '../../src/server/transport/connection.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, startServer } from '../helpers/server.js';

afterEach(closeAllServers);

/** Counts the write syscalls of one server connection: each `write`/`writev` of its TCP socket's handle. */
function countHandleWrites(conn: Connection): { count: number } {
  const raw = (conn.socket as unknown as { _socket: { _handle: Record<string, unknown> } })._socket;
  const handle = raw._handle;
  const counter = { count: 0 };
  for (const name of ['writeBuffer', 'writev', 'writeUtf8String', 'writeLatin1String']) {
    const original = handle[name];
    if (typeof original !== 'function') continue;
    handle[name] = function (this: unknown, ...args: unknown[]) {
      counter.count++;
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    };
  }
  return counter;
}

describe('token refresh of an idle protocol connection', () => {
  it('rides with the heartbeat ping: both frames in one write, no frame of its own', async () => {
    // base = 60 s: the token is due for replacement 30 s after the welcome; the ping interval is 1 s.
    const s = await startServer({
      pingIntervalMs: 1000,
      pongTimeoutMs: 5000,
      sessionTtlMs: 60_000,
      tokens: { secret: 'a-secret-long-enough-for-the-tests-0123456789', ttlMs: 60_000 },
    });
    const a = await RawProtocolClient.handshake(s.url);
    const conn = [...s.manager.connections.values()][0]!;
    const writes = countHandleWrites(conn);
    // The ping that precedes the deadline by less than one ping interval (+ a sweep) carries the new token.
    const atMs = conn.tokenRefreshAtMs - 1000;
    conn.lastInboundMs = conn.lastOutboundMs = atMs - 1000;
    s.manager.sweep(atMs);
    const token = await a.client.waitFor((f) => f.t === 'token');
    await a.client.waitFor((f) => f.t === 'ping');
    expect(token.token).not.toBe(a.welcome.token);
    expect(writes.count).toBe(1);
    // Replaced: the deadline moved on, so the sweep at the old deadline sends no second token.
    expect(conn.tokenRefreshAtMs).toBeGreaterThan(atMs + 20_000);
  });

  it('a connection that is never idle still gets its token at the deadline, on its own', async () => {
    const s = await startServer({
      pingIntervalMs: 1000,
      pongTimeoutMs: 5000,
      sessionTtlMs: 60_000,
      tokens: { secret: 'a-secret-long-enough-for-the-tests-0123456789', ttlMs: 60_000 },
    });
    const a = await RawProtocolClient.handshake(s.url);
    const conn = [...s.manager.connections.values()][0]!;
    const atMs = conn.tokenRefreshAtMs;
    conn.lastInboundMs = conn.lastOutboundMs = atMs; // busy both ways: not pinged
    s.manager.sweep(atMs);
    const token = await a.client.waitFor((f) => f.t === 'token');
    expect(token.token).not.toBe(a.welcome.token);
  });
});
