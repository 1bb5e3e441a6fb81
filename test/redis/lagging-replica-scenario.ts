import { expect } from 'vitest';
import type { Redis, Cluster } from 'ioredis';
import { startNode, uniquePrefix, until, type InProcessNode } from './in-process.js';
import { ProtocolClient } from './protocol-client.js';

// A failover to a replica that is behind (Redis replication is asynchronous), shared by the Redis Cluster and the
// Sentinel set-ups: the replica of the topic's master is paused (SIGSTOP) and cut off, 200 publications go to the
// master only, the master is killed (kill -9), the replica resumes (SIGCONT) and is promoted without them, and
// publishing goes on. The topic's history went backwards: its offsets would be taken again by other publications.
// Required: never silent. No publish resolves and no client gets two different publications under one offset,
// nothing is lost without a `gap` for the topic, a session that was away resumes the topic as `gap` (never
// `resumed` over publications it never got), and an excluded member never gets a publication that excluded it.

/** What a set-up provides to the scenario. */
export interface LaggingReplicaSetup {
  /** A new ioredis client on the set-up (closed by the set-up). */
  client(): Redis | Cluster;
  /** The topic to use under `prefix`. */
  topic(prefix: string): Promise<string>;
  /** Pause the replica of the topic's master and cut it off; resolves with the failover to run afterwards. */
  lag(prefix: string, topic: string): Promise<() => Promise<void>>;
}

/** Runs the scenario; `clients` collects the clients for the caller's clean-up. Returns the figures line. */
export async function runLaggingReplica(
  setup: LaggingReplicaSetup,
  clients: ProtocolClient[],
): Promise<string> {
  const prefix = uniquePrefix();
  const topic = await setup.topic(prefix);
  const config = { topics: { history: { maxMessages: 50 } } };
  const a = await startNode('redis://unused', prefix, config, { client: setup.client() });
  const b = await startNode('redis://unused', prefix, config, { client: setup.client() });
  const nodes: InProcessNode[] = [a, b];
  const events: string[] = [];
  for (const [name, n] of [['a', a] as const, ['b', b] as const]) {
    n.backend.on('degraded', () => events.push(`${name}:degraded`));
    n.backend.on('recovered', () => events.push(`${name}:recovered`));
  }
  // c0 and c2 on A, c1 on B; c2 is excluded from every third publication; c3 goes away before the lag.
  const cs = [a, b, a, b].map((n) => {
    const c = new ProtocolClient({ nextUrl: (i) => [n.url, a.url, b.url][i % 3]! });
    clients.push(c);
    return c;
  });
  for (const c of cs) await c.connect();
  for (const [k, c] of cs.entries()) nodes[k % 2]!.manager.join(c.sessionId!, topic);
  await until(() => cs.every((c) => c.topics[topic] !== undefined), 'joined');
  const excluded = cs[2]!.sessionId!;

  const resolved = new Map<string, number>(); // payload → offset its publish resolved with
  const excluding = new Set<string>();
  const rejected: string[] = [];
  let n = 0;
  const publish = (from: InProcessNode): Promise<void> => {
    const p = `m${++n}`;
    const exclude = n % 3 === 0 ? [excluded] : undefined;
    if (exclude) excluding.add(p);
    return from.manager.publish(topic, p, exclude ? { exclude } : {}).cluster!.then(
      (r) => void resolved.set(p, r.offset!),
      (err: unknown) => void rejected.push((err as Error).message),
    );
  };

  for (let i = 0; i < 60; i++) await publish(i % 2 ? a : b);
  await until(() => cs.every((c) => c.topics[topic] === 60), 'the first publications');
  // c3 goes away: its session is detached at offset 60.
  const away = cs[3]!;
  away.stop();
  await until(() => b.manager.getConnectionCount() === 1, 'c3 detached');

  const failover = await setup.lag(prefix, topic);
  // 200 publications (some large) that only the master gets.
  for (let i = 0; i < 200; i++) await publish(i % 2 ? a : b);
  await until(
    () => [0, 1, 2].every((k) => cs[k]!.topics[topic] === 260),
    'the publications the replica lacks',
  );

  await failover();
  // Publishing goes on from both nodes (some of it waits for the failover to end).
  const after: Array<Promise<void>> = [];
  for (let i = 0; i < 150; i++) {
    after.push(publish(i % 2 ? a : b));
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(after);
  // Once things settled: a last batch that every member must get, and c3 comes back.
  await until(() => !a.backend.degraded && !b.backend.degraded, 'recovered', 30_000);
  await new Promise((r) => setTimeout(r, 500));
  const last: string[] = [];
  for (let i = 0; i < 20; i++) {
    await publish(i % 2 ? a : b);
    last.push(`m${n}`);
  }
  const back = new ProtocolClient({ nextUrl: () => a.url });
  clients.push(back);
  Object.assign(back, {
    token: away.token,
    sessionId: away.sessionId,
    lastSeq: away.lastSeq,
    topics: { ...away.topics },
  });
  const w = await back.connectWithRetry();
  for (const p of last) await a.manager.publish(topic, `${p}-again`).cluster;
  const members = [cs[0]!, cs[1]!, cs[2]!, back];
  await until(
    () => members.every((c) => last.every((p) => c.all.includes(`${p}-again`))),
    'the last publications on every member',
    30_000,
  );

  // Figures.
  const byOffset = new Map<number, Set<string>>();
  for (const [p, o] of resolved) (byOffset.get(o) ?? byOffset.set(o, new Set()).get(o)!).add(p);
  const reusedOffsets = [...byOffset.values()].filter((s) => s.size > 1).length;
  const received = new Map<number, Set<string>>(); // offset → distinct payloads delivered at it, over all clients
  const report: string[] = [];
  for (const [k, c] of members.entries()) {
    const got = new Set(c.all as string[]);
    const gaps = c.topicOutcomes.filter((t) => t.c === topic && t.resume === 'fresh');
    const expected = [...resolved.keys()].filter(
      (p) => !(k === 2 && excluding.has(p)) && (k !== 3 || Number(p.slice(1)) > 60),
    );
    const lost = expected.filter((p) => !got.has(p)).length;
    const dup = c.all.length - got.size;
    const leaked = k === 2 ? [...got].filter((p) => excluding.has(p)).length : 0;
    for (const p of got) {
      const o = resolved.get(p);
      if (o !== undefined) (received.get(o) ?? received.set(o, new Set()).get(o)!).add(p);
    }
    report.push(
      `c${k}: lost ${lost}, duplicated ${dup}, gaps ${gaps.map((g) => g.reason).join(',') || 'none'}, leaked ${leaked}`,
    );
    expect(c.anomalies, `c${k}`).toEqual([]);
    expect(dup, `c${k} duplicated`).toBe(0);
    expect(leaked, `c${k} excluded publications received`).toBe(0);
    if (lost > 0) expect(gaps.length, `c${k} lost ${lost} publications without a gap`).toBeGreaterThan(0);
  }
  const deliveredReused = [...received.values()].filter((s) => s.size > 1).length;
  const figures =
    `publications ${n}, rejected ${rejected.length} (${[...new Set(rejected)].join(' | ')}), offsets resolved twice ${reusedOffsets}, ` +
    `offsets delivered for two publications ${deliveredReused}, c3 resume ${w.resume}/` +
    `${JSON.stringify(back.topicOutcomes.find((t) => t.c === topic))}; ${report.join('; ')}; events ${events.join(' ')}`;
  console.log(`lagging replica: ${figures}`);
  expect(deliveredReused).toBe(0);
  // Both nodes saw offset 260 taken: no publish may resolve with an offset that another one resolved with.
  expect(reusedOffsets).toBe(0);
  // c3 was away at offset 60 while offsets 61+ went backwards: its topic must not resume as if continuous.
  expect(back.topicOutcomes.find((t) => t.c === topic)).toMatchObject({ resume: 'fresh', reason: 'gap' });
  return figures;
}
