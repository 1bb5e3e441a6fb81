import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { closeAllNodes, startNode, uniquePrefix, until, type InProcessNode } from './in-process.js';
import { ProtocolClient } from './protocol-client.js';

// The backend on a real Redis Cluster (3 masters, 3 replicas): topics spread over the shards (sharded pub/sub),
// sessions and inboxes in the control plane's slot.

let rc: TestRedisCluster;
beforeAll(async () => {
  rc = await startRedisCluster();
}, 60_000);
afterAll(async () => {
  await rc?.stop();
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

function node(prefix: string): Promise<InProcessNode> {
  return startNode('redis://unused', prefix, {}, { client: rc.createClient() });
}

describe('Redis Cluster', () => {
  it('broadcasts and topic publications from any node reach every client exactly once; resume on another node', async () => {
    const prefix = uniquePrefix();
    const a = await node(prefix);
    const b = await node(prefix);
    const cs = [client([a.url, b.url], false), client([b.url, a.url], false)];
    for (const c of cs) await c.connect();
    // Topics whose keys are on different shards.
    const topics = ['alpha', 'beta', 'gamma', 'delta'];
    const slots = new Set(await Promise.all(topics.map((t) => rc.keySlot(`${prefix}{t:${t}}`))));
    expect(slots.size).toBeGreaterThan(1);
    for (const [i, c] of cs.entries()) {
      for (const t of topics) (i === 0 ? a : b).manager.join(c.sessionId!, t);
    }
    await until(() => cs.every((c) => topics.every((t) => c.topics[t] !== undefined)), 'joined');
    for (let n = 1; n <= 5; n++) {
      await a.manager.broadcast(`all${n}`).cluster;
      for (const t of topics) await (n % 2 ? a : b).manager.publish(t, `${t}${n}`).cluster;
    }
    await until(() => cs.every((c) => c.all.length === 25), 'every publication');
    for (const c of cs) {
      expect((c.all as string[]).filter((m) => m.startsWith('alpha'))).toEqual(
        [1, 2, 3, 4, 5].map((n) => `alpha${n}`),
      );
      expect(c.anomalies).toEqual([]);
    }
    const direct = await b.backend.send(cs[0]!.sessionId!, 'direct');
    expect(direct).toBe('sent');
    await until(() => cs[0]!.all.length === 26, 'direct send across nodes');

    // The first client goes away; its session resumes on B with each topic's missed publications.
    const gone = cs[0]!;
    gone.stop();
    await until(() => a.manager.getConnectionCount() === 0, 'detached');
    for (const t of topics) await b.manager.publish(t, `${t}-missed`).cluster;
    const next = client([b.url], false);
    Object.assign(next, {
      token: gone.token,
      sessionId: gone.sessionId,
      lastSeq: gone.lastSeq,
      topics: { ...gone.topics },
    });
    const w = await next.connect();
    expect(w.resume).toBe('resumed');
    expect(next.topicOutcomes.every((t) => t.resume === 'resumed')).toBe(true);
    await until(() => next.all.length === 4, 'replay');
    expect([...(next.all as string[])].sort()).toEqual(topics.map((t) => `${t}-missed`).sort());
    expect(next.anomalies).toEqual([]);
    expect(await b.backend.getTopicMemberCount('alpha')).toBe(2);
  });
});
