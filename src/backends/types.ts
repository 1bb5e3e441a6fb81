import type { ReplayBuffer, ReplayLimits } from './replay-buffer.js';

/**
 * A protocol-mode session: the state that outlives one socket. Held in memory by the process that serves it;
 * a cluster backend also persists it so another process can take it over.
 */
export interface SessionRecord {
  readonly id: string;
  /** Highest server → client sequence assigned. */
  lastSeq: number;
  /** Highest client → server sequence processed. */
  lastClientSeq: number;
  /** Sent reliable messages not yet acknowledged. */
  readonly buffer: ReplayBuffer;
  /** When the session lost its socket (epoch ms), or `undefined` while a socket is attached. */
  detachedAtMs: number | undefined;
}

/** What a session lookup for a resume found. */
export type SessionLookup =
  | { found: true; session: SessionRecord }
  | { found: false; reason: 'unknown-session' | 'expired' };

/**
 * The storage seam: everything the manager keeps beyond one socket goes through this interface. `MemoryBackend`
 * is the default; `websocket-stabilizer/redis` is the cluster implementation.
 */
export interface StorageBackend {
  /** Short name for logs and stats, e.g. `memory`, `redis`. */
  readonly name: string;
  /** Record a reconnect token's nonce as used until `expiresAtMs`. Resolves `false` if it was used before. */
  claimNonce(nonce: string, expiresAtMs: number): boolean | Promise<boolean>;
  /** Create a new session with empty buffers. */
  createSession(id: string, limits: ReplayLimits): SessionRecord;
  /** A session held by this process, synchronously (hot path). */
  getSession(id: string): SessionRecord | undefined;
  /** Find a session for a resume; a cluster backend may load it from shared storage. */
  findSession(id: string, limits: ReplayLimits): Promise<SessionLookup>;
  /** Forget a session (expired or replaced by a fresh one). `expired` keeps a tombstone for `expired` answers. */
  deleteSession(id: string, expired: boolean): void;
  /** Every session held by this process, attached or detached (broadcasts reach detached sessions too). */
  sessions(): IterableIterator<SessionRecord>;
  /** Number of sessions held by this process. */
  readonly sessionCount: number;
  /** Drop expired nonces and tombstones. Called from the manager's sweep; no timer per entry. */
  sweep(nowMs: number): void;
  /** Release resources the backend opened itself. */
  close(): Promise<void>;
}
