/**
 * `websocket-stabilizer/redis`: the cluster backend. Several processes and machines share one Redis; a client
 * resumes exactly-once on any node, and a node that dies loses nothing it acknowledged.
 *
 * ```ts
 * import { WebSocketConnectionManager } from 'websocket-stabilizer';
 * import { createRedisBackend } from 'websocket-stabilizer/redis';
 *
 * const backend = await createRedisBackend({ url: process.env.REDIS_URL });
 * const manager = new WebSocketConnectionManager({ backend, tokens: { secret: process.env.TOKEN_SECRET } });
 * ```
 */
export { createRedisBackend, RedisBackend, type ClusterSendOutcome } from './backend.js';
export type { RedisBackendOptions } from './options.js';
export type { RedisBackendEvents } from './link.js';
export type { ClusterBroadcastReport } from '../server/topics/broadcast.js';
