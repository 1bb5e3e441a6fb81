import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeAllNodes, startNode, uniquePrefix, until } from './in-process.js';
import { ProtocolClient } from './protocol-client.js';
import { startRedis, type TestRedis } from './redis-server.js';

// README "What is guaranteed when Redis fails": a stall shorter than nodeTimeoutMs / 2 raises no `degraded` event;
// a longer one does, no earlier than nodeTimeoutMs / 2 after it began.
const NODE_HEARTBEAT_MS = 250;
const NODE_TIMEOUT_MS = 3000; // threshold: 1500 ms

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await closeAllNodes();
  await redis?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Redis stall threshold', () => {
  it('a stall shorter than nodeTimeoutMs / 2 raises no degraded event; a longer one does, not before', async () => {
    const a = await startNode(
      redis.url,
      uniquePrefix(),
      {},
      { nodeHeartbeatMs: NODE_HEARTBEAT_MS, nodeTimeoutMs: NODE_TIMEOUT_MS },
    );
    const degradedAtMs: number[] = [];
    a.backend.on('degraded', () => void degradedAtMs.push(Date.now()));
    const c = new ProtocolClient({ nextUrl: () => a.url });
    try {
      await c.connect();

      // Short: a third of the threshold. The broadcast sent meanwhile waits and arrives once Redis answers.
      redis.pause();
      const queued = a.manager.broadcast('during a short stall');
      await sleep(NODE_TIMEOUT_MS / 6);
      redis.resume();
      await until(() => c.all.length === 1, 'the broadcast sent during the stall');
      await sleep(NODE_TIMEOUT_MS / 2 + 2 * NODE_HEARTBEAT_MS); // past any tick that could still report it
      expect(degradedAtMs).toEqual([]);
      expect(a.backend.degraded).toBe(false);
      expect(await queued.cluster).toEqual({ offset: 1, nodes: 1 });

      // Long: degraded, but only once the threshold has passed.
      const pausedAtMs = Date.now();
      redis.pause();
      await until(() => degradedAtMs.length === 1, 'degraded', NODE_TIMEOUT_MS * 2);
      expect(degradedAtMs[0]! - pausedAtMs).toBeGreaterThanOrEqual(NODE_TIMEOUT_MS / 2);
      redis.resume();
      await until(() => !a.backend.degraded, 'recovered');
      expect(c.anomalies).toEqual([]);
    } finally {
      c.stop();
    }
  });
});
