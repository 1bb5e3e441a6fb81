import { afterAll, afterEach, beforeAll, describe } from 'vitest';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { closeAllNodes, startNode, uniquePrefix } from './in-process.js';
import { topicsPropertySuite } from './topics-property-suite.js';

// The topics property on two nodes sharing a real Redis Cluster (3 masters, 3 replicas; see
// topics-property-suite.ts).

let rc: TestRedisCluster;
beforeAll(async () => {
  rc = await startRedisCluster();
}, 60_000);
afterAll(async () => {
  await rc?.stop();
});
afterEach(closeAllNodes);

describe('exactly once per topic on Redis Cluster (property)', () => {
  topicsPropertySuite(
    'redis-cluster',
    async () => {
      const prefix = uniquePrefix();
      const hooks = { authorizeSubscribe: () => true };
      const node = () => startNode('redis://unused', prefix, {}, { client: rc.createClient() }, {}, hooks);
      return [await node(), await node()];
    },
    15,
  );
});
