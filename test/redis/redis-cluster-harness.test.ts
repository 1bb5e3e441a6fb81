import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';

// The Redis Cluster harness itself: a real 3-master, 3-replica cluster; keys in every master's slots, sharded
// pub/sub, and a master killed with SIGKILL whose replica takes over.

let rc: TestRedisCluster;
beforeAll(async () => {
  rc = await startRedisCluster();
}, 60_000);
afterAll(async () => {
  await rc?.stop();
});

/** A key whose slot is in [start, end], found by asking Redis (so hash-slot maths is not re-implemented here). */
async function keyIn(start: number, end: number, tag: string): Promise<string> {
  for (let i = 0; i < 10_000; i++) {
    const key = `${tag}:${i}`;
    const slot = await rc.keySlot(key);
    if (slot >= start && slot <= end) return key;
  }
  throw new Error(`no key in slots ${start}-${end}`);
}

describe('redis cluster harness', () => {
  it('starts three masters with one replica each, covering all 16384 slots', async () => {
    expect(rc.nodes).toHaveLength(6);
    const map = await rc.slots();
    expect(map).toHaveLength(3);
    expect(map.reduce((n, s) => n + s.end - s.start + 1, 0)).toBe(16384);
    const masters = new Set(map.map((s) => s.master));
    expect(masters.size).toBe(3);
    for (const s of map) {
      expect(s.replicas).toHaveLength(1);
      expect(masters.has(s.replicas[0]!)).toBe(false);
    }
  });

  it('stores keys in every master’s slot range through an ioredis Cluster', async () => {
    const client = rc.createClient();
    const map = await rc.slots();
    const keys = await Promise.all(map.map((s, i) => keyIn(s.start, s.end, `harness-${i}`)));
    await Promise.all(keys.map((k, i) => client.set(k, `v${i}`)));
    expect(await Promise.all(keys.map((k) => client.get(k)))).toEqual(['v0', 'v1', 'v2']);
    // Each key really is on its own master: a plain connection to that master serves it (another would say MOVED).
    for (const [i, s] of map.entries()) {
      const direct = new Redis({ host: '127.0.0.1', port: s.master });
      expect(await direct.get(keys[i]!)).toBe(`v${i}`);
      const other = new Redis({ host: '127.0.0.1', port: map[(i + 1) % map.length]!.master });
      await expect(other.get(keys[i]!)).rejects.toThrow(/MOVED/);
      direct.disconnect();
      other.disconnect();
    }
  });

  it('delivers SPUBLISH to an SSUBSCRIBE on the channel’s shard', async () => {
    const publisher = rc.createClient();
    const subscriber = rc.createClient({ shardedSubscribers: true });
    const map = await rc.slots();
    const channels = await Promise.all(map.map((s, i) => keyIn(s.start, s.end, `chan-${i}`)));
    const got: [string, string][] = [];
    subscriber.on('smessage', (channel: string, message: string) => got.push([channel, message]));
    for (const ch of channels) await subscriber.ssubscribe(ch);
    for (const [i, ch] of channels.entries()) {
      // One receiver per channel: the subscription is on the shard that owns the channel's slot.
      expect(await publisher.spublish(ch, `m${i}`)).toBe(1);
    }
    await expect.poll(() => got.length).toBe(3);
    // Each channel's message comes from its own shard's connection: the order across shards is not defined.
    const byChannel = (a: [string, string], b: [string, string]) => a[0].localeCompare(b[0]);
    expect([...got].sort(byChannel)).toEqual(
      channels.map((ch, i): [string, string] => [ch, `m${i}`]).sort(byChannel),
    );
  });

  it('kills the master of a key with SIGKILL; its replica takes over and serves the key', async () => {
    const client = rc.createClient();
    const key = 'failover-key';
    await client.set(key, 'before');
    // WAIT 1: the write reached the replica before the master dies (otherwise failover may lose it).
    const before = await rc.slots();
    const slot = await rc.keySlot(key);
    const range = before.find((s) => s.start <= slot && slot <= s.end)!;
    const master = client.nodes('master').find((n) => n.options.port === range.master)!;
    expect(await master.call('WAIT', '1', '2000')).toBe(1);

    const killed = await rc.killMaster(key);
    expect(killed).toEqual({ slot, port: range.master });
    expect(rc.nodes.find((n) => n.port === killed.port)!.alive).toBe(false);

    const after = await rc.waitForFailover();
    const now = after.find((s) => s.start <= slot && slot <= s.end)!;
    expect(now.master).toBe(range.replicas[0]);
    expect(now.master).not.toBe(killed.port);
    expect(await client.get(key)).toBe('before');
    await client.set(key, 'after');
    expect(await client.get(key)).toBe('after');
  }, 30_000);

  it('stop() kills every node and is idempotent', async () => {
    const ports = rc.nodes.map((n) => n.port);
    await rc.stop();
    await rc.stop();
    expect(rc.nodes.every((n) => !n.alive)).toBe(true);
    for (const port of ports) {
      const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
      r.on('error', () => {});
      await expect(r.connect()).rejects.toThrow();
      r.disconnect();
    }
  });
});
