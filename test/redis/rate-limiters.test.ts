import type { IncomingMessage } from 'node:http';
import { Redis } from 'ioredis';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CloseCode, type WelcomeMessage } from '../../src/protocol/index.js';
import type { RateLimiterLike } from '../../src/server/index.js';
import type { AuthResult } from '../../src/server/upgrade/upgrade.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { upgradeResponse } from '../server/support.js';
import { closeAllNodes, startNode, uniquePrefix, until, type InProcessNode } from './in-process.js';
import { startRedis, type TestRedis } from './redis-server.js';

// Rate limits shared by the nodes of a cluster: each node has its own RateLimiterRedis (its own connection) on
// the redis-server that the Redis backends share.
let redis: TestRedis;
const limiterClients: Redis[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});
const sockets: RawProtocolClient[] = [];
afterEach(async () => {
  for (const c of sockets.splice(0)) c.ws.terminate();
  await closeAllNodes();
  for (const r of limiterClients.splice(0)) r.disconnect();
});

const byQuery = (req: IncomingMessage): AuthResult => {
  const user = new URL(req.url ?? '/', 'http://x').searchParams.get('user');
  return user === null ? {} : { principal: user };
};

/** One RateLimiterRedis per node, as each node process would build its own; the key prefix is shared. */
function redisLimiter(keyPrefix: string, points: number): RateLimiterRedis {
  const storeClient = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  limiterClients.push(storeClient);
  return new RateLimiterRedis({ storeClient, keyPrefix, points, duration: 30 });
}

/** Two nodes of one cluster; `limiter()` builds each node's limiter. */
async function cluster(
  rateLimiters: (make: () => RateLimiterLike) => { messagesPerPrincipal?: RateLimiterLike },
  make: () => RateLimiterLike,
): Promise<[InProcessNode, InProcessNode]> {
  const prefix = uniquePrefix();
  const attach = { authenticate: byQuery };
  return [
    await startNode(redis.url, prefix, { rateLimiters: rateLimiters(make) }, {}, attach),
    await startNode(redis.url, prefix, { rateLimiters: rateLimiters(make) }, {}, attach),
  ];
}

async function connect(
  node: InProcessNode,
  user: string,
  hello: { token?: string; sessionId?: string; lastSeq?: number } = {},
): Promise<RawProtocolClient & { welcome: WelcomeMessage }> {
  const { client, welcome } = await RawProtocolClient.handshake(`${node.url}?user=${user}`, hello);
  sockets.push(client);
  return Object.assign(client, { welcome });
}

/** Send reliable messages `from`..`to` with payload `${tag}${seq}`. */
function sendReliable(c: RawProtocolClient, tag: string, from: number, to: number): void {
  for (let s = from; s <= to; s++) c.send({ t: 'd', s, p: `${tag}${s}` });
}

describe('rateLimiters.messagesPerPrincipal across two nodes', () => {
  it('with RateLimiterRedis, a user spreading messages over two nodes is limited overall', async () => {
    const limiterPrefix = `${uniquePrefix()}rl`;
    const limiters: RateLimiterRedis[] = [];
    const [a, b] = await cluster(
      (make) => ({ messagesPerPrincipal: make() }),
      () => limiters[limiters.push(redisLimiter(limiterPrefix, 6)) - 1]!,
    );
    const got: unknown[] = [];
    for (const n of [a, b]) n.manager.on('message', (e) => void got.push(e.data));
    const onA = await connect(a, 'alice');
    const onB = await connect(b, 'alice');
    const bob = await connect(b, 'bob');

    sendReliable(onA, 'a', 1, 4);
    await onA.waitFor((f) => f.t === 'ack' && f.s === 4);
    sendReliable(onB, 'b', 1, 4); // alice's 5th to 8th: the 7th is over the limit of 6
    expect((await onB.waitClose()).code).toBe(CloseCode.RateLimited);
    // b1 and b2 were delivered; their acks wait for Redis to store the client sequence and may lose the race with
    // the close (the resume below acks them then). b3 and b4 are never acked.
    const acksOnB = onB.frames.filter((f) => f.t === 'ack').map((f) => f.s as number);
    expect([[], [1], [1, 2]]).toContainEqual(acksOnB);
    onA.send({ t: 'd', s: 5, p: 'a5' }); // the other node knows it too
    expect((await onA.waitClose()).code).toBe(CloseCode.RateLimited);
    sendReliable(bob, 'x', 1, 2);
    await bob.waitFor((f) => f.t === 'ack' && f.s === 2);

    expect(got).toEqual(['a1', 'a2', 'a3', 'a4', 'b1', 'b2', 'x1', 'x2']);
    expect(a.manager.counters.rateLimited.principal).toBe(1);
    expect(b.manager.counters.rateLimited.principal).toBe(1);

    // The window is over; alice resumes B's session on node A and resends everything not acked: exactly once.
    await limiters[0]!.delete('alice');
    const resumed = await connect(a, 'alice', {
      token: onB.welcome.token,
      sessionId: onB.welcome.sessionId,
      lastSeq: 0,
    });
    expect(resumed.welcome.resume).toBe('resumed');
    sendReliable(resumed, 'b', (acksOnB.at(-1) ?? 0) + 1, 4);
    await resumed.waitFor((f) => f.t === 'ack' && f.s === 4);
    expect(got).toEqual(['a1', 'a2', 'a3', 'a4', 'b1', 'b2', 'x1', 'x2', 'b3', 'b4']);
  });

  it('control: with a RateLimiterMemory per node, the same traffic gets through on both nodes', async () => {
    const [a, b] = await cluster(
      (make) => ({ messagesPerPrincipal: make() }),
      () => new RateLimiterMemory({ points: 6, duration: 30 }),
    );
    let delivered = 0;
    for (const n of [a, b]) n.manager.on('message', () => void delivered++);
    const onA = await connect(a, 'alice');
    const onB = await connect(b, 'alice');
    sendReliable(onA, 'a', 1, 5);
    sendReliable(onB, 'b', 1, 5);
    await onA.waitFor((f) => f.t === 'ack' && f.s === 5);
    await onB.waitFor((f) => f.t === 'ack' && f.s === 5);
    await until(() => delivered === 10, 'all ten delivered');
    expect(onA.closeInfo).toBeUndefined();
    expect(onB.closeInfo).toBeUndefined();
  });
});

describe('rateLimiters.upgradesPerIp across two nodes', () => {
  it('with RateLimiterRedis, attempts from one IP are counted on every node: 429 with Retry-After', async () => {
    const limiterPrefix = `${uniquePrefix()}up`;
    const prefix = uniquePrefix();
    const node = () =>
      startNode(redis.url, prefix, { rateLimiters: { upgradesPerIp: redisLimiter(limiterPrefix, 2) } });
    const [a, b] = [await node(), await node()];
    const port = (n: InProcessNode) => Number(new URL(n.url).port);
    expect((await upgradeResponse(port(a), '/ws')).status).toBe(101);
    expect((await upgradeResponse(port(b), '/ws')).status).toBe(101);
    const third = await upgradeResponse(port(a), '/ws');
    expect(third.status).toBe(429);
    expect(Number(third.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(third.retryAfter)).toBeLessThanOrEqual(30);
    expect((await upgradeResponse(port(b), '/ws')).status).toBe(429);
    expect(a.manager.counters.upgradeRejections['rate-limited']).toBe(1);
    expect(b.manager.counters.upgradeRejections['rate-limited']).toBe(1);
  });
});
