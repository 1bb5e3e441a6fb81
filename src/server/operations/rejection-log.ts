import { upgradeRejectionStatus, type UpgradeRejectionReason } from './counters.js';
import type { Logger } from './logger.js';

/** Upgrade rejections logged per HTTP status and second; the rest are counted and summed up in one line. */
export const UPGRADE_REJECTION_LOGS_PER_SECOND = 10;

const WINDOW_MS = 1000;

interface Window {
  startMs: number;
  logged: number;
  suppressed: number;
  /** Pending summary of this window, written when it ends. */
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * Logs refused upgrades (`upgrade.rejected` with status, reason and remote address) without letting an attack
 * flood the log: per HTTP status, at most {@link UPGRADE_REJECTION_LOGS_PER_SECOND} lines a second, then one
 * `upgrade.rejected.suppressed` line with the count of those left out when the second is over.
 */
export class UpgradeRejectionLog {
  private readonly windows = new Map<number, Window>();

  constructor(
    private readonly log: Logger,
    private readonly maxPerSecond = UPGRADE_REJECTION_LOGS_PER_SECOND,
  ) {}

  record(
    reason: UpgradeRejectionReason,
    remoteAddress: string | undefined,
    status = upgradeRejectionStatus[reason],
    detail?: Record<string, string | undefined>,
  ): void {
    const nowMs = Date.now();
    let w = this.windows.get(status);
    if (!w || nowMs - w.startMs >= WINDOW_MS) {
      if (w) this.flush(status, w);
      w = { startMs: nowMs, logged: 0, suppressed: 0, timer: undefined };
      this.windows.set(status, w);
    }
    if (w.logged < this.maxPerSecond) {
      w.logged++;
      const fields = { event: 'upgrade.rejected', status, reason, remoteAddress, ...detail };
      // A refusal while shutting down is the expected answer; the others may deserve a look.
      if (reason === 'shutting-down') this.log.info(fields, 'upgrade rejected');
      else if (reason === 'origin-not-allowed') {
        this.log.warn(
          fields,
          'upgrade rejected: Origin is not this server nor in allowedOrigins (behind a proxy: set trustProxy)',
        );
      } else this.log.warn(fields, 'upgrade rejected');
      return;
    }
    w.suppressed++;
    if (w.timer === undefined) {
      const window = w;
      window.timer = setTimeout(() => this.flush(status, window), window.startMs + WINDOW_MS - nowMs);
      window.timer.unref();
    }
  }

  /** Write the summary of a window that suppressed lines (once), and forget it if it is still the current one. */
  private flush(status: number, w: Window): void {
    clearTimeout(w.timer);
    w.timer = undefined;
    if (this.windows.get(status) === w) this.windows.delete(status);
    if (w.suppressed === 0) return;
    this.log.warn(
      { event: 'upgrade.rejected.suppressed', status, suppressed: w.suppressed, windowMs: WINDOW_MS },
      `${w.suppressed} more upgrades rejected with ${status}`,
    );
    w.suppressed = 0;
  }
}
