import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeAllNodes, startNode, uniquePrefix, until } from './in-process.js';
import { ProtocolClient } from './protocol-client.js';
import { startRedis, type TestRedis } from './redis-server.js';

// Heartbeat pongs carry the client's last sequence. On an idle session that number does not move, and an ack that
// does not advance must cost nothing in Redis (at 1M connections every pong ran a script). Counted with INFO
// commandstats: scripts run (eval + evalsha), not durations.

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(closeAllNodes);

const clients: ProtocolClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.stop();
});

async function untilAsync(predicate: () => Promise<boolean>, what: string): Promise<void> {
  const start = Date.now();
  while (!(await predicate())) {
    if (Date.now() - start > 10_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function scriptCalls(admin: Redis): Promise<number> {
  const info = await admin.info('commandstats');
  let calls = 0;
  for (const m of info.matchAll(/^cmdstat_(evalsha|eval):calls=(\d+)/gm)) calls += Number(m[2]);
  return calls;
}

describe('acks in Redis', () => {
  it('idle pongs run no script; an ack that advances still trims the inbox', async () => {
    const admin = new Redis(redis.url);
    try {
      const prefix = uniquePrefix();
      // Node heartbeats (a timed script) far apart, pings every 100 ms.
      const node = await startNode(
        redis.url,
        prefix,
        { pingIntervalMs: 100, pongTimeoutMs: 2000 },
        { nodeHeartbeatMs: 20_000, nodeTimeoutMs: 60_000 },
      );
      const pings = new Map<ProtocolClient, number>();
      const cs = Array.from({ length: 10 }, () => {
        const c = new ProtocolClient({ nextUrl: () => node.url, ackEvery: 1e9 });
        clients.push(c);
        return c;
      });
      await Promise.all(cs.map((c) => c.connect()));
      for (const c of cs) {
        pings.set(c, 0);
        c.ws!.on('message', (raw) => {
          if ((JSON.parse(String(raw)) as { t: string }).t === 'ping') pings.set(c, pings.get(c)! + 1);
        });
      }
      const inbox = (c: ProtocolClient): Promise<number> => admin.xlen(`{${prefix}}q:${c.sessionId!}`);

      // Some direct messages, acked by the next pong: the inboxes are trimmed to empty.
      for (const c of cs) for (let i = 0; i < 3; i++) await node.backend.send(c.sessionId!, { i });
      await until(() => cs.every((c) => c.lastSeq === 3), 'direct messages delivered');
      await untilAsync(
        async () => (await Promise.all(cs.map(inbox))).every((n) => n === 0),
        'acked by pongs',
      );

      // Idle: every client answers pings with the same sequence.
      await new Promise((r) => setTimeout(r, 300)); // acks of the last pongs flushed
      await admin.config('RESETSTAT');
      const pingsBefore = [...pings.values()].reduce((a, b) => a + b, 0);
      await new Promise((r) => setTimeout(r, 1500));
      const idlePongs = [...pings.values()].reduce((a, b) => a + b, 0) - pingsBefore;
      const idleScripts = await scriptCalls(admin);
      expect(idlePongs).toBeGreaterThanOrEqual(cs.length * 5);
      expect(idleScripts).toBe(0);

      // A new message advances the next pong's ack: that one trims (without it the entry would stay).
      for (const c of cs) await node.backend.send(c.sessionId!, { i: 3 });
      await until(() => cs.every((c) => c.lastSeq === 4), 'one more delivered');
      await untilAsync(async () => (await Promise.all(cs.map(inbox))).every((n) => n === 0), 'trimmed again');
      for (const c of cs) expect(c.anomalies).toEqual([]);
    } finally {
      admin.disconnect();
    }
  }, 30_000);
});
