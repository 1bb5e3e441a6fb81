import { expect, it } from 'vitest';
import type { WebSocketConfig } from '../../src/server/index.js';
import { until, type InProcessNode } from './in-process.js';
import type { ProtocolClient } from './protocol-client.js';

/** What the property test uses of test/redis/cluster-ops-suite.ts. */
export interface ClusterOpsHarness {
  cluster(config?: WebSocketConfig): Promise<InProcessNode[]>;
  client(urls: string[], user?: string): ProtocolClient;
  continueOn(c: ProtocolClient, url: string): ProtocolClient;
}

/**
 * The property test of the cluster-wide client operations: random joins, leaves and publishes from random nodes,
 * half of the joins and leaves racing a resume of the client on a random node; every member gets exactly the
 * publications made while it was a member (per topic, in order), and nothing else.
 */
export function clusterOpsProperty(store: string, h: ClusterOpsHarness): void {
  const { cluster, client, continueOn } = h;
  it('property: random cross-node joins, leaves and publishes, with resumes on random nodes racing them', async () => {
    const nodes = await cluster();
    const topics = ['p0', 'p1', 'p2'];
    // Every node follows every topic from the start (an anchor member each); here every anomaly counts (a
    // publication after a leave shows up as one).
    for (const node of nodes) {
      const anchor = client([node.url], 'anchor');
      await anchor.connect();
      for (const t of topics) node.manager.join(anchor.sessionId!, t);
      await until(() => topics.every((t) => anchor.topics[t] !== undefined), 'anchor joined');
    }
    const figures = { publications: 0, delivered: 0, joins: 0, leaves: 0, racingResumes: 0 };
    for (const seed of [1, 2, 3]) {
      let x = seed * 7919;
      const rand = (n: number) => (((x = (x * 48271) % 2147483647) % n) + n) % n;
      const cs = [client([nodes[0]!.url]), client([nodes[1]!.url]), client([nodes[2]!.url])];
      for (const c of cs) await c.connect();
      /** The model: who is a member of what, and what each member must get, per topic, in order. */
      const member = cs.map(() => new Set<string>());
      const expected = cs.map(() => new Map<string, unknown[]>(topics.map((t) => [t, []])));
      let k = 0;
      for (let step = 0; step < 60; step++) {
        const i = rand(cs.length);
        const t = topics[rand(topics.length)]!;
        const from = nodes[rand(nodes.length)]!;
        const kind = [0, 0, 1, 2, 2][rand(5)]!; // 0 join, 1 leave, 2 publish
        if (kind === 0 || kind === 1) {
          // Join or leave from a random node, racing a resume of the client on a random node half of the time.
          const op =
            kind === 0
              ? from.manager.clusterJoin(cs[i]!.sessionId!, t)
              : from.manager.clusterLeave(cs[i]!.sessionId!, t);
          figures[kind === 0 ? 'joins' : 'leaves']++;
          if (rand(2) === 0) {
            figures.racingResumes++;
            cs[i] = continueOn(cs[i]!, nodes[rand(nodes.length)]!.url);
            await cs[i]!.connect();
          }
          await expect(op).resolves.toBe(kind === 0 ? !member[i]!.has(t) : member[i]!.has(t));
          if (kind === 0) member[i]!.add(t);
          else member[i]!.delete(t);
        } else {
          const p = { seed, t, k: ++k };
          figures.publications++;
          await from.manager.publish(t, p).cluster;
          cs.forEach((_, j) => member[j]!.has(t) && expected[j]!.get(t)!.push(p));
          // Delivered before the next step: a leave right after may drop a publication not received yet.
          await until(
            () => cs.every((c, j) => !member[j]!.has(t) || c.all.some((m) => (m as { k?: number }).k === k)),
            `publication ${k} delivered`,
          );
        }
      }
      await Promise.all(cs.map((c) => nodes[0]!.backend.send(c.sessionId!, { seed, end: true })));
      await until(() => cs.every((c) => c.all.some((m) => (m as { end?: boolean }).end)), 'the end marker');
      cs.forEach((c, j) => {
        for (const t of topics) {
          const got = c.all.filter((m) => (m as { t?: string }).t === t);
          expect(got, `client ${j} topic ${t} (seed ${seed})`).toEqual(expected[j]!.get(t));
          figures.delivered += got.length;
        }
        expect(c.anomalies).toEqual([]);
      });
      for (const c of cs) c.stop();
    }
    console.log(`cluster-ops property (${store}): ${JSON.stringify(figures)}, 0 lost, 0 duplicated`);
  });
}
