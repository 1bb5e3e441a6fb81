import { afterAll, afterEach, beforeAll, describe } from 'vitest';
import { closeAllNodes, startNode, uniquePrefix } from './in-process.js';
import { startRedis, type TestRedis } from './redis-server.js';
import { topicJoinSuite } from './topic-join-suite.js';

// The local join path on a single redis-server, nodes in this process (see topic-join-suite.ts).

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(closeAllNodes);

describe('topic joins on Redis', () => {
  topicJoinSuite({
    name: 'redis',
    async start(count) {
      const prefix = uniquePrefix();
      return Promise.all(Array.from({ length: count }, () => startNode(redis.url, prefix)));
    },
    stored: (report) => report.cluster ?? Promise.resolve(),
  });
});
