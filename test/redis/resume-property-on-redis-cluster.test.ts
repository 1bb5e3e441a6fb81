import { afterAll, beforeAll, describe } from 'vitest';
import { resumePropertyCases } from '../helpers/resume-property.js';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { closeAllNodes, startNode, uniquePrefix, type InProcessNode } from './in-process.js';

const runs = Number(process.env.REDIS_PROPERTY_RUNS ?? process.env.PROPERTY_RUNS ?? 120);

// The exactly-once property of test/redis/resume-property.test.ts on a real Redis Cluster (3 masters, 3 replicas):
// broadcasts go through the `$all` topic on its shard, sessions and inboxes through the control plane's shard.
describe('exactly-once resume (property, redis cluster backend)', () => {
  let rc: TestRedisCluster;
  let large: InProcessNode;
  let small: InProcessNode;
  let fixedLarge: InProcessNode;
  let fixedSmall: InProcessNode;
  beforeAll(async () => {
    rc = await startRedisCluster();
    const on = (config: object, hooks: object = {}) =>
      startNode('redis://unused', uniquePrefix(), config, { client: rc.createClient() }, {}, hooks);
    large = await on({ replay: { maxMessages: 10_000 } });
    small = await on({ replay: { maxMessages: 4 } });
    const fixed = { authenticate: () => ({ clientId: 'user-1' }) };
    fixedLarge = await on({ replay: { maxMessages: 10_000 } }, fixed);
    fixedSmall = await on({ replay: { maxMessages: 4 } }, fixed);
  }, 60_000);
  afterAll(async () => {
    await closeAllNodes();
    await rc?.stop();
  });
  resumePropertyCases(runs, () => ({
    large,
    small,
    // Late hellos with a fixed id too: one racing the client's own retry of the same token must not end the client.
    fixedLarge: { ...fixedLarge, fixedId: true },
    fixedSmall: { ...fixedSmall, fixedId: true },
  }));
});
