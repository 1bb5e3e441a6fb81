import type { RedisLink } from './link.js';
import type { LocalSession } from './sessions.js';

/**
 * Trimming of session inboxes in Redis by client acks. Acks of one tick are merged per session (the highest wins)
 * and sent as one script each. An ack that does not advance past what this node already sent for the session's
 * current generation costs nothing in Redis: heartbeat pongs carry the client's last sequence, and on an idle
 * session that is the same number every time.
 *
 * Trimming is an optimisation (the inbox is bounded by count, bytes and age anyway), so a failed or skipped trim
 * is covered by the next ack that advances.
 */
export class AckTrimmer {
  private readonly pending = new Map<LocalSession, number>();
  /** Per session: the highest sequence whose trim was sent, and the generation it was sent for. */
  private readonly sent = new WeakMap<LocalSession, { g: string; seq: number }>();
  private flushTimer: ReturnType<typeof setImmediate> | undefined;

  constructor(private readonly link: RedisLink) {}

  /** Record an ack of `seq` by `ls`; sent on the next tick if it advances. */
  ack(ls: LocalSession, seq: number): void {
    if (this.link.degraded) return;
    const done = this.sent.get(ls);
    if (seq <= (done?.g === ls.g ? done.seq : 0)) return;
    if (seq <= (this.pending.get(ls) ?? 0)) return;
    this.pending.set(ls, seq);
    this.flushTimer ??= setImmediate(() => this.flush());
  }

  /** Send the merged acks now. */
  flush(): void {
    if (this.flushTimer) clearImmediate(this.flushTimer);
    this.flushTimer = undefined;
    for (const [ls, seq] of this.pending) {
      const g = ls.g;
      const before = this.sent.get(ls);
      const mark = { g, seq };
      this.sent.set(ls, mark);
      this.link.call('wssAck', [ls.record.id, g, seq]).catch(() => {
        // Not trimmed: let the next ack of this generation try again.
        if (this.sent.get(ls) === mark) {
          if (before && before.g === g) this.sent.set(ls, before);
          else this.sent.delete(ls);
        }
      });
    }
    this.pending.clear();
  }

  /** Forget unsent acks (Redis lost its history: the sessions are gone). */
  clear(): void {
    this.pending.clear();
  }
}
