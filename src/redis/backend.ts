import type { ReplayLimits } from '../backends/replay-buffer.js';
import { newIncarnation } from '../backends/session-record.js';
import type { SessionInfo, SessionLookup, SessionOwner, SessionRecord } from '../backends/types.js';
import type { BackendHost, StorageBackend } from '../server/storage-backend.js';
import { ErrorCode } from '../protocol/error-codes.js';
import { BROADCAST_TOPIC } from '../protocol/messages.js';
import type {
  BroadcastOptions,
  BroadcastResult,
  ClusterBroadcastReport,
} from '../server/topics/broadcast.js';
import { StabilizerError } from '../server/errors.js';
import type { Listener } from '../server/events.js';
import { silentLogger } from '../server/operations/logger.js';
import { Payload, type SendData } from '../frames/payload.js';
import type { Topic } from '../server/topics/topics.js';
import type { ClientOp, ClientOpAnswer } from '../server/topics/client-ops.js';
import { AckTrimmer } from './acks.js';
import { ClusterClientOps } from './client-ops.js';
import { NodeConnections } from './connections.js';
import { NonceStore } from './nonces.js';
import { SessionOwnership } from './ownership.js';
import { typedRedisError } from './errors.js';
import { isEpochError, RedisLink, type RedisBackendEvents } from './link.js';
import { resolveRedisOptions, type RedisBackendOptions, type ResolvedRedisOptions } from './options.js';
import { assertCapacity, sendPayload, type ClusterSendOutcome } from './routing.js';
import { LocalSessions } from './sessions.js';
import { ErrorReport } from './error-report.js';
import { TopicCluster } from './topic-cluster.js';
import { TopicFollower } from './topics.js';

export type { ClusterSendOutcome } from './routing.js';

const DEFAULT_LIMITS: ReplayLimits = { maxMessages: 1000, maxBytes: 1_048_576, maxAgeMs: 300_000 };

/** Connect to Redis, validate it and join the cluster. Rejects with `BACKEND_UNAVAILABLE` and the reason. */
export function createRedisBackend(options: RedisBackendOptions = {}): Promise<RedisBackend> {
  return RedisBackend.connect(options);
}

/**
 * The cluster backend: sessions, inboxes and token nonces in Redis; topic offsets and histories in one stream per
 * topic; each node follows the topics it has members in (`$all` always) and fans publications out locally. Any node can resume any session exactly-once,
 * and a node that dies loses nothing it acknowledged. See ARCHITECTURE.md, "Cluster data flow", for the argument.
 *
 * One backend serves one manager: `new WebSocketConnectionManager({ backend: await createRedisBackend({ url }) })`.
 */
export class RedisBackend implements StorageBackend {
  readonly name = 'redis';
  /** Sessions live in Redis: a node that shuts down detaches them, and another node resumes them. */
  readonly sessionsOutliveProcess = true;
  readonly nodeId: string;
  private readonly local: LocalSessions;
  private readonly acks: AckTrimmer;
  private readonly connections: NodeConnections;
  private readonly nonces: NonceStore;
  private readonly owned: SessionOwnership;

  private constructor(
    private readonly link: RedisLink,
    private readonly opts: ResolvedRedisOptions,
    private readonly ownLogger: boolean,
  ) {
    this.nodeId = opts.nodeId;
    this.local = new LocalSessions(link);
    this.acks = new AckTrimmer(link);
    this.connections = new NodeConnections(link, opts);
    this.nonces = new NonceStore(link, opts.controlPrefix);
    this.owned = new SessionOwnership(
      link,
      opts,
      this.local,
      () => this.ttlMs,
      (id, err) => this.fail(id, err),
    );
    this.topics = new TopicFollower(link);
    this.topics.onPresence = (e) => link.presence(e);
    this.cluster = new TopicCluster(link, opts, this.topics, () => this.host, DEFAULT_LIMITS);
    this.clientOps = new ClusterClientOps(
      link,
      opts,
      () => this.host,
      (id) => this.local.byId.has(id),
    );
    link.handlers = {
      message: (channel, text, topic) =>
        topic
          ? this.topics.dispatch(channel, text)
          : this.clientOps.dispatch(text) || this.local.dispatch(text),
      resync: (reaped) => this.resync(reaped),
      historyLost: () => this.historyLost(),
    };
  }

  private readonly topics: TopicFollower;
  private readonly cluster: TopicCluster;
  private readonly clientOps: ClusterClientOps;

  /** See {@link createRedisBackend}. */
  static async connect(options: RedisBackendOptions = {}): Promise<RedisBackend> {
    const opts = resolveRedisOptions(options);
    const link = await RedisLink.open(options, opts, options.logger ?? silentLogger);
    const backend = new RedisBackend(link, opts, options.logger !== undefined);
    // `$all` (broadcasts) is followed from the start, so that its offset is known before the first session.
    await backend.topics.open(BROADCAST_TOPIC, undefined);
    return backend;
  }

  /** `true` while Redis is unreachable, stalled, or its lost history is being handled. */
  get degraded(): boolean {
    return this.link.degraded;
  }

  /** The id of the Redis history this node belongs to (changes when Redis loses its data). */
  get epoch(): string {
    return this.link.epoch;
  }

  /** Redis operations in flight or queued. */
  get pendingOps(): number {
    return this.link.pending;
  }

  /** Subscribe to `degraded`, `recovered` and `history-lost`; returns a function that unsubscribes. */
  on<K extends keyof RedisBackendEvents>(name: K, listener: Listener<RedisBackendEvents[K]>): () => void {
    return this.link.on(name, listener);
  }

  private get host(): BackendHost | undefined {
    return this.local.host;
  }

  private get limits(): ReplayLimits {
    return this.host?.config.replay ?? DEFAULT_LIMITS;
  }

  private get ttlMs(): number {
    return this.host?.config.sessionTtlMs ?? 120_000;
  }

  // ------------------------------------------------------------------------------------------ StorageBackend

  async claimNonce(nonce: string, expiresAtMs: number): Promise<boolean> {
    this.assertAvailable('token check');
    return this.nonces.claim(nonce, expiresAtMs);
  }

  releaseNonce(nonce: string): Promise<void> {
    return this.nonces.release(nonce);
  }

  createSession(id: string, limits: ReplayLimits, owner: SessionOwner = {}): SessionRecord {
    const old = this.local.byId.get(id);
    if (old) this.local.forget(old);
    const ls = this.local.create(id, limits, newIncarnation(), owner);
    this.owned.created(ls, owner);
    return ls.record;
  }

  getSession(id: string): SessionRecord | undefined {
    return this.local.byId.get(id)?.record;
  }

  /** Reads the session hash in Redis (cluster-wide); nothing is claimed. */
  async inspectSession(id: string): Promise<SessionInfo | undefined> {
    this.assertAvailable('resume');
    return this.owned.inspect(id);
  }

  async findSession(id: string, limits: ReplayLimits, incarnation: string): Promise<SessionLookup> {
    this.assertAvailable('resume');
    const before = this.local.byId.get(id)?.record;
    const had = before ? [...before.topics.keys()] : [];
    try {
      const lookup = await this.local.claim(id, incarnation, limits, this.ttlMs, this.opts.tombstoneTtlMs);
      if (!lookup.found || !this.host) return lookup;
      const r = lookup.session;
      const table = this.host.topicTable;
      // Left elsewhere meanwhile: no longer a member here either.
      if (before === r) for (const name of had) if (!r.topics.has(name)) table.leave(name, id);
      // Its topics are followed here from now on, each in step with Redis before the resume is planned.
      await this.host.adoptTopics(r);
      await this.topics.checkFloors(r); // a join offset above a topic's top: its history went backwards
      const ls = this.local.of(r);
      if (!ls) return { found: false, reason: 'superseded' };
      for (const name of r.topics.keys())
        if (name !== BROADCAST_TOPIC) this.cluster.presence('add', id, name);
      return lookup;
    } catch (err) {
      throw typedRedisError(err, 'resume');
    }
  }

  deleteSession(id: string, tombstone: boolean | 'evicted'): void {
    const ls = this.local.byId.get(id);
    if (!ls) return;
    const g = ls.g;
    this.local.forget(ls);
    this.owned.deleted(id, g, tombstone);
  }

  *sessions(): IterableIterator<SessionRecord> {
    for (const ls of this.local.byId.values()) yield ls.record;
  }

  get sessionCount(): number {
    return this.local.byId.size;
  }

  sweep(_nowMs: number): void {
    // Redis-side expiry runs in the heartbeat script; acks are flushed on their own.
  }

  /** Leave the cluster. Sessions still attached here start their TTL in Redis (resumable elsewhere). */
  async close(): Promise<void> {
    this.acks.flush();
    await this.owned.detachAttached();
    this.local.byId.clear();
    this.nonces.close();
    await this.link.close();
  }

  // ------------------------------------------------------------------------------------------ manager hooks

  bind(host: BackendHost): void {
    if (this.host && this.host !== host) {
      throw new StabilizerError(ErrorCode.InvalidConfig, 'a RedisBackend serves exactly one manager');
    }
    this.local.host = host;
    this.topics.host = host;
    this.topics.bindAll(host.topicTable.all);
    this.link.sessionTtlMs = host.config.sessionTtlMs;
    if (!this.ownLogger) this.link.log = host.log;
    if (!host.config.tokens.secret) {
      host.log.warn(
        { event: 'redis.config', nodeId: this.nodeId },
        'tokens.secret is not set: resume tokens are signed per process, so sessions resume only on their own node',
      );
    }
  }

  /** Failed background sends and publishes: at most 5 reported a second, the rest summed up (an outage). */
  private readonly failures = new ErrorReport(
    (err, clientId) => this.host?.reportError(clientId, err),
    (count) =>
      this.host?.log.error({ event: 'redis.errors-suppressed', count }, `${count} more redis failures`),
  );

  routeSend(clientId: string, payload: Payload, volatile: boolean): ClusterSendOutcome | undefined {
    const conn = this.host?.connections.get(clientId);
    if (conn && (!conn.session || volatile)) return undefined; // a local write, nothing to sequence
    if (volatile && this.link.degraded) return 'dropped';
    assertCapacity(this.link, this.opts);
    sendPayload(this.link, this.opts, this.limits, clientId, payload, volatile).catch((err: unknown) =>
      this.failures.add(err, clientId),
    );
    return conn ? 'sent' : volatile ? 'sent' : 'buffered';
  }

  routePublish(topic: string, payload: Payload, options: BroadcastOptions): BroadcastResult | undefined {
    const volatile = options.volatile === true;
    if (volatile && (this.link.degraded || this.link.pending >= this.opts.maxPendingOps)) return undefined; // local
    const cluster = this.cluster.publish(topic, payload, options);
    cluster.catch((err: unknown) => this.failures.add(err));
    return { delivered: 0, buffered: 0, dropped: 0, failed: [], cluster };
  }

  topicOpened(topic: Topic): void {
    void this.topics.open(topic.name, topic);
  }

  topicClosed(topic: Topic): void {
    this.topics.close(topic.name);
  }

  topicReady(topic: Topic): Promise<void> | undefined {
    return this.topics.readyOf(topic.name);
  }

  topicJoinOffset(topic: Topic): Promise<{ offset: number; epoch: string } | undefined> | undefined {
    return this.topics.joinOffsetOf(topic.name);
  }

  onTopicJoin(memberId: string, session: SessionRecord | undefined, topic: Topic): void {
    const g = session && this.local.of(session)?.g;
    const stored = session?.topics.get(topic.name) ?? topic.offset;
    // A join while the topic loads here is stored under the epoch its offset was read in.
    const epoch = session?.topicEpochs?.get(topic.name) ?? topic.epoch;
    this.cluster.joined(
      memberId,
      session && g ? { id: session.id, g } : undefined,
      topic,
      stored,
      (err) => this.fail(memberId, err),
      epoch,
    );
  }

  onTopicLeave(memberId: string, session: SessionRecord | undefined, name: string): void {
    const g = session && this.local.of(session)?.g;
    this.cluster.left(memberId, session && g ? { id: session.id, g } : undefined, name, (err) =>
      this.fail(memberId, err),
    );
  }

  persistClientSeq(session: SessionRecord, seq: number): Promise<void> {
    const ls = this.local.of(session);
    if (!ls)
      return Promise.reject(new StabilizerError(ErrorCode.HistoryLost, 'session is no longer held here'));
    return this.link.call('wssClientSeq', [session.id, ls.g, seq]).then((r) => {
      if (r !== 1) throw new StabilizerError(ErrorCode.BackendUnavailable, 'session moved to another node');
    });
  }

  onAck(session: SessionRecord, seq: number): void {
    const ls = this.local.of(session);
    if (ls) this.acks.ack(ls, seq); // nothing in Redis unless it advances past what was acked before
  }

  // Cluster-wide client operations (clusterJoin, clusterLeave, clusterDisconnect, fetchClient): client-ops.ts.
  routeClientOp(op: ClientOp, requestId: string, attemptMs: number): Promise<ClientOpAnswer> {
    return this.clientOps.route(op, requestId, attemptMs);
  }
  confirmClientOp(session: SessionRecord, op: ClientOp): Promise<boolean> {
    return this.clientOps.confirm(session, op);
  }
  isClientBusy(clientId: string): boolean {
    return this.local.byId.get(clientId)?.state === 'loading'; // a resume is loading it here
  }
  get clientOpTimeoutMs(): number {
    return this.clientOps.timeoutMs;
  }

  onAttach(clientId: string, session: SessionRecord | undefined): void {
    this.connections.add(clientId);
    const ls = session && this.local.of(session);
    if (ls) this.owned.attach(ls);
  }

  onDetach(clientId: string, session: SessionRecord | undefined, retained: boolean): void {
    this.connections.remove(clientId);
    if (!session || !retained) return;
    const ls = this.local.of(session);
    // Not ours any more (resumed elsewhere, history lost): the manager must not keep it as detached here.
    if (!ls) return void this.host?.releaseSession(session);
    void this.owned.detach(ls);
  }

  // ------------------------------------------------------------------------------------------ cluster API

  /**
   * Broadcast to every client on every node: a publish to the built-in topic `$all`. Resolves once Redis stored it
   * (durable) with its offset. `manager.broadcast` does the same and exposes this promise as `result.cluster`.
   * Works without a manager (e.g. from a worker process); the history bounds are then the defaults, so keep
   * `replay` at its defaults on the servers or broadcast from a server.
   */
  broadcast(data: SendData, options: BroadcastOptions = {}): Promise<ClusterBroadcastReport> {
    const payload = data instanceof Payload ? data : new Payload(data);
    return this.cluster.publish(BROADCAST_TOPIC, payload, options);
  }

  /**
   * Publish to `topic`'s members on every node: one short script on the topic's own keys, whatever the number of
   * members. Resolves once Redis stored it, with its offset. `manager.publish` does the same (`result.cluster`).
   */
  publish(topic: string, data: SendData, options: BroadcastOptions = {}): Promise<ClusterBroadcastReport> {
    const payload = data instanceof Payload ? data : new Payload(data);
    return this.cluster.publish(topic, payload, options);
  }

  /**
   * Members of `topic` on every live node (sessions, attached or detached, and plain sockets), each with the node
   * that holds it. Members held by a node whose heartbeat stopped are not listed (they come back when resumed).
   */
  getTopicMembers(topic: string): Promise<Array<{ clientId: string; nodeId: string }>> {
    return this.cluster.memberList(topic);
  }

  /** How many members `topic` has on every live node, from per-node counters: no member list is read. */
  async getTopicMemberCount(topic: string): Promise<number> {
    return Number(await this.cluster.members(topic, 'count'));
  }

  /**
   * Send to one client wherever it is connected (or to its detached session). Resolves with `sent`, `buffered`
   * (detached: replayed on resume) or `dropped` (volatile to a detached session); rejects `UNKNOWN_CLIENT`.
   */
  send(clientId: string, data: SendData, options: { volatile?: boolean } = {}): Promise<ClusterSendOutcome> {
    const payload = data instanceof Payload ? data : new Payload(data);
    const conn = this.host?.connections.get(clientId);
    if (conn && (!conn.session || options.volatile)) {
      const out = conn.writePayload(payload, undefined, this.host!.nowMs);
      return Promise.resolve(out === 'ok' ? 'sent' : 'dropped');
    }
    return sendPayload(this.link, this.opts, this.limits, clientId, payload, options.volatile === true);
  }

  /** Connections open on every live node. */
  getClusterConnectionCount(): Promise<number> {
    return this.connections.count();
  }

  /** Every open connection on every live node, with the node that holds it. */
  getClusterConnections(): Promise<Array<{ clientId: string; nodeId: string }>> {
    return this.connections.list();
  }

  // ------------------------------------------------------------------------------------------ internals

  private resync(reaped: boolean): void {
    if (reaped) {
      // Another node took this one for dead: put our sessions and connections back.
      this.owned.reclaimAll();
      this.readdConnections();
      this.cluster.readdPresence();
    }
    this.local.resyncAll();
    this.topics.resyncAll();
  }

  private historyLost(): number {
    this.acks.clear();
    const dropped = this.local.dropAll();
    this.readdConnections();
    this.topics.resyncAll();
    return dropped;
  }

  private readdConnections(): void {
    if (this.host) this.connections.add(...this.host.connections.keys());
  }

  private assertAvailable(what: string): void {
    if (this.link.degraded) {
      throw new StabilizerError(ErrorCode.BackendUnavailable, `redis is unavailable: ${what} deferred`);
    }
  }

  private fail(clientId: string, err: unknown): void {
    if (isEpochError(err)) return; // handled once, by the history-lost path
    this.host?.reportError(clientId, typedRedisError(err, 'redis'));
  }
}
