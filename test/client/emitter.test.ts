import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Emitter } from '../../src/client/emitter.js';

class TestEmitter extends Emitter<{ a: number; b: string }> {
  fire<K extends 'a' | 'b'>(event: K, arg: { a: number; b: string }[K]): void {
    this._emit(event, arg);
  }
}

describe('Emitter', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('delivers to the listeners of that event until they unsubscribe', () => {
    const e = new TestEmitter();
    const got: unknown[] = [];
    const off = e.on('a', (n) => got.push(n));
    e.on('b', (s) => got.push(`b:${s}`));
    e.fire('a', 1);
    e.fire('b', 'x');
    off();
    e.fire('a', 2);
    expect(got).toEqual([1, 'b:x']);
  });

  it('keeps calling the other listeners when one throws, and rethrows on a fresh task', () => {
    const e = new TestEmitter();
    const got: number[] = [];
    e.on('a', () => {
      throw new Error('boom');
    });
    e.on('a', (n) => got.push(n));
    expect(() => e.fire('a', 7)).not.toThrow();
    expect(got).toEqual([7]);
    expect(() => vi.runAllTimers()).toThrow('boom');
  });
});
