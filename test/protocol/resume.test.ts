import { afterEach, describe, expect, it, vi } from 'vitest';
import { CloseCode } from '../../src/protocol/index.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, openClient, startServer, waitFor } from '../helpers/server.js';

afterEach(closeAllServers);

const secret = 'a-test-secret-that-is-long-enough-0123456789';

describe('stabilizer.v1 handshake', () => {
  it('negotiates the subprotocol and starts a fresh session with reason "new"', async () => {
    const s = await startServer();
    const { client, welcome } = await RawProtocolClient.handshake(s.url);
    expect(client.ws.protocol).toBe('stabilizer.v1');
    expect(welcome).toMatchObject({ resume: 'fresh', reason: 'new', lastSeq: 0, lastClientSeq: 0 });
    expect(welcome.pingIntervalMs).toBe(30_000);
    expect(typeof welcome.token).toBe('string');
    expect(s.manager.isConnected(welcome.sessionId)).toBe(true);
  });

  it('keeps plain mode for clients that do not offer the subprotocol', async () => {
    const s = await startServer();
    const ws = await openClient(s.url);
    expect(ws.protocol).toBe('');
    await waitFor(() => s.manager.getConnectionCount() === 1);
    const got: string[] = [];
    ws.on('message', (d) => got.push(d.toString()));
    s.manager.broadcast({ a: 1 });
    await waitFor(() => got.length === 1);
    expect(got[0]).toBe('{"a":1}');
  });

  it('closes with 4502 when a frame precedes hello', async () => {
    const s = await startServer();
    const c = await RawProtocolClient.open(s.url);
    c.send({ t: 'd', s: 1, p: 'too early' });
    expect((await c.waitClose()).code).toBe(CloseCode.ProtocolViolation);
  });

  it('closes with 4502 on invalid JSON and unknown message types', async () => {
    const s = await startServer();
    const a = await RawProtocolClient.open(s.url);
    a.ws.send('{not json');
    expect((await a.waitClose()).code).toBe(CloseCode.ProtocolViolation);
    const { client: b } = await RawProtocolClient.handshake(s.url);
    b.send({ t: 'nope' });
    expect((await b.waitClose()).code).toBe(CloseCode.ProtocolViolation);
  });

  it('closes with 4003 when no hello arrives in time', async () => {
    const s = await startServer({ handshakeTimeoutMs: 50 });
    const c = await RawProtocolClient.open(s.url);
    expect((await c.waitClose()).code).toBe(CloseCode.HandshakeTimeout);
    expect(s.manager.getStats().handshaking).toBe(0);
  });
});

describe('resume', () => {
  it('replays exactly the missed messages of every stream, in order, after a drop (also from lastSeq 0)', async () => {
    const s = await startServer({ tokens: { secret } });
    const { client, welcome } = await RawProtocolClient.handshake(s.url);
    const id = welcome.sessionId;
    expect(welcome.topics).toEqual([{ c: '$all', o: 0, resume: 'fresh', reason: 'new' }]);
    s.manager.sendToClient(id, 'm1');
    s.manager.sendToClient(id, 'm2');
    s.manager.broadcast('b1');
    await client.waitForData(3);
    client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(id), 'detach');
    expect(s.manager.sendToClient(id, 'm3')).toBe('buffered');
    expect(s.manager.broadcast('b2').buffered).toBe(1);

    const { client: again, welcome: w2 } = await RawProtocolClient.handshake(s.url, {
      token: welcome.token,
      sessionId: id,
      lastSeq: 2,
      topics: { $all: 1 },
    });
    expect(w2).toMatchObject({ resume: 'resumed', sessionId: id, lastSeq: 3 });
    expect(w2.topics).toEqual([{ c: '$all', o: 1, resume: 'resumed' }]);
    await again.waitForData(2);
    // The inbox first, then each topic: in order within each stream (no order across streams).
    expect(again.data).toEqual([
      { s: 3, p: 'm3' },
      { c: '$all', o: 2, p: 'b2' },
    ]);
    // Claiming less than it already acknowledged (the resume acked 2) can't be served whole: gap, not partial.
    again.ws.terminate();
    await waitFor(() => !s.manager.isConnected(id));
    const { welcome: w3 } = await RawProtocolClient.handshake(s.url, { token: w2.token, lastSeq: 0 });
    expect(w3).toMatchObject({ resume: 'fresh', reason: 'gap' });
  });

  it('resumes a client that never received a message (lastSeq 0)', async () => {
    const s = await startServer({ tokens: { secret } });
    const { client, welcome } = await RawProtocolClient.handshake(s.url);
    client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(welcome.sessionId));
    s.manager.sendToClient(welcome.sessionId, 'a');
    s.manager.sendToClient(welcome.sessionId, 'b');
    const { client: c2, welcome: w2 } = await RawProtocolClient.handshake(s.url, {
      token: welcome.token,
      lastSeq: 0,
    });
    expect(w2.resume).toBe('resumed');
    await c2.waitForData(2);
    expect(c2.data).toEqual([
      { s: 1, p: 'a' },
      { s: 2, p: 'b' },
    ]);
  });

  it('trims the buffer on ack and answers fresh/gap instead of a partial replay', async () => {
    const s = await startServer({ tokens: { secret }, replay: { maxMessages: 3 } });
    const { client, welcome } = await RawProtocolClient.handshake(s.url);
    const id = welcome.sessionId;
    for (let i = 1; i <= 5; i++) s.manager.sendToClient(id, i);
    await client.waitForData(5);
    client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(id));
    // seq 1 and 2 were evicted unacked: resuming from 1 needs seq 2, which is gone.
    const { client: c2, welcome: w2 } = await RawProtocolClient.handshake(s.url, {
      token: welcome.token,
      lastSeq: 1,
    });
    expect(w2).toMatchObject({ resume: 'fresh', reason: 'gap', lastSeq: 0 });
    expect(w2.sessionId).not.toBe(id);
    await new Promise((r) => setTimeout(r, 50));
    expect(c2.data).toEqual([]);
  });

  it('resumes within the window after acks trimmed the buffer', async () => {
    const s = await startServer({ tokens: { secret }, replay: { maxMessages: 3 } });
    const { client, welcome } = await RawProtocolClient.handshake(s.url);
    const id = welcome.sessionId;
    for (let i = 1; i <= 3; i++) s.manager.sendToClient(id, i);
    await client.waitForData(3);
    client.send({ t: 'ack', s: 3 });
    await waitFor(() => s.manager.backend.getSession(id)!.buffer.size === 0, 'trim');
    for (let i = 4; i <= 6; i++) s.manager.sendToClient(id, i);
    client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(id));
    const { client: c2, welcome: w2 } = await RawProtocolClient.handshake(s.url, {
      token: welcome.token,
      lastSeq: 3,
    });
    expect(w2.resume).toBe('resumed');
    await c2.waitForData(3);
    expect(c2.data.map((d) => d.p)).toEqual([4, 5, 6]);
  });

  it('refuses a token used twice, a tampered token and a token presented for another session', async () => {
    const s = await startServer({ tokens: { secret } });
    const a = await RawProtocolClient.handshake(s.url);
    const b = await RawProtocolClient.handshake(s.url);
    a.client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(a.welcome.sessionId));

    const first = await RawProtocolClient.handshake(s.url, { token: a.welcome.token });
    expect(first.welcome.resume).toBe('resumed');
    // Used before while its session lives on: a stale attempt, refused with 4004 (no welcome, nothing touched).
    const replayed = await RawProtocolClient.open(s.url);
    replayed.send({ t: 'hello', v: 1, token: a.welcome.token });
    expect((await replayed.waitClose()).code).toBe(CloseCode.StaleHello);
    expect(replayed.frames.map((f) => f.t)).toEqual(['error']);

    const tampered = first.welcome.token.slice(0, -2) + (first.welcome.token.endsWith('AA') ? 'BA' : 'AA');
    const t = await RawProtocolClient.handshake(s.url, { token: tampered });
    expect(t.welcome).toMatchObject({ resume: 'fresh', reason: 'token-rejected' });

    const wrong = await RawProtocolClient.handshake(s.url, {
      token: first.welcome.token,
      sessionId: b.welcome.sessionId,
    });
    expect(wrong.welcome).toMatchObject({ resume: 'fresh', reason: 'token-rejected' });
    // The refused attempt did not burn the token for its rightful session.
    first.client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(first.welcome.sessionId));
    const ok = await RawProtocolClient.handshake(s.url, { token: first.welcome.token });
    expect(ok.welcome.resume).toBe('resumed');
  });

  it('lets a retry with the same token take over an attempt whose welcome was never confirmed', async () => {
    const s = await startServer({ tokens: { secret } });
    const a = await RawProtocolClient.handshake(s.url);
    a.client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(a.welcome.sessionId));
    // First attempt: welcomed, but the client never confirms (its socket is about to die).
    const first = await RawProtocolClient.handshake(s.url, { token: a.welcome.token }, false);
    expect(first.welcome.resume).toBe('resumed');
    // The client retries with the token it still holds, before the server noticed the first socket died.
    const retry = await RawProtocolClient.handshake(s.url, { token: a.welcome.token });
    expect(retry.welcome).toMatchObject({ resume: 'resumed', sessionId: a.welcome.sessionId });
    await first.client.waitClose();
    // Once confirmed, the token is spent for good.
    const again = await RawProtocolClient.open(s.url);
    again.send({ t: 'hello', v: 1, token: a.welcome.token });
    expect((await again.waitClose()).code).toBe(CloseCode.StaleHello);
    expect(retry.client.closeInfo).toBeUndefined();
    // Once the session is gone, a used token is just rejected: fresh with token-rejected.
    await s.manager.disconnect(a.welcome.sessionId, 1000); // ends the session
    await waitFor(() => s.manager.backend.getSession(a.welcome.sessionId) === undefined);
    const late = await RawProtocolClient.handshake(s.url, { token: a.welcome.token });
    expect(late.welcome).toMatchObject({ resume: 'fresh', reason: 'token-rejected' });
  });

  it('gives a token back when the socket closes before the welcome is confirmed', async () => {
    const s = await startServer({ tokens: { secret } });
    const a = await RawProtocolClient.handshake(s.url);
    a.client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(a.welcome.sessionId));
    const lost = await RawProtocolClient.handshake(s.url, { token: a.welcome.token }, false);
    lost.client.ws.terminate(); // the welcome never reached the application
    await waitFor(() => !s.manager.isConnected(a.welcome.sessionId));
    const retry = await RawProtocolClient.handshake(s.url, { token: a.welcome.token });
    expect(retry.welcome).toMatchObject({ resume: 'resumed', sessionId: a.welcome.sessionId });
  });

  it('answers expired for a session past sessionTtlMs and unknown-session after a restart', async () => {
    const s = await startServer({ tokens: { secret }, sessionTtlMs: 1 });
    const a = await RawProtocolClient.handshake(s.url);
    a.client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(a.welcome.sessionId));
    await new Promise((r) => setTimeout(r, 5));
    s.manager.sweep(Date.now());
    const e = await RawProtocolClient.handshake(s.url, { token: a.welcome.token });
    expect(e.welcome).toMatchObject({ resume: 'fresh', reason: 'expired' });

    const other = await startServer({ tokens: { secret } }); // same secret, empty memory: a restarted server
    const u = await RawProtocolClient.handshake(other.url, { token: e.welcome.token });
    expect(u.welcome).toMatchObject({ resume: 'fresh', reason: 'unknown-session' });
  });

  it('answers expired for an expired token even while its session still exists', async () => {
    const s = await startServer({ tokens: { secret }, sessionTtlMs: 60_000 });
    const a = await RawProtocolClient.handshake(s.url);
    a.client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(a.welcome.sessionId));
    // Protocol tokens live 1.5 × max(tokens.ttlMs, sessionTtlMs) = 180 s here; jump past that without a sweep.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 181_000 });
    try {
      const e = await RawProtocolClient.handshake(s.url, { token: a.welcome.token });
      expect(e.welcome).toMatchObject({ resume: 'fresh', reason: 'expired' });
      expect(s.manager.backend.getSession(a.welcome.sessionId)).toBeDefined(); // not swept: the token decided
    } finally {
      vi.useRealTimers();
    }
  });

  it('re-checks authorization on resume and closes with 4503 when refused', async () => {
    let allow = true;
    const seen: string[] = [];
    const s = await startServer(
      { tokens: { secret } },
      {},
      {
        authorizeResume: ({ clientId }) => {
          seen.push(clientId);
          return allow;
        },
      },
    );
    const a = await RawProtocolClient.handshake(s.url);
    a.client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(a.welcome.sessionId));
    allow = false;
    const c = await RawProtocolClient.open(s.url);
    c.send({ t: 'hello', v: 1, token: a.welcome.token });
    expect((await c.waitClose()).code).toBe(CloseCode.Forbidden);
    expect(seen).toEqual([a.welcome.sessionId]);
  });

  it('delivers client messages exactly once across a resend after resume', async () => {
    const s = await startServer({ tokens: { secret } });
    const got: unknown[] = [];
    s.manager.on('message', ({ data, reliable }) => {
      if (reliable) got.push(data);
    });
    const a = await RawProtocolClient.handshake(s.url);
    a.client.send({ t: 'd', s: 1, p: 'one' });
    a.client.send({ t: 'd', s: 2, p: 'two' });
    await a.client.waitFor((f) => f.t === 'ack' && f.s === 2);
    a.client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(a.welcome.sessionId));
    const b = await RawProtocolClient.handshake(s.url, { token: a.welcome.token });
    expect(b.welcome.lastClientSeq).toBe(2);
    b.client.send({ t: 'd', s: 2, p: 'two' }); // a resend the client was unsure about
    b.client.send({ t: 'd', s: 3, p: 'three' });
    await b.client.waitFor((f) => f.t === 'ack' && f.s === 3);
    expect(got).toEqual(['one', 'two', 'three']);
    b.client.send({ t: 'd', s: 5, p: 'gap' });
    expect((await b.client.waitClose()).code).toBe(CloseCode.ProtocolViolation);
  });

  it('replaces a connection when its session resumes elsewhere (4501)', async () => {
    const s = await startServer({ tokens: { secret } });
    const a = await RawProtocolClient.handshake(s.url);
    const b = await RawProtocolClient.handshake(s.url, { token: a.welcome.token });
    expect(b.welcome).toMatchObject({ resume: 'resumed', sessionId: a.welcome.sessionId });
    expect((await a.client.waitClose()).code).toBe(CloseCode.Replaced);
    expect(s.manager.isConnected(a.welcome.sessionId)).toBe(true);
  });

  it('sends a replacement token before the current one expires', async () => {
    const s = await startServer({ tokens: { secret, ttlMs: 100 }, sessionTtlMs: 100 });
    const a = await RawProtocolClient.handshake(s.url);
    s.manager.sweep(Date.now() + 60);
    const t = await a.client.waitFor((f) => f.t === 'token');
    expect(typeof t.token).toBe('string');
    expect(t.token).not.toBe(a.welcome.token);
  });

  it('answers an application ping and pings idle protocol clients itself', async () => {
    const s = await startServer({ pingIntervalMs: 50, pongTimeoutMs: 1000 });
    const a = await RawProtocolClient.handshake(s.url);
    a.client.send({ t: 'ping' });
    await a.client.waitFor((f) => f.t === 'pong');
    await a.client.waitFor((f) => f.t === 'ping');
  });
});
