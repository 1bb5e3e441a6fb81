import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { CloseCode, isRetryableCloseCode } from '../../src/protocol/index.js';
import type { AuthResult } from '../../src/server/upgrade/upgrade.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, startServer, waitFor } from '../helpers/server.js';

afterEach(closeAllServers);

const secret = 'identity-test-secret-0123456789abcdef0123';
const fixedId = (): AuthResult => ({ clientId: 'user-1' });
/** `?user=<name>`: the principal (and data) of the connection; no client id, as the README advises for tabs. */
const byQuery = (req: IncomingMessage): AuthResult => {
  const user = new URL(req.url ?? '/', 'http://x').searchParams.get('user');
  return user === null ? {} : { principal: user, data: { user } };
};

/** A round trip on `c`, so that the server has processed everything sent before. */
async function roundTrip(c: RawProtocolClient): Promise<void> {
  const before = c.frames.filter((f) => f.t === 'pong').length;
  c.send({ t: 'ping' });
  await c.waitFor(() => c.frames.filter((f) => f.t === 'pong').length > before);
}

describe('a resume is bound to the principal that created the session', () => {
  it("refuses B's resume of A's session (fresh/token-rejected), B gets none of A's messages, A still resumes", async () => {
    const s = await startServer({ tokens: { secret } }, { authenticate: byQuery });
    const a = await RawProtocolClient.handshake(`${s.url}?user=alice`);
    a.client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(a.welcome.sessionId));
    s.manager.sendToClient(a.welcome.sessionId, 'for alice only');

    const b = await RawProtocolClient.handshake(`${s.url}?user=bob`, {
      token: a.welcome.token,
      sessionId: a.welcome.sessionId,
    });
    expect(b.welcome).toMatchObject({ resume: 'fresh', reason: 'token-rejected', lastSeq: 0 });
    expect(b.welcome.sessionId).not.toBe(a.welcome.sessionId);
    await roundTrip(b.client);
    expect(b.client.data).toEqual([]);

    // Bob's attempt did not burn Alice's token: she resumes and gets her message.
    const a2 = await RawProtocolClient.handshake(`${s.url}?user=alice`, {
      token: a.welcome.token,
      sessionId: a.welcome.sessionId,
    });
    expect(a2.welcome).toMatchObject({ resume: 'resumed', sessionId: a.welcome.sessionId });
    await a2.client.waitForData(1);
    expect(a2.client.data[0]!.p).toBe('for alice only');
  });

  it('refuses when only one side has a principal', async () => {
    const s = await startServer({ tokens: { secret } }, { authenticate: byQuery });
    const a = await RawProtocolClient.handshake(`${s.url}?user=alice`);
    a.client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(a.welcome.sessionId));
    const anon = await RawProtocolClient.handshake(s.url, { token: a.welcome.token });
    expect(anon.welcome).toMatchObject({ resume: 'fresh', reason: 'token-rejected' });

    const n = await RawProtocolClient.handshake(s.url);
    n.client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(n.welcome.sessionId));
    const named = await RawProtocolClient.handshake(`${s.url}?user=alice`, { token: n.welcome.token });
    expect(named.welcome).toMatchObject({ resume: 'fresh', reason: 'token-rejected' });
  });

  it("authorizeResume sees the session's creator (data, principal) and the new connection's", async () => {
    const seen: unknown[] = [];
    const s = await startServer(
      { tokens: { secret } },
      { authenticate: byQuery },
      {
        authorizeResume: (ctx) => {
          seen.push(ctx);
          return true;
        },
      },
    );
    const a = await RawProtocolClient.handshake(`${s.url}?user=alice`);
    a.client.ws.terminate();
    await waitFor(() => !s.manager.isConnected(a.welcome.sessionId));
    const a2 = await RawProtocolClient.handshake(`${s.url}?user=alice`, { token: a.welcome.token });
    expect(a2.welcome.resume).toBe('resumed');
    expect(seen).toEqual([
      {
        clientId: a.welcome.sessionId,
        remoteAddress: '127.0.0.1',
        data: { user: 'alice' },
        principal: 'alice',
        session: { data: { user: 'alice' }, principal: 'alice' },
      },
    ]);
  });
});

describe('fixed client ids (authenticate returns { clientId })', () => {
  it('a fresh/gap resume keeps the new session (no 4501 on confirmation)', async () => {
    const s = await startServer(
      { tokens: { secret }, replay: { maxMessages: 50 } },
      { authenticate: fixedId },
    );
    const a = await RawProtocolClient.handshake(s.url);
    expect(a.welcome.sessionId).toBe('user-1');
    a.client.ws.terminate();
    await waitFor(() => !s.manager.isConnected('user-1'));
    for (let i = 1; i <= 51; i++) s.manager.sendToClient('user-1', `m${i}`);

    const b = await RawProtocolClient.handshake(s.url, { token: a.welcome.token, sessionId: 'user-1' });
    expect(b.welcome).toMatchObject({ resume: 'fresh', reason: 'gap', sessionId: 'user-1' });
    await roundTrip(b.client);
    expect(b.client.closeInfo).toBeUndefined();
    expect(s.manager.isConnected('user-1')).toBe(true);
    expect(s.manager.sendToClient('user-1', 'after')).toBe('sent');
    await b.client.waitForData(1);
    expect(b.client.data).toEqual([{ s: 1, p: 'after' }]);
  });

  it("with duplicateIdPolicy 'reject', a gap resume replaces the client's own old connection, not the newcomer", async () => {
    const s = await startServer(
      { tokens: { secret }, replay: { maxMessages: 50 }, duplicateIdPolicy: 'reject' },
      { authenticate: fixedId },
    );
    const a = await RawProtocolClient.handshake(s.url);
    for (let i = 1; i <= 51; i++) s.manager.sendToClient('user-1', `m${i}`); // A never acks: seq 1 is evicted
    // The client moved to a new socket before the server noticed the old one was gone.
    const b = await RawProtocolClient.handshake(s.url, { token: a.welcome.token, sessionId: 'user-1' });
    expect(b.welcome).toMatchObject({ resume: 'fresh', reason: 'gap' });
    expect((await a.client.waitClose()).code).toBe(CloseCode.Replaced);
    await roundTrip(b.client);
    expect(b.client.closeInfo).toBeUndefined();
  });

  it('a late hello with a spent token is closed with 4004 and leaves the live session alone', async () => {
    const s = await startServer({ tokens: { secret } }, { authenticate: fixedId });
    const ends: string[] = [];
    s.manager.on('session-end', ({ reason }) => void ends.push(reason));
    const a = await RawProtocolClient.handshake(s.url);
    const late = await RawProtocolClient.open(s.url); // an attempt whose hello is held up in the network
    a.client.ws.terminate();
    await waitFor(() => !s.manager.isConnected('user-1') || s.manager.getStats().detachedSessions === 1);
    const b = await RawProtocolClient.handshake(s.url, { token: a.welcome.token, sessionId: 'user-1' });
    expect(b.welcome.resume).toBe('resumed');

    late.send({ t: 'hello', v: 1, token: a.welcome.token, sessionId: 'user-1' });
    expect((await late.waitClose()).code).toBe(CloseCode.StaleHello);
    expect(isRetryableCloseCode(CloseCode.StaleHello)).toBe(true); // a client that does get it just retries
    expect(late.frames).toEqual([
      { t: 'error', code: 'TOKEN_REPLAYED', message: 'stale hello: token already used' },
    ]);
    await roundTrip(b.client);
    expect(b.client.closeInfo).toBeUndefined();
    expect(s.manager.sendToClient('user-1', 'still here')).toBe('sent');
    await b.client.waitForData(1);
    expect(ends).toEqual([]);
  });

  it('a token given back by an abandoned, never confirmed attempt cannot take the session from a newer one', async () => {
    const s = await startServer({ tokens: { secret } }, { authenticate: fixedId });
    const a = await RawProtocolClient.handshake(s.url);
    a.client.ws.terminate();
    await waitFor(() => s.manager.getStats().detachedSessions === 1);
    // The client's attempt C is welcomed (it reads T2), but a late hello with T1 takes the unconfirmed token over.
    const c = await RawProtocolClient.handshake(
      s.url,
      { token: a.welcome.token, sessionId: 'user-1' },
      false,
    );
    const late1 = await RawProtocolClient.open(s.url);
    late1.send({ t: 'hello', v: 1, token: a.welcome.token, sessionId: 'user-1' });
    await late1.waitFor((f) => f.t === 'welcome');
    await c.client.waitClose();
    // The client resumes with T2; the abandoned socket is replaced and closes without ever confirming.
    const d = await RawProtocolClient.handshake(s.url, { token: c.welcome.token, sessionId: 'user-1' });
    expect(d.welcome.resume).toBe('resumed');
    await late1.waitClose();
    // T1 stays spent: another late hello with it is stale, and the client keeps its session.
    const late2 = await RawProtocolClient.open(s.url);
    late2.send({ t: 'hello', v: 1, token: a.welcome.token, sessionId: 'user-1' });
    expect((await late2.waitClose()).code).toBe(CloseCode.StaleHello);
    await roundTrip(d.client);
    expect(d.client.closeInfo).toBeUndefined();
  });

  it("a late hello of a replaced incarnation (e.g. a reloaded page's) leaves the newer live session alone", async () => {
    const s = await startServer({ tokens: { secret } }, { authenticate: fixedId });
    const old = await RawProtocolClient.handshake(s.url); // the page before the reload, token T1 unused
    const late = await RawProtocolClient.open(s.url); // its last attempt, held up in the network
    const now = await RawProtocolClient.handshake(s.url); // the reloaded page: a fresh session under user-1
    expect(now.welcome).toMatchObject({ resume: 'fresh', reason: 'new' });
    expect((await old.client.waitClose()).code).toBe(CloseCode.Replaced);
    late.send({ t: 'hello', v: 1, token: old.welcome.token, sessionId: 'user-1' });
    expect((await late.waitClose()).code).toBe(CloseCode.StaleHello);
    await roundTrip(now.client);
    expect(now.client.closeInfo).toBeUndefined();
  });

  it('a token given back after a seemingly lost welcome is spent once its successor is used', async () => {
    const s = await startServer({ tokens: { secret } }, { authenticate: fixedId });
    const a = await RawProtocolClient.handshake(s.url);
    a.client.ws.terminate();
    await waitFor(() => s.manager.getStats().detachedSessions === 1);
    // The client reads C's welcome (T2), but C dies before the server sees a confirmation: T1 is given back.
    const c = await RawProtocolClient.handshake(
      s.url,
      { token: a.welcome.token, sessionId: 'user-1' },
      false,
    );
    c.client.ws.terminate();
    await waitFor(() => s.manager.getStats().detachedSessions === 1);
    const d = await RawProtocolClient.handshake(s.url, { token: c.welcome.token, sessionId: 'user-1' });
    expect(d.welcome.resume).toBe('resumed');
    // A late hello with T1 (an attempt the client gave up) must not take the session from D.
    const late = await RawProtocolClient.open(s.url);
    late.send({ t: 'hello', v: 1, token: a.welcome.token, sessionId: 'user-1' });
    expect((await late.waitClose()).code).toBe(CloseCode.StaleHello);
    await roundTrip(d.client);
    expect(d.client.closeInfo).toBeUndefined();
  });

  it('a late hello while the client is briefly away does not cost it the session', async () => {
    const s = await startServer({ tokens: { secret } }, { authenticate: fixedId });
    const a = await RawProtocolClient.handshake(s.url);
    const late = await RawProtocolClient.open(s.url);
    a.client.ws.terminate();
    await waitFor(() => s.manager.getStats().detachedSessions === 1);
    const b = await RawProtocolClient.handshake(s.url, { token: a.welcome.token, sessionId: 'user-1' });
    b.client.ws.terminate();
    await waitFor(() => s.manager.getStats().detachedSessions === 1);
    s.manager.sendToClient('user-1', 'while away');

    late.send({ t: 'hello', v: 1, token: a.welcome.token, sessionId: 'user-1' });
    expect((await late.waitClose()).code).toBe(CloseCode.StaleHello);

    const c = await RawProtocolClient.handshake(s.url, { token: b.welcome.token, sessionId: 'user-1' });
    expect(c.welcome.resume).toBe('resumed');
    await c.client.waitForData(1);
    expect(c.client.data[0]!.p).toBe('while away');
  });

  it('a late hello of an incarnation that a gap replaced does not touch the new one', async () => {
    const s = await startServer(
      { tokens: { secret }, replay: { maxMessages: 2 } },
      { authenticate: fixedId },
    );
    const a = await RawProtocolClient.handshake(s.url);
    const late = await RawProtocolClient.open(s.url);
    a.client.ws.terminate();
    await waitFor(() => s.manager.getStats().detachedSessions === 1);
    for (let i = 0; i < 3; i++) s.manager.sendToClient('user-1', i);
    const b = await RawProtocolClient.handshake(s.url, { token: a.welcome.token, sessionId: 'user-1' });
    expect(b.welcome).toMatchObject({ resume: 'fresh', reason: 'gap' });
    late.send({ t: 'hello', v: 1, token: a.welcome.token, sessionId: 'user-1' });
    expect((await late.waitClose()).code).toBe(CloseCode.StaleHello);
    await roundTrip(b.client);
    expect(b.client.closeInfo).toBeUndefined();
  });

  it('gives every reliable client message an id unique across sessions (messageId)', async () => {
    const s = await startServer({ tokens: { secret } }, { authenticate: fixedId });
    const ids: Array<string | undefined> = [];
    s.manager.on('message', ({ messageId }) => void ids.push(messageId));
    for (let round = 0; round < 2; round++) {
      const c = await RawProtocolClient.handshake(s.url); // no token: a fresh session under 'user-1'
      c.client.send({ t: 'd', s: 1, p: 'x' });
      await c.client.waitFor((f) => f.t === 'ack' && f.s === 1);
      c.client.ws.terminate();
      await waitFor(() => !s.manager.isConnected('user-1'));
    }
    expect(ids).toHaveLength(2);
    expect(ids[0]).toMatch(/^[A-Za-z0-9_-]+:1$/);
    expect(ids[1]).toMatch(/^[A-Za-z0-9_-]+:1$/);
    expect(ids[0]).not.toBe(ids[1]);
  });
});
