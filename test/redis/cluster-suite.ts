import { rmSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { buildLibrary, startNodeProcess, type NodeProcess } from './cluster-harness.js';
import { uniquePrefix, until } from './in-process.js';
import { ProtocolClient } from './protocol-client.js';
import { startRedis, type TestRedis } from './redis-server.js';

/**
 * The multi-process cluster suite: three server processes share one store, raw protocol clients are spread over
 * them. `store` is a single redis-server, or a real Redis Cluster (3 masters, 3 replicas): the same tests run on
 * both (test/redis/cluster.test.ts, test/redis/cluster-on-redis-cluster.test.ts), plus each one's failure test.
 */
export function clusterSuite(store: 'redis' | 'redis-cluster'): void {
  let redis: TestRedis | undefined;
  let rc: TestRedisCluster | undefined;
  let dist: string;
  beforeAll(async () => {
    const started =
      store === 'redis' ? startRedis().then((r) => (redis = r)) : startRedisCluster().then((c) => (rc = c));
    [, dist] = await Promise.all([started, buildLibrary()]);
  }, 90_000);
  afterAll(async () => {
    await redis?.stop();
    await rc?.stop();
    if (dist) rmSync(dist, { recursive: true, force: true });
  });

  let nodes: NodeProcess[] = [];
  let clients: ProtocolClient[] = [];
  afterEach(async () => {
    for (const c of clients) c.stop();
    clients = [];
    await Promise.all(nodes.map((n) => n.shutdown()));
    nodes = [];
  });

  let currentPrefix = '';
  async function startCluster(n = 3): Promise<NodeProcess[]> {
    const prefix = (currentPrefix = uniquePrefix());
    nodes = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        startNodeProcess(
          dist,
          redis?.url ?? '',
          prefix,
          `node${i}`,
          rc ? { REDIS_CLUSTER: JSON.stringify(rc.startupNodes()) } : {},
        ),
      ),
    );
    return nodes;
  }

  /** `count` clients, client i starting on node i % n and moving to the next node on every reconnect. */
  async function spreadClients(cluster: NodeProcess[], count: number): Promise<ProtocolClient[]> {
    clients = Array.from(
      { length: count },
      (_, i) => new ProtocolClient({ nextUrl: (attempt) => cluster[(i + attempt) % cluster.length]!.url }),
    );
    await Promise.all(clients.map((c) => c.connect()));
    return clients;
  }

  type Msg = { node: string; n: number };
  const key = (m: Msg) => `${m.node}#${m.n}`;
  const acked = (cluster: NodeProcess[]) =>
    cluster.flatMap((n) => n.events.filter((e) => e.type === 'acked').map((e) => key(e as unknown as Msg)));

  /** No duplicates, and each origin's messages in the order it sent them. */
  function expectExactlyOnceInOrder(c: ProtocolClient): void {
    const got = c.all as Msg[];
    expect(new Set(got.map(key)).size).toBe(got.length);
    const lastByNode = new Map<string, number>();
    for (const m of got) {
      expect(m.n).toBeGreaterThan(lastByNode.get(m.node) ?? 0);
      lastByNode.set(m.node, m.n);
    }
    expect(c.anomalies).toEqual([]);
  }

  describe(`three processes, one ${store === 'redis' ? 'Redis' : 'Redis Cluster'}`, () => {
    it('a broadcast from any node reaches every client exactly once', async () => {
      const cluster = await startCluster();
      const cs = await spreadClients(cluster, 30);
      for (let n = 1; n <= 40; n++) {
        await Promise.all(
          cluster.map((node) => node.request('broadcast', { data: { node: node.nodeId, n } })),
        );
      }
      await until(() => cs.every((c) => c.all.length === 120), 'all 120 messages on every client', 20_000);
      for (const c of cs) {
        expectExactlyOnceInOrder(c);
        expect(c.all).toHaveLength(120);
      }
      const stats = await cluster[0]!.request<{ cluster: number }>('stats');
      expect(stats.cluster).toBe(30);
    });

    it('kill -9 of a node mid-stream: its clients resume elsewhere with zero lost and zero duplicated', async () => {
      const cluster = await startCluster();
      const cs = await spreadClients(cluster, 30);
      const [victim, ...survivors] = cluster as [NodeProcess, ...NodeProcess[]];
      for (const node of cluster) await node.request('stream', { node: node.nodeId, intervalMs: 5 });
      await until(() => acked([victim]).length >= 60, 'victim streaming', 10_000);

      await victim.kill9();
      const victimAcked = new Set(acked([victim]));
      const onVictim = cs.filter((c) => c.welcomes[0]!.url === victim.url);
      await until(
        () => onVictim.every((c) => c.welcomes.length >= 2 && c.connected),
        'victim clients resumed',
        15_000,
      );
      await new Promise((r) => setTimeout(r, 300)); // keep streaming after the takeover
      for (const node of survivors) await node.request('stop-stream');
      await new Promise((r) => setTimeout(r, 100)); // let the last acks come back

      const all = acked(cluster);
      const expected = new Set(all);
      expect(victimAcked.size).toBeGreaterThan(50);
      await until(
        () => cs.every((c) => [...expected].every((k) => (c.all as Msg[]).some((m) => key(m) === k))),
        'every acknowledged message on every client',
        20_000,
      ).catch(() => {});
      for (const c of cs) {
        const got = new Set((c.all as Msg[]).map(key));
        const missing = [...expected].filter((k) => !got.has(k));
        expect(missing).toEqual([]);
        expectExactlyOnceInOrder(c);
        for (const w of c.welcomes.slice(1)) expect(w.resume).toBe('resumed');
        expect(c.received).toHaveLength(1); // one session throughout
      }
      for (const c of onVictim) expect(c.welcomes[1]!.url).not.toBe(victim.url);
      // The dead node is reaped after nodeTimeoutMs (1 s here): the cluster count is the 30 live sockets again.
      let count = 0;
      for (let i = 0; i < 50 && count !== 30; i++) {
        count = (await survivors[0]!.request<{ cluster: number }>('stats')).cluster;
        if (count !== 30) await new Promise((r) => setTimeout(r, 200));
      }
      expect(count).toBe(30);
    });

    it('a topic across kill -9: its members resume elsewhere with every publication exactly once, in order', async () => {
      const cluster = await startCluster();
      const cs = await spreadClients(cluster, 18);
      const [victim, ...survivors] = cluster as [NodeProcess, ...NodeProcess[]];
      for (const node of cluster) await node.request('join', { topic: 'room' });
      await until(() => cs.every((c) => c.topics.room !== undefined), 'every client in the topic', 10_000);
      let presence = await survivors[0]!.request<{ count: number }>('presence', { topic: 'room' });
      expect(presence.count).toBe(18);
      for (const node of cluster)
        await node.request('stream', { node: node.nodeId, intervalMs: 5, topic: 'room' });
      await until(() => acked([victim]).length >= 40, 'victim publishing', 10_000);

      await victim.kill9();
      const onVictim = cs.filter((c) => c.welcomes[0]!.url === victim.url);
      await until(() => onVictim.every((c) => c.welcomes.length >= 2 && c.connected), 'resumed', 15_000);
      await new Promise((r) => setTimeout(r, 300));
      for (const node of survivors) await node.request('stop-stream');
      await new Promise((r) => setTimeout(r, 100));
      const expected = new Set(acked(cluster));
      await until(
        () => cs.every((c) => [...expected].every((k) => (c.all as Msg[]).some((m) => key(m) === k))),
        'every acknowledged publication on every member',
        20_000,
      ).catch(() => {});
      for (const c of cs) {
        const got = new Set((c.all as Msg[]).map(key));
        expect([...expected].filter((k) => !got.has(k))).toEqual([]);
        expectExactlyOnceInOrder(c);
        expect(c.received).toHaveLength(1); // one session throughout
      }
      for (const c of onVictim) {
        expect(c.welcomes[1]!.resume).toBe('resumed');
        expect(c.topicOutcomes.filter((t) => t.c === 'room').at(-1)).toMatchObject({ resume: 'resumed' });
      }
      // The resumed members are held by the survivors now: the topic still counts all 18.
      presence = await survivors[0]!.request<{ count: number }>('presence', { topic: 'room' });
      expect(presence.count).toBe(18);
    });

    it('presence: the members held by a node that died leave the counts once its heartbeat expires', async () => {
      const cluster = await startCluster(2);
      const [victim, survivor] = cluster as [NodeProcess, NodeProcess];
      clients = Array.from({ length: 6 }, (_, i) => {
        const url = (i < 4 ? victim : survivor).url;
        return new ProtocolClient({ nextUrl: () => url, reconnect: false });
      });
      await Promise.all(clients.map((c) => c.connect()));
      for (const node of cluster) await node.request('join', { topic: 'lobby' });
      await until(() => clients.every((c) => c.topics.lobby !== undefined), 'joined', 10_000);
      type Presence = { count: number; members: Array<{ clientId: string; nodeId: string }> };
      expect((await survivor.request<Presence>('presence', { topic: 'lobby' })).count).toBe(6);
      await victim.kill9();
      let p: Presence = { count: -1, members: [] };
      for (let i = 0; i < 50; i++) {
        p = await survivor.request<Presence>('presence', { topic: 'lobby' });
        if (p.count === 2) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(p.count).toBe(2); // nodeTimeoutMs is 1 s here
      expect(p.members.map((m) => m.nodeId)).toEqual([survivor.nodeId, survivor.nodeId]);
      expect(p.members.map((m) => m.clientId).sort()).toEqual(
        clients
          .slice(4)
          .map((c) => c.sessionId)
          .sort(),
      );
    });

    if (store === 'redis')
      it('Redis restarts empty mid-stream: every client gets fresh (unknown-session), never a partial replay', async () => {
        const cluster = await startCluster();
        const cs = await spreadClients(cluster, 12);
        for (const node of cluster) await node.request('stream', { node: node.nodeId, intervalMs: 10 });
        await until(() => cs.every((c) => c.all.length > 30), 'streaming', 10_000);

        await redis!.restart();
        await until(
          () => cluster.every((n) => n.events.some((e) => e.name === 'history-lost')),
          'history lost',
          15_000,
        );
        await until(() => cs.every((c) => c.welcomes.length >= 2 && c.connected), 'clients back', 15_000);
        for (const node of cluster) await node.request('stop-stream');
        await new Promise((r) => setTimeout(r, 100));

        const after = await Promise.all(
          cluster.map(async (node) => {
            const ns: string[] = [];
            for (let n = 1; n <= 5; n++) {
              await node.request('broadcast', { data: { node: `after-${node.nodeId}`, n } });
              ns.push(`after-${node.nodeId}#${n}`);
            }
            return ns;
          }),
        );
        const expected = after.flat();
        await until(
          () =>
            cs.every((c) => expected.every((k) => (c.received.at(-1) as Msg[]).some((m) => key(m) === k))),
          'messages after the restart',
          15_000,
        );
        for (const c of cs) {
          expectExactlyOnceInOrder(c);
          expect(c.closes).toContain(1012);
          const fresh = c.welcomes.slice(1).filter((w) => w.resume === 'fresh');
          expect(fresh.length).toBeGreaterThanOrEqual(1);
          for (const w of fresh) expect(w.reason).toBe('unknown-session');
        }
        for (const node of cluster) {
          const names = node.events.filter((e) => e.type === 'event').map((e) => e.name);
          expect(names).toContain('degraded');
          expect(names.indexOf('degraded')).toBeLessThan(names.indexOf('history-lost'));
        }
      });

    if (store === 'redis-cluster')
      it('the master of the broadcast topic is killed and its replica promoted: no duplicate, no silent hole', async () => {
        const cluster = await startCluster();
        const cs = await spreadClients(cluster, 12);
        for (const node of cluster) await node.request('stream', { node: node.nodeId, intervalMs: 10 });
        await until(() => cs.every((c) => c.all.length > 30), 'streaming', 10_000);
        await rc!.killMaster(`${currentPrefix}{t:$all}`);
        await rc!.waitForFailover();
        await new Promise((r) => setTimeout(r, 1500)); // publishes continue on the promoted replica
        const failedOver = new Set(acked(cluster));
        await until(
          () =>
            cs.every((c) => c.connected && (c.all as Msg[]).filter((m) => failedOver.has(key(m))).length > 0),
          'streaming after the failover',
          20_000,
        );
        for (const node of cluster) await node.request('stop-stream');
        await new Promise((r) => setTimeout(r, 300));
        const expected = new Set(acked(cluster));
        await until(
          () => cs.every((c) => [...expected].every((k) => (c.all as Msg[]).some((m) => key(m) === k))),
          'every acknowledged broadcast',
          10_000,
        ).catch(() => {});
        for (const c of cs) {
          // Never a duplicate and never out of `$all`'s offset order (the client checks every offset); a broadcast
          // the replica never got is reported as a gap of `$all` (the client was closed with 1012 and resumed
          // `fresh` for it), never skipped silently. (Publishes in flight during the failover are retried by
          // ioredis and may be numbered in another order than they were issued: one node's order is not kept.)
          const all = c.all as Msg[];
          expect(new Set(all.map(key)).size).toBe(all.length);
          expect(c.anomalies).toEqual([]);
          const got = new Set((c.all as Msg[]).map(key));
          const missing = [...expected].filter((k) => !got.has(k));
          const gap = c.topicOutcomes.some(
            (t) => t.c === '$all' && t.resume === 'fresh' && t.reason === 'gap',
          );
          if (missing.length > 0)
            expect({ missing: missing.length, gap }).toEqual({ missing: missing.length, gap: true });
        }
      });

    it('a token issued on node A and replayed on node B is refused (4004) without touching the session', async () => {
      const [a, b, c] = await startCluster();
      const first = new ProtocolClient({ nextUrl: () => a!.url });
      clients.push(first);
      await first.connect();
      const { token, sessionId } = first;
      first.stop();
      const onB = new ProtocolClient({ nextUrl: () => b!.url });
      const onC = new ProtocolClient({ nextUrl: () => c!.url });
      clients.push(onB, onC);
      Object.assign(onB, { token, sessionId });
      Object.assign(onC, { token, sessionId });
      expect((await onB.connect()).resume).toBe('resumed');
      // Used on B while the session lives on: a stale attempt, refused on C with 4004; B keeps the session.
      await expect(onC.connect()).rejects.toThrow('closed before welcome: 4004');
      await new Promise((r) => setTimeout(r, 200)); // a stray `claimed` notice would close B meanwhile
      expect(onB.connected).toBe(true);
    });
  });
}
