import { randomBytes } from 'node:crypto';
import type { ReplayLimits } from '../backends/replay-buffer.js';
import { ErrorCode } from '../protocol/error-codes.js';
import type { BroadcastOptions, ClusterBroadcastReport } from '../server/topics/broadcast.js';
import { StabilizerError } from '../server/errors.js';
import type { Payload } from '../frames/payload.js';
import { encodePayload } from './codec.js';
import { typedRedisError } from './errors.js';
import type { RedisLink } from './link.js';
import type { ResolvedRedisOptions } from './options.js';
import type { ScriptArg } from './scripts.js';
import { topicKeys, type TopicScriptName } from './topic-scripts.js';

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
 * A publish through Redis (ARCHITECTURE.md, "Cluster data flow"): the `wssTopicPublish` script numbers it in the
 * topic's meta hash, appends it to the topic's stream (trimmed to the topic's history bounds) and publishes it on
 * the topic's channel, touching only that topic's keys: its cost does not depend on how many sessions, members or
 * nodes there are. Every node following the topic delivers it to its members. A volatile publication is one
 * PUBLISH on the channel. Resolves once Redis stored it, with its offset. `expectedEpoch` (the topic's epoch as
 * this node follows it, or '' if it does not) makes a publish queued across a Redis restart fail `HISTORY_LOST`
 * instead of starting the topic's new history; `floor` (the highest offset this node saw taken in that epoch) makes
 * a history that went backwards take a new epoch instead of giving an offset to a second publication.
 */
export async function publishToTopic(
  link: RedisLink,
  opts: ResolvedRedisOptions,
  topic: string,
  l: ReplayLimits,
  payload: Payload,
  options: BroadcastOptions,
  expectedEpoch: string,
  floor = 0,
  id?: string,
): Promise<ClusterBroadcastReport> {
  if (id === undefined) assertCapacity(link, opts); // else the caller counted it (a retry from PublishLanes)
  const keys = topicKeys(opts.keyPrefix, topic);
  const excluded = options.exclude ? [...options.exclude] : [];
  const x = excluded.length > 0 ? JSON.stringify(excluded) : '';
  try {
    if (options.volatile) {
      const text = JSON.stringify({ v: 1, p: encodePayload(payload), x });
      const nodes = link.sharded
        ? await link.cmd.spublish(keys.channel, text)
        : await link.cmd.publish(keys.channel, text);
      return { offset: undefined, nodes: Number(nodes) };
    }
    id ??= msgId();
    const args = [
      keys.channel,
      encodePayload(payload),
      payload.bytes,
      x,
      l.maxMessages,
      l.maxBytes,
      l.maxAgeMs,
      msgId(),
      60_000,
      link.pubCmd,
      expectedEpoch,
      id,
      expectedEpoch === '' ? 0 : floor,
    ];
    const scriptKeys = [keys.meta, keys.stream, keys.dedupe(id)];
    if (opts.publishReplicas === 0) {
      const reply = (await link.topicScript('wssTopicPublish', scriptKeys, args)) as unknown[];
      return { offset: Number(reply[0]), nodes: Number(reply[2]) };
    }
    const { publishReplicas: want, publishReplicaTimeoutMs: ms } = opts;
    const r = await scriptThenWait(link, 'wssTopicPublish', scriptKeys, args, want, ms);
    const reply = r.reply as unknown[];
    if (r.replicas < want) {
      throw new StabilizerError(
        ErrorCode.BackendUnavailable,
        `publish to ${topic}: stored at offset ${Number(reply[0])} on the master, but ${r.replicas} of ` +
          `${want} replicas acknowledged it within ${ms} ms (a failover may lose it)`,
      );
    }
    return { offset: Number(reply[0]), nodes: Number(reply[2]) };
  } catch (err) {
    throw typedRedisError(err, 'publish');
  }
}

/**
 * Run a topic script, then `WAIT replicas timeoutMs` in the same pipeline: on the same connection (on a Cluster, to
 * the master of the script's slot), so it waits for this script's writes. Counted in `pending`.
 */
async function scriptThenWait(
  link: RedisLink,
  name: TopicScriptName,
  keys: string[],
  args: ScriptArg[],
  replicas: number,
  timeoutMs: number,
): Promise<{ reply: unknown; replicas: number }> {
  link.pending++;
  try {
    const pipe = link.pub.pipeline();
    (pipe as unknown as Record<string, (...a: ScriptArg[]) => unknown>)[name]!(...keys, ...args);
    pipe.wait(replicas, timeoutMs);
    const out = (await pipe.exec()) ?? [];
    const [scriptErr, reply] = out[0] ?? [new Error('no reply')];
    if (scriptErr) throw scriptErr;
    const [waitErr, acked] = out[1] ?? [new Error('no reply to WAIT')];
    if (waitErr) throw waitErr;
    return { reply, replicas: Number(acked) };
  } finally {
    link.pending--;
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
