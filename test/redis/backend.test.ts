import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRedisBackend } from '../../src/redis/index.js';
import { StabilizerError } from '../../src/server/index.js';
import { closeAllNodes, startNode, uniquePrefix, until } from './in-process.js';
import { ProtocolClient } from './protocol-client.js';
import { startRedis, type TestRedis } from './redis-server.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(closeAllNodes);

const clients: ProtocolClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.stop();
});
function client(urls: string[] | (() => string)): ProtocolClient {
  const next = typeof urls === 'function' ? urls : (i: number) => urls[i % urls.length]!;
  const c = new ProtocolClient({ nextUrl: next });
  clients.push(c);
  return c;
}

describe('startup', () => {
  it('rejects a non-redis URL with INVALID_CONFIG', async () => {
    await expect(createRedisBackend({ url: 'http://127.0.0.1:1' })).rejects.toMatchObject({
      code: 'INVALID_CONFIG',
    });
  });

  it('rejects an unreachable Redis with BACKEND_UNAVAILABLE, naming the URL but not the password', async () => {
    const err = await createRedisBackend({
      url: 'redis://:hunter2@127.0.0.1:1',
      connectTimeoutMs: 1000,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StabilizerError);
    expect((err as StabilizerError).code).toBe('BACKEND_UNAVAILABLE');
    expect((err as Error).message).toContain('127.0.0.1:1');
    expect((err as Error).message).toContain('ECONNREFUSED');
    expect((err as Error).message).not.toContain('hunter2');
  });

  it('rejects a wrong password with the server reason', async () => {
    const locked = await startRedis(['--requirepass', 'sekret']);
    try {
      const err = await createRedisBackend({ url: `redis://:wrong@127.0.0.1:${locked.port}` }).catch(
        (e) => e,
      );
      expect((err as StabilizerError).code).toBe('BACKEND_UNAVAILABLE');
      expect((err as Error).message).toMatch(/WRONGPASS/);
      const ok = await createRedisBackend({ url: `redis://:sekret@127.0.0.1:${locked.port}` });
      expect(ok.degraded).toBe(false);
      await ok.close();
    } finally {
      await locked.stop();
    }
  });

  it('rejects bad options', async () => {
    await expect(createRedisBackend({ url: redis.url, nodeHeartbeatMs: 0 })).rejects.toMatchObject({
      code: 'INVALID_CONFIG',
    });
  });
});

describe('two nodes in one process', () => {
  it('delivers a broadcast from either node to clients on both, exactly once, in order', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix);
    const b = await startNode(redis.url, prefix);
    const ca = client([a.url]);
    const cb = client([b.url]);
    await ca.connect();
    await cb.connect();
    for (let i = 0; i < 20; i++) {
      const r = (i % 2 ? a : b).manager.broadcast({ i });
      expect(r.cluster).toBeDefined();
    }
    const report = await b.manager.broadcast({ i: 20 }).cluster;
    // One script on the topic's keys: an offset in `$all`, published to the two nodes that follow it.
    expect(report!.nodes).toBe(2);
    expect(report!.offset).toBeGreaterThanOrEqual(11);
    await until(() => ca.all.length === 21 && cb.all.length === 21, 'all messages');
    expect(ca.all).toEqual(cb.all);
    expect(new Set(ca.all.map((p) => (p as { i: number }).i)).size).toBe(21);
    expect([...ca.anomalies, ...cb.anomalies]).toEqual([]);
  });

  it('sends to a client connected to another node, and to plain sockets there', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix);
    const b = await startNode(redis.url, prefix);
    const ca = client([a.url]);
    const w = await ca.connect();
    await until(() => a.manager.getConnectionCount() === 1, 'registered');
    expect(await b.backend.send(w.sessionId, 'hello')).toBe('sent');
    expect(b.manager.sendToClient(w.sessionId, { x: 1 })).toBe('buffered'); // not local: routed through Redis
    await until(() => ca.lastSeq === 2, 'direct sends');
    expect(ca.all).toEqual(['hello', { x: 1 }]);
    await expect(b.backend.send('nobody', 'x')).rejects.toMatchObject({ code: 'UNKNOWN_CLIENT' });
    expect(await b.backend.send(w.sessionId, 'v', { volatile: true })).toBe('sent');
    await until(() => ca.volatile.length === 1, 'volatile');
  });

  it('resumes on the other node with the whole gap, exactly once', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix);
    const b = await startNode(redis.url, prefix);
    const c = client([a.url, b.url]);
    await c.connect();
    for (let i = 1; i <= 5; i++) a.manager.broadcast(i);
    await until(() => c.all.length === 5, 'first five');
    c.stop(); // goes away without a clean close
    await until(() => a.manager.getConnectionCount() === 0, 'detached');
    for (let i = 6; i <= 10; i++) await b.manager.broadcast(i).cluster;
    const c2 = client([b.url]);
    Object.assign(c2, {
      token: c.token,
      sessionId: c.sessionId,
      lastSeq: c.lastSeq,
      topics: { ...c.topics },
    });
    c2.received[0]!.push(...c.all);
    const w = await c2.connect();
    expect(w.resume).toBe('resumed');
    expect(w.sessionId).toBe(c.sessionId);
    expect(c2.topicOutcomes).toEqual([{ c: '$all', o: 5, resume: 'resumed' }]);
    await until(() => c2.all.length === 10, 'replay');
    for (let i = 11; i <= 12; i++) a.manager.broadcast(i);
    await until(() => c2.all.length === 12, 'live after resume');
    expect(c2.all).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(c2.anomalies).toEqual([]);
    // Node A no longer holds the session.
    await until(() => a.backend.getSession(w.sessionId) === undefined, 'released on A');
  });

  it('refuses a token issued on A and replayed on B (4004), leaving the session on A', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix);
    const b = await startNode(redis.url, prefix);
    const c = client([a.url]);
    await c.connect();
    const token = c.token;
    const sessionId = c.sessionId;
    c.stop();
    const first = client([a.url]);
    Object.assign(first, { token, sessionId });
    expect((await first.connect()).resume).toBe('resumed');
    const replay = client([b.url]);
    Object.assign(replay, { token, sessionId });
    // Used on A while its session lives on: refused on B as a stale attempt (4004), and A's socket keeps it.
    await expect(replay.connect()).rejects.toThrow('closed before welcome: 4004');
    expect(a.manager.isConnected(sessionId!)).toBe(true);
  });

  it('acks a client message only once its sequence is in Redis, and resumes with it elsewhere', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix);
    const b = await startNode(redis.url, prefix);
    const got: unknown[] = [];
    a.manager.on('message', (e) => void got.push(e.data));
    b.manager.on('message', (e) => void got.push(e.data));
    const c = client([a.url, b.url]);
    await c.connect();
    for (let i = 1; i <= 3; i++) c.send(`m${i}`);
    await until(() => c.lastAckedClientSeq === 3, 'acks');
    c.drop();
    const w = await c.connectWithRetry();
    expect(w.url).toBe(b.url);
    expect(w.resume).toBe('resumed');
    expect(w.lastClientSeq).toBe(3);
    c.send('m4');
    await until(() => c.lastAckedClientSeq === 4, 'ack on B');
    expect(got).toEqual(['m1', 'm2', 'm3', 'm4']);
  });

  it('counts and lists connections cluster-wide', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix);
    const b = await startNode(redis.url, prefix);
    await client([a.url]).connect();
    await client([b.url]).connect();
    await client([b.url]).connect();
    await until(() => b.manager.getConnectionCount() === 2, 'registered');
    await until(() => false, 'settle', 50).catch(() => {});
    expect(await a.backend.getClusterConnectionCount()).toBe(3);
    const list = await b.backend.getClusterConnections();
    expect(list.filter((e) => e.nodeId === a.backend.nodeId)).toHaveLength(1);
    expect(list.filter((e) => e.nodeId === b.backend.nodeId)).toHaveLength(2);
    await b.close();
    expect(await a.backend.getClusterConnectionCount()).toBe(1);
  });

  it('a node that was reaped while alive (a long pause) registers itself and its sockets again', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix);
    const c = client([a.url]);
    await c.connect();
    await until(() => a.manager.getConnectionCount() === 1, 'registered');
    const admin = new Redis(redis.url);
    try {
      // What the reaper of another node does to a node it believes dead.
      await admin.zrem(`{${prefix}}nodes`, a.backend.nodeId);
      await admin.del(`{${prefix}}n:${a.backend.nodeId}:c`, `{${prefix}}n:${a.backend.nodeId}:s`);
      await admin.zadd(`{${prefix}}sess`, Date.now() + 60_000, c.sessionId!);
      let count = 0;
      for (let i = 0; i < 50 && count !== 1; i++) {
        await new Promise((r) => setTimeout(r, 50));
        count = await a.backend.getClusterConnectionCount();
      }
      expect(count).toBe(1);
      await until(() => false, 'settle', 100).catch(() => {});
      expect(await admin.zscore(`{${prefix}}sess`, c.sessionId!)).toBe('inf'); // attached again
    } finally {
      admin.disconnect();
    }
  });
});
