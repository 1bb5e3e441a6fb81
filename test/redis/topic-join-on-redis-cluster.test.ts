import { afterAll, afterEach, beforeAll, describe } from 'vitest';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { closeAllNodes, startNode, uniquePrefix } from './in-process.js';
import { topicJoinSuite } from './topic-join-suite.js';

// The local join path on a real Redis Cluster (3 masters, 3 replicas; see topic-join-suite.ts).

let rc: TestRedisCluster;
beforeAll(async () => {
  rc = await startRedisCluster();
}, 60_000);
afterAll(async () => {
  await rc?.stop();
});
afterEach(closeAllNodes);

describe('topic joins on Redis Cluster', () => {
  topicJoinSuite({
    name: 'redis-cluster',
    async start(count) {
      const prefix = uniquePrefix();
      return Promise.all(
        Array.from({ length: count }, () =>
          startNode('redis://unused', prefix, {}, { client: rc.createClient() }),
        ),
      );
    },
    stored: (report) => report.cluster ?? Promise.resolve(),
  });
});
