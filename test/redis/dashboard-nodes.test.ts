import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resolveDashboardOptions } from '../../src/dashboard/options.js';
import { DashboardSampler } from '../../src/dashboard/sampler.js';
import type { DashboardSnapshot } from '../../src/dashboard/snapshot.js';
import { openClient } from '../helpers/server.js';
import { closeAllNodes, startNode, uniquePrefix, until } from './in-process.js';
import { startRedis, type TestRedis } from './redis-server.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(() => redis?.stop());
afterEach(closeAllNodes);

// With the Redis backend the dashboard of one node lists every live node and its connections, read from Redis
// (the samples its update stream carries; the HTTP side is tested in test/server/dashboard-access.test.ts).
describe('dashboard on the Redis backend', () => {
  it('shows every live node with its open connections, cluster-wide, and this node’s backend state', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix, {}, { nodeId: 'node-a' });
    const b = await startNode(redis.url, prefix, {}, { nodeId: 'node-b' });
    const sampler = new DashboardSampler(
      a.manager,
      resolveDashboardOptions({ allowLoopback: true, sampleIntervalMs: 50, clusterIntervalMs: 100 }),
    );
    const sockets = [await openClient(a.url), await openClient(b.url), await openClient(b.url)];
    let latest: DashboardSnapshot | undefined;
    const stop = sampler.watch((s) => (latest = s));
    const nodes = () => JSON.stringify(latest?.nodes);
    try {
      await until(
        () =>
          nodes() ===
          JSON.stringify([
            { nodeId: 'node-a', connections: 1 },
            { nodeId: 'node-b', connections: 2 },
          ]),
        `both nodes with their connections (last: ${nodes()})`,
      );
      expect(latest!.backend).toMatchObject({ name: 'redis', nodeId: 'node-a', degraded: false });
      expect(latest!.plain).toBe(1); // the rest of the page is this node's
      sockets[2]!.close();
      await until(() => latest?.nodes?.find((n) => n.nodeId === 'node-b')?.connections === 1, 'node-b at 1');
      await b.close();
      await until(() => latest?.nodes?.some((n) => n.nodeId === 'node-b') === false, 'node-b gone');
    } finally {
      stop();
      for (const s of sockets) s.terminate();
    }
    expect(sampler.running).toBe(false);
  }, 30_000);
});
