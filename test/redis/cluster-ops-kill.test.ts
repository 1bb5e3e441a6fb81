import { rmSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildLibrary, startNodeProcess, type NodeProcess } from './cluster-harness.js';
import { closeAllNodes, startNode, uniquePrefix, until } from './in-process.js';
import { ProtocolClient } from './protocol-client.js';
import { startRedis, type TestRedis } from './redis-server.js';

// A cluster-wide operation whose target node stops answering (SIGSTOP) and then dies (kill -9) mid-request: it
// times out with OPERATION_TIMEOUT within its bound, or, given the time to see the node dead (nodeTimeoutMs, 1 s
// here), lands on the session stored in Redis, which the client's resume on another node reflects.

let redis: TestRedis;
let dist: string;
beforeAll(async () => {
  [redis, dist] = await Promise.all([startRedis(), buildLibrary()]);
}, 90_000);
afterAll(async () => {
  await redis?.stop();
  if (dist) rmSync(dist, { recursive: true, force: true });
});
let victim: NodeProcess | undefined;
const clients: ProtocolClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.stop();
  await victim?.kill9();
  victim = undefined;
  await closeAllNodes();
});

describe('cluster-wide client operations when the owner dies mid-request', () => {
  it('times out with OPERATION_TIMEOUT while the owner is frozen, and takes effect on the stored session once it is dead', async () => {
    const prefix = uniquePrefix();
    victim = await startNodeProcess(dist, redis.url, prefix, 'victim');
    const b = await startNode(redis.url, prefix);
    const c = await startNode(redis.url, prefix);
    const cl = new ProtocolClient({ nextUrl: () => victim!.url, reconnect: false });
    clients.push(cl);
    await cl.connect();
    const id = cl.sessionId!;
    await expect(b.manager.fetchClient(id)).resolves.toMatchObject({ nodeId: 'victim', connected: true });

    victim.proc.kill('SIGSTOP'); // alive for the cluster (its heartbeat is fresh), but answers nothing
    await expect(b.manager.clusterJoin(id, 'room', { timeoutMs: 300 })).rejects.toMatchObject({
      code: 'OPERATION_TIMEOUT',
    });
    const joining = b.manager.clusterJoin(id, 'room'); // the default: 2 × nodeTimeoutMs, at least 5 s
    await new Promise((r) => setTimeout(r, 100));
    await victim.kill9();
    await expect(joining).resolves.toBe(true);
    await expect(b.manager.fetchClient(id)).resolves.toMatchObject({
      nodeId: undefined,
      connected: false,
      topics: ['room'],
    });

    for (let n = 1; n <= 5; n++) await c.manager.publish('room', { n }).cluster;
    const resumed = new ProtocolClient({ nextUrl: () => c.url, reconnect: false });
    clients.push(resumed);
    Object.assign(resumed, { token: cl.token, sessionId: id, lastSeq: cl.lastSeq, topics: { ...cl.topics } });
    cl.stop();
    expect((await resumed.connect()).resume).toBe('resumed');
    expect(resumed.topicOutcomes.find((t) => t.c === 'room')).toMatchObject({ resume: 'resumed' });
    await until(() => resumed.all.length === 5, 'the publications since the join');
    expect(resumed.all).toEqual([1, 2, 3, 4, 5].map((n) => ({ n })));
    expect(resumed.anomalies).toEqual([]);
  });
});
