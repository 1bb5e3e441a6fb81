import { afterAll, beforeAll, describe } from 'vitest';
import { resumePropertyCases } from '../helpers/resume-property.js';
import { closeAllServers, startServer, type TestServer } from '../helpers/server.js';

const runs = Number(process.env.PROPERTY_RUNS ?? 200);
const secret = 'property-test-secret-0123456789abcdef0123';

// Random schedules of sends in both directions and faults on a real server and the real client (over real
// sockets). A new client and session per case; the server is shared by the cases of one window size.
describe('exactly-once resume (property, memory backend)', () => {
  let large: TestServer;
  let small: TestServer;
  let fixedLarge: TestServer;
  let fixedSmall: TestServer;
  beforeAll(async () => {
    large = await startServer({ tokens: { secret }, replay: { maxMessages: 10_000 } });
    small = await startServer({ tokens: { secret }, replay: { maxMessages: 4 } });
    // The README's auth example: one fixed client id per user.
    const authenticate = () => ({ clientId: 'user-1' });
    fixedLarge = await startServer({ tokens: { secret }, replay: { maxMessages: 10_000 } }, { authenticate });
    fixedSmall = await startServer({ tokens: { secret }, replay: { maxMessages: 4 } }, { authenticate });
  });
  afterAll(closeAllServers);
  resumePropertyCases(
    runs,
    () => ({
      large,
      small,
      fixedLarge: { ...fixedLarge, fixedId: true },
      fixedSmall: { ...fixedSmall, fixedId: true },
    }),
    { msgpack: true },
  );
});
