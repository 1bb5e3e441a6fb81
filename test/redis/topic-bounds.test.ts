import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { closeAllNodes, startNode, uniquePrefix } from './in-process.js';
import { startRedis, type TestRedis } from './redis-server.js';

// The publish script bounds a topic's stream by count (XADD MAXLEN), bytes and age (head trimmed with XTRIM MINID
// when the running byte bound or the every-16th age check says so). Read back from Redis itself.

let redis: TestRedis;
let admin: Redis;
beforeAll(async () => {
  redis = await startRedis();
  admin = new Redis(redis.url);
});
afterAll(async () => {
  admin?.disconnect();
  await redis?.stop();
});
afterEach(closeAllNodes);

/** Offsets and total bytes of what the topic's stream holds. */
async function stored(prefix: string, topic: string): Promise<{ offsets: number[]; bytes: number }> {
  const entries = await admin.xrange(`${prefix}{t:${topic}}:x`, '-', '+');
  let bytes = 0;
  const offsets = entries.map(([id, f]) => {
    bytes += Number(f[f.indexOf('b') + 1]);
    return Number(id.slice(2));
  });
  return { offsets, bytes };
}

const range = (from: number, to: number): number[] =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('topic stream bounds', () => {
  it('count: the newest maxMessages publications are kept', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix, { topics: { history: { maxMessages: 5 } } });
    for (let i = 1; i <= 23; i++) await a.manager.publish('n', { i }).cluster;
    expect((await stored(prefix, 'n')).offsets).toEqual(range(19, 23));
  });

  it('bytes: the newest publications that fit in maxBytes are kept, and the meta bound is exact after a trim', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix, { topics: { history: { maxBytes: 1000 } } });
    const body = 'x'.repeat(90);
    for (let i = 1; i <= 40; i++) await a.manager.publish('b', { body, i }).cluster;
    const s = await stored(prefix, 'b');
    const each = s.bytes / s.offsets.length;
    expect(s.bytes).toBeLessThanOrEqual(1000);
    expect(s.bytes + each).toBeGreaterThan(1000); // one more would not fit: nothing kept could have been
    expect(s.offsets.at(-1)).toBe(40);
    expect(s.offsets).toEqual(range(s.offsets[0]!, 40));
    const [t, r] = await admin.hmget(`${prefix}{t:b}`, 't', 'r');
    expect(Number(t) - Number(r)).toBe(s.bytes);
  });

  it('age: publications older than maxAgeMs are trimmed by a later publish', async () => {
    const prefix = uniquePrefix();
    const a = await startNode(redis.url, prefix, { topics: { history: { maxAgeMs: 300 } } });
    for (let i = 1; i <= 10; i++) await a.manager.publish('a', { i }).cluster;
    await new Promise((r) => setTimeout(r, 400));
    for (let i = 11; i <= 16; i++) await a.manager.publish('a', { i }).cluster; // 16: the age check runs
    expect((await stored(prefix, 'a')).offsets).toEqual(range(11, 16));
  });
});
