import { afterAll, afterEach, beforeAll, describe, it } from 'vitest';
import { startRedisSentinel, type TestRedisSentinel } from '../helpers/redis-sentinel.js';
import { runCleanFailover } from './clean-failover-scenario.js';
import { closeAllNodes } from './in-process.js';
import type { ProtocolClient } from './protocol-client.js';

// The clean-failover scenario (clean-failover-scenario.ts) behind Redis Sentinel: a master, one replica in sync,
// three Sentinels; the master is killed and the Sentinels promote the replica.

let rs: TestRedisSentinel;
beforeAll(async () => {
  rs = await startRedisSentinel();
}, 60_000);
afterAll(async () => {
  await rs?.stop();
});
afterEach(closeAllNodes);

const clients: ProtocolClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.stop();
});

describe('Redis Sentinel: clean failover while publishing', () => {
  it('kill -9 of the master: no publish rejected, offsets in call order, one degraded/recovered pair per node', async () => {
    await runCleanFailover(
      {
        client: () => rs.createClient(),
        async failover() {
          const old = await rs.killMaster();
          await rs.waitForFailover(old, 30_000);
          return `port ${old}`;
        },
      },
      clients,
    );
  }, 120_000);
});
