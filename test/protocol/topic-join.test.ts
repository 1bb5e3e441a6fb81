import { afterEach, describe } from 'vitest';
import { topicJoinSuite } from '../redis/topic-join-suite.js';
import { closeAllServers, startServer } from '../helpers/server.js';

// The local join path on the memory backend (one process: "another node" is the same one; see
// test/redis/topic-join-suite.ts).

afterEach(closeAllServers);

describe('topic joins in memory', () => {
  topicJoinSuite({
    name: 'memory',
    async start(count) {
      const s = await startServer({ tokens: { secret: 'm'.repeat(32) } });
      return Array.from({ length: count }, () => s);
    },
    stored: () => Promise.resolve(),
  });
});
