/** Reports per second before the rest are only counted. */
export const REPORTS_PER_SECOND = 5;
const WINDOW_MS = 1000;

/**
 * Reports failed background operations (a publish or send whose promise nobody awaits) without flooding the log
 * during an outage: at most {@link REPORTS_PER_SECOND} a second go to `report` (the manager's `error` log line and
 * event); the others are counted and summed up in one `summary` line when the second is over. The caller's own
 * promise still rejects with each error.
 */
export class ErrorReport {
  private startMs = 0;
  private reported = 0;
  private suppressed = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly report: (err: unknown, clientId: string | undefined) => void,
    private readonly summary: (suppressed: number) => void,
  ) {}

  add(err: unknown, clientId?: string): void {
    const nowMs = Date.now();
    if (nowMs - this.startMs >= WINDOW_MS) {
      this.startMs = nowMs;
      this.reported = 0;
    }
    if (this.reported < REPORTS_PER_SECOND) {
      this.reported++;
      return this.report(err, clientId);
    }
    this.suppressed++;
    this.timer ??= setTimeout(
      () => {
        this.timer = undefined;
        const n = this.suppressed;
        this.suppressed = 0;
        this.summary(n);
      },
      WINDOW_MS - (nowMs - this.startMs),
    ).unref();
  }
}
