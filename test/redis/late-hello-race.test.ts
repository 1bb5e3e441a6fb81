import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode } from '../../src/protocol/index.js';
import type { WelcomeMessage } from '../../src/protocol/messages.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllNodes, startNode, uniquePrefix, until } from './in-process.js';
import { startRedis, type TestRedis } from './redis-server.js';

/**
 * Issue 17, item 7: with a fixed client id on Redis, a late hello (a connection attempt its client gave up, with
 * the token the client's own retry carries) must never end the client with 4501. The race, made deterministic:
 * the client's retry S2 (token T1) is welcomed with T2 but not yet confirmed; the late hello L (T1) takes T1 over
 * (S2 is dropped, as a lost welcome's retry would be); the client comes back with T2 (S3) while L is still being
 * decided (held in `authorizeResume`, a real async hook, as an application's database call would). S3's use of T2
 * spends T1 for good, so L is an abandoned attempt: it must be refused (4004) and never replace S3.
 */
describe('late hello racing the client’s own retry (Redis, fixed client id)', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await closeAllNodes();
    await redis?.stop();
  });

  for (const window of ['large', 'small'] as const) {
    it(`the late hello is refused and the client keeps its connection (${window} replay window)`, async () => {
      let gate: Promise<void> | undefined;
      let release = (): void => {};
      let held = 0;
      const node = await startNode(
        redis.url,
        uniquePrefix(),
        { replay: { maxMessages: window === 'large' ? 1000 : 2 } },
        {},
        { authenticate: () => ({ clientId: 'user-1' }) },
        {
          authorizeResume: async () => {
            if (gate) {
              const g = gate;
              gate = undefined;
              held++;
              await g;
            }
            return true;
          },
        },
      );
      const first = await RawProtocolClient.handshake(node.url);
      const t1 = first.welcome.token;
      first.client.ws.terminate();
      await until(() => node.manager.connections.size === 0, 'the session detached');
      // With a small window, messages while away make the next resume `fresh` with `gap`.
      for (let i = 0; i < 5; i++) node.manager.sendToClient('user-1', `away ${i}`);
      await new Promise((r) => setTimeout(r, 50));

      // S2: the client's retry with T1, welcomed (T2) but not confirmed yet.
      const s2 = await RawProtocolClient.handshake(node.url, { token: t1, sessionId: 'user-1' }, false);
      const t2 = s2.welcome.token;
      // L: the late hello with T1. It takes T1 over (S2's welcome looks lost) and is held in authorizeResume.
      gate = new Promise<void>((r) => (release = r));
      const late = await RawProtocolClient.open(node.url);
      late.send({ t: 'hello', v: 1, token: t1, sessionId: 'user-1', lastSeq: 0 });
      await s2.client.waitClose();
      if (window === 'large') await until(() => held === 1, 'the late hello held in authorizeResume');
      // S3: the client, which did get S2's welcome, comes back with T2 and confirms its welcome.
      const s3 = await RawProtocolClient.handshake(node.url, {
        token: t2,
        sessionId: 'user-1',
        lastSeq: 0,
      });
      release();
      // The late hello is refused; the client's connection stays open and holds the session.
      const lateClose = await late.waitClose(10_000);
      if (window === 'large') {
        // Held until after S3's use of T2 (which spends T1): refused, nothing touched.
        expect(lateClose.code).toBe(CloseCode.StaleHello);
        expect(late.frames.some((f) => f.t === 'welcome')).toBe(false);
      } else {
        // No resume hook runs for it (its incarnation was replaced): either order. Welcomed first and replaced by
        // the client, it is dropped without a code (it never confirmed its welcome); never the client's end.
        expect([CloseCode.StaleHello, 1006]).toContain(lateClose.code);
      }
      await new Promise((r) => setTimeout(r, 100));
      expect(s3.client.closeInfo).toBeUndefined();
      const conn = node.manager.connections.get('user-1');
      expect(conn?.session?.incarnation).toBeDefined();
      node.manager.sendToClient('user-1', 'after the race');
      await until(
        () => s3.client.data.some((d) => d.p === 'after the race'),
        'the client gets messages after the race',
      );
      expect((s3.welcome as WelcomeMessage).sessionId).toBe('user-1');
    });
  }
});
