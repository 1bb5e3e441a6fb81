/**
 * A peer that stops reading never completes a close handshake: the close frame sits behind the bytes it does not
 * read. The server must not wait for it (ws would, for 30 s): after `closeTimeoutMs` the socket is terminated, the
 * registry entry and the connection slots are freed, and `disconnect` reports the code the server sent.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { StabilizerClient, type CloseInfo, type FreshReason } from '../../src/client/index.js';
import { CloseCode, type ManagerEvents, type WebSocketConfig } from '../../src/server/index.js';
import { closeAllServers, closed, startServer, upgradeStatus, waitFor } from '../helpers/server.js';
import { RawTcpClient } from '../helpers/raw-tcp.js';
import { cleanup, client, idFromQuery, rawSocket } from './support.js';

const stabilizerClients: StabilizerClient[] = [];
const raws: RawTcpClient[] = [];

afterEach(async () => {
  for (const c of stabilizerClients.splice(0)) c.close();
  for (const r of raws.splice(0)) r.destroy();
  await closeAllServers();
  await cleanup();
});

/** Generous: the bound under test is `closeTimeoutMs` (2 s by default); ws's own is 30 s. */
const PROMPTLY = { timeout: 6000, interval: 20 };
const MiB = 1024 * 1024;

/** A server whose plain clients are named by `?id=`, with `disconnect` events recorded. */
async function named(config: WebSocketConfig) {
  const s = await startServer(config, { authenticate: idFromQuery });
  const disconnects: Array<ManagerEvents['disconnect']> = [];
  s.manager.on('disconnect', (e) => void disconnects.push(e));
  const join = async (id: string) => {
    const ws = await client(`${s.url}?id=${id}`);
    await waitFor(() => s.manager.isConnected(id), `${id} registered`);
    return ws;
  };
  return { s, join, disconnects };
}

/** Fill the send path of a client that does not read (kernel buffers, then `ws`'s own) with plain broadcasts. */
async function backlog(broadcast: (data: string) => unknown, bytes: number): Promise<void> {
  const chunk = 'b'.repeat(256 * 1024);
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    broadcast(chunk);
    await new Promise((r) => setImmediate(r));
  }
}

describe('a slow consumer that does not read', () => {
  it('is unregistered, frees its slots and gets disconnect 4001 promptly (default closeTimeoutMs)', async () => {
    const { s, join, disconnects } = await named({
      maxBufferedBytes: 64 * 1024,
      maxConnections: 2,
      maxConnectionsPerIp: 2,
    });
    const healthy = await join('healthy');
    const slow = await join('slow');
    let healthyCount = 0;
    healthy.on('message', () => healthyCount++);
    rawSocket(slow).pause();

    const chunk = 'x'.repeat(MiB);
    let last = s.manager.broadcast(chunk);
    for (let i = 1; i <= 200 && last.failed.length === 0; i++) {
      await waitFor(() => healthyCount === i, `healthy got broadcast ${i}`);
      last = s.manager.broadcast(chunk);
    }
    expect(last.failed).toEqual([{ clientId: 'slow', reason: 'slow-consumer' }]);

    await vi.waitFor(() => expect(s.manager.getConnectionCount()).toBe(1), PROMPTLY);
    expect(s.manager.getActiveConnections()).toEqual(['healthy']);
    expect(disconnects).toEqual([
      { clientId: 'slow', code: CloseCode.SlowConsumer, reason: 'slow-consumer', sessionRetained: false },
    ]);
    expect(await upgradeStatus(s.url)).toBe(101); // maxConnections and the per-IP slot are free again
    expect(healthy.readyState).toBe(WebSocket.OPEN);
  });

  it('one that reads again within closeTimeoutMs still gets the 4001 close frame', async () => {
    const { s, join, disconnects } = await named({ maxBufferedBytes: 64 * 1024, closeTimeoutMs: 10_000 });
    const slow = await join('slow');
    rawSocket(slow).pause();
    const slowClosed = closed(slow);
    const chunk = 'x'.repeat(MiB);
    let last = s.manager.broadcast(chunk);
    for (let i = 0; i < 200 && last.failed.length === 0; i++) {
      await new Promise((r) => setImmediate(r));
      last = s.manager.broadcast(chunk);
    }
    expect(last.failed).toEqual([{ clientId: 'slow', reason: 'slow-consumer' }]);
    rawSocket(slow).resume();
    expect((await slowClosed).code).toBe(CloseCode.SlowConsumer);
    await waitFor(() => disconnects.length === 1, 'disconnect event');
    expect(disconnects[0]).toMatchObject({ code: CloseCode.SlowConsumer, reason: 'slow-consumer' });
  });
});

describe('any close the server starts, to a peer that does not read, is bounded by closeTimeoutMs', () => {
  const config = { maxBufferedBytes: 64 * MiB, closeTimeoutMs: 300 };

  it('rate limit (4002)', async () => {
    const { s, join, disconnects } = await named({
      ...config,
      rateLimit: { messagesPerSecond: 1, burst: 1 },
    });
    const ws = await join('a');
    rawSocket(ws).pause();
    await backlog((d) => s.manager.broadcast(d), 16 * MiB);
    ws.send('one');
    ws.send('two'); // over the limit: the server closes with 4002, behind the backlog
    await vi.waitFor(() => expect(disconnects).toHaveLength(1), PROMPTLY);
    expect(disconnects[0]).toEqual({
      clientId: 'a',
      code: CloseCode.RateLimited,
      reason: 'rate-limited',
      sessionRetained: false,
    });
    expect(s.manager.getConnectionCount()).toBe(0);
  });

  it('disconnect() resolves, with the code it sent', async () => {
    const { s, join, disconnects } = await named(config);
    const ws = await join('a');
    rawSocket(ws).pause();
    await backlog((d) => s.manager.broadcast(d), 16 * MiB);
    const done = s.manager.disconnect('a', 4321, 'bye');
    await vi.waitFor(() => expect(disconnects).toHaveLength(1), PROMPTLY);
    expect(await done).toBe(true);
    expect(disconnects).toEqual([
      { clientId: 'a', code: 4321, reason: 'server-closed', sessionRetained: false },
    ]);
  });

  it('a frame ws rejects (1002)', async () => {
    const { s, disconnects } = await named(config);
    const raw = await RawTcpClient.upgrade(s.port, '/ws?id=raw');
    raws.push(raw);
    await waitFor(() => s.manager.isConnected('raw'), 'registered');
    raw.socket.pause();
    await backlog((d) => s.manager.broadcast(d), 16 * MiB);
    raw.send({ opcode: 0x1, payload: 'unmasked', mask: false });
    await vi.waitFor(() => expect(disconnects).toHaveLength(1), PROMPTLY);
    expect(disconnects[0]).toEqual({
      clientId: 'raw',
      code: 1002,
      reason: 'protocol-violation',
      sessionRetained: false,
    });
    expect(s.manager.getConnectionCount()).toBe(0);
  });

  it('a frame over maxPayloadBytes (1009)', async () => {
    const { s, join, disconnects } = await named({ ...config, maxPayloadBytes: 1024 });
    const ws = await join('a');
    rawSocket(ws).pause();
    await backlog((d) => s.manager.broadcast(d), 16 * MiB);
    ws.send('z'.repeat(2048));
    await vi.waitFor(() => expect(disconnects).toHaveLength(1), PROMPTLY);
    expect(disconnects[0]).toEqual({
      clientId: 'a',
      code: CloseCode.MessageTooBig,
      reason: 'message-too-big',
      sessionRetained: false,
    });
  });
});

describe('other close handshakes with a peer that does not read', () => {
  it('the peer starts the close and stops reading: the next sweep bounds the wait; disconnect has its code', async () => {
    // A 500 ms sweep; no heartbeat expiry within the test (pingIntervalMs + pongTimeoutMs = 11 s).
    const { s, join, disconnects } = await named({
      maxBufferedBytes: 64 * MiB,
      closeTimeoutMs: 300,
      pingIntervalMs: 1000,
      pongTimeoutMs: 10_000,
    });
    const ws = await join('a');
    rawSocket(ws).pause();
    await backlog((d) => s.manager.broadcast(d), 16 * MiB);
    ws.close(4100, 'leaving'); // the server's echo sits behind the backlog
    await vi.waitFor(() => expect(disconnects).toHaveLength(1), PROMPTLY);
    expect(disconnects[0]).toEqual({
      clientId: 'a',
      code: 4100,
      reason: 'client-closed',
      sessionRetained: false,
    });
    expect(s.manager.getConnectionCount()).toBe(0);
  });

  it('graceful shutdown: a peer terminated at timeoutMs is reported with the code the server sent, not 1006', async () => {
    const { s, join, disconnects } = await named({ maxBufferedBytes: 64 * MiB });
    const ws = await join('a');
    rawSocket(ws).pause();
    await backlog((d) => s.manager.broadcast(d), 16 * MiB);
    const stats = await s.manager.gracefulShutdown({ timeoutMs: 300 });
    expect(stats.terminated).toBe(1);
    await vi.waitFor(() => expect(disconnects).toHaveLength(1), PROMPTLY);
    expect(disconnects[0]).toEqual({ clientId: 'a', code: 1001, reason: 'shutdown', sessionRetained: false });
  });
});

describe('a protocol client (the real client) whose socket stops reading', () => {
  const secret = 'slow-consumer-secret-0123456789abcdef012345';

  /** The real client on `ws`, with every socket it opens kept, so a test can pause the current one. */
  function realClient(url: string) {
    const sockets: WebSocket[] = [];
    class Tracked extends WebSocket {
      constructor(...args: ConstructorParameters<typeof WebSocket>) {
        super(...args);
        sockets.push(this);
      }
    }
    const c = new StabilizerClient<{ n: number; pad: string }>(url, {
      WebSocket: Tracked as never,
      minDelayMs: 10,
      maxDelayMs: 50,
    });
    stabilizerClients.push(c as StabilizerClient);
    const received: number[] = [];
    c.on('message', (m) => void received.push(m.n));
    const closes: CloseInfo[] = [];
    c.on('close', (e) => void closes.push(e));
    const opens: Array<{ resumed: boolean; reason?: FreshReason }> = [];
    c.on('resumed', () => void opens.push({ resumed: true }));
    c.on('fresh', ({ reason }) => void opens.push({ resumed: false, reason }));
    return { c, sockets, received, closes, opens };
  }

  /** Broadcast reliable messages until the manager drops the client as slow; returns the last `n` sent. */
  async function overflow(
    broadcast: (data: { n: number; pad: string }) => { delivered: number },
  ): Promise<number> {
    const pad = 'p'.repeat(16 * 1024);
    let n = 0;
    for (;;) {
      if (broadcast({ n: ++n, pad }).delivered === 0) return n; // over maxBufferedBytes: buffered for the resume
      if (n % 16 === 0) await new Promise((r) => setImmediate(r));
      if (n > 5000) throw new Error('never became a slow consumer');
    }
  }

  it('reading again within closeTimeoutMs: it sees 4001, resumes, and gets every message exactly once, in order', async () => {
    const { s, disconnects } = await named({
      tokens: { secret },
      maxBufferedBytes: 256 * 1024,
      closeTimeoutMs: 10_000,
      replay: { maxMessages: 100_000 },
    });
    const { c, sockets, received, closes, opens } = realClient(s.url);
    await waitFor(() => c.state === 'open', 'client open');
    opens.splice(0);
    rawSocket(sockets.at(-1)!).pause();
    let n = await overflow((d) => s.manager.broadcast(d));
    for (let i = 0; i < 5; i++) expect(s.manager.broadcast({ n: ++n, pad: '' }).buffered).toBe(1);

    rawSocket(sockets.at(-1)!).resume();
    await vi.waitFor(() => expect(received).toHaveLength(n), { timeout: 10_000, interval: 20 });
    expect(received).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(closes[0]).toMatchObject({ code: CloseCode.SlowConsumer, willReconnect: true });
    expect(opens).toEqual([{ resumed: true }]);
    expect(disconnects[0]).toMatchObject({
      code: CloseCode.SlowConsumer,
      reason: 'slow-consumer',
      sessionRetained: true,
    });
  });

  it('stalled past closeTimeoutMs: dropped promptly, its slot freed; reading again, its topic gets fresh/gap, never a partial replay', async () => {
    const { s, disconnects } = await named({
      tokens: { secret },
      maxBufferedBytes: 256 * 1024,
      closeTimeoutMs: 300,
      maxConnections: 1,
      replay: { maxMessages: 100_000 },
    });
    const { c, sockets, received, opens } = realClient(s.url);
    const streams: Array<{ topic: string; resume: string; reason?: string }> = [];
    c.on('stream', (e) => void streams.push(e));
    await waitFor(() => c.state === 'open', 'client open');
    const id = c.sessionId!;
    opens.splice(0);
    streams.splice(0);
    rawSocket(sockets.at(-1)!).pause();
    let n = await overflow((d) => s.manager.broadcast(d));

    await vi.waitFor(() => expect(disconnects).toHaveLength(1), PROMPTLY);
    expect(disconnects[0]).toEqual({
      clientId: id,
      code: CloseCode.SlowConsumer,
      reason: 'slow-consumer',
      sessionRetained: true,
    });
    expect(s.manager.getConnectionCount()).toBe(0);
    expect(s.manager.getStats().detachedSessions).toBe(1);
    expect(await upgradeStatus(s.url)).toBe(101); // the maxConnections slot is free
    for (let i = 0; i < 5; i++) expect(s.manager.broadcast({ n: ++n, pad: '' }).buffered).toBe(1);

    rawSocket(sockets.at(-1)!).resume();
    await vi.waitFor(() => expect(opens).toHaveLength(1), { timeout: 10_000, interval: 20 });
    // What it read before the TCP connection ended arrived exactly once and in order. The rest was in the
    // terminated socket's buffer (over maxBufferedBytes), more than the `$all` history holds (at most half of
    // that), so the resume says so for that topic instead of replaying part of the gap. The session resumes.
    expect(opens).toEqual([{ resumed: true }]);
    expect(streams).toEqual([{ topic: '$all', resume: 'fresh', reason: 'gap' }]);
    expect(received.length).toBeLessThan(n);
    expect(received).toEqual(Array.from({ length: received.length }, (_, i) => i + 1));
    expect(s.manager.sendToClient(c.sessionId!, { n: -1, pad: '' })).toBe('sent');
    await waitFor(() => received.at(-1) === -1, 'the session delivers again');
  });
});
