import { ErrorCode } from '../protocol/index.js';
import { ClientError } from './errors.js';
import { dataFrame, frameBytes, renumber } from './frames.js';

/** One reliable message waiting for the server's ack. */
export interface OutboxEntry {
  /** Client sequence number in the current session. */
  s: number;
  /** The encoded frame, ready to write. */
  f: string | Uint8Array;
  /** Frame size in bytes. */
  n: number;
  /** Written to a socket at least once. */
  w?: boolean;
  ok(): void;
  no(err: Error): void;
}

/**
 * Reliable client → server messages that the server has not acked yet: those queued while offline and those in
 * flight. Bounded by count and bytes; when a new message does not fit, **the new message** is refused with
 * `QUEUE_FULL` and nothing already accepted is dropped.
 */
export class Outbox {
  /** Unacked entries, in sequence order. */
  q: OutboxEntry[] = [];
  /** Sum of the frame sizes in {@link q}. */
  bytes = 0;
  /** Last sequence number assigned in this session. */
  private seq = 0;
  /** Largest frame the server accepts (from its welcome). */
  maxFrame = Infinity;

  constructor(
    private readonly maxMessages: number,
    private readonly maxBytes: number,
  ) {}

  /** Numbers and queues a payload. @throws ClientError `QUEUE_FULL`; TypeError for a non-JSON payload. */
  add(payload: unknown, ok: () => void, no: (err: Error) => void): OutboxEntry {
    const s = this.seq + 1;
    const f = dataFrame(payload, s);
    const n = frameBytes(f);
    if (n > this.maxFrame) throw tooBig(n, this.maxFrame);
    if (this.q.length >= this.maxMessages || this.bytes + n > this.maxBytes) {
      throw new ClientError(
        ErrorCode.QueueFull,
        `queue full: ${this.q.length} messages, ${this.bytes} bytes; ${n} more bytes do not fit`,
      );
    }
    const e: OutboxEntry = { s, f, n, ok, no };
    this.seq = s;
    this.bytes += n;
    this.q.push(e);
    return e;
  }

  /** Cumulative ack: resolves and removes every entry with a sequence ≤ `seq`. */
  ack(seq: number): void {
    let e;
    while ((e = this.q[0]) && e.s <= seq) {
      this.q.shift();
      this.bytes -= e.n;
      e.ok();
    }
  }

  /**
   * After a welcome, numbers the entries for the server: on `resumed`, drops those up to `lastClientSeq` (the
   * server processed them) and numbers the rest from `lastClientSeq + 1`, which keeps their original sequences
   * unless `fail()` left a hole. On `fresh`, entries that were written may or may not have arrived, so they are
   * rejected with `SESSION_LOST`; the others are numbered from 1.
   */
  welcome(lastClientSeq: number, fresh: boolean): void {
    const base = fresh ? 0 : lastClientSeq;
    this.ack(base);
    const q = this.q;
    const lost = new ClientError(ErrorCode.SessionLost, 'session lost before the server acked this message');
    this.q = [];
    this.bytes = 0;
    this.seq = base;
    for (const e of q) {
      if (e.n > this.maxFrame) e.no(tooBig(e.n, this.maxFrame));
      else if (fresh && e.w) e.no(lost);
      else {
        if (e.s !== ++this.seq) e.n = frameBytes((e.f = renumber(e.f, (e.s = this.seq))));
        this.bytes += e.n;
        this.q.push(e);
      }
    }
  }

  /** Rejects every entry with `err`. The next welcome renumbers what is sent after. */
  fail(err: Error): void {
    const q = this.q;
    this.q = [];
    this.bytes = 0;
    for (const e of q) e.no(err);
  }
}

const tooBig = (n: number, max: number) =>
  new ClientError(ErrorCode.MessageTooBig, `message of ${n} bytes is over the server's limit of ${max}`);
