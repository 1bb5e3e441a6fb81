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
  _q: OutboxEntry[] = [];
  /** Sum of the frame sizes in {@link q}. */
  _bytes = 0;
  /** Last sequence number assigned in this session. */
  private _seq = 0;
  /** Largest frame the server accepts (from its welcome). */
  _maxFrame = Infinity;

  constructor(
    private readonly _maxMessages: number,
    private readonly _maxBytes: number,
  ) {}

  /** Numbers and queues a payload. @throws ClientError `QUEUE_FULL`; TypeError for a non-JSON payload. */
  _add(payload: unknown, ok: () => void, no: (err: Error) => void, fields?: string): OutboxEntry {
    const s = this._seq + 1;
    const f = dataFrame(payload, s, fields);
    const n = frameBytes(f);
    if (n > this._maxFrame) throw tooBig(n, this._maxFrame);
    if (this._q.length >= this._maxMessages || this._bytes + n > this._maxBytes) {
      throw new ClientError(
        ErrorCode.QueueFull,
        `queue full: ${this._q.length} messages, ${this._bytes} bytes`,
      );
    }
    const e: OutboxEntry = { s, f, n, ok, no };
    this._seq = s;
    this._bytes += n;
    this._q.push(e);
    return e;
  }

  /** Cumulative ack: resolves and removes every entry with a sequence ≤ `seq`. */
  _ack(seq: number): void {
    let e;
    while ((e = this._q[0]) && e.s <= seq) {
      this._q.shift();
      this._bytes -= e.n;
      e.ok();
    }
  }

  /**
   * After a welcome, numbers the entries for the server: on `resumed`, drops those up to `lastClientSeq` (the
   * server processed them) and numbers the rest from `lastClientSeq + 1`, which keeps their original sequences
   * unless `fail()` left a hole. On `fresh`, entries that were written may or may not have arrived, so they are
   * rejected with `SESSION_LOST`; the others are numbered from 1.
   */
  _welcome(lastClientSeq: number, fresh: boolean): void {
    const base = fresh ? 0 : lastClientSeq;
    this._ack(base);
    const q = this._q;
    const lost = new ClientError(ErrorCode.SessionLost, 'session lost before the ack');
    this._q = [];
    this._bytes = 0;
    this._seq = base;
    for (const e of q) {
      if (e.n > this._maxFrame) e.no(tooBig(e.n, this._maxFrame));
      else if (fresh && e.w) e.no(lost);
      else {
        if (e.s !== ++this._seq) e.n = frameBytes((e.f = renumber(e.f, (e.s = this._seq))));
        this._bytes += e.n;
        this._q.push(e);
      }
    }
  }

  /** Rejects every entry with `err`. The next welcome renumbers what is sent after. */
  _fail(err: Error): void {
    const q = this._q;
    this._q = [];
    this._bytes = 0;
    for (const e of q) e.no(err);
  }
}

const tooBig = (n: number, max: number) =>
  new ClientError(ErrorCode.MessageTooBig, `${n} bytes, over the limit of ${max}`);
