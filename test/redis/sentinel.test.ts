import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedisSentinel, type TestRedisSentinel } from '../helpers/redis-sentinel.js';
import { closeAllNodes, startNode, uniquePrefix, until, type InProcessNode } from './in-process.js';
import { ProtocolClient } from './protocol-client.js';

// The backend behind Redis Sentinel (a master, a replica, three Sentinels; ioredis `{ sentinels, name }`): the master
// is killed with SIGKILL, a Sentinel promotes the replica, and the backend goes degraded, then recovers on the
// promoted replica with its epoch check: nothing acknowledged and replicated is lost or repeated, nothing partial.

let rs: TestRedisSentinel;
beforeAll(async () => {
  rs = await startRedisSentinel();
}, 60_000);
afterAll(async () => {
  await rs?.stop();
});
afterEach(closeAllNodes);

const clients: ProtocolClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.stop();
});

function node(prefix: string): Promise<InProcessNode> {
  return startNode('redis://unused', prefix, {}, { client: rs.createClient() });
}

describe('Redis Sentinel', () => {
  it('kill -9 of the master: degraded, then recovered on the promoted replica; every publication once, in order', async () => {
    const prefix = uniquePrefix();
    const a = await node(prefix);
    const b = await node(prefix);
    const events: string[] = [];
    for (const [name, n] of [
      ['a', a],
      ['b', b],
    ] as const) {
      n.backend.on('degraded', () => events.push(`${name}:degraded`));
      n.backend.on('recovered', () => events.push(`${name}:recovered`));
      n.backend.on('history-lost', () => events.push(`${name}:history-lost`));
    }
    const epoch = a.backend.epoch;
    const cs = [a, b].map((n) => {
      const c = new ProtocolClient({ nextUrl: (i) => [n.url, a.url, b.url][i % 3]! });
      clients.push(c);
      return c;
    });
    for (const c of cs) await c.connect();
    a.manager.join(cs[0]!.sessionId!, 'room');
    b.manager.join(cs[1]!.sessionId!, 'room');
    await until(() => cs.every((c) => c.topics.room !== undefined), 'joined');
    for (let i = 1; i <= 5; i++) await a.manager.publish('room', i).cluster;
    await until(() => cs.every((c) => c.all.length === 5), 'before the failover');
    // Let the replica catch up (replication is asynchronous: what it lacks would be `gap`, see the docs).
    await new Promise((r) => setTimeout(r, 300));

    const old = await rs.killMaster();
    await until(() => a.backend.degraded && b.backend.degraded, 'both nodes degraded', 10_000);
    const promoted = await rs.waitForFailover(old);
    expect(promoted).not.toBe(old);
    await until(() => !a.backend.degraded && !b.backend.degraded, 'both nodes recovered', 20_000);

    for (let i = 6; i <= 10; i++) await b.manager.publish('room', i).cluster;
    await until(() => cs.every((c) => c.all.length === 10), 'after the failover', 20_000);
    for (const c of cs) {
      expect(c.all).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(c.anomalies).toEqual([]);
    }
    // The replica had the whole history: same epoch, nothing reported lost.
    expect(a.backend.epoch).toBe(epoch);
    expect(events).toEqual(
      expect.arrayContaining(['a:degraded', 'a:recovered', 'b:degraded', 'b:recovered']),
    );
    expect(events.filter((e) => e.endsWith('history-lost'))).toEqual([]);

    // A session resumes on the other node, on the promoted replica, with its topic.
    const gone = cs[0]!;
    gone.stop();
    await until(() => a.manager.getConnectionCount() === 0, 'detached');
    await b.manager.publish('room', 11).cluster;
    const next = new ProtocolClient({ nextUrl: () => b.url, reconnect: false });
    clients.push(next);
    Object.assign(next, {
      token: gone.token,
      sessionId: gone.sessionId,
      lastSeq: gone.lastSeq,
      topics: { ...gone.topics },
    });
    const w = await next.connect();
    expect(w.resume).toBe('resumed');
    expect(next.topicOutcomes.find((t) => t.c === 'room')).toMatchObject({ resume: 'resumed' });
    await until(() => next.all.length === 1, 'the missed publication');
    expect(next.all).toEqual([11]);
    expect(next.anomalies).toEqual([]);
  }, 90_000);
});
