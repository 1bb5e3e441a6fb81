import { randomBytes } from 'node:crypto';
import type { ReplayLimits } from '../backends/replay-buffer.js';
import { ErrorCode } from '../protocol/error-codes.js';
import type { BroadcastOptions, ClusterBroadcastReport } from '../server/broadcast.js';
import { StabilizerError } from '../server/errors.js';
import type { Payload } from '../server/payload.js';
import { encodePayload } from './codec.js';
import { typedRedisError } from './errors.js';
import type { RedisLink } from './link.js';
import type { ResolvedRedisOptions } from './options.js';

/** Outcome of a cluster-wide `RedisBackend.send`. */
export type ClusterSendOutcome = 'sent' | 'buffered' | 'dropped';

/** A unique id: makes a script call idempotent when ioredis resends it after a reconnect lost its reply. */
export const msgId = (): string => randomBytes(12).toString('base64url');

/** Refuses new work while `maxPendingOps` Redis operations are in flight or queued. */
export function assertCapacity(link: RedisLink, opts: ResolvedRedisOptions): void {
  if (link.pending >= opts.maxPendingOps) {
    throw new StabilizerError(ErrorCode.BackendUnavailable, 'too many redis operations pending');
  }
}

/**
 * A broadcast through Redis (ARCHITECTURE.md, "The one rule"): the `wssBroadcast` script sequences it on every
 * live session and publishes it to every node. Resolves with how many sessions and nodes it reached.
 */
export async function publishPayload(
  link: RedisLink,
  opts: ResolvedRedisOptions,
  l: ReplayLimits,
  payload: Payload,
  options: BroadcastOptions,
): Promise<ClusterBroadcastReport> {
  assertCapacity(link, opts);
  const exclude = JSON.stringify(options.exclude ? [...options.exclude] : []);
  try {
    const reply = (await link.call('wssBroadcast', [
      msgId(),
      encodePayload(payload),
      payload.bytes,
      options.volatile ? 1 : 0,
      exclude,
      l.maxMessages,
      l.maxBytes,
      l.maxAgeMs,
      l.maxAgeMs + 60_000,
      opts.nodeTimeoutMs,
    ])) as number[];
    return { sessions: Number(reply[0]), nodes: Number(reply[1]) };
  } catch (err) {
    throw typedRedisError(err, 'broadcast');
  }
}

/**
 * A send to one client through Redis: the `wssSend` script sequences it on the client's session (wherever it is)
 * and publishes it to the node that holds the connection. Rejects `UNKNOWN_CLIENT`.
 */
export async function sendPayload(
  link: RedisLink,
  opts: ResolvedRedisOptions,
  l: ReplayLimits,
  clientId: string,
  payload: Payload,
  volatile: boolean,
): Promise<ClusterSendOutcome> {
  assertCapacity(link, opts);
  let out: unknown;
  try {
    out = await link.call('wssSend', [
      msgId(),
      clientId,
      encodePayload(payload),
      payload.bytes,
      volatile ? 1 : 0,
      l.maxMessages,
      l.maxBytes,
      l.maxAgeMs,
      l.maxAgeMs + 60_000,
      opts.nodeTimeoutMs,
    ]);
  } catch (err) {
    throw typedRedisError(err, 'send');
  }
  if (out === 'unknown') throw new StabilizerError(ErrorCode.UnknownClient, `no client with id ${clientId}`);
  return out as ClusterSendOutcome;
}
