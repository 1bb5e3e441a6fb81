import { afterAll, afterEach, beforeAll, describe, it } from 'vitest';
import { onPort } from '../helpers/redis-processes.js';
import { startRedisSentinel, type TestRedisSentinel } from '../helpers/redis-sentinel.js';
import { closeAllNodes } from './in-process.js';
import { runLaggingReplica } from './lagging-replica-scenario.js';
import type { ProtocolClient } from './protocol-client.js';

// The lagging-replica scenario (lagging-replica-scenario.ts) behind Redis Sentinel: a master, one replica, three
// Sentinels; the Sentinels promote the replica that lacks the last 200 publications (the sessions' data is on the
// same master here, and goes backwards with it).

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

describe('Redis Sentinel: failover to a lagging replica', () => {
  it('no reused offset reaches a client, nothing is lost without a gap, no resume skips', async () => {
    await runLaggingReplica(
      {
        client: () => rs.createClient(),
        topic: () => Promise.resolve('busy'),
        async lag() {
          const master = await rs.masterPort();
          const replica = rs.serverPorts.find((p) => p !== master)!;
          rs.signal(replica, 'SIGSTOP');
          await onPort(master, (r) => r.call('CLIENT', 'KILL', 'TYPE', 'replica'));
          return async () => {
            await rs.killMaster();
            rs.signal(replica, 'SIGCONT');
            await rs.waitForFailover(master, 30_000);
          };
        },
      },
      clients,
    );
  }, 180_000);
});
