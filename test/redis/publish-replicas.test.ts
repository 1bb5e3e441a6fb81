import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { onPort } from '../helpers/redis-processes.js';
import { closeAllNodes, startNode, uniquePrefix } from './in-process.js';
import { startRedis, type TestRedis } from './redis-server.js';

// `publishReplicas`: a publish resolves only once that many replicas have it (Redis WAIT after the publish script).
// On a master with one replica: it resolves while the replica follows, rejects when the replica stops answering
// (SIGSTOP) although the master stored it, and its cost is measured beside the default (printed, not asserted).

let master: TestRedis;
let replica: TestRedis;
beforeAll(async () => {
  master = await startRedis();
  replica = await startRedis(['--replicaof', '127.0.0.1', String(master.port)]);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const info = await onPort(replica.port, (r) => r.info('replication'));
    if (/^master_link_status:up/m.test(info)) break;
    if (Date.now() > deadline) throw new Error('replica not in sync');
    await new Promise((r) => setTimeout(r, 50));
  }
}, 30_000);
afterAll(async () => {
  await replica?.stop();
  await master?.stop();
});
afterEach(closeAllNodes);

async function measure(publish: (i: number) => Promise<unknown>, count: number) {
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await publish(i);
  const sequentialMs = (performance.now() - t0) / count;
  const t1 = performance.now();
  await Promise.all(Array.from({ length: count }, (_, i) => publish(count + i)));
  const perSecond = Math.round(count / ((performance.now() - t1) / 1000));
  return { sequentialMs, perSecond };
}

describe('publishReplicas (WAIT)', () => {
  it('resolves once a replica has the publication, rejects when none acknowledges it; cost measured', async () => {
    const prefix = uniquePrefix();
    const fast = await startNode(master.url, prefix);
    const durable = await startNode(
      master.url,
      prefix,
      {},
      { publishReplicas: 1, publishReplicaTimeoutMs: 300 },
    );

    const r = await durable.manager.publish('room', 'kept').cluster!;
    expect(r.offset).toBe(1);
    // The replica has it as soon as the publish resolved.
    const onReplica = await onPort(replica.port, (c) => c.xlen(`${prefix}{t:room}:x`));
    expect(onReplica).toBe(1);

    // Cost: 300 sequential publishes (latency) and 300 concurrent ones (throughput), with and without.
    await measure((i) => fast.manager.publish('warm', i).cluster!, 100);
    const without = await measure((i) => fast.manager.publish('plain', i).cluster!, 300);
    const withWait = await measure((i) => durable.manager.publish('durable', i).cluster!, 300);
    console.log(
      `publishReplicas cost (master + 1 replica, loopback): without ${without.sequentialMs.toFixed(3)} ms/publish ` +
        `sequential, ${without.perSecond}/s concurrent; with WAIT 1: ${withWait.sequentialMs.toFixed(3)} ms/publish, ` +
        `${withWait.perSecond}/s`,
    );

    // The replica stops answering: the durable publish is stored and delivered on the master, but rejects.
    replica.pause();
    try {
      const err = await durable.manager.publish('room', 'unreplicated').cluster!.then(
        () => undefined,
        (e: unknown) => e as { code?: string; message: string },
      );
      expect(err?.code).toBe(ErrorCode.BackendUnavailable);
      expect(err?.message).toMatch(/stored at offset 2 .*0 of 1 replicas/);
      // Without the option a publish resolves once the master has it.
      expect((await fast.manager.publish('room', 'fast').cluster!).offset).toBe(3);
    } finally {
      replica.resume();
    }
  }, 60_000);
});
