import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import { ErrorCode } from '../protocol/error-codes.js';
import { StabilizerError } from '../server/errors.js';
import type { Logger } from '../server/operations/logger.js';

/** Presence change of a topic, seen by every node that follows it. */
export interface PresenceEvent {
  topic: string;
  clientId: string;
  nodeId: string;
  change: 'join' | 'leave';
}

/** Options of {@link createRedisBackend}. Give `client` or `url`. */
export interface RedisBackendOptions {
  /**
   * An ioredis client to take the connection settings from: a `Redis` (one server, or Sentinel) or a `Cluster`
   * (Redis Cluster ≥ 7: topics then use sharded pub/sub). The backend opens two clients of its own with
   * `client.duplicate()` (one for commands, one subscriber) and never uses or closes this one.
   */
  client?: Redis | Cluster;
  /**
   * Redis URL, when no `client` is given, e.g. `redis://:password@10.0.0.5:6379/0` or `rediss://…` for TLS.
   * @default 'redis://127.0.0.1:6379'
   */
  url?: string;
  /**
   * Prefix of every key and channel. Nodes that share a prefix form one cluster.
   * @default 'wss:'
   */
  keyPrefix?: string;
  /**
   * This process's id in the cluster (in logs and `getClusterConnections`). Must be unique among live nodes.
   * @default a random id per process
   */
  nodeId?: string;
  /**
   * How often this node writes its heartbeat (and reaps dead nodes and expired sessions).
   * @default 2000
   */
  nodeHeartbeatMs?: number;
  /**
   * A node without a heartbeat for this long is dead: it leaves the cluster counts and its attached sessions start
   * their `sessionTtlMs`. A heartbeat that takes longer than half of this marks the backend degraded.
   * @default 10000
   */
  nodeTimeoutMs?: number;
  /**
   * `createRedisBackend` rejects with `BACKEND_UNAVAILABLE` if Redis is not ready within this time.
   * @default 5000
   */
  connectTimeoutMs?: number;
  /**
   * Most Redis operations in flight or queued (while Redis is unreachable, sends and broadcasts wait in a queue).
   * Over it, new sends and broadcasts fail with `BACKEND_UNAVAILABLE`.
   * @default 10000
   */
  maxPendingOps?: number;
  /**
   * Durability of topic publications (and broadcasts): a publish resolves only once this many replicas of the
   * topic's master have it (Redis `WAIT` right after the publish script, on the same master). With 0 a publish
   * resolves once the master has it, and a failover to a replica that missed it loses it: the topic's members then
   * get `gap` for it (see README "Scaling out"). The cost is the replication round trip on every publish (figures in
   * docs/redis-deployments.md). A publish that fewer replicas acknowledge within `publishReplicaTimeoutMs` rejects
   * with `BACKEND_UNAVAILABLE`; it was stored and delivered on the master all the same (the message says its offset),
   * but a failover may lose it.
   * @default 0
   */
  publishReplicas?: number;
  /**
   * How long a publish waits for `publishReplicas` replicas (the `WAIT` timeout).
   * @default 1000
   */
  publishReplicaTimeoutMs?: number;
  /**
   * How long an expired session id is remembered, so a late resume hears `expired` instead of `unknown-session`.
   * @default 3600000 (1 hour)
   */
  tombstoneTtlMs?: number;
  /**
   * Logger for connection state changes (degraded, recovered, history lost).
   * @default the logger of the manager the backend is bound to
   */
  logger?: Logger;
}

export interface ResolvedRedisOptions {
  keyPrefix: string;
  /**
   * Prefix of the control plane's keys (sessions, inboxes, nodes, nonces, the epoch): `keyPrefix` in a hash tag
   * (`{wss:}`), so that every session script touches one slot on Redis Cluster. Topics use `keyPrefix{t:<topic>}`
   * and spread over the slots. A `keyPrefix` that has a hash tag of its own is used as it is.
   */
  controlPrefix: string;
  nodeId: string;
  nodeHeartbeatMs: number;
  nodeTimeoutMs: number;
  connectTimeoutMs: number;
  maxPendingOps: number;
  tombstoneTtlMs: number;
  publishReplicas: number;
  publishReplicaTimeoutMs: number;
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v <= 0) {
    throw new StabilizerError(ErrorCode.InvalidConfig, `redis backend: ${name} must be a positive integer`);
  }
  return v;
}

export function resolveRedisOptions(o: RedisBackendOptions): ResolvedRedisOptions {
  const keyPrefix = o.keyPrefix ?? 'wss:';
  const nodeId = o.nodeId ?? randomBytes(6).toString('base64url');
  if (!/^[\w.:{}-]{1,64}$/.test(keyPrefix)) {
    throw new StabilizerError(
      ErrorCode.InvalidConfig,
      'redis backend: keyPrefix must be 1-64 of [A-Za-z0-9_.:{}-]',
    );
  }
  if (!/^[\w.-]{1,64}$/.test(nodeId)) {
    throw new StabilizerError(
      ErrorCode.InvalidConfig,
      'redis backend: nodeId must be 1-64 of [A-Za-z0-9_.-]',
    );
  }
  const resolved = {
    keyPrefix,
    controlPrefix: keyPrefix.includes('{') ? keyPrefix : `{${keyPrefix}}`,
    nodeId,
    nodeHeartbeatMs: positiveInt('nodeHeartbeatMs', o.nodeHeartbeatMs, 2000),
    nodeTimeoutMs: positiveInt('nodeTimeoutMs', o.nodeTimeoutMs, 10_000),
    connectTimeoutMs: positiveInt('connectTimeoutMs', o.connectTimeoutMs, 5000),
    maxPendingOps: positiveInt('maxPendingOps', o.maxPendingOps, 10_000),
    tombstoneTtlMs: positiveInt('tombstoneTtlMs', o.tombstoneTtlMs, 3_600_000),
    publishReplicas:
      (o.publishReplicas ?? 0) === 0 ? 0 : positiveInt('publishReplicas', o.publishReplicas, 1),
    publishReplicaTimeoutMs: positiveInt('publishReplicaTimeoutMs', o.publishReplicaTimeoutMs, 1000),
  };
  if (resolved.nodeTimeoutMs < resolved.nodeHeartbeatMs * 2) {
    throw new StabilizerError(
      ErrorCode.InvalidConfig,
      'redis backend: nodeTimeoutMs must be ≥ 2 × nodeHeartbeatMs',
    );
  }
  return resolved;
}

/** A URL without its password, for error messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}
