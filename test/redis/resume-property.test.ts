import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSchedule, stepArb, type ScheduleStats } from '../helpers/resume-property.js';
import { closeAllNodes, startNode, uniquePrefix, type InProcessNode } from './in-process.js';
import { startRedis, type TestRedis } from './redis-server.js';

const runs = Number(process.env.REDIS_PROPERTY_RUNS ?? process.env.PROPERTY_RUNS ?? 120);

// The exactly-once property of test/protocol (random sends both ways and faults, the real client on real sockets),
// with the Redis backend: every sequence is assigned in Redis and every resume goes through a claim in Redis.
describe('exactly-once resume (property, redis backend)', () => {
  let redis: TestRedis;
  let large: InProcessNode;
  let small: InProcessNode;
  beforeAll(async () => {
    redis = await startRedis();
    large = await startNode(redis.url, uniquePrefix(), { replay: { maxMessages: 10_000 } });
    small = await startNode(redis.url, uniquePrefix(), { replay: { maxMessages: 4 } });
  });
  afterAll(async () => {
    await closeAllNodes();
    await redis?.stop();
  });

  it(`within the replay window: every message exactly once, in order, both directions (${runs} cases)`, async () => {
    const stats: ScheduleStats = { resumes: 0, gaps: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 20 }), (steps) =>
        runSchedule(large, steps, true, stats),
      ),
      { numRuns: runs },
    );
    expect(stats.resumes).toBeGreaterThan(runs / 2);
    expect(stats.gaps).toBe(0);
  }, 300_000);

  it(`outside the window: fresh with reason gap, never a partial replay (${runs} cases)`, async () => {
    const stats: ScheduleStats = { resumes: 0, gaps: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 20 }), (steps) =>
        runSchedule(small, steps, false, stats),
      ),
      { numRuns: runs },
    );
    expect(stats.gaps).toBeGreaterThan(0);
    expect(stats.resumes).toBeGreaterThan(0);
  }, 300_000);
});
