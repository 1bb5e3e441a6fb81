import type { Payload } from '../frames/payload.js';

/** One reliable message kept for replay. The payload object is shared with other sessions' buffers. */
export interface ReplayEntry {
  /** Sequence (inbox) or offset (topic history). */
  readonly seq: number;
  readonly payload: Payload;
  readonly atMs: number;
}

/**
 * Estimated heap cost of one entry beyond its payload bytes (the entry object and its slot), for memory budgets.
 * The payload itself is counted in full for every session that holds it, although sessions share it.
 */
export const REPLAY_ENTRY_OVERHEAD_BYTES = 64;

/** Receives a buffer's changes of {@link ReplayBuffer.footprintBytes} while attached to it. */
export interface ByteMeter {
  bytes: number;
  /** Called after a change that left `bytes` over the meter's budget. */
  onGrow(): void;
}

export interface ReplayLimits {
  maxMessages: number;
  maxBytes: number;
  maxAgeMs: number;
}

/**
 * Reliable messages kept for replay, bounded by count, bytes and age: a session's sent and not yet acknowledged
 * direct messages, or a topic's history (never acked, trimmed by its bounds only). Evicting a message records
 * `evictedThrough`, which turns the next resume from before that point into a `gap`.
 * A ring of entries with a moving head: push and trim are O(1) amortized.
 */
export class ReplayBuffer<E extends ReplayEntry = ReplayEntry> {
  private entries: E[] = [];
  private head = 0;
  private totalBytes = 0;
  /** Highest sequence dropped before it was acknowledged (0 if none). */
  evictedThrough = 0;
  /** Highest sequence no longer held, for any reason (ack or eviction): entries after it are contiguous. */
  droppedThrough = 0;
  /** Set while the session is detached: the manager's budget of detached-session memory. */
  meter: ByteMeter | undefined = undefined;

  constructor(readonly limits: ReplayLimits) {}

  get size(): number {
    return this.entries.length - this.head;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** Estimated heap held: payload bytes plus {@link REPLAY_ENTRY_OVERHEAD_BYTES} per entry. */
  get footprintBytes(): number {
    return this.totalBytes + this.size * REPLAY_ENTRY_OVERHEAD_BYTES;
  }

  push(entry: E): void {
    this.entries.push(entry);
    this.totalBytes += entry.payload.bytes;
    if (this.meter) this.meter.bytes += entry.payload.bytes + REPLAY_ENTRY_OVERHEAD_BYTES;
    while (this.size > this.limits.maxMessages || this.totalBytes > this.limits.maxBytes) this.evictOne();
    this.compact();
    this.meter?.onGrow();
  }

  /** Drop every entry with a sequence `≤ seq` (a cumulative ack). */
  ack(seq: number): void {
    while (this.size > 0 && this.entries[this.head]!.seq <= seq) this.dropHead();
    this.compact();
  }

  /** Drop entries older than `maxAgeMs` (they count as evicted). */
  expire(nowMs: number): void {
    const oldest = nowMs - this.limits.maxAgeMs;
    while (this.size > 0 && this.entries[this.head]!.atMs < oldest) this.evictOne();
    this.compact();
  }

  /**
   * The entries after `lastSeq`, or `undefined` if any of them was evicted: a replay is all or nothing.
   * `lastSeq` must not be ahead of the session's last sequence (the caller checks).
   */
  since(lastSeq: number): E[] | undefined {
    // Below what is held: evicted, or acknowledged earlier (a client contradicting its own ack). Never partial.
    if (lastSeq < this.droppedThrough) return undefined;
    // Sequences grow along the ring: binary search for the first entry after `lastSeq`.
    let lo = this.head;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid]!.seq > lastSeq) hi = mid;
      else lo = mid + 1;
    }
    return this.entries.slice(lo);
  }

  clear(): void {
    if (this.meter) this.meter.bytes -= this.footprintBytes;
    this.entries = [];
    this.head = 0;
    this.totalBytes = 0;
  }

  private evictOne(): void {
    this.evictedThrough = this.entries[this.head]!.seq;
    this.dropHead();
  }

  private dropHead(): void {
    const e = this.entries[this.head]!;
    this.droppedThrough = e.seq;
    this.entries[this.head] = undefined as unknown as E;
    this.head++;
    this.totalBytes -= e.payload.bytes;
    if (this.meter) this.meter.bytes -= e.payload.bytes + REPLAY_ENTRY_OVERHEAD_BYTES;
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
