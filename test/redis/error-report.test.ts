import { afterEach, describe, expect, it, vi } from 'vitest';
import { ErrorReport, REPORTS_PER_SECOND } from '../../src/redis/error-report.js';

// Failed background publishes and sends during an outage: a few reported a second, the rest summed up.

afterEach(() => {
  vi.useRealTimers();
});

describe('ErrorReport', () => {
  it('reports at most REPORTS_PER_SECOND a second and sums the rest up in one line per second', () => {
    vi.useFakeTimers();
    const reported: unknown[] = [];
    const summaries: number[] = [];
    const r = new ErrorReport(
      (err) => reported.push(err),
      (n) => summaries.push(n),
    );
    for (let i = 0; i < 1000; i++) r.add(new Error(`e${i}`), 'client');
    expect(reported).toHaveLength(REPORTS_PER_SECOND);
    expect(summaries).toEqual([]);
    vi.advanceTimersByTime(1000);
    expect(summaries).toEqual([1000 - REPORTS_PER_SECOND]);
    // A new second: reported again.
    r.add(new Error('later'));
    expect(reported).toHaveLength(REPORTS_PER_SECOND + 1);
    vi.advanceTimersByTime(5000);
    expect(summaries).toEqual([1000 - REPORTS_PER_SECOND]);
  });
});
