import { afterAll, afterEach, beforeAll, describe } from 'vitest';
import { closeAllNodes, startNode, uniquePrefix } from './in-process.js';
import { startRedis, type TestRedis } from './redis-server.js';
import { topicsPropertySuite } from './topics-property-suite.js';

// The topics property (test/protocol/topics-property.test.ts) on two nodes sharing one redis-server: server
// joins racing cuts, resumes on another node (see topics-property-suite.ts).

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(closeAllNodes);

describe('exactly once per topic on Redis (property)', () => {
  topicsPropertySuite(
    'redis',
    async () => {
      const prefix = uniquePrefix();
      const hooks = { authorizeSubscribe: () => true };
      return [
        await startNode(redis.url, prefix, {}, {}, {}, hooks),
        await startNode(redis.url, prefix, {}, {}, {}, hooks),
      ];
    },
    30,
  );
});
