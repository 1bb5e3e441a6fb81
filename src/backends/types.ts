import type { ReplayBuffer, ReplayLimits } from './replay-buffer.js';

/**
 * A protocol-mode session: the state that outlives one socket. Held in memory by the process that serves it;
 * a cluster backend also persists it so another process can take it over.
 */
export interface SessionRecord {
  /** The client id: the `authenticate` hook's `clientId`, or a random one. Reused by every session of that client. */
  readonly id: string;
  /**
   * Random id of this session (16 base64url characters), unique across sessions, nodes and restarts: a fresh session
   * under the same client id gets a new one, a resume keeps it. Resume tokens are bound to it, and a reliable client
   * message's `messageId` is `<incarnation>:<seq>`.
   */
  readonly incarnation: string;
  /** The stable principal `authenticate` returned for the connection that created the session; resumes must match. */
  principal?: string;
  /**
   * The `data` of the connection that created the session, shown to `authorizeResume`. On the Redis backend, a node
   * that loads the session from Redis sees the JSON round trip of it (`undefined` if it was not JSON-serializable).
   */
  data?: unknown;
  /** Highest server → client sequence assigned. */
  lastSeq: number;
  /** Highest client → server sequence processed. */
  lastClientSeq: number;
  /** Sent reliable messages not yet acknowledged. */
  readonly buffer: ReplayBuffer;
  /** When the session lost its socket (epoch ms), or `undefined` while a socket is attached. */
  detachedAtMs: number | undefined;
  /**
   * The topics the session is a member of, each with the offset it joined at (its position can never be before
   * it). Includes the built-in `$all` on backends that serve broadcasts through topics.
   */
  readonly topics: Map<string, number>;
  /**
   * Cluster backends: the epoch of each topic's history when the session joined it (see `Topic.epoch`); a topic
   * whose epoch changed since is resumed as `fresh` `gap`. `undefined` on the in-memory backend.
   */
  topicEpochs?: Map<string, string>;
  /** The remote IP that created the session, counted by `maxSessionsPerIp` (set by the manager). */
  remoteAddress?: string;
  /** Inbound rate-limit bucket, kept with the session so that a resume does not refill it (set by the manager). */
  rate?: RateBucket;
}

/** A token bucket: `tokens` left as of `refilledAtMs` (epoch ms). */
export interface RateBucket {
  tokens: number;
  refilledAtMs: number;
}

/** Who created a session: stored with it, checked on every resume. */
export interface SessionOwner {
  principal?: string;
  data?: unknown;
}

/** What `inspectSession` tells about a session before a resume touches it. */
export interface SessionInfo {
  incarnation: string;
  principal: string | undefined;
  data: unknown;
}

/**
 * What a session lookup for a resume found. `superseded` (cluster backends): while this lookup was in flight,
 * another resume of the same session on this node, or a takeover, overtook it; the hello is answered as stale.
 */
export type SessionLookup =
  | { found: true; session: SessionRecord }
  | { found: false; reason: 'unknown-session' | 'expired' | 'evicted' | 'superseded' };

/**
 * The session store of the storage seam: what every backend implements (`MemoryBackend` implements only this).
 * The cluster hooks on top of it, which speak in the server's connections, payloads and topics, are in
 * `StorageBackend` (src/server/storage-backend.ts), so this floor imports nothing from the server.
 */
export interface SessionStore {
  /** Short name for logs and stats, e.g. `memory`, `redis`. */
  readonly name: string;
  /** Record a reconnect token's nonce as used until `expiresAtMs`. Resolves `false` if it was used before. */
  claimNonce(nonce: string, expiresAtMs: number): boolean | Promise<boolean>;
  /**
   * Forget a claimed nonce: a resume whose `welcome` the client never confirmed (the socket died first) gives
   * its token back, so a welcome lost in transit does not burn the session.
   */
  releaseNonce(nonce: string): void | Promise<void>;
  /** Create a new session with empty buffers and a new random incarnation, owned by `owner`. */
  createSession(id: string, limits: ReplayLimits, owner?: SessionOwner): SessionRecord;
  /** A session held by this process, synchronously (hot path). */
  getSession(id: string): SessionRecord | undefined;
  /**
   * Read a session's incarnation and owner without changing anything (a cluster backend reads shared storage), so
   * a resume can be checked before it takes the session over. `undefined` if there is none under `id`.
   */
  inspectSession(id: string): SessionInfo | undefined | Promise<SessionInfo | undefined>;
  /**
   * Find session `id` for a resume, only if it is still `incarnation` (else `unknown-session`); a cluster backend
   * claims it in shared storage.
   */
  findSession(id: string, limits: ReplayLimits, incarnation: string): Promise<SessionLookup>;
  /**
   * Forget a session (ended, expired, evicted or replaced by a fresh one). `tombstone`: `true` keeps a tombstone
   * for `expired` answers to a later resume, `'evicted'` one for `evicted` answers, `false` none.
   */
  deleteSession(id: string, tombstone: boolean | 'evicted'): void;
  /** Every session held by this process, attached or detached (broadcasts reach detached sessions too). */
  sessions(): IterableIterator<SessionRecord>;
  /** Number of sessions held by this process. */
  readonly sessionCount: number;
  /** Drop expired nonces and tombstones. Called from the manager's sweep; no timer per entry. */
  sweep(nowMs: number): void;
  /** Release resources the backend opened itself. */
  close(): Promise<void>;
  /**
   * `true` when sessions outlive this process (shared storage): on graceful shutdown they are detached, kept for
   * a resume on another node, rather than ended.
   * @default false
   */
  readonly sessionsOutliveProcess?: boolean;
  /**
   * `true` while the backend cannot reach its shared storage (the Redis backend when Redis is down). Readiness
   * probes report it; `undefined` means the backend has no such state (the in-memory one).
   */
  readonly degraded?: boolean;
  /** Operations sent to shared storage and not yet answered (the Redis backend); read by metrics. */
  readonly pendingOps?: number;
}
