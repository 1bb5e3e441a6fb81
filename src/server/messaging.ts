import { CloseCode } from '../protocol/close-codes.js';
import { BROADCAST_TOPIC } from '../protocol/messages.js';
import { ErrorCode } from '../protocol/error-codes.js';
import type { SessionRecord } from '../backends/types.js';
import type { StorageBackend } from './storage-backend.js';
import type { BroadcastOptions, BroadcastResult } from './topics/broadcast.js';
import type { ResolvedConfig } from './config-types.js';
import type { Connection, WriteOutcome } from './transport/connection.js';
import { FrameCompressor } from './transport/compression.js';
import { ServerCounters } from './operations/counters.js';
import { StabilizerError } from './errors.js';
import type { ManagerEvents } from './events.js';
import type { Logger } from './operations/logger.js';
import { Memberships, type AuthorizeSubscribe } from './topics/membership.js';
import { Payload, type BinaryPayload, type SendData } from '../frames/payload.js';
import type { Publication } from './topics/publication.js';
import { deliverPublication, publishTo, type PublishTarget } from './topics/publish.js';
import type { Topic, TopicTable } from './topics/topics.js';
import { RequestBroker, type RequestHandler, type RequestHost } from './session/requests.js';
import type {
  AnyReplyOf,
  AnyRequestTypes,
  ReplyOf,
  RequestOf,
  RequestOptions,
  RequestsOf,
  RequestTypes,
} from '../protocol/requests.js';
import { ConnectionRegistry } from './registry.js';
import {
  ClientOperations,
  type ClientInfo,
  type ClientOpOptions,
  type ClientOp,
  type ClientOpAnswer,
  type ClientOpsHost,
} from './topics/client-ops.js';
import { fanOutEnded, type ServerTracing } from './operations/tracing.js';

/** Outcome of `sendToClient`. */
export type SendOutcome = 'sent' | 'buffered' | 'dropped';

/**
 * The messaging half of the manager, over the registry: direct sends (each session's inbox), broadcast and
 * topics (publish, join, leave, presence), and what happens when a write fails. `Out` is what the server sends
 * (`sendToClient`, `broadcast`, `publish`); see `WebSocketConnectionManager` for `In` and `Data`.
 */
export abstract class MessagingManager<
  In = unknown,
  Out extends SendData = SendData,
  Data = unknown,
  Rpc extends RequestTypes = AnyRequestTypes,
>
  extends ConnectionRegistry<In, Data>
  implements PublishTarget
{
  /** Monotonic counts (messages sent and dropped, upgrade rejections), read by `websocket-stabilizer/metrics`. */
  readonly counters = new ServerCounters();
  /** @internal Topics and who is in them. */
  readonly topics: Memberships;
  /** @internal Request/reply: the handler of client requests and the server's requests in flight. */
  readonly requests = new RequestBroker(this as unknown as RequestHost);
  /** @internal OpenTelemetry spans, when the `tracing` hook is set. */
  tracing: ServerTracing | undefined = undefined;
  /** @internal The shared permessage-deflate compressor, when `compression.enabled`. */
  readonly compressor: FrameCompressor | undefined;
  /** @internal The cluster-wide operations on a client by id. */
  readonly clientOps = new ClientOperations(this as unknown as ClientOpsHost);

  constructor(
    config: ResolvedConfig,
    backend: StorageBackend,
    log: Logger,
    authorizeSubscribe: AuthorizeSubscribe | undefined,
  ) {
    super(config, backend, log);
    this.compressor = config.compression.enabled ? new FrameCompressor(config.compression) : undefined;
    this.topics = new Memberships(this, authorizeSubscribe);
  }

  /**
   * Send to one client: text as a text frame, bytes as binary, anything else as JSON. For a protocol client the
   * message is reliable (sequenced, kept for replay) unless `volatile`; for a detached session it is buffered.
   * Throws `UNKNOWN_CLIENT` for an id with neither a connection nor a session, and `SEND_FAILED` when the write
   * failed (the client is then disconnected).
   */
  sendToClient(
    clientId: string,
    data: Out | BinaryPayload,
    options: { volatile?: boolean } = {},
  ): SendOutcome {
    const payload = data instanceof Payload ? data : new Payload(data);
    const routed = this.backend.routeSend?.(clientId, payload, options.volatile === true);
    if (routed === 'dropped') this.counters.droppedVolatile++;
    if (routed !== undefined) return routed;
    const conn = this.connections.get(clientId);
    if (!conn) {
      const session = this.backend.getSession(clientId);
      if (!session || session.detachedAtMs === undefined) {
        throw new StabilizerError(ErrorCode.UnknownClient, `no client with id ${clientId}`);
      }
      if (options.volatile) {
        this.counters.droppedVolatile++;
        return 'dropped';
      }
      this.sequence(session, payload);
      this.enforceDetachedBudget();
      return 'buffered';
    }
    const seq = conn.session && !options.volatile ? this.sequence(conn.session, payload) : undefined;
    const outcome = conn.writePayload(payload, seq, this.nowMs);
    if (outcome === 'ok') return 'sent';
    if (seq !== undefined) {
      // In the replay buffer already: drop the socket (unless it is closing anyway); the resume delivers it.
      if (outcome !== 'closed') this.onWriteFailure(conn, outcome);
      return 'buffered';
    }
    if (outcome === 'slow' && options.volatile) return 'dropped';
    const reason = this.onWriteFailure(conn, outcome);
    throw new StabilizerError(ErrorCode.SendFailed, `send to ${clientId} failed: ${reason}`);
  }

  /**
   * Send to every connected client (and buffer for detached protocol sessions). Serializes once. Never throws
   * because of a socket: failures are listed in the result and those clients are disconnected.
   */
  broadcast(data: Out | BinaryPayload, options?: BroadcastOptions): BroadcastResult {
    const payload = data instanceof Payload ? data : new Payload(data);
    const span = this.tracing?.fanOutStarted(undefined);
    const routed = this.backend.routePublish?.(BROADCAST_TOPIC, payload, options ?? {});
    const result = routed ?? publishTo(this, this.topics.table, this.topics.table.all, payload, options);
    return span ? fanOutEnded(span, result) : result;
  }

  // ---------------------------------------------------------------- request/reply

  /**
   * Answer client requests (`request()` of `websocket-stabilizer/client/request`): the handler's return value, or
   * what its promise resolves to, is the reply (PROTOCOL.md §2.8). A request rides the session's reliable channel,
   * so the handler runs once per request, even when the request is resent after a resume; the reply is
   * delivered once, across resumes, like `sendToClient`. A throw (or rejection) answers `HANDLER_ERROR` and is
   * reported as an `error` event; without a handler requests are answered `NO_HANDLER`. One handler: a second
   * call replaces the first.
   */
  onRequest(
    handler: RequestHandler<
      RequestOf<RequestsOf<Rpc, 'client'>>,
      AnyReplyOf<RequestsOf<Rpc, 'client'>>,
      Data
    >,
  ): this {
    this.requests.handler = handler as RequestHandler;
    return this;
  }

  /**
   * Send a request to a client's session and resolve with the reply of its handler. Reliable like
   * `sendToClient`: buffered while the client is away and replayed on resume; its handler runs once. Rejects
   * with a {@link StabilizerError}:
   * - `REQUEST_TIMEOUT` after `timeoutMs` (default 30 s) without a reply;
   * - `SESSION_LOST` when the session ends first (expired, evicted, closed with 1000, or resumed `fresh`);
   * - `HANDLER_ERROR` when the client's handler threw, `NO_HANDLER` when the client has none;
   * - `UNKNOWN_CLIENT` for an id with no session on this node, `REQUESTS_UNSUPPORTED` for a plain-mode socket;
   *
   * or with a `TypeError` for bytes or a value that is not JSON.
   */
  request<Q extends RequestOf<RequestsOf<Rpc, 'server'>>>(
    clientId: string,
    data: Q,
    options: RequestOptions = {},
  ): Promise<ReplyOf<RequestsOf<Rpc, 'server'>, Q>> {
    return this.requests.request(clientId, data as SendData, options) as Promise<
      ReplyOf<RequestsOf<Rpc, 'server'>, Q>
    >;
  }

  // ---------------------------------------------------------------- topics

  /**
   * Make a client a member of `topic` (a room). A protocol client is told the offset it starts from and gets every
   * later publication exactly once, across resumes; a plain socket gets them at most once. Returns `false` if it
   * already was a member.
   * On a cluster backend, a client that another node holds is joined there in the background, and `true` is
   * returned (await {@link clusterJoin} for the outcome and its ordering guarantee).
   * @throws StabilizerError `UNKNOWN_CLIENT`, `INVALID_TOPIC` (empty, too long, control characters, `$` prefix),
   * `TOPIC_LIMIT` (over `topics.maxPerConnection`).
   */
  join(clientId: string, topic: string): boolean {
    this.assertTopicName(topic);
    if (this.clientOps.forward({ op: 'join', clientId, topic })) return true;
    return this.topics.join(clientId, topic, 'server') !== undefined;
  }

  /**
   * Remove a client from `topic`; a protocol client is told. Returns whether it was a member. On a cluster
   * backend, a client that another node holds leaves there in the background, and `true` is returned (await
   * {@link clusterLeave} for the outcome).
   */
  leave(clientId: string, topic: string): boolean {
    if (topic !== BROADCAST_TOPIC && this.clientOps.forward({ op: 'leave', clientId, topic })) return true;
    return this.topics.leave(clientId, topic, 'server');
  }

  /**
   * `join` wherever the client is: on this node, on the node that holds its session or socket, or (Redis, a
   * detached session no live node holds) in its stored session, so that its resume on any node has the topic.
   * Resolves once it took effect: the member is in, a connected protocol client was sent `sub` with its starting
   * offset, and (Redis) the membership is stored. Every publication made after that reaches it exactly once,
   * from that offset on. `false`: it already was a member.
   * @throws StabilizerError (rejects) `UNKNOWN_CLIENT`, `INVALID_TOPIC`, `TOPIC_LIMIT`, `OPERATION_TIMEOUT`,
   * `BACKEND_UNAVAILABLE`.
   */
  async clusterJoin(clientId: string, topic: string, options: ClientOpOptions = {}): Promise<boolean> {
    this.assertTopicName(topic);
    return (await this.clientOps.run({ op: 'join', clientId, topic }, options.timeoutMs)) as boolean;
  }

  /**
   * `leave` wherever the client is (as {@link clusterJoin}). Resolves once it took effect: a connected protocol
   * client was sent `unsub`, and no publication of the topic reaches it afterwards, live or on a resume. `false`:
   * it was not a member, or no such client exists.
   * @throws StabilizerError (rejects) `OPERATION_TIMEOUT`, `BACKEND_UNAVAILABLE`.
   */
  async clusterLeave(clientId: string, topic: string, options: ClientOpOptions = {}): Promise<boolean> {
    if (topic === BROADCAST_TOPIC) return false;
    return this.clientOrFalse(this.clientOps.run({ op: 'leave', clientId, topic }, options.timeoutMs));
  }

  /**
   * `disconnect` wherever the client is. Resolves `true` once its socket closed with `code`; a terminal code
   * (1000, 4500–4999) also ends its session, detached or not (on Redis also one that no live node holds: it is
   * deleted from Redis, and its resume gets `fresh`). `false`: no such client, or a retryable code for a detached
   * session (nothing to close).
   * @throws StabilizerError (rejects) `OPERATION_TIMEOUT`, `BACKEND_UNAVAILABLE`.
   */
  async clusterDisconnect(
    clientId: string,
    code: number = CloseCode.Normal,
    reason = '',
    options: ClientOpOptions = {},
  ): Promise<boolean> {
    const op = { op: 'disconnect', clientId, code, reason } as const;
    return this.clientOrFalse(this.clientOps.run(op, options.timeoutMs));
  }

  /**
   * A client wherever it is: its node, whether it is connected, its `principal` and `data` (what `authenticate`
   * returned) and its topics. `undefined` for an unknown id.
   * @throws StabilizerError (rejects) `OPERATION_TIMEOUT`, `BACKEND_UNAVAILABLE`.
   */
  async fetchClient(clientId: string, options: ClientOpOptions = {}): Promise<ClientInfo<Data> | undefined> {
    try {
      return (await this.clientOps.run({ op: 'fetch', clientId }, options.timeoutMs)) as ClientInfo<Data>;
    } catch (err) {
      if (err instanceof StabilizerError && err.code === ErrorCode.UnknownClient) return undefined;
      throw err;
    }
  }

  private async clientOrFalse(p: Promise<unknown>): Promise<boolean> {
    try {
      return (await p) as boolean;
    } catch (err) {
      if (err instanceof StabilizerError && err.code === ErrorCode.UnknownClient) return false;
      throw err;
    }
  }

  private assertTopicName(topic: string): void {
    const invalid = this.topics.table.invalidName(topic);
    if (invalid) throw new StabilizerError(ErrorCode.InvalidTopic, `invalid topic name: ${invalid}`);
  }

  /** @internal A node asked this one to apply an operation on a client it holds (see `BackendHost`). */
  applyClientOp(op: ClientOp): Promise<ClientOpAnswer> {
    return this.clientOps.apply(op);
  }

  /**
   * Publish to every member of `topic`: one offset, one frame for all (PROTOCOL.md §2.6), kept once in the topic's
   * history for detached members. Same report as `broadcast`; a topic without members reports zeros (and still
   * takes an offset: offsets are never reused).
   */
  publish(topic: string, data: Out | BinaryPayload, options?: BroadcastOptions): BroadcastResult {
    const payload = data instanceof Payload ? data : new Payload(data);
    if (topic === BROADCAST_TOPIC) return this.broadcast(payload as Out, options); // a Payload is passed on as is
    if (this.backend.routePublish && this.topics.table.invalidName(topic) === undefined) {
      // A cluster backend: the topic may have members on other nodes, whether or not it has any here.
      const span = this.tracing?.fanOutStarted(topic);
      const routed = this.backend.routePublish(topic, payload, options ?? {});
      if (routed) return span ? fanOutEnded(span, routed) : routed;
    }
    const t = this.topics.table.get(topic);
    if (!t || t === this.topics.table.all) {
      if (t) return this.broadcast(payload as Out, options); // a Payload is passed on as it is
      // No members: a reliable publish still takes the topic's next offset (as on Redis); no one gets it.
      if (options?.volatile !== true && this.topics.table.invalidName(topic) === undefined)
        this.topics.table.publishIdle(topic);
      return { delivered: 0, buffered: 0, dropped: 0, failed: [] };
    }
    const span = this.tracing?.fanOutStarted(topic);
    const result = publishTo(this, this.topics.table, t, payload, options);
    return span ? fanOutEnded(span, result) : result;
  }

  /** Ids of the members of `topic` (sessions, connected or detached, and plain sockets). */
  getTopicMembers(topic: string): string[] {
    return this.topics.members(topic);
  }

  /**
   * The member count of every topic this process holds, `$all` left out (its members are every connection and
   * session). O(topics), without copying member lists; for metrics (`topicMetrics` of `registerPrometheusMetrics`).
   */
  getTopicMemberCounts(): Map<string, number> {
    const counts = new Map<string, number>();
    const { table } = this.topics;
    for (const name of table.names()) {
      const topic = table.get(name)!;
      if (topic !== table.all) counts.set(name, topic.members.size);
    }
    return counts;
  }

  /** The topics a client is a member of. */
  getClientTopics(clientId: string): string[] {
    return this.topics.topicsOf(clientId);
  }

  /** @internal */
  emitTopicEvent<K extends 'join' | 'leave'>(name: K, event: ManagerEvents[K]): void {
    // `join` and `leave` do not depend on `In` or `Data`.
    this.emitSafely(name, event as ManagerEvents<In, Data>[K], (err) =>
      this.reportError(event.clientId, err),
    );
  }

  /** @internal A cluster backend numbered a publication: write it to this process's members of its topic. */
  deliverPublication(topic: Topic, pub: Publication): void {
    deliverPublication(this, this.topics.table, topic, pub);
  }

  /** @internal This process's topics, for a cluster backend. */
  get topicTable(): TopicTable {
    return this.topics.table;
  }

  /** @internal A session loaded for a resume joins its topics here (see `BackendHost.adoptTopics`). */
  adoptTopics(session: SessionRecord): Promise<void> {
    return this.topics.adopt(session);
  }

  /** @internal The backend let a session go (it lives on elsewhere): it stops being a member of topics here. */
  override releaseSession(session: SessionRecord): void {
    super.releaseSession(session);
    this.topics.release(session);
  }

  protected connectionClosed(conn: Connection): void {
    if (conn.topics) this.topics.dropAll(conn.id, conn.topics, 'disconnect');
  }

  protected sessionEnded(session: SessionRecord): void {
    this.requests.sessionEnded(session);
    this.topics.dropAll(session.id, session.topics, 'session-end');
  }

  /** @internal Assign the next sequence on a session and keep the message for replay. */
  sequence(session: SessionRecord, payload: Payload): number {
    const seq = ++session.lastSeq;
    session.buffer.push({ seq, payload, atMs: this.nowMs });
    return seq;
  }

  /** @internal Disconnect a client whose write failed; returns the reason reported. */
  onWriteFailure(conn: Connection, outcome: WriteOutcome): 'slow-consumer' | 'send-failed' {
    if (outcome === 'slow') {
      this.log.warn({ event: 'send.failed', clientId: conn.id, reason: 'slow-consumer' }, 'slow consumer');
      conn.close(CloseCode.SlowConsumer, 'slow consumer', 'slow-consumer');
      return 'slow-consumer';
    }
    this.log.warn({ event: 'send.failed', clientId: conn.id, reason: 'send-failed' }, 'send failed');
    if (outcome !== 'closed') conn.terminate('send-failed'); // a closing socket keeps its close handshake
    return 'send-failed';
  }
}
