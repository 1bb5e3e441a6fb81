import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
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

// The same properties with compression on: the client (ws) negotiates permessage-deflate, every other server payload
// is long enough to be deflated (on the event loop: direct messages are never deflated off it), and replays write
// the frames cached with the inbox. Fewer cases: the compression adds no new fault, only a second frame per message.
describe('exactly-once resume (property, memory backend, compression on)', () => {
  const compressed = { tokens: { secret }, compression: { enabled: true, thresholdBytes: 64 } } as const;
  let large: TestServer;
  let small: TestServer;
  const frameFor: Array<{ mock: { calls: unknown[][] } }> = [];
  beforeAll(async () => {
    large = await startServer({ ...compressed, replay: { maxMessages: 10_000 } });
    small = await startServer({ ...compressed, replay: { maxMessages: 4 } });
    for (const s of [large, small]) frameFor.push(vi.spyOn(s.manager.compressor!, 'frameFor'));
  });
  afterAll(closeAllServers);
  resumePropertyCases(
    Math.ceil(runs / 4),
    () => ({
      large: { ...large, compressible: true },
      small: { ...small, compressible: true },
      fixedLarge: { ...large, compressible: true },
      fixedSmall: { ...small, compressible: true },
    }),
    { msgpack: true, fixedId: false },
  );
  it('the cases above really deflated direct messages, in both encodings', () => {
    const variants = frameFor.flatMap((spy) => spy.mock.calls.map((call) => String(call[1])));
    expect(variants.some((v) => /^s\d+$/.test(v))).toBe(true);
    expect(variants.some((v) => /^mp-s\d+$/.test(v))).toBe(true);
  });
});
