import { afterAll, beforeAll, describe } from 'vitest';
import { resumePropertyCases } from '../helpers/resume-property.js';
import { closeAllNodes, startNode, uniquePrefix, type InProcessNode } from './in-process.js';
import { startRedis, type TestRedis } from './redis-server.js';

const runs = Number(process.env.REDIS_PROPERTY_RUNS ?? process.env.PROPERTY_RUNS ?? 120);

// The exactly-once property of test/protocol (random sends both ways and faults, the real client on real sockets),
// with the Redis backend: every sequence is assigned in Redis and every resume goes through a claim in Redis.
describe('exactly-once resume (property, redis backend)', () => {
  let redis: TestRedis;
  let large: InProcessNode;
  let small: InProcessNode;
  let fixedLarge: InProcessNode;
  let fixedSmall: InProcessNode;
  beforeAll(async () => {
    redis = await startRedis();
    large = await startNode(redis.url, uniquePrefix(), { replay: { maxMessages: 10_000 } });
    small = await startNode(redis.url, uniquePrefix(), { replay: { maxMessages: 4 } });
    // The README's auth example: one fixed client id per user.
    const fixed = { authenticate: () => ({ clientId: 'user-1' }) };
    fixedLarge = await startNode(redis.url, uniquePrefix(), { replay: { maxMessages: 10_000 } }, {}, fixed);
    fixedSmall = await startNode(redis.url, uniquePrefix(), { replay: { maxMessages: 4 } }, {}, fixed);
  });
  afterAll(async () => {
    await closeAllNodes();
    await redis?.stop();
  });
  resumePropertyCases(runs, () => ({
    large,
    small,
    // Late hellos with a fixed id too: one racing the client's own retry of the same token must not end the client.
    fixedLarge: { ...fixedLarge, fixedId: true },
    fixedSmall: { ...fixedSmall, fixedId: true },
  }));
});
