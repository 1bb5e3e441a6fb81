import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { closeAllNodes, startNode, uniquePrefix, until, type InProcessNode } from './in-process.js';
import type { WebSocketConfig } from '../../src/server/index.js';
import { clusterOpsProperty } from './cluster-ops-property.js';
import { ProtocolClient } from './protocol-client.js';
import { startRedis, type TestRedis } from './redis-server.js';

/**
 * Cluster-wide operations on a client by id (`clusterJoin`, `clusterLeave`, `clusterDisconnect`, `fetchClient`,
 * and the synchronous `join`/`leave` forwarded) from a node that does not hold the client: the client's session is
 * on another node (attached or detached), or detached with no live owner (stored in Redis only), or moving to a
 * third node while the operation runs. Three in-process nodes; `store` is one redis-server or a 3+3 Redis Cluster.
 */
export function clusterOpsSuite(store: 'redis' | 'redis-cluster'): void {
  let redis: TestRedis | undefined;
  let rc: TestRedisCluster | undefined;
  beforeAll(async () => {
    if (store === 'redis') redis = await startRedis();
    else rc = await startRedisCluster();
  }, 90_000);
  afterAll(async () => {
    await redis?.stop();
    await rc?.stop();
  });
  afterEach(closeAllNodes);
  const clients: ProtocolClient[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.stop();
  });

  /** Three nodes of one cluster; every client authenticates with the `data` and `principal` of its query. */
  async function cluster(config: WebSocketConfig = {}): Promise<InProcessNode[]> {
    const prefix = uniquePrefix();
    const authenticate = (req: { url?: string }) => {
      const user = new URL(req.url ?? '/', 'http://x').searchParams.get('user') ?? 'anon';
      return { principal: user, data: { user, role: 'tester' } };
    };
    const start = () =>
      startNode(redis?.url ?? 'redis://unused', prefix, config, rc ? { client: rc.createClient() } : {}, {
        authenticate,
      });
    return [await start(), await start(), await start()];
  }

  const users = new Map<ProtocolClient, string>();
  function client(urls: string[], user = 'u1'): ProtocolClient {
    const c = new ProtocolClient({
      nextUrl: (i) => `${urls[i % urls.length]!}?user=${user}`,
      reconnect: false,
    });
    clients.push(c);
    users.set(c, user);
    return c;
  }

  /** The same session continued by a new client object (its old socket is gone), connecting to `url`. */
  function continueOn(c: ProtocolClient, url: string): ProtocolClient {
    const next = client([url], users.get(c));
    Object.assign(next, {
      token: c.token,
      sessionId: c.sessionId,
      lastSeq: c.lastSeq,
      topics: { ...c.topics },
    });
    next.received[0]!.push(...c.all);
    next.anomalies.push(...c.anomalies);
    c.stop();
    return next;
  }

  const unsubs = (c: ProtocolClient) => c.anomalies.filter((a) => a.includes('unknown topic'));

  describe(`cluster-wide client operations (${store})`, () => {
    for (const followed of [true, false]) {
      const where = followed ? 'a node that follows the topic' : 'a node that does not follow the topic yet';
      it(`clusterJoin from another node, to a client on ${where}: told first, then every later publication once, from its join offset`, async () => {
        const [a, b, c] = await cluster();
        const cl = client([a!.url]);
        await cl.connect();
        if (followed) {
          const other = client([a!.url], 'u2');
          await other.connect();
          a!.manager.join(other.sessionId!, 'room');
          await until(() => other.topics.room !== undefined, 'other member');
        }
        // The topic already has history: the member must start at its join offset, not before.
        for (let n = 1; n <= 5; n++) await c!.manager.publish('room', { before: n }).cluster;
        await expect(b!.manager.clusterJoin(cl.sessionId!, 'room')).resolves.toBe(true);
        await until(() => cl.topics.room !== undefined, 'sub');
        const joinedAt = cl.topics.room!;
        expect(joinedAt).toBe(5);
        // Published after the join resolved, from the node that joined it and from a third one.
        for (let n = 1; n <= 20; n++) await (n % 2 ? b! : c!).manager.publish('room', { n }).cluster;
        await until(() => cl.all.length === 20, 'every publication');
        expect(cl.all).toEqual(Array.from({ length: 20 }, (_, i) => ({ n: i + 1 })));
        expect(cl.topics.room).toBe(joinedAt + 20);
        // With or without a member there yet (the owner node may be loading the topic's history), no frame of
        // the topic reaches the client before its `sub`.
        expect(cl.anomalies).toEqual([]);
        // Joining again is a no-op, wherever it is asked.
        await expect(c!.manager.clusterJoin(cl.sessionId!, 'room')).resolves.toBe(false);
        expect(a!.manager.getTopicMembers('room')).toContain(cl.sessionId);
      });
    }

    it('clusterLeave from another node: the client gets unsub and not one publication after it', async () => {
      const [a, b, c] = await cluster();
      const cl = client([a!.url]);
      await cl.connect();
      a!.manager.join(cl.sessionId!, 'room');
      await until(() => cl.topics.room !== undefined, 'sub');
      // A publisher keeps going on node C while node B removes the client.
      let publishing = true;
      let published = 0;
      const loop = (async () => {
        while (publishing) await c!.manager.publish('room', { n: ++published }).cluster;
      })();
      await until(() => cl.all.length >= 5, 'some publications');
      await expect(b!.manager.clusterLeave(cl.sessionId!, 'room')).resolves.toBe(true);
      const atLeave = published;
      await until(() => cl.topics.room === undefined, 'unsub');
      const got = cl.all.length;
      for (let i = 0; i < 20; i++) await c!.manager.publish('room', { late: i }).cluster;
      publishing = false;
      await loop;
      expect(published).toBeGreaterThan(atLeave); // publications went on after the leave
      await c!.manager.publish('room', 'sentinel').cluster;
      await b!.backend.send(cl.sessionId!, 'direct'); // a later frame on the same socket: nothing may precede it
      await until(() => cl.all.includes('direct'), 'the direct message');
      expect(cl.all.length).toBe(got + 1);
      expect(unsubs(cl)).toEqual([]);
      expect(cl.anomalies).toEqual([]);
      await expect(b!.manager.clusterLeave(cl.sessionId!, 'room')).resolves.toBe(false);
      expect((await b!.manager.fetchClient(cl.sessionId!))?.topics).toEqual([]);
    });

    it('the synchronous join()/leave() on a node that does not hold the client are forwarded (no UNKNOWN_CLIENT)', async () => {
      const [a, b, c] = await cluster();
      const cl = client([a!.url]);
      await cl.connect();
      expect(b!.manager.join(cl.sessionId!, 'news')).toBe(true);
      await until(() => cl.topics.news !== undefined, 'sub');
      await c!.manager.publish('news', 1).cluster;
      await until(() => cl.all.length === 1, 'publication');
      expect(c!.manager.leave(cl.sessionId!, 'news')).toBe(true);
      await until(() => cl.topics.news === undefined, 'unsub');
      expect(() => b!.manager.join(cl.sessionId!, '$bad')).toThrow(
        expect.objectContaining({ code: 'INVALID_TOPIC' }),
      );
      // An id that no node has: join reports UNKNOWN_CLIENT as an `error` event; leave stays quiet (as `false` was).
      const errors: string[] = [];
      b!.manager.on('error', (e) => void errors.push((e.error as { code?: string }).code ?? ''));
      expect(b!.manager.join('nobody', 'news')).toBe(true);
      expect(b!.manager.leave('nobody', 'news')).toBe(true);
      await until(() => errors.length === 1, 'the error event');
      await b!.manager.clusterLeave('nobody', 'news'); // issued after the forwarded one on one connection: settles later
      expect(errors).toEqual(['UNKNOWN_CLIENT']);
      expect(cl.anomalies).toEqual([]);
    });

    it('while the client is detached on a live node: join and leave reach its session, the resume on a third node reflects them', async () => {
      const [a, b, c] = await cluster();
      let cl = client([a!.url]);
      await cl.connect();
      a!.manager.join(cl.sessionId!, 'old');
      await until(() => cl.topics.old !== undefined, 'sub old');
      cl.drop();
      await until(() => a!.manager.getStats().detachedSessions === 1, 'detached on A');
      await expect(b!.manager.clusterJoin(cl.sessionId!, 'new')).resolves.toBe(true);
      await expect(b!.manager.clusterLeave(cl.sessionId!, 'old')).resolves.toBe(true);
      for (let n = 1; n <= 10; n++) {
        await b!.manager.publish('new', { n }).cluster;
        await b!.manager.publish('old', { old: n }).cluster;
      }
      cl = continueOn(cl, c!.url);
      const w = await cl.connect();
      expect(w.resume).toBe('resumed');
      expect(cl.topicOutcomes.map((t) => t.c).sort()).toEqual(['$all', 'new']);
      await until(() => cl.all.length === 10, 'the new topic replayed');
      expect(cl.all).toEqual(Array.from({ length: 10 }, (_, i) => ({ n: i + 1 })));
      expect(cl.anomalies).toEqual([]);
    });

    it('a detached session that no live node holds: join, leave, fetch and disconnect apply to its stored copy', async () => {
      const [a, b, c] = await cluster();
      let cl = client([a!.url], 'u7');
      await cl.connect();
      a!.manager.join(cl.sessionId!, 'old');
      await until(() => cl.topics.old !== undefined, 'sub old');
      const other = client([a!.url], 'u8');
      await other.connect();
      await a!.close(); // its sessions stay in Redis, detached; node A leaves the cluster
      const id = cl.sessionId!;
      await expect(b!.manager.clusterJoin(id, 'new')).resolves.toBe(true);
      await expect(b!.manager.clusterJoin(id, 'new')).resolves.toBe(false);
      await expect(b!.manager.clusterLeave(id, 'old')).resolves.toBe(true);
      await expect(b!.manager.fetchClient(id)).resolves.toEqual({
        clientId: id,
        nodeId: undefined,
        connected: false,
        session: true,
        principal: 'u7',
        data: { user: 'u7', role: 'tester' },
        topics: ['new'],
      });
      for (let n = 1; n <= 6; n++) {
        await c!.manager.publish('new', { n }).cluster;
        await c!.manager.publish('old', { old: n }).cluster;
      }
      cl = continueOn(cl, c!.url);
      expect((await cl.connect()).resume).toBe('resumed');
      expect(cl.topicOutcomes.map((t) => t.c).sort()).toEqual(['$all', 'new']);
      await until(() => cl.all.length === 6, 'the joined topic replayed');
      expect(cl.all).toEqual(Array.from({ length: 6 }, (_, i) => ({ n: i + 1 })));
      expect(cl.anomalies).toEqual([]);
      // The other orphan is ended from node B: its resume finds no session.
      await expect(b!.manager.clusterDisconnect(other.sessionId!)).resolves.toBe(true);
      await expect(b!.manager.fetchClient(other.sessionId!)).resolves.toBeUndefined();
      const again = continueOn(other, c!.url);
      const w = await again.connect();
      expect(w.resume).toBe('fresh');
      expect(w.reason).toBe('unknown-session');
    });

    it('fetchClient and clusterDisconnect from another node, for a connected client', async () => {
      const [a, b] = await cluster();
      const cl = client([a!.url], 'u3');
      await cl.connect();
      a!.manager.join(cl.sessionId!, 'room');
      await until(() => cl.topics.room !== undefined, 'sub');
      await expect(b!.manager.fetchClient(cl.sessionId!)).resolves.toEqual({
        clientId: cl.sessionId,
        nodeId: a!.backend.nodeId,
        connected: true,
        session: true,
        principal: 'u3',
        data: { user: 'u3', role: 'tester' },
        topics: ['room'],
      });
      await expect(b!.manager.fetchClient('nobody')).resolves.toBeUndefined();
      await expect(b!.manager.clusterJoin('nobody', 'room')).rejects.toMatchObject({
        code: 'UNKNOWN_CLIENT',
      });
      await expect(b!.manager.clusterLeave('nobody', 'room')).resolves.toBe(false);
      await expect(b!.manager.clusterDisconnect(cl.sessionId!, 4503, 'banned')).resolves.toBe(true);
      await until(() => cl.closes.length === 1, 'closed');
      expect(cl.closes).toEqual([4503]);
      expect(a!.manager.getStats().sessions).toBe(0); // a terminal code ended the session
      await expect(b!.manager.fetchClient(cl.sessionId!)).resolves.toBeUndefined();
      await expect(b!.manager.clusterDisconnect(cl.sessionId!)).resolves.toBe(false);
    });

    it('a plain socket on another node: fetch, join (it gets the bare payloads), leave and disconnect by id', async () => {
      const [a, b, c] = await cluster();
      const ws = new WebSocket(`${a!.url}?user=plain`);
      const got: string[] = [];
      ws.on('message', (d) => got.push(d.toString()));
      const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
      await new Promise((r) => ws.once('open', r));
      await until(() => a!.manager.getConnectionCount() === 1, 'registered');
      const id = a!.manager.getActiveConnections()[0]!;
      await expect(b!.manager.fetchClient(id)).resolves.toEqual({
        clientId: id,
        nodeId: a!.backend.nodeId,
        connected: true,
        session: false,
        principal: 'plain',
        data: { user: 'plain', role: 'tester' },
        topics: [],
      });
      await expect(b!.manager.clusterJoin(id, 'feed')).resolves.toBe(true);
      await c!.manager.publish('feed', 'one').cluster;
      await until(() => got.length === 1, 'the publication');
      await expect(c!.manager.clusterLeave(id, 'feed')).resolves.toBe(true);
      await c!.manager.publish('feed', 'two').cluster;
      await b!.backend.send(id, 'direct');
      await until(() => got.length === 2, 'the direct message');
      expect(got).toEqual(['one', 'direct']);
      await expect(b!.manager.clusterDisconnect(id, 1000, 'bye')).resolves.toBe(true);
      expect(await closed).toBe(1000);
    });

    it('topics.maxPerConnection holds wherever the client is: TOPIC_LIMIT from its node and from its stored session', async () => {
      const [a, b] = await cluster({ topics: { maxPerConnection: 2 } });
      const cl = client([a!.url]);
      await cl.connect();
      const id = cl.sessionId!;
      await b!.manager.clusterJoin(id, 't1');
      await b!.manager.clusterJoin(id, 't2');
      await expect(b!.manager.clusterJoin(id, 't3')).rejects.toMatchObject({ code: 'TOPIC_LIMIT' });
      await expect(b!.manager.clusterJoin(id, 't2')).resolves.toBe(false); // a member already: no limit
      await a!.close(); // only Redis holds the session now
      await expect(b!.manager.clusterJoin(id, 't3')).rejects.toMatchObject({ code: 'TOPIC_LIMIT' });
      await expect(b!.manager.clusterLeave(id, 't1')).resolves.toBe(true);
      await expect(b!.manager.clusterJoin(id, 't3')).resolves.toBe(true);
      expect((await b!.manager.fetchClient(id))?.topics.sort()).toEqual(['t2', 't3']);
    });

    it('a node that dropped a session Redis still says it owns (an evicted gap): the operation lands on the stored session', async () => {
      const [a, b, c] = await cluster();
      let cl = client([a!.url]);
      await cl.connect();
      const id = cl.sessionId!;
      // What the node does when a catch-up finds evicted messages: forget the session, close with 1012. Redis
      // keeps naming node A as the owner until a resume claims it.
      const local = (
        a!.backend as unknown as {
          local: { byId: Map<string, unknown>; lose(ls: unknown, why: string): void };
        }
      ).local;
      local.lose(local.byId.get(id), 'test: missed messages were evicted');
      await until(() => cl.closes.length === 1, 'closed');
      await expect(b!.manager.clusterJoin(id, 'x')).resolves.toBe(true); // A answers `absent`
      await expect(a!.manager.clusterJoin(id, 'y')).resolves.toBe(true); // Redis names A itself
      await expect(c!.manager.fetchClient(id)).resolves.toMatchObject({
        nodeId: undefined,
        topics: ['x', 'y'],
      });
      cl = continueOn(cl, c!.url);
      expect((await cl.connect()).resume).toBe('resumed');
      expect(cl.topicOutcomes.map((t) => t.c).sort()).toEqual(['$all', 'x', 'y']);
    });

    it('a join or leave racing a resume onto another node takes effect exactly once', async () => {
      const [a, b, c] = await cluster();
      const nodes = [a!, c!];
      let cl = client([a!.url]);
      await cl.connect();
      for (let round = 0; round < 12; round++) {
        const topic = `race${round}`;
        // The client drops and resumes on the other node while node B joins it (then, next round, leaves it).
        const target = nodes[(round + 1) % 2]!;
        cl = continueOn(cl, target.url);
        const joining = b!.manager.clusterJoin(cl.sessionId!, topic);
        if (round % 3) await new Promise((r) => setTimeout(r, round * 2));
        await cl.connect();
        await expect(joining).resolves.toBe(true);
        await until(() => cl.topics[topic] !== undefined, `sub ${topic}`);
        const before = cl.all.length;
        for (let n = 1; n <= 3; n++) await b!.manager.publish(topic, { topic, n }).cluster;
        await until(() => cl.all.length === before + 3, `publications of ${topic}`);
        expect(cl.all.slice(before)).toEqual([1, 2, 3].map((n) => ({ topic, n })));
        // Now leave it while the client moves back.
        cl = continueOn(cl, nodes[round % 2]!.url);
        const leaving = b!.manager.clusterLeave(cl.sessionId!, topic);
        await cl.connect();
        await expect(leaving).resolves.toBe(true);
        await until(() => cl.topics[topic] === undefined, `left ${topic}`);
        await b!.manager.publish(topic, 'after leave').cluster;
        expect((await b!.manager.fetchClient(cl.sessionId!))?.topics).toEqual([]);
        expect(cl.anomalies).toEqual([]);
      }
      await b!.backend.send(cl.sessionId!, 'end');
      await until(() => cl.all.includes('end'), 'last frame');
      expect(cl.all.filter((m) => m === 'after leave')).toEqual([]);
      expect(cl.anomalies).toEqual([]);
    });

    clusterOpsProperty(store, { cluster, client, continueOn });
  });
}
