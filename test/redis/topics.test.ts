import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeAllNodes, startNode, uniquePrefix, until, type InProcessNode } from './in-process.js';
import { ProtocolClient } from './protocol-client.js';
import { startRedis, type TestRedis } from './redis-server.js';

// Named topics on the Redis backend: offsets and histories in per-topic streams, fan-out by the nodes that
// follow the topic, resume on any node from the topic's stream.

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
function client(urls: string[], reconnect = true): ProtocolClient {
  const c = new ProtocolClient({ nextUrl: (i) => urls[i % urls.length]!, reconnect });
  clients.push(c);
  return c;
}

/** Join a connected client to `topic` on the node that holds it; resolves once it was told its offset. */
async function join(node: InProcessNode, c: ProtocolClient, topic: string): Promise<void> {
  expect(node.manager.join(c.sessionId!, topic)).toBe(true);
  await until(() => c.topics[topic] !== undefined, `sub ${topic}`);
}

/** Poll an async predicate (a Redis read) until it holds. */
async function untilAsync(
  predicate: () => Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const start = Date.now();
  while (!(await predicate())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The same session continued by a new client object (its old socket is gone). */
function continueOn(c: ProtocolClient, urls: string[]): ProtocolClient {
  const next = client(urls, false);
  Object.assign(next, {
    token: c.token,
    sessionId: c.sessionId,
    lastSeq: c.lastSeq,
    topics: { ...c.topics },
  });
  next.received[0]!.push(...c.all);
  c.stop();
  return next;
}

describe('topics on Redis', () => {
  it('a publish from any node reaches every member on every node exactly once, in order, and no one else', async () => {
    const prefix = uniquePrefix();
    const nodes = [
      await startNode(redis.url, prefix),
      await startNode(redis.url, prefix),
      await startNode(redis.url, prefix),
    ];
    const members: ProtocolClient[] = [];
    const others: ProtocolClient[] = [];
    for (let i = 0; i < 9; i++) {
      const node = nodes[i % 3]!;
      const c = client([node.url]);
      await c.connect();
      if (i < 6) {
        await join(node, c, 'room');
        members.push(c);
      } else others.push(c);
    }
    // Node 2 holds members 2 and 5 only; node 0 publishes too, and a node without members could as well.
    const sent: number[] = [];
    for (let n = 1; n <= 30; n++) {
      sent.push(n);
      await nodes[n % 3]!.manager.publish('room', { n }).cluster;
    }
    await until(() => members.every((c) => c.all.length === 30), 'every publication on every member');
    for (const c of members) {
      expect(c.all).toEqual(sent.map((n) => ({ n })));
      expect(c.topics.room).toBe(30);
      expect(c.anomalies).toEqual([]);
    }
    await new Promise((r) => setTimeout(r, 100));
    for (const c of others) expect(c.all).toEqual([]);
  });

  it('a node without members publishes O(1) and does not follow the topic', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix);
    const b = await startNode(redis.url, prefix);
    const c = client([a.url]);
    await c.connect();
    await join(a, c, 'news');
    const report = await b.manager.publish('news', 'hi').cluster;
    expect(report).toEqual({ offset: 1, nodes: 1 }); // only node A follows `news`
    await until(() => c.all.length === 1, 'delivered');
    expect(b.manager.getTopicMembers('news')).toEqual([]);
  });

  it('the subscriber connection drops while publishing: the node reads the hole from the stream, never skips', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix);
    const b = await startNode(redis.url, prefix);
    const c = client([a.url]);
    await c.connect();
    await join(a, c, 'feed');
    const admin = new Redis(redis.url);
    try {
      await b.manager.publish('feed', 0).cluster;
      await until(() => c.all.length === 1, 'first');
      await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      // Published across the reconnect: the first ones while A's subscription is down, later ones live.
      for (let i = 1; i <= 60; i++) {
        await b.manager.publish('feed', i).cluster;
        await new Promise((r) => setTimeout(r, 5));
      }
      await until(() => c.all.length === 61, 'every publication after the resubscribe');
      expect(c.all).toEqual(Array.from({ length: 61 }, (_, i) => i));
      expect(c.anomalies).toEqual([]);
      expect(c.closes).toEqual([]);
    } finally {
      admin.disconnect();
    }
  });

  it('an offset jump (a notification lost) is filled from the stream before anything after it is delivered', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix);
    const c = client([a.url]);
    await c.connect();
    await join(a, c, 'jump');
    await a.manager.publish('jump', 1).cluster;
    await until(() => c.all.length === 1, 'first');
    // Offsets 2 and 3 are stored the way the publish script stores them, but their PUBLISH never arrives.
    const admin = new Redis(redis.url);
    try {
      const meta = `${prefix}{t:jump}`;
      for (const n of [2, 3]) {
        const o = await admin.hincrby(meta, 'o', 1);
        await admin.xadd(`${meta}:x`, `0-${o}`, 'p', `j${n}`, 'b', 1, 'a', Date.now());
      }
    } finally {
      admin.disconnect();
    }
    await a.manager.publish('jump', 4).cluster; // arrives as offset 4 after 1
    await until(() => c.all.length === 4, 'the hole, then the live one');
    expect(c.all).toEqual([1, 2, 3, 4]);
    expect(c.anomalies).toEqual([]);
  });

  it('a resume on another node replays each topic from the client’s position, exactly once, in order', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix);
    const b = await startNode(redis.url, prefix);
    const c = client([a.url], false);
    const first = await c.connect();
    await join(a, c, 'x');
    await join(a, c, 'y');
    for (let i = 1; i <= 3; i++) {
      await b.manager.publish('x', `x${i}`).cluster;
      await b.manager.publish('y', `y${i}`).cluster;
    }
    await b.manager.broadcast('all1').cluster;
    await until(() => c.all.length === 7, 'before');
    await a.close(); // graceful: the session stays in Redis for another node
    for (let i = 4; i <= 6; i++) await b.manager.publish('x', `x${i}`).cluster;
    await b.manager.publish('y', 'y4').cluster;
    await b.manager.broadcast('all2').cluster;
    const next = continueOn(c, [b.url]);
    const w = await next.connect();
    expect(w).toMatchObject({ resume: 'resumed', sessionId: first.sessionId });
    const outcomes = Object.fromEntries(next.topicOutcomes.map((t) => [t.c, t]));
    expect(outcomes).toEqual({
      $all: { c: '$all', o: 1, resume: 'resumed' },
      x: { c: 'x', o: 3, resume: 'resumed' },
      y: { c: 'y', o: 3, resume: 'resumed' },
    });
    await until(() => next.all.length === 12, 'replay');
    const got = next.all.slice(7) as string[];
    expect(got.filter((m) => m.startsWith('x'))).toEqual(['x4', 'x5', 'x6']);
    expect(got.filter((m) => m.startsWith('y'))).toEqual(['y4']);
    expect(got.filter((m) => m.startsWith('all'))).toEqual(['all2']);
    expect(next.anomalies).toEqual([]);
    // It is a member on B now, live.
    expect(b.manager.getTopicMembers('x')).toEqual([first.sessionId]);
    await b.manager.publish('x', 'x7').cluster;
    await until(() => next.all.length === 13, 'live');
    expect(await b.backend.getTopicMembers('x')).toEqual([
      { clientId: first.sessionId, nodeId: b.backend.nodeId },
    ]);
  });

  it('a topic trimmed past the client’s position resumes fresh with reason gap for that topic only', async () => {
    const prefix = uniquePrefix();
    const config = { topics: { history: { maxMessages: 3 } } };
    const a = await startNode(redis.url, prefix, config);
    const b = await startNode(redis.url, prefix, config);
    const c = client([a.url], false);
    await c.connect();
    await join(a, c, 'short');
    await join(a, c, 'calm');
    await b.manager.publish('short', 1).cluster;
    await b.manager.publish('calm', 'c1').cluster;
    await until(() => c.all.length === 2, 'first');
    await a.close();
    for (let i = 2; i <= 6; i++) await b.manager.publish('short', i).cluster; // 5 > 3: offset 2 is trimmed
    await b.manager.publish('calm', 'c2').cluster;
    const next = continueOn(c, [b.url]);
    const w = await next.connect();
    expect(w.resume).toBe('resumed');
    const outcomes = Object.fromEntries(next.topicOutcomes.map((t) => [t.c, t]));
    expect(outcomes.short).toEqual({ c: 'short', o: 6, resume: 'fresh', reason: 'gap' });
    expect(outcomes.calm).toEqual({ c: 'calm', o: 1, resume: 'resumed' });
    await until(() => next.all.length === 3, 'calm replay');
    expect(next.all).toEqual([1, 'c1', 'c2']);
    await b.manager.publish('short', 7).cluster;
    await until(() => next.all.length === 4, 'short continues after the gap');
    expect(next.all.at(-1)).toBe(7);
    expect(next.anomalies).toEqual([]);
  });

  it('presence: members and a cheap count across nodes; leave and session end remove them', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix);
    const b = await startNode(redis.url, prefix);
    const events: string[] = [];
    a.backend.on('presence', (e) => void events.push(`${e.change}:${e.clientId}@${e.nodeId}`));
    const ca = client([a.url]);
    const cb = client([b.url]);
    await ca.connect();
    await cb.connect();
    await join(a, ca, 'lobby');
    await join(b, cb, 'lobby');
    await untilAsync(async () => (await a.backend.getTopicMemberCount('lobby')) === 2, 'count 2');
    const members = await b.backend.getTopicMembers('lobby');
    expect(members.sort((x, y) => x.nodeId.localeCompare(y.nodeId))).toEqual(
      [
        { clientId: ca.sessionId, nodeId: a.backend.nodeId },
        { clientId: cb.sessionId, nodeId: b.backend.nodeId },
      ].sort((x, y) => x.nodeId.localeCompare(y.nodeId)),
    );
    await until(() => events.includes(`join:${cb.sessionId}@${b.backend.nodeId}`), 'join event from B');
    expect(b.manager.leave(cb.sessionId!, 'lobby')).toBe(true);
    await untilAsync(async () => (await a.backend.getTopicMemberCount('lobby')) === 1, 'count 1');
    await until(() => events.includes(`leave:${cb.sessionId}@${b.backend.nodeId}`), 'leave event from B');
    expect(await a.backend.getTopicMembers('lobby')).toEqual([
      { clientId: ca.sessionId, nodeId: a.backend.nodeId },
    ]);
  });
});
