import type { Cluster, Redis } from 'ioredis';
import { expect } from 'vitest';
import type { Logger } from '../../src/server/operations/logger.js';
import { startNode, uniquePrefix, until, type InProcessNode } from './in-process.js';
import { ProtocolClient } from './protocol-client.js';

// A clean failover (kill -9 of the master holding a topic, its in-sync replica promoted) while a node publishes
// every 4 ms without awaiting, shared by the Redis Cluster and the Sentinel set-ups: publishes wait while the
// failover is under way and then resolve, none is rejected, their offsets follow the order of the calls, every
// member gets each one once, and each node reports exactly one degraded/recovered pair with a bounded number of
// error log lines.

/** What a set-up provides to the scenario. */
export interface CleanFailoverSetup {
  /** A new ioredis client as the README shows it (closed by the set-up). */
  client(): Redis | Cluster;
  /** Kill -9 the master of topic `hot` under `prefix` and wait for the promotion; resolves with what was killed. */
  failover(prefix: string): Promise<string>;
}

/** A logger that counts lines per level (and keeps the error ones for the failure message). */
function countingLogger(): { logger: Logger; lines: Record<string, number>; errors: string[] } {
  const lines: Record<string, number> = {};
  const errors: string[] = [];
  const at =
    (level: string) =>
    (obj: unknown, msg?: string): void => {
      lines[level] = (lines[level] ?? 0) + 1;
      if (level === 'error') errors.push(`${msg ?? ''} ${JSON.stringify(obj).slice(0, 200)}`);
    };
  const logger = {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    fatal: at('fatal'),
    child: () => logger,
  } as unknown as Logger;
  return { logger, lines, errors };
}

/** Runs the scenario; `clients` collects the clients for the caller's clean-up. */
export async function runCleanFailover(setup: CleanFailoverSetup, clients: ProtocolClient[]): Promise<void> {
  const prefix = uniquePrefix();
  const logs = countingLogger();
  const nodes: InProcessNode[] = [];
  const events: string[] = [];
  const reasons: string[] = [];
  for (const name of ['a', 'b']) {
    const client = setup.client();
    const n = await startNode('redis://unused', prefix, { logger: logs.logger }, { client });
    n.backend.on('degraded', (e) => {
      events.push(`${name}:degraded`);
      reasons.push(e.reason);
    });
    n.backend.on('recovered', () => events.push(`${name}:recovered`));
    n.backend.on('history-lost', () => events.push(`${name}:history-lost`));
    nodes.push(n);
  }
  const [a, b] = nodes as [InProcessNode, InProcessNode];
  const cs = [a, b].map((n) => {
    const c = new ProtocolClient({ nextUrl: (i) => [n.url, a.url, b.url][i % 3]! });
    clients.push(c);
    return c;
  });
  for (const c of cs) await c.connect();
  a.manager.join(cs[0]!.sessionId!, 'hot');
  b.manager.join(cs[1]!.sessionId!, 'hot');
  await until(() => cs.every((c) => c.topics.hot !== undefined), 'joined');

  // Publish every 4 ms from node A, without waiting for the previous one (as an application would).
  const results: Array<{ i: number; offset?: number; error?: string }> = [];
  const settled: Array<Promise<void>> = [];
  let i = 0;
  let publishing = true;
  const loop = (async () => {
    while (publishing) {
      const n = ++i;
      settled.push(
        a.manager.publish('hot', n).cluster!.then(
          (r) => void results.push({ i: n, offset: r.offset }),
          (err: unknown) => void results.push({ i: n, error: (err as Error).message }),
        ),
      );
      await new Promise((r) => setTimeout(r, 4));
    }
  })();
  await until(() => results.length >= 50, 'publishes before the kill', 20_000);

  const killedAt = Date.now();
  const killed = await setup.failover(prefix);
  const failoverMs = Date.now() - killedAt;
  await until(
    () => events.filter((e) => e.endsWith(':recovered')).length >= 2,
    'both nodes recovered',
    30_000,
  );
  const atRecovery = i;
  await until(() => i >= atRecovery + 50, 'publishes after the failover', 20_000);
  publishing = false;
  await loop;
  await Promise.all(settled);

  const rejected = results.filter((r) => r.error !== undefined);
  const inOrder = [...results].sort((x, y) => x.i - y.i);
  const offsets = inOrder.filter((r) => r.offset !== undefined).map((r) => r.offset!);
  const outOfOrder = offsets.filter((o, k) => k > 0 && o <= offsets[k - 1]!).length;
  const total = results.length;
  await until(() => cs.every((c) => c.all.length >= total - rejected.length), 'every publication', 30_000);
  const lost = cs.map((c) => total - new Set(c.all).size);
  const duplicated = cs.map((c) => c.all.length - new Set(c.all).size);
  const errorLines = logs.lines.error ?? 0;
  console.log(
    `clean failover (${killed}, ${failoverMs} ms): publications ${total}, rejected ${rejected.length}, ` +
      `${rejected[0]?.error ?? ''} out of order ${outOfOrder}, lost ${lost.join('/')}, duplicated ${duplicated.join('/')}, ` +
      `events ${events.join(' ')} (${reasons.join('; ')}), log lines ${JSON.stringify(logs.lines)}`,
  );
  expect(rejected.map((r) => r.error).slice(0, 3)).toEqual([]);
  expect(outOfOrder).toBe(0);
  for (const c of cs) {
    expect(c.all).toEqual(inOrder.map((r) => r.i));
    expect(c.anomalies).toEqual([]);
  }
  expect(events.filter((e) => e.startsWith('a:'))).toEqual(['a:degraded', 'a:recovered']);
  expect(events.filter((e) => e.startsWith('b:'))).toEqual(['b:degraded', 'b:recovered']);
  expect(errorLines, logs.errors.slice(0, 3).join('\n')).toBeLessThanOrEqual(10);
}
