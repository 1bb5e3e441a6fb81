import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/**
 * Event-loop delay over windows that end when they are read: each `readP99Ms()` returns the 99th percentile of the
 * delays sampled since the previous read, then starts a new window. A window too short to hold a sample returns
 * the previous window's value. Built on `perf_hooks.monitorEventLoopDelay` (a libuv timer, off the hot path).
 */
export class EventLoopDelayWindow {
  private readonly histogram: IntervalHistogram;
  private lastP99Ms = 0;

  constructor(private readonly resolutionMs: number) {
    this.histogram = monitorEventLoopDelay({ resolution: resolutionMs });
    this.histogram.enable();
  }

  /** p99 of how late the sampling timer fired (ms) since the previous call. */
  readP99Ms(): number {
    const h = this.histogram;
    if (h.count > 0) {
      // The histogram holds whole intervals between timer runs; the delay is what exceeds the resolution.
      this.lastP99Ms = Math.max(0, h.percentile(99) / 1e6 - this.resolutionMs);
      h.reset();
    }
    return this.lastP99Ms;
  }

  /** Stop sampling. */
  stop(): void {
    this.histogram.disable();
  }
}
