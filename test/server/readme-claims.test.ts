// Claims of README "Registry and messages", "Events" and "Graceful shutdown" that no other test pinned down.
// Each test names the claim it checks; the full claim → test list is in the infra report of issue 8.
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { CloseCode, isRetryableCloseCode, SUBPROTOCOL } from '../../src/protocol/index.js';
import { TokenError, WebSocketConnectionManager, type ManagerEvents } from '../../src/server/index.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, closed, startServer, waitFor } from '../helpers/server.js';
import { cleanup, client, idFromQuery, rawSocket, sleep } from './support.js';

const secret = 'readme-claims-secret-0123456789abcdef0123';
const stops: Array<() => Promise<void>> = [];

afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(stops.splice(0).map((s) => s()));
  await closeAllServers();
  await cleanup();
});

/** A `ws` server that hands every socket to `manager.connect` itself (selecting stabilizer.v1 when offered). */
async function ownServer(manager: WebSocketConnectionManager) {
  const wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    perMessageDeflate: false,
    maxPayload: manager.config.maxPayloadBytes,
    handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  /** What each `connect()` settled with: the id, or the error it rejected with. */
  const outcomes: Array<Promise<{ id?: string; err?: unknown }>> = [];
  wss.on('connection', (ws) => {
    outcomes.push(
      manager.connect(ws).then(
        (id) => ({ id }),
        (err: unknown) => ({ err }),
      ),
    );
  });
  await new Promise((r) => wss.once('listening', r));
  stops.push(async () => {
    await manager.gracefulShutdown({ timeoutMs: 200 });
    await new Promise((r) => wss.close(r));
  });
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, outcomes };
}

function record<K extends keyof ManagerEvents>(
  m: WebSocketConnectionManager,
  name: K,
): Array<ManagerEvents[K]> {
  const out: Array<ManagerEvents[K]> = [];
  m.on(name, (e) => void out.push(e));
  return out;
}

describe('README "Registry and messages"', () => {
  it('connect() rejects with a typed error after closing the socket with its code: no hello in time (4003)', async () => {
    const m = new WebSocketConnectionManager({ handshakeTimeoutMs: 100 });
    const { url, outcomes } = await ownServer(m);
    const c = await RawProtocolClient.open(url);
    await waitFor(() => outcomes.length === 1, 'connect called');
    expect((await c.waitClose()).code).toBe(CloseCode.HandshakeTimeout);
    expect((await outcomes[0])?.err).toMatchObject({ code: 'HANDSHAKE_TIMEOUT' });
    expect(m.getConnectionCount()).toBe(0);
  });

  it('connect() rejects with a typed error after closing the socket with its code: protocol violation (4502)', async () => {
    const m = new WebSocketConnectionManager();
    const { url, outcomes } = await ownServer(m);
    const c = await RawProtocolClient.open(url);
    c.send({ t: 'd', s: 1, p: 'before hello' });
    await waitFor(() => outcomes.length === 1, 'connect called');
    expect((await c.waitClose()).code).toBe(CloseCode.ProtocolViolation);
    expect((await outcomes[0])?.err).toMatchObject({ code: 'PROTOCOL_VIOLATION' });
    expect(m.getConnectionCount()).toBe(0);
  });

  it("'replace' (default): the replaced socket gets 4501 and disconnect reports it with reason replaced", async () => {
    const s = await startServer({}, { authenticate: () => ({ clientId: 'dup' }) });
    const disconnects = record(s.manager, 'disconnect');
    const first = await client(s.url);
    await waitFor(() => s.manager.isConnected('dup'), 'first registered');
    const firstClosed = closed(first);
    const second = await client(s.url);
    expect((await firstClosed).code).toBe(CloseCode.Replaced);
    await waitFor(() => disconnects.length === 1, 'disconnect for the replaced socket');
    expect(disconnects[0]).toEqual({
      clientId: 'dup',
      code: CloseCode.Replaced,
      reason: 'replaced',
      sessionRetained: false,
    });
    expect(s.manager.isConnected('dup')).toBe(true);
    expect(second.readyState).toBe(WebSocket.OPEN);
  });

  it('no clientId from authenticate: each protocol connection of the same user gets its own session', async () => {
    const s = await startServer({ tokens: { secret } }, { authenticate: () => ({ data: { user: 'ann' } }) });
    const connects = record(s.manager, 'connect');
    const tab1 = await RawProtocolClient.handshake(s.url);
    const tab2 = await RawProtocolClient.handshake(s.url);
    expect(tab1.welcome.sessionId).not.toBe(tab2.welcome.sessionId);
    expect(s.manager.getActiveConnections().sort()).toEqual(
      [tab1.welcome.sessionId, tab2.welcome.sessionId].sort(),
    );
    expect(tab1.client.closeInfo).toBeUndefined();
    expect(connects.map((e) => e.data)).toEqual([{ user: 'ann' }, { user: 'ann' }]);
  });

  it('attach turns permessage-deflate off even when the client offers it', async () => {
    const s = await startServer();
    const ws = await client(s.url, { perMessageDeflate: true });
    expect(ws.extensions).toBe('');
  });

  /** Send 16 KB messages to a client that stopped reading until `step` reports the write did not go out. */
  async function fillUntil<T>(step: () => T, done: (r: T) => boolean): Promise<T> {
    for (let i = 0; i < 2000; i++) {
      const r = step();
      if (done(r)) return r;
      if (i % 20 === 19) await sleep(1); // let the kernel buffers fill
    }
    throw new Error('the socket never backed up');
  }
  const chunk = 'x'.repeat(16 * 1024);

  it('sendToClient to a plain client over maxBufferedBytes throws SEND_FAILED and disconnects it (slow-consumer)', async () => {
    const s = await startServer({ maxBufferedBytes: 64 * 1024 }, { authenticate: idFromQuery });
    const disconnects = record(s.manager, 'disconnect');
    const ws = await client(`${s.url}?id=slow`);
    await waitFor(() => s.manager.isConnected('slow'), 'registered');
    rawSocket(ws).pause();
    const thrown = await fillUntil(
      () => {
        try {
          s.manager.sendToClient('slow', chunk);
          return undefined;
        } catch (err) {
          return err;
        }
      },
      (r) => r !== undefined,
    );
    expect(thrown).toMatchObject({ code: 'SEND_FAILED' });
    ws.terminate();
    await waitFor(() => disconnects.length === 1, 'disconnect');
    expect(disconnects[0]).toMatchObject({
      clientId: 'slow',
      reason: 'slow-consumer',
      sessionRetained: false,
    });
  });

  it('a protocol client over maxBufferedBytes: sendToClient returns buffered, broadcast counts it in buffered, resume delivers', async () => {
    const s = await startServer({ maxBufferedBytes: 64 * 1024, tokens: { secret } });
    const disconnects = record(s.manager, 'disconnect');
    const a = await RawProtocolClient.handshake(s.url);
    const b = await RawProtocolClient.handshake(s.url);
    const aId = a.welcome.sessionId;
    const bId = b.welcome.sessionId;
    rawSocket(a.client.ws).pause();
    rawSocket(b.client.ws).pause();

    const outcome = await fillUntil(
      () => s.manager.sendToClient(aId, chunk),
      (r) => r !== 'sent',
    );
    expect(outcome).toBe('buffered');
    const result = await fillUntil(
      () => s.manager.broadcast(chunk, { exclude: [aId] }),
      (r) => r.delivered === 0,
    );
    expect(result).toEqual({ delivered: 0, buffered: 1, dropped: 0, failed: [] });

    for (const [c, id] of [
      [a, aId],
      [b, bId],
    ] as const) {
      rawSocket(c.client.ws).resume(); // reads what reached it, then the socket ends
      await c.client.waitClose(10_000);
      await waitFor(() => disconnects.some((d) => d.clientId === id), `disconnect of ${id}`);
      const d = disconnects.find((e) => e.clientId === id)!;
      expect(d).toMatchObject({ reason: 'slow-consumer', sessionRetained: true });
      expect(isRetryableCloseCode(d.code)).toBe(true);

      // The resume completes what the client read with the rest, up to the message counted as buffered: once, in order.
      const lastSeq = c.client.lastSeq;
      const again = await RawProtocolClient.handshake(s.url, {
        token: c.welcome.token,
        sessionId: id,
        lastSeq,
      });
      expect(again.welcome).toMatchObject({ resume: 'resumed' });
      const total = again.welcome.lastSeq as number;
      await again.client.waitForData(total - lastSeq);
      const seqs = [...c.client.data.slice(0, lastSeq), ...again.client.data].map((m) => m.s);
      expect(seqs).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    }
  });
});

describe('README "Events"', () => {
  it('connect reports mode, resume, freshReason and replayed; message reports reliable and seq', async () => {
    const s = await startServer({ tokens: { secret } });
    const connects = record(s.manager, 'connect');
    const messages = record(s.manager, 'message');
    const a = await RawProtocolClient.handshake(s.url);
    const id = a.welcome.sessionId;
    expect(connects[0]).toMatchObject({
      clientId: id,
      mode: 'protocol',
      resume: 'fresh',
      freshReason: 'new',
    });
    a.client.send({ t: 'd', s: 1, p: { hi: 1 } });
    await waitFor(() => messages.length === 1, 'message');
    expect(messages[0]).toEqual({
      clientId: id,
      data: { hi: 1 },
      isBinary: false,
      reliable: true,
      seq: 1,
      messageId: expect.stringMatching(/^[\w-]{16}:1$/) as unknown,
    });

    a.client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(id), 'detached');
    s.manager.sendToClient(id, 'one');
    s.manager.sendToClient(id, 'two');
    const b = await RawProtocolClient.handshake(s.url, { token: a.welcome.token, sessionId: id, lastSeq: 0 });
    expect(b.welcome.resume).toBe('resumed');
    await waitFor(() => connects.length === 2, 'second connect');
    expect(connects[1]).toMatchObject({ clientId: id, mode: 'protocol', resume: 'resumed', replayed: 2 });
  });

  it("disconnect's code is the peer's when the peer closed first", async () => {
    const s = await startServer({}, { authenticate: idFromQuery });
    const disconnects = record(s.manager, 'disconnect');
    const ws = await client(`${s.url}?id=p`);
    await waitFor(() => s.manager.isConnected('p'), 'registered');
    ws.close(4100, 'my own reason');
    await waitFor(() => disconnects.length === 1, 'disconnect');
    expect(disconnects[0]).toEqual({
      clientId: 'p',
      code: 4100,
      reason: 'client-closed',
      sessionRetained: false,
    });
  });

  it('disconnect reason protocol-violation for a registered protocol client that breaks the protocol', async () => {
    const s = await startServer({ tokens: { secret } });
    const disconnects = record(s.manager, 'disconnect');
    const a = await RawProtocolClient.handshake(s.url);
    a.client.send({ t: 'nope' });
    expect((await a.client.waitClose()).code).toBe(CloseCode.ProtocolViolation);
    await waitFor(() => disconnects.length === 1, 'disconnect');
    expect(disconnects[0]).toMatchObject({
      clientId: a.welcome.sessionId,
      code: CloseCode.ProtocolViolation,
      reason: 'protocol-violation',
    });
  });

  it('handshake-timeout and forbidden end a handshake: connect() rejects with them, and no disconnect fires', async () => {
    const m = new WebSocketConnectionManager(
      { handshakeTimeoutMs: 100, tokens: { secret } },
      { authorizeResume: () => false },
    );
    const disconnects = record(m, 'disconnect');
    const { url, outcomes } = await ownServer(m);
    const first = await RawProtocolClient.handshake(url);
    first.client.ws.terminate();
    await waitFor(() => disconnects.length === 1, 'the first socket detached');

    const refused = await RawProtocolClient.open(url);
    refused.send({ t: 'hello', v: 1, token: first.welcome.token, sessionId: first.welcome.sessionId });
    expect((await refused.waitClose()).code).toBe(CloseCode.Forbidden);
    const silent = await RawProtocolClient.open(url);
    expect((await silent.waitClose()).code).toBe(CloseCode.HandshakeTimeout);

    const settled = await Promise.all(outcomes.slice(1));
    expect(settled.map((o) => (o.err as { code?: string } | undefined)?.code)).toEqual([
      'FORBIDDEN',
      'HANDSHAKE_TIMEOUT',
    ]);
    await sleep(50);
    expect(disconnects).toHaveLength(1); // only the first socket's, which had registered
  });

  it('sessionRetained: true while a session waits for its resume; session-end expired when it is gone', async () => {
    const s = await startServer({ tokens: { secret }, sessionTtlMs: 60_000 });
    const disconnects = record(s.manager, 'disconnect');
    const ends = record(s.manager, 'session-end');
    const a = await RawProtocolClient.handshake(s.url);
    const id = a.welcome.sessionId;
    a.client.ws.terminate();
    await waitFor(() => disconnects.length === 1, 'disconnect');
    expect(disconnects[0]).toMatchObject({ clientId: id, sessionRetained: true });
    expect(s.manager.sendToClient(id, 'while away')).toBe('buffered');
    expect(ends).toEqual([]);
    s.manager.sweep(Date.now() + 60_010);
    expect(ends).toEqual([{ clientId: id, reason: 'expired' }]);
    expect(() => s.manager.sendToClient(id, 'gone')).toThrow(
      expect.objectContaining({ code: 'UNKNOWN_CLIENT' }),
    );
  });

  it("session-end 'replaced' when a fresh session takes over a fixed client id", async () => {
    const s = await startServer({ tokens: { secret } }, { authenticate: () => ({ clientId: 'u1' }) });
    const ends = record(s.manager, 'session-end');
    const first = await RawProtocolClient.handshake(s.url);
    expect(first.welcome.sessionId).toBe('u1');
    const second = await RawProtocolClient.handshake(s.url); // no token: a new session under the same id
    expect(second.welcome).toMatchObject({ sessionId: 'u1', resume: 'fresh' });
    expect((await first.client.waitClose()).code).toBe(CloseCode.Replaced);
    expect(ends).toEqual([{ clientId: 'u1', reason: 'replaced' }]);
    expect(s.manager.isConnected('u1')).toBe(true);
  });

  it("session-end 'shutdown' for the sessions a graceful shutdown closes (memory backend)", async () => {
    const s = await startServer({ tokens: { secret } });
    const ends = record(s.manager, 'session-end');
    const a = await RawProtocolClient.handshake(s.url);
    await s.manager.gracefulShutdown({ timeoutMs: 1000 });
    expect(ends).toEqual([{ clientId: a.welcome.sessionId, reason: 'shutdown' }]);
  });

  it('an async message listener may do async work; other listeners and connections are unaffected', async () => {
    const s = await startServer({}, { authenticate: idFromQuery });
    const done: string[] = [];
    s.manager.on('message', async (e) => {
      await sleep(5);
      done.push(String(e.data));
    });
    const ws = await client(`${s.url}?id=x`);
    await waitFor(() => s.manager.isConnected('x'), 'registered');
    ws.send('a');
    ws.send('b');
    await waitFor(() => done.length === 2, 'both handled');
    expect(done).toEqual(['a', 'b']);
    expect(ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe('README "Graceful shutdown" and tokens', () => {
  it('the sweep timer stops: no heartbeat pass runs after gracefulShutdown', async () => {
    const s = await startServer({ pingIntervalMs: 40, pongTimeoutMs: 40 });
    const sweep = vi.spyOn(s.manager, 'sweep');
    await waitFor(() => sweep.mock.calls.length > 0, 'the sweep runs');
    await s.manager.gracefulShutdown({ timeoutMs: 200 });
    const calls = sweep.mock.calls.length;
    await sleep(200); // ten sweep periods
    expect(sweep.mock.calls.length).toBe(calls);
  });

  it('validateReconnectToken on a manager without a secret rejects with a TokenError TOKENS_DISABLED', async () => {
    const signer = new WebSocketConnectionManager({ tokens: { secret } });
    const none = new WebSocketConnectionManager();
    const token = signer.generateReconnectToken('c');
    const err = await none.validateReconnectToken(token).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenError);
    expect(err).toMatchObject({ code: 'TOKENS_DISABLED' });
    await Promise.all([signer.gracefulShutdown({ timeoutMs: 10 }), none.gracefulShutdown({ timeoutMs: 10 })]);
  });
});
