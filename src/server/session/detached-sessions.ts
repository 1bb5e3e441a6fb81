import type { ByteMeter } from '../../backends/replay-buffer.js';
import type { SessionRecord } from '../../backends/types.js';

/** Estimated heap cost of one session record beyond its replay entries (measured ~0.75 KB at rest). */
export const SESSION_OVERHEAD_BYTES = 1024;

/**
 * The protocol sessions without a socket, in the order they were detached (so the first one expires first and is
 * evicted first), with a running estimate of the memory they hold: each member's replay buffer reports its
 * changes here while it is detached. `add`, `delete` and `clear` keep the estimate; `onAdd` / `onOverBudget`
 * let the manager schedule expiry and eviction.
 */
export class DetachedSessions extends Set<SessionRecord> implements ByteMeter {
  /** Estimated bytes held: {@link SESSION_OVERHEAD_BYTES} per session plus each replay buffer's footprint. */
  bytes = 0;
  onAdd: () => void = () => {};
  onOverBudget: () => void = () => {};
  budgetBytes = Infinity;

  override add(session: SessionRecord): this {
    if (this.has(session)) return this;
    super.add(session);
    session.buffer.meter = this;
    this.bytes += SESSION_OVERHEAD_BYTES + session.buffer.footprintBytes;
    this.onAdd();
    this.onGrow();
    return this;
  }

  override delete(session: SessionRecord): boolean {
    if (!super.delete(session)) return false;
    if (session.buffer.meter === this) session.buffer.meter = undefined;
    this.bytes -= SESSION_OVERHEAD_BYTES + session.buffer.footprintBytes;
    return true;
  }

  override clear(): void {
    for (const session of this) if (session.buffer.meter === this) session.buffer.meter = undefined;
    super.clear();
    this.bytes = 0;
  }

  /** The session detached longest ago. */
  oldest(): SessionRecord | undefined {
    return this.values().next().value;
  }

  /** @internal Called by a member's replay buffer after it grew. */
  onGrow(): void {
    if (this.bytes > this.budgetBytes) this.onOverBudget();
  }
}
