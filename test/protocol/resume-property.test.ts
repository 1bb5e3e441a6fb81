import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSchedule, stepArb, type ScheduleStats } from '../helpers/resume-property.js';
import { closeAllServers, startServer, type TestServer } from '../helpers/server.js';

const runs = Number(process.env.PROPERTY_RUNS ?? 200);
const secret = 'property-test-secret-0123456789abcdef0123';

// Random schedules of sends in both directions and faults on a real server and the real client (over real
// sockets). A new client and session per case; the server is shared by the cases of one window size.
describe('exactly-once resume (property, memory backend)', () => {
  let large: TestServer;
  let small: TestServer;
  beforeAll(async () => {
    large = await startServer({ tokens: { secret }, replay: { maxMessages: 10_000 } });
    small = await startServer({ tokens: { secret }, replay: { maxMessages: 4 } });
  });
  afterAll(closeAllServers);

  it(`within the replay window: every message exactly once, in order, both directions (${runs} cases)`, async () => {
    const stats: ScheduleStats = { resumes: 0, gaps: 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 20 }), (steps) =>
        runSchedule(large, steps, true, stats),
      ),
      { numRuns: runs },
    );
    // The schedules really exercised resume (a property that never resumed would prove nothing).
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
