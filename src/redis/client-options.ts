import { Cluster, type ClusterOptions, type Redis, type RedisOptions } from 'ioredis';

/** Connection options the backend needs, whatever the user's client had. */
export const OVERRIDES: Partial<RedisOptions> = {
  lazyConnect: true,
  keyPrefix: '',
  enableOfflineQueue: true,
  maxRetriesPerRequest: null, // wait for Redis instead of failing: the backend bounds what waits itself
  autoResendUnfulfilledCommands: true, // safe: every script is idempotent
  autoResubscribe: true,
  retryStrategy: (attempt: number) => Math.min(100 * attempt, 2000),
};

/**
 * The same overrides for an ioredis `Cluster` (per-node options go in `redisOptions`). During a failover a command
 * for the dead master's slots meets a closed connection or CLUSTERDOWN until the replica is promoted: ioredis
 * retries it every 100 ms, refreshing its slot map, and after `maxRedirections` tries it fails with "Too many
 * Cluster redirections" (16 by default: about 2 s, shorter than a failover). The backend raises the bound so that a
 * command waits out a failover like it waits out a restart (about 100 s at one try per 100 ms); what may wait at
 * once is bounded by `maxPendingOps`.
 */
export const CLUSTER_OVERRIDES: ClusterOptions = {
  lazyConnect: true,
  keyPrefix: '',
  enableOfflineQueue: true,
  maxRedirections: 1000,
  retryDelayOnFailover: 100,
  retryDelayOnClusterDown: 100,
  retryDelayOnTryAgain: 100,
  clusterRetryStrategy: (attempt: number) => Math.min(100 * attempt, 2000),
  redisOptions: { maxRetriesPerRequest: null, autoResendUnfulfilledCommands: true, autoResubscribe: true },
};

/**
 * The Cluster connection of topic publishes: ioredis does not retry a command that met a closed connection or
 * CLUSTERDOWN by itself (it would retry each on its own timer, and a publish could overtake an earlier one): the
 * publish lanes retry them, oldest first (`PublishLanes`). MOVED and ASK are still followed at once, in order.
 */
const PUBLISHER_OVERRIDES: ClusterOptions = {
  ...CLUSTER_OVERRIDES,
  maxRedirections: 16,
  retryDelayOnFailover: 0,
  retryDelayOnClusterDown: 0,
};

/**
 * A client of our own with the backend's settings: `subscriber` clients of a Cluster subscribe per shard, the
 * `publisher` Cluster client leaves failover retries to the publish lanes.
 */
export function duplicate(
  client: Redis | Cluster,
  role: 'commands' | 'subscriber' | 'publisher',
): Redis | Cluster {
  if (!(client instanceof Cluster)) return client.duplicate(OVERRIDES);
  const redisOptions = { ...client.options.redisOptions, ...CLUSTER_OVERRIDES.redisOptions };
  const base = role === 'publisher' ? PUBLISHER_OVERRIDES : CLUSTER_OVERRIDES;
  return client.duplicate([], { ...base, redisOptions, shardedSubscribers: role === 'subscriber' });
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
