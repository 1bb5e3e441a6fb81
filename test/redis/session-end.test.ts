import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ManagerEvents } from '../../src/server/index.js';
import { closeAllNodes, startNode, uniquePrefix, until, type InProcessNode } from './in-process.js';
import { ProtocolClient } from './protocol-client.js';
import { startRedis, type TestRedis } from './redis-server.js';

// `session-end` means gone for good, cluster-wide: a session that lives on on another node never ends on this one.

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
const clients: ProtocolClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.stop();
  await closeAllNodes();
});

function client(urls: string[], reconnect = true): ProtocolClient {
  const c = new ProtocolClient({ nextUrl: (i) => urls[i % urls.length]!, reconnect });
  clients.push(c);
  return c;
}

function record(node: InProcessNode) {
  const ends: Array<ManagerEvents['session-end']> = [];
  const disconnects: Array<ManagerEvents['disconnect']> = [];
  node.manager.on('session-end', (e) => {
    ends.push(e);
  });
  node.manager.on('disconnect', (e) => {
    disconnects.push(e);
  });
  return { ends, disconnects };
}

describe('session-end with the Redis backend', () => {
  it('a graceful shutdown retains the sessions (no session-end) and they resume on another node', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix);
    const b = await startNode(redis.url, prefix);
    const onA = record(a);
    const cs = [client([a.url, b.url]), client([a.url, b.url])];
    for (const c of cs) await c.connect();
    await b.manager.broadcast(1).cluster;
    await until(() => cs.every((c) => c.all.length === 1), 'first');
    await a.close();
    await until(() => cs.every((c) => c.welcomes.length === 2 && c.connected), 'resumed on b');
    expect(onA.ends).toEqual([]);
    expect(onA.disconnects).toHaveLength(2);
    for (const d of onA.disconnects) expect(d).toMatchObject({ reason: 'shutdown', sessionRetained: true });
    for (const c of cs) expect(c.welcomes[1]).toMatchObject({ resume: 'resumed', url: b.url });
  });

  it('a session taken over by another node does not end on the old one (replaced, retained)', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix);
    const b = await startNode(redis.url, prefix);
    const onA = record(a);
    const old = client([a.url], false);
    const first = await old.connect();
    const twin = client([b.url], false);
    Object.assign(twin, { token: old.token, sessionId: old.sessionId, lastSeq: 0 });
    expect((await twin.connect()).resume).toBe('resumed');
    await until(() => onA.disconnects.length === 1, 'old socket closed');
    expect(onA.disconnects[0]).toMatchObject({
      clientId: first.sessionId,
      code: 4501,
      reason: 'replaced',
      sessionRetained: true,
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(onA.ends).toEqual([]);
    expect(a.manager.getStats().detachedSessions).toBe(0);
    await a.manager.broadcast('after').cluster;
    await until(() => twin.all.length === 1, 'the session lives on');
  });

  it('a session evicted over the detached budget resumes fresh with reason evicted on any node', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix, { maxDetachedSessionBytes: 4096 });
    const b = await startNode(redis.url, prefix);
    const onA = record(a);
    const c = client([a.url], false);
    await c.connect();
    c.stop();
    await until(() => a.manager.getStats().detachedSessions === 1, 'detached');
    // Direct messages fill its inbox (broadcasts wait in the $all stream, not in sessions); once evicted it is unknown.
    for (let i = 0; i < 10; i++) await a.backend.send(c.sessionId!, 'x'.repeat(500)).catch(() => 'evicted');
    await until(() => onA.ends.length === 1, 'evicted');
    expect(onA.ends[0]).toMatchObject({ clientId: c.sessionId, reason: 'evicted' });
    expect(a.manager.getStats()).toMatchObject({ detachedSessions: 0, detachedSessionBytes: 0 });
    const next = client([b.url], false);
    Object.assign(next, {
      token: c.token,
      sessionId: c.sessionId,
      lastSeq: c.lastSeq,
      topics: { ...c.topics },
    });
    expect(await next.connect()).toMatchObject({ resume: 'fresh', reason: 'evicted' });
  });
});
