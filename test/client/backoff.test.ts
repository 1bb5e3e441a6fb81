import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from '../../src/client/backoff.js';

const MIN = 500;
const MAX = 30_000;

describe('backoffDelayMs', () => {
  it('stays within [minDelayMs, maxDelayMs] for every attempt, even huge ones', () => {
    for (let attempt = 0; attempt < 60; attempt++) {
      for (let i = 0; i < 200; i++) {
        const d = backoffDelayMs(attempt, MIN, MAX, Math.random);
        expect(d).toBeGreaterThanOrEqual(MIN);
        expect(d).toBeLessThanOrEqual(MAX);
      }
    }
    expect(backoffDelayMs(10_000, MIN, MAX, () => 0.999999)).toBeLessThanOrEqual(MAX);
    expect(Number.isFinite(backoffDelayMs(10_000, MIN, MAX, () => 0.5))).toBe(true);
  });

  it('doubles the cap per attempt up to maxDelayMs, with the floor at minDelayMs', () => {
    const top = (attempt: number) => backoffDelayMs(attempt, MIN, MAX, () => 1);
    expect([0, 1, 2, 3, 4, 5, 6].map(top)).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    expect([0, 3, 9].map((a) => backoffDelayMs(a, MIN, MAX, () => 0))).toEqual([MIN, MIN, MIN]);
    expect(backoffDelayMs(0, MIN, MAX, () => 0.5)).toBe(750);
  });

  it('spreads delays over the whole window (full jitter), not around one value', () => {
    const samples = Array.from({ length: 2000 }, () => backoffDelayMs(8, MIN, MAX, Math.random));
    const sorted = [...samples].sort((a, b) => a - b);
    expect(sorted[0]).toBeLessThan(2000);
    expect(sorted.at(-1)).toBeGreaterThan(28_000);
    expect(new Set(samples).size).toBeGreaterThan(1500);
    // uniform on [500, 30000]: the median is near 15250
    expect(sorted[1000]).toBeGreaterThan(12_000);
    expect(sorted[1000]).toBeLessThan(18_500);
  });

  it('never goes below minDelayMs when maxDelayMs is smaller', () => {
    expect(backoffDelayMs(3, 1000, 200, () => 0.7)).toBe(1000);
  });
});
