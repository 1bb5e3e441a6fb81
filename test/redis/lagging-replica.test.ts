import { afterAll, afterEach, beforeAll, describe, it } from 'vitest';
import { onPort } from '../helpers/redis-processes.js';
import { startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.js';
import { closeAllNodes } from './in-process.js';
import { runLaggingReplica } from './lagging-replica-scenario.js';
import type { ProtocolClient } from './protocol-client.js';

// The lagging-replica scenario (lagging-replica-scenario.ts) on a 3-master, 3-replica Redis Cluster: the topic's
// slot is on another master than the sessions', the replica takes over with CLUSTER FAILOVER TAKEOVER.

let rc: TestRedisCluster;
beforeAll(async () => {
  rc = await startRedisCluster();
}, 60_000);
afterAll(async () => {
  await rc?.stop();
});
afterEach(closeAllNodes);

const clients: ProtocolClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.stop();
});

describe('Redis Cluster: failover to a lagging replica', () => {
  it('no reused offset reaches a client, nothing is lost without a gap, no resume skips', async () => {
    await runLaggingReplica(
      {
        client: () => rc.createClient(),
        async topic(prefix) {
          // A topic whose slot is on another master than the control plane's (sessions stay out of this failover).
          const map = await rc.slots();
          const masterOf = async (key: string) => {
            const slot = await rc.keySlot(key);
            return map.find((s) => s.start <= slot && slot <= s.end)!.master;
          };
          const control = await masterOf(`{${prefix}}`);
          for (let i = 0; ; i++) if ((await masterOf(`${prefix}{t:busy${i}}`)) !== control) return `busy${i}`;
        },
        async lag(prefix, topic) {
          const slot = await rc.keySlot(`${prefix}{t:${topic}}`);
          const range = (await rc.slots()).find((s) => s.start <= slot && slot <= s.end)!;
          const replica = range.replicas[0]!;
          rc.signal(replica, 'SIGSTOP');
          await onPort(range.master, (r) => r.call('CLIENT', 'KILL', 'TYPE', 'replica'));
          return async () => {
            await rc.killMaster(slot);
            rc.signal(replica, 'SIGCONT');
            await onPort(replica, (r) => r.cluster('FAILOVER', 'TAKEOVER'));
            await rc.waitForFailover(30_000);
          };
        },
      },
      clients,
    );
  }, 180_000);
});
