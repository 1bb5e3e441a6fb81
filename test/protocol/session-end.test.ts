import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { StabilizerClient } from '../../src/client/index.js';
import { CloseCode } from '../../src/protocol/index.js';
import type { ManagerEvents, WebSocketConnectionManager } from '../../src/server/index.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, startServer, waitFor } from '../helpers/server.js';

const secret = 'session-end-secret-0123456789abcdef0123456789';
const clients: StabilizerClient[] = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const c of clients.splice(0)) c.close();
  await closeAllServers();
});

function client(url: string): StabilizerClient {
  const c = new StabilizerClient(url, { WebSocket: WebSocket as never, minDelayMs: 10, maxDelayMs: 50 });
  clients.push(c);
  return c;
}

function opened(c: StabilizerClient): Promise<void> {
  return new Promise((resolve) => {
    const off = c.on('open', () => {
      off();
      resolve();
    });
  });
}

function record(manager: WebSocketConnectionManager) {
  const ends: Array<ManagerEvents['session-end'] & { atMs: number }> = [];
  const disconnects: Array<ManagerEvents['disconnect']> = [];
  manager.on('session-end', (e) => {
    ends.push({ ...e, atMs: Date.now() });
  });
  manager.on('disconnect', (e) => {
    disconnects.push(e);
  });
  return { ends, disconnects };
}

describe('how a client close decides the session (PROTOCOL.md §5)', () => {
  it('client.close() (1000) ends the session at once: session-end ended, nothing buffered for it', async () => {
    const s = await startServer({ tokens: { secret } });
    const ev = record(s.manager);
    const c = client(s.url);
    await opened(c);
    const id = c.sessionId!;
    c.close();
    await waitFor(() => ev.disconnects.length === 1, 'disconnect');
    expect(ev.ends.map(({ clientId, reason }) => ({ clientId, reason }))).toEqual([
      { clientId: id, reason: 'ended' },
    ]);
    expect(ev.disconnects[0]).toMatchObject({ clientId: id, code: 1000, sessionRetained: false });
    expect(s.manager.getStats()).toMatchObject({ sessions: 0, detachedSessions: 0 });
    expect(s.manager.broadcast('after').buffered).toBe(0);
    expect(() => s.manager.sendToClient(id, 'x')).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_CLIENT' }),
    );
  });

  it('a churn of clients that each close with 1000 leaves no detached session behind', async () => {
    const s = await startServer({ tokens: { secret } });
    const ev = record(s.manager);
    for (let round = 0; round < 10; round++) {
      const batch = Array.from({ length: 20 }, () => client(s.url));
      await Promise.all(batch.map((c) => opened(c)));
      s.manager.broadcast({ round });
      for (const c of batch) c.close();
    }
    await waitFor(() => ev.disconnects.length === 200, 'all closed', 10_000);
    expect(ev.ends).toHaveLength(200);
    expect(s.manager.getStats()).toMatchObject({ sessions: 0, detachedSessions: 0, detachedSessionBytes: 0 });
  });

  it('client.reconnect() keeps the session: it resumes with nothing lost', async () => {
    const s = await startServer({ tokens: { secret } });
    const ev = record(s.manager);
    const c = client(s.url);
    const got: unknown[] = [];
    c.on('message', (m) => {
      got.push(m);
    });
    let resumedCount = 0;
    c.on('resumed', () => {
      resumedCount++;
    });
    await opened(c);
    const id = c.sessionId!;
    c.reconnect();
    s.manager.broadcast(1);
    await waitFor(() => c.state === 'open' && resumedCount > 0, 'resumed');
    s.manager.broadcast(2);
    await waitFor(() => got.length === 2, 'both messages');
    expect(got).toEqual([1, 2]);
    expect(c.sessionId).toBe(id);
    expect(ev.ends).toEqual([]);
    expect(ev.disconnects[0]).toMatchObject({ clientId: id, sessionRetained: true });
  });

  it('a 1001 from the client (a page going into the back/forward cache) keeps the session for a resume', async () => {
    const s = await startServer({ tokens: { secret } });
    const ev = record(s.manager);
    const a = await RawProtocolClient.handshake(s.url);
    a.client.ws.close(1001, 'going away');
    await waitFor(() => ev.disconnects.length === 1, 'disconnect');
    expect(ev.disconnects[0]).toMatchObject({ code: 1001, sessionRetained: true });
    expect(ev.ends).toEqual([]);
    s.manager.broadcast('meanwhile');
    const b = await RawProtocolClient.handshake(s.url, {
      token: a.welcome.token,
      sessionId: a.welcome.sessionId,
      lastSeq: 0,
    });
    expect(b.welcome).toMatchObject({ resume: 'resumed', sessionId: a.welcome.sessionId });
    await b.client.waitForData(1);
    expect(b.client.data).toEqual([{ c: '$all', o: 1, p: 'meanwhile' }]);
  });

  it('a client protocol-violation close (4502, the client reconnects) keeps the session', async () => {
    const s = await startServer({ tokens: { secret } });
    const ev = record(s.manager);
    const a = await RawProtocolClient.handshake(s.url);
    a.client.ws.close(CloseCode.ProtocolViolation, 'bad frame');
    await waitFor(() => ev.disconnects.length === 1, 'disconnect');
    expect(ev.disconnects[0]).toMatchObject({ sessionRetained: true });
    expect(ev.ends).toEqual([]);
  });
});

describe('graceful shutdown with the in-memory backend', () => {
  it('ends every session, attached or detached, with reason shutdown (they die with the process)', async () => {
    const s = await startServer({ tokens: { secret } });
    const ev = record(s.manager);
    const live = await RawProtocolClient.handshake(s.url);
    const gone = await RawProtocolClient.handshake(s.url);
    gone.client.ws.terminate();
    await waitFor(() => s.manager.getStats().detachedSessions === 1, 'detached');
    await s.manager.gracefulShutdown({ timeoutMs: 500 });
    expect(ev.ends.map((e) => [e.clientId, e.reason]).sort()).toEqual(
      [
        [live.welcome.sessionId, 'shutdown'],
        [gone.welcome.sessionId, 'shutdown'],
      ].sort(),
    );
    expect(ev.disconnects.find((d) => d.clientId === live.welcome.sessionId)).toMatchObject({
      sessionRetained: false,
    });
    expect(s.manager.getStats()).toMatchObject({ sessions: 0, detachedSessions: 0, detachedSessionBytes: 0 });
  });
});

describe('expiry precision', () => {
  it('a detached session ends within a few ms of sessionTtlMs, not at the next sweep', async () => {
    vi.useFakeTimers({
      shouldAdvanceTime: true,
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
    const ttlMs = 60_000;
    const s = await startServer({ tokens: { secret }, sessionTtlMs: ttlMs });
    const ev = record(s.manager);
    let detachedAtMs = 0;
    s.manager.on('disconnect', () => {
      detachedAtMs = Date.now();
    });
    const a = await RawProtocolClient.handshake(s.url);
    await vi.advanceTimersByTimeAsync(2500); // between two heartbeat sweeps (every 5 s here)
    a.client.ws.terminate();
    await waitFor(() => detachedAtMs > 0, 'detached');
    await vi.advanceTimersByTimeAsync(ttlMs - 1000);
    expect(ev.ends).toEqual([]);
    await vi.advanceTimersByTimeAsync(1100);
    expect(ev.ends.map((e) => e.reason)).toEqual(['expired']);
    expect(ev.ends[0]!.atMs - detachedAtMs).toBeGreaterThanOrEqual(ttlMs);
    expect(ev.ends[0]!.atMs - detachedAtMs).toBeLessThan(ttlMs + 200);
  });

  it('the timer re-arms for the next session when the oldest one resumed or ended', async () => {
    vi.useFakeTimers({
      shouldAdvanceTime: true,
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
    });
    const ttlMs = 60_000;
    const s = await startServer({ tokens: { secret }, sessionTtlMs: ttlMs });
    const ev = record(s.manager);
    const first = await RawProtocolClient.handshake(s.url);
    const second = await RawProtocolClient.handshake(s.url);
    first.client.ws.terminate();
    await waitFor(() => s.manager.getStats().detachedSessions === 1, 'first detached');
    await vi.advanceTimersByTimeAsync(20_000);
    second.client.ws.terminate();
    await waitFor(() => s.manager.getStats().detachedSessions === 2, 'second detached');
    const secondAtMs = Date.now();
    // The first one resumes: the timer armed for it finds the second, not yet due, and re-arms.
    const back = await RawProtocolClient.handshake(s.url, {
      token: first.welcome.token,
      sessionId: first.welcome.sessionId,
      lastSeq: 0,
    });
    expect(back.welcome.resume).toBe('resumed');
    await vi.advanceTimersByTimeAsync(45_000);
    expect(ev.ends).toEqual([]);
    await vi.advanceTimersByTimeAsync(secondAtMs + ttlMs + 100 - Date.now());
    expect(ev.ends.map((e) => [e.clientId, e.reason])).toEqual([[second.welcome.sessionId, 'expired']]);
  });
});
