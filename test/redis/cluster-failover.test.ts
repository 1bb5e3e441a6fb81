import { Cluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, it } from 'vitest';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { runCleanFailover } from './clean-failover-scenario.js';
import { closeAllNodes } from './in-process.js';
import type { ProtocolClient } from './protocol-client.js';

// The clean-failover scenario (clean-failover-scenario.ts) on a 3-master, 3-replica Redis Cluster: the master that
// holds the topic's slot is killed and its replica takes over (cluster-node-timeout 1 s).

let rc: TestRedisCluster;
beforeAll(async () => {
  rc = await startRedisCluster();
}, 60_000);
afterAll(async () => {
  await rc?.stop();
});
afterEach(closeAllNodes);

const clients: ProtocolClient[] = [];
const userClients: Cluster[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.stop();
  for (const c of userClients.splice(0)) c.disconnect();
});

describe('Redis Cluster: clean failover while publishing', () => {
  it('kill -9 of the topic’s master: no publish rejected, offsets in call order, one degraded/recovered pair per node', async () => {
    await runCleanFailover(
      {
        client() {
          // As the README shows it: no failover options (the harness's own client refreshes its slot map every second).
          const client = new Cluster(rc.startupNodes(), { shardedSubscribers: true });
          client.on('error', () => {});
          userClients.push(client);
          return client;
        },
        async failover(prefix) {
          const killed = await rc.killMaster(`${prefix}{t:hot}`);
          await rc.waitForFailover(30_000);
          return `port ${killed.port}`;
        },
      },
      clients,
    );
  }, 120_000);
});
