import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReplayBuffer } from '../../src/backends/replay-buffer.js';
import { Payload } from '../../src/frames/payload.js';

describe('ReplayBuffer', () => {
  it('since(n) is exactly the held entries after n, or undefined once anything after n was dropped', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.array(fc.oneof(fc.constant('push'), fc.integer({ min: 0, max: 60 })), { maxLength: 80 }),
        fc.integer({ min: 0, max: 70 }),
        (maxMessages, ops, query) => {
          const buffer = new ReplayBuffer({ maxMessages, maxBytes: 1 << 20, maxAgeMs: 1e9 });
          const held: number[] = [];
          let seq = 0;
          let droppedThrough = 0;
          for (const op of ops) {
            if (op === 'push') {
              buffer.push({ seq: ++seq, payload: new Payload('x'), atMs: 0 });
              held.push(seq);
              while (held.length > maxMessages) droppedThrough = held.shift()!;
            } else {
              buffer.ack(op);
              while (held.length > 0 && held[0]! <= op) droppedThrough = held.shift()!;
            }
          }
          if (query > seq) return; // callers never ask beyond the last sequence
          const got = buffer.since(query)?.map((e) => e.seq);
          expect(got).toEqual(query < droppedThrough ? undefined : held.filter((s) => s > query));
        },
      ),
      { numRuns: 500 },
    );
  });
});
