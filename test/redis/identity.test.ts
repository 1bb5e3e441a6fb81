import type { IncomingMessage } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode } from '../../src/protocol/index.js';
import type { AuthResult } from '../../src/server/upgrade/upgrade.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllNodes, startNode, uniquePrefix, until, type InProcessNode } from './in-process.js';
import { startRedis, type TestRedis } from './redis-server.js';

// Items 6 and 7 of issue 8 across two nodes sharing one Redis: a resume is bound to its creator's principal and
// to its session incarnation, whichever node it lands on.
let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
const sockets: RawProtocolClient[] = [];
afterEach(async () => {
  for (const c of sockets.splice(0)) c.ws.terminate();
  await closeAllNodes();
});

const fixedId = (): AuthResult => ({ clientId: 'user-1' });
const byQuery = (req: IncomingMessage): AuthResult => {
  const user = new URL(req.url ?? '/', 'http://x').searchParams.get('user');
  return user === null ? {} : { principal: user, data: { user } };
};

async function pair(
  authenticate: (req: IncomingMessage) => AuthResult,
  maxMessages = 1000,
  seen?: unknown[],
): Promise<[InProcessNode, InProcessNode]> {
  const prefix = uniquePrefix();
  const hooks = seen ? { authorizeResume: (ctx: unknown) => (seen.push(ctx), true) } : {};
  const config = { replay: { maxMessages } };
  return [
    await startNode(redis.url, prefix, config, {}, { authenticate }, hooks),
    await startNode(redis.url, prefix, config, {}, { authenticate }, hooks),
  ];
}

async function handshake(url: string, hello: { token?: string; sessionId?: string; lastSeq?: number } = {}) {
  const r = await RawProtocolClient.handshake(url, hello);
  sockets.push(r.client);
  return r;
}

async function open(url: string): Promise<RawProtocolClient> {
  const c = await RawProtocolClient.open(url);
  sockets.push(c);
  return c;
}

async function roundTrip(c: RawProtocolClient): Promise<void> {
  const before = c.frames.filter((f) => f.t === 'pong').length;
  c.send({ t: 'ping' });
  await c.waitFor(() => c.frames.filter((f) => f.t === 'pong').length > before);
}

describe('redis: a resume is bound to its principal and its incarnation, across nodes', () => {
  it("B presenting A's token on another node gets fresh/token-rejected and A's session is untouched", async () => {
    const seen: unknown[] = [];
    const [n1, n2] = await pair(byQuery, 1000, seen);
    const a = await handshake(`${n1.url}?user=alice`);
    const b = await handshake(`${n2.url}?user=bob`, {
      token: a.welcome.token,
      sessionId: a.welcome.sessionId,
    });
    expect(b.welcome).toMatchObject({ resume: 'fresh', reason: 'token-rejected' });
    expect(b.welcome.sessionId).not.toBe(a.welcome.sessionId);
    await roundTrip(a.client); // A was neither claimed away nor closed
    expect(await n1.backend.send(a.welcome.sessionId, 'for alice')).toBe('sent');
    await a.client.waitForData(1);
    await roundTrip(b.client);
    expect(b.client.data).toEqual([]);
    expect(seen).toEqual([]);

    // Alice's token was not burnt: she resumes on node 2, whose authorizeResume sees her session's creator.
    a.client.ws.terminate();
    await until(() => !n1.manager.isConnected(a.welcome.sessionId), 'A detached');
    await n1.backend.send(a.welcome.sessionId, 'while away');
    const a2 = await handshake(`${n2.url}?user=alice`, {
      token: a.welcome.token,
      sessionId: a.welcome.sessionId,
      lastSeq: 1,
    });
    expect(a2.welcome).toMatchObject({ resume: 'resumed', sessionId: a.welcome.sessionId });
    await a2.client.waitForData(1);
    expect(a2.client.data[0]).toEqual({ s: 2, p: 'while away' });
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

describe('redis: fixed client ids', () => {
  it('a fresh/gap resume on another node keeps the new session', async () => {
    const [n1, n2] = await pair(fixedId, 50);
    const a = await handshake(n1.url);
    a.client.ws.terminate();
    await until(() => !n1.manager.isConnected('user-1'), 'A detached');
    for (let i = 1; i <= 51; i++) await n1.backend.send('user-1', `m${i}`);
    const b = await handshake(n2.url, { token: a.welcome.token, sessionId: 'user-1' });
    expect(b.welcome).toMatchObject({ resume: 'fresh', reason: 'gap', sessionId: 'user-1' });
    await roundTrip(b.client);
    await new Promise((r) => setTimeout(r, 100)); // time for a stray `claimed` notice
    expect(b.client.closeInfo).toBeUndefined();
    expect(await n1.backend.send('user-1', 'after')).toBe('sent');
    await b.client.waitForData(1);
    expect(b.client.data).toEqual([{ s: 1, p: 'after' }]);
  });

  it('a late hello on another node (spent token) is closed with 4004; the live session is untouched', async () => {
    const [n1, n2] = await pair(fixedId);
    const a = await handshake(n1.url);
    const late = await open(n2.url);
    a.client.ws.terminate();
    await until(() => !n1.manager.isConnected('user-1'), 'A detached');
    const b = await handshake(n1.url, { token: a.welcome.token, sessionId: 'user-1' });
    expect(b.welcome.resume).toBe('resumed');

    late.send({ t: 'hello', v: 1, token: a.welcome.token, sessionId: 'user-1' });
    expect((await late.waitClose()).code).toBe(CloseCode.StaleHello);
    await roundTrip(b.client);
    await new Promise((r) => setTimeout(r, 100));
    expect(b.client.closeInfo).toBeUndefined();
    expect(await n2.backend.send('user-1', 'still here')).toBe('sent');
    await b.client.waitForData(1);
  });

  it('a late hello while the client is away does not cost it the session; it resumes on the other node', async () => {
    const [n1, n2] = await pair(fixedId);
    const a = await handshake(n1.url);
    const late = await open(n2.url);
    a.client.ws.terminate();
    await until(() => !n1.manager.isConnected('user-1'), 'A detached');
    const b = await handshake(n1.url, { token: a.welcome.token, sessionId: 'user-1' });
    b.client.ws.terminate();
    await until(() => !n1.manager.isConnected('user-1'), 'B detached');
    await n1.backend.send('user-1', 'while away');

    late.send({ t: 'hello', v: 1, token: a.welcome.token, sessionId: 'user-1' });
    expect((await late.waitClose()).code).toBe(CloseCode.StaleHello);
    const c = await handshake(n2.url, { token: b.welcome.token, sessionId: 'user-1' });
    expect(c.welcome.resume).toBe('resumed');
    await c.client.waitForData(1);
    expect(c.client.data[0]!.p).toBe('while away');
  });

  it('messageId keeps its incarnation across nodes and differs for a fresh session under the same id', async () => {
    const [n1, n2] = await pair(fixedId);
    const ids: string[] = [];
    for (const n of [n1, n2]) n.manager.on('message', ({ messageId }) => void ids.push(messageId!));
    const a = await handshake(n1.url);
    a.client.send({ t: 'd', s: 1, p: 'one' });
    await a.client.waitFor((f) => f.t === 'ack' && f.s === 1);
    a.client.ws.terminate();
    await until(() => !n1.manager.isConnected('user-1'), 'A detached');
    const b = await handshake(n2.url, { token: a.welcome.token, sessionId: 'user-1' });
    b.client.send({ t: 'd', s: 2, p: 'two' });
    await b.client.waitFor((f) => f.t === 'ack' && f.s === 2);
    const c = await handshake(n1.url); // a fresh session under 'user-1'
    c.client.send({ t: 'd', s: 1, p: 'three' });
    await c.client.waitFor((f) => f.t === 'ack' && f.s === 1);
    const inc = ids.map((id) => id.split(':')[0]);
    expect(ids.map((id) => id.split(':')[1])).toEqual(['1', '2', '1']);
    expect(inc[1]).toBe(inc[0]);
    expect(inc[2]).not.toBe(inc[0]);
  });
});
