import type { ReplayLimits } from './replay-buffer.js';
import { newIncarnation, newSessionRecord } from './session-record.js';
import type { SessionInfo, SessionLookup, SessionOwner, SessionRecord, SessionStore } from './types.js';

export interface MemoryBackendOptions {
  /**
   * How many expired (or evicted) session ids are remembered, so a late resume hears `expired` (`evicted`) rather
   * than `unknown-session`.
   * @default 10000
   */
  maxTombstones?: number;
  /**
   * How long a tombstone is kept.
   * @default 3600000 (1 hour)
   */
  tombstoneTtlMs?: number;
}

/**
 * The default backend: everything in this process's memory. Sessions do not survive a restart (a resume after a
 * restart gets `fresh` with `unknown-session`), and nothing is shared between processes.
 */
export class MemoryBackend implements SessionStore {
  readonly name = 'memory';
  /**
   * Nonce → expiry. Tokens carry different TTLs (`generateReconnectToken(id, { ttlMs })`, resume tokens), so
   * insertion order is not expiry order: the sweep checks every entry rather than stopping at the first live one.
   */
  private readonly nonces = new Map<string, number>();
  private readonly sessionsById = new Map<string, SessionRecord>();
  /** Expired or evicted session id → what a late resume hears, and when the tombstone itself expires. */
  private readonly tombstones = new Map<string, { reason: 'expired' | 'evicted'; untilMs: number }>();
  private readonly maxTombstones: number;
  private readonly tombstoneTtlMs: number;

  constructor(options: MemoryBackendOptions = {}) {
    this.maxTombstones = options.maxTombstones ?? 10_000;
    this.tombstoneTtlMs = options.tombstoneTtlMs ?? 3_600_000;
  }

  claimNonce(nonce: string, expiresAtMs: number): boolean {
    if (this.nonces.has(nonce)) return false;
    this.nonces.set(nonce, expiresAtMs);
    return true;
  }

  releaseNonce(nonce: string): void {
    this.nonces.delete(nonce);
  }

  /** Number of nonces currently remembered (for tests and stats). */
  get nonceCount(): number {
    return this.nonces.size;
  }

  createSession(id: string, limits: ReplayLimits, owner: SessionOwner = {}): SessionRecord {
    const session = newSessionRecord(id, limits, newIncarnation(), owner);
    this.sessionsById.set(id, session);
    this.tombstones.delete(id);
    return session;
  }

  getSession(id: string): SessionRecord | undefined {
    return this.sessionsById.get(id);
  }

  inspectSession(id: string): SessionInfo | undefined {
    const s = this.sessionsById.get(id);
    return s && { incarnation: s.incarnation, principal: s.principal, data: s.data };
  }

  async findSession(id: string, _limits: ReplayLimits, incarnation: string): Promise<SessionLookup> {
    const session = this.sessionsById.get(id);
    if (session?.incarnation === incarnation) return { found: true, session };
    if (session) return { found: false, reason: 'unknown-session' }; // a newer session under the same id
    return { found: false, reason: this.tombstones.get(id)?.reason ?? 'unknown-session' };
  }

  deleteSession(id: string, tombstone: boolean | 'evicted'): void {
    if (!this.sessionsById.delete(id) || tombstone === false) return;
    if (this.tombstones.size >= this.maxTombstones) {
      const oldest = this.tombstones.keys().next().value;
      if (oldest !== undefined) this.tombstones.delete(oldest);
    }
    this.tombstones.set(id, {
      reason: tombstone === 'evicted' ? 'evicted' : 'expired',
      untilMs: Date.now() + this.tombstoneTtlMs,
    });
  }

  sessions(): IterableIterator<SessionRecord> {
    return this.sessionsById.values();
  }

  get sessionCount(): number {
    return this.sessionsById.size;
  }

  sweep(nowMs: number): void {
    for (const [nonce, expiresAtMs] of this.nonces) {
      if (expiresAtMs <= nowMs) this.nonces.delete(nonce);
    }
    for (const [id, { untilMs }] of this.tombstones) {
      if (untilMs > nowMs) break;
      this.tombstones.delete(id);
    }
  }

  async close(): Promise<void> {
    this.nonces.clear();
    this.sessionsById.clear();
    this.tombstones.clear();
  }
}
