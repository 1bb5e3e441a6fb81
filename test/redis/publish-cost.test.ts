import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeAllNodes, startNode, uniquePrefix, until } from './in-process.js';
import { ProtocolClient } from './protocol-client.js';
import { startRedis, type TestRedis } from './redis-server.js';

// The Redis work of a reliable publish must not depend on how many sessions or members there are. Counted with
// Redis's own accounting (INFO commandstats counts every command a script runs): command counts, not durations.

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

/** Calls per command name since the last CONFIG RESETSTAT. */
async function commandCalls(admin: Redis): Promise<Map<string, number>> {
  const info = await admin.info('commandstats');
  const out = new Map<string, number>();
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) out.set(m[1]!, Number(m[2]));
  return out;
}

/** Redis commands run by `publishes` reliable publishes to a topic and as many broadcasts, with `sessions` members. */
async function measure(admin: Redis, sessions: number, publishes: number): Promise<Map<string, number>> {
  const prefix = uniquePrefix();
  // No pings during the measurement: each pong acknowledges (one small script per session, not publish work).
  const config = { pingIntervalMs: 30_000, pongTimeoutMs: 10_000 };
  const a = await startNode(redis.url, prefix, config);
  const b = await startNode(redis.url, prefix, config);
  const cs = Array.from({ length: sessions }, (_, i) => {
    const c = new ProtocolClient({ nextUrl: () => (i % 2 ? a : b).url, ackEvery: 1e9 });
    clients.push(c);
    return c;
  });
  await Promise.all(cs.map((c) => c.connect()));
  cs.forEach((c, i) => (i % 2 ? a : b).manager.join(c.sessionId!, 'room'));
  await until(() => cs.every((c) => c.topics.room !== undefined), 'every member joined');
  await new Promise((r) => setTimeout(r, 200)); // presence and session writes of the joins settle
  await admin.config('RESETSTAT');
  for (let i = 0; i < publishes; i++) {
    await a.manager.publish('room', { i }).cluster;
    await b.manager.broadcast({ i }).cluster;
  }
  const stats = await commandCalls(admin);
  await until(() => cs.every((c) => c.all.length === 2 * publishes), 'every publication delivered', 20_000);
  for (const c of cs) expect(c.anomalies).toEqual([]);
  for (const c of clients.splice(0)) c.stop();
  await closeAllNodes();
  return stats;
}

describe('publish cost in Redis', () => {
  it('the commands of a reliable publish and broadcast are the same for 10 and for 200 sessions', async () => {
    const admin = new Redis(redis.url);
    try {
      const publishes = 20;
      const small = await measure(admin, 10, publishes);
      const large = await measure(admin, 200, publishes);
      // Per publication, whatever the audience: one XADD (bounded by its own MAXLEN), one PUBLISH, one HMGET and one
      // HSET of the topic's meta hash, and the dedupe GET (not counted here: node heartbeats also GET) and SET. No XLEN, no HINCRBY. (The old per-session design
      // ran one XADD per session: 20×10 vs 20×200.)
      for (const stats of [small, large]) {
        expect(stats.get('xadd')).toBe(2 * publishes);
        expect(stats.get('publish')).toBe(2 * publishes);
        expect(stats.get('hmget')).toBe(2 * publishes);
        expect(stats.get('hset')).toBe(2 * publishes);
        expect(stats.get('set')).toBe(2 * publishes);
        expect(stats.get('hincrby') ?? 0).toBe(0);
        expect(stats.get('xlen') ?? 0).toBe(0);
        // The head is read for the age bound every 16th publication only (the stream never reaches the bounds).
        expect(stats.get('xrange') ?? 0).toBeLessThanOrEqual(2 * Math.ceil(publishes / 16));
      }
      // Every command the publish script runs (EVALSHA itself also counts the nodes' heartbeats, which are timed).
      for (const name of ['xadd', 'publish', 'hmget', 'hset', 'set', 'xrange', 'xtrim', 'xdel']) {
        expect({ name, calls: large.get(name) ?? 0 }).toEqual({ name, calls: small.get(name) ?? 0 });
      }
    } finally {
      admin.disconnect();
    }
  }, 60_000);
});
