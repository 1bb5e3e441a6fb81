import type { ReplayLimits } from '../backends/replay-buffer.js';
import type { SessionRecord, SessionStore } from '../backends/types.js';
import type { Payload } from '../frames/payload.js';
import type { BroadcastOptions, BroadcastResult, DeliveryFailure } from './topics/broadcast.js';
import type { ClientOp, ClientOpAnswer, ClientOpRoute } from './topics/client-op-types.js';
import type { Connection, WriteOutcome } from './transport/connection.js';
import type { Logger } from './operations/logger.js';
import type { Publication } from './topics/publication.js';
import type { Topic, TopicTable } from './topics/topics.js';

/**
 * The storage seam: everything the manager keeps beyond one socket goes through this interface. `MemoryBackend`
 * is the default (the {@link SessionStore} part only); `websocket-stabilizer/redis` is the cluster implementation.
 */
export interface StorageBackend extends SessionStore {
  // ------------------------------------------------------------------------------------------------------------
  // Optional cluster hooks. `MemoryBackend` implements none of them; `websocket-stabilizer/redis` implements all.
  // The manager calls each one (if present) at the point named, synchronously, and never awaits except where a
  // hook returns a promise (`persistClientSeq`).

  /** Called once by the manager's constructor: the backend delivers cluster messages to this manager's sockets. */
  bind?(host: BackendHost): void;
  /**
   * `sendToClient`: take over the send. Return `undefined` to let the manager write it locally (plain or volatile
   * to a local socket, or the backend is degraded). A cluster backend sequences reliable messages in shared
   * storage and writes them to the socket only once they are durable.
   */
  routeSend?(
    clientId: string,
    payload: Payload,
    volatile: boolean,
  ): 'sent' | 'buffered' | 'dropped' | undefined;
  /**
   * `publish` and `broadcast` (topic `$all`): take over the numbering and the fan-out to every node, or return
   * `undefined` for the local in-memory path. A cluster backend numbers a reliable publication in shared storage
   * and delivers it on every node (this one included) once it is stored, through {@link BackendHost.deliverPublication}.
   */
  routePublish?(topic: string, payload: Payload, options: BroadcastOptions): BroadcastResult | undefined;
  /**
   * A named topic got its first member on this process (`$all` is open from `bind` on). A cluster backend starts
   * following it; until the promise of {@link topicReady} settles, the topic's offset is not known yet.
   */
  topicOpened?(topic: Topic): void;
  /** The last member of a named topic on this process left: stop following it. */
  topicClosed?(topic: Topic): void;
  /** `undefined` when `topic` is in step with shared storage; else a promise that settles once it is. */
  topicReady?(topic: Topic): Promise<void> | undefined;
  /**
   * While `topic` is not ready ({@link topicReady}): the offset (and epoch) shared storage had when this process
   * started loading it, which a member joining meanwhile starts from, so that it misses nothing published after
   * its join. Settles before the promise of {@link topicReady}; `undefined` if that read failed.
   */
  topicJoinOffset?(topic: Topic): Promise<{ offset: number; epoch: string } | undefined> | undefined;
  /**
   * `memberId` (a session, or a plain connection when `session` is `undefined`) joined `topic` at `topic.offset`
   * (after {@link topicReady}). A cluster backend stores it with the session and in the topic's presence.
   */
  onTopicJoin?(memberId: string, session: SessionRecord | undefined, topic: Topic): void;
  /** `memberId` left topic `name` for good (not when its session moved to another node). */
  onTopicLeave?(memberId: string, session: SessionRecord | undefined, name: string): void;
  /**
   * A reliable client message with sequence `seq` was delivered to the application. The server acks it only when
   * the promise resolves (the sequence is durable); `undefined` means ack at once.
   */
  persistClientSeq?(session: SessionRecord, seq: number): Promise<void> | undefined;
  /** The client acknowledged every server message up to `seq` (the manager already trimmed `session.buffer`). */
  onAck?(session: SessionRecord, seq: number): void;
  /**
   * A cluster-wide operation on a client that neither a connection nor a session of this process holds
   * (`clusterJoin`, `clusterLeave`, `clusterDisconnect`, `fetchClient`): run it where the client is, or on its
   * stored session when no live node holds it. `requestId` is the same for every attempt of one operation (the
   * owner answers a repeated one once). `done`: it took effect (with the result); `retry`: the client moved or
   * is being resumed, try again (this process first). Rejects `UNKNOWN_CLIENT` when nobody has it.
   */
  routeClientOp?(op: ClientOp, requestId: string, attemptTimeoutMs: number): Promise<ClientOpRoute>;
  /**
   * After this process applied `op` to a session it holds: resolves `true` once shared storage reflects it (the
   * session's topic stored or removed, or the session deleted), `false` if the session moved to another process
   * first (the operation is then retried there).
   */
  confirmClientOp?(session: SessionRecord, op: ClientOp): Promise<boolean>;
  /** `true` while a resume is loading session `clientId` into this process: an operation on it waits. */
  isClientBusy?(clientId: string): boolean;
  /** The default `timeoutMs` of the cluster-wide client operations. @default 10000 (memory: local only) */
  readonly clientOpTimeoutMs?: number;
  /** This process's id in the cluster (`fetchClient().nodeId`); `undefined` on the in-memory backend. */
  readonly nodeId?: string;
  /** A connection entered the registry (with its session in protocol mode). */
  onAttach?(clientId: string, session: SessionRecord | undefined): void;
  /** A registered connection closed. `retained`: its session is kept for a resume. */
  onDetach?(clientId: string, session: SessionRecord | undefined, retained: boolean): void;
}

/** What a cluster backend may use of the manager that bound it (the manager implements it). */
export interface BackendHost {
  readonly connections: ReadonlyMap<string, Connection>;
  /** Sessions without a socket; a backend that loads a session for a resume adds it here until it attaches. */
  readonly detachedSessions: Set<SessionRecord>;
  /** The backend forgot a session without the manager asking (it moved to another node, or its history is gone). */
  releaseSession(session: SessionRecord): void;
  readonly nowMs: number;
  readonly log: Logger;
  readonly isShuttingDown: boolean;
  readonly config: {
    readonly sessionTtlMs: number;
    readonly replay: ReplayLimits;
    readonly tokens: { readonly secret: Uint8Array | undefined };
    /** `topics.maxPerConnection`, which a join applied to a stored session checks too. */
    readonly topics?: { readonly maxPerConnection: number };
  };
  /** Disconnect a client whose write failed and report it. */
  onWriteFailure(conn: Connection, outcome: WriteOutcome): DeliveryFailure['reason'];
  /** Log and emit an `error` event. */
  reportError(clientId: string | undefined, err: unknown): void;
  /** This process's topics (each named one while it has members here, and `$all`). */
  readonly topicTable: TopicTable;
  /** Write a publication numbered by the backend to this process's members of its topic. */
  deliverPublication(topic: Topic, pub: Publication): void;
  /**
   * A session loaded for a resume (its `topics` filled from shared storage): make it a member of its topics here
   * and resolve once every one is in step, so that the resume is planned from complete histories.
   */
  adoptTopics(session: SessionRecord): Promise<void>;
  /** Apply a cluster-wide client operation here, if this process holds the client (asked by another node). */
  applyClientOp(op: ClientOp): Promise<ClientOpAnswer>;
}
