import { afterEach, describe, expect, it, vi } from 'vitest';
import { ErrorCode } from '../../src/protocol/error-codes.js';
import { StabilizerError } from '../../src/server/errors.js';
import { PublishLanes, RETRY_DELAY_MS } from '../../src/redis/publish-lanes.js';

// PublishLanes on a scripted link (the failover itself is tested on real processes in cluster-failover.test.ts):
// tries that meet a failover are retried oldest first, nothing overtakes, and only Redis failures are retried.

afterEach(() => {
  vi.useRealTimers();
});

/** A Redis stand-in: each try is answered by the test; `order` is the order tries executed successfully. */
function scripted() {
  const link = { unsettled: false, generation: 0, pending: 0 };
  const tries: Array<{ n: number; ok: () => void; fail: (err: unknown) => void }> = [];
  const order: number[] = [];
  const send = (n: number) => () =>
    new Promise<number>((resolve, reject) => {
      tries.push({
        n,
        ok: () => {
          order.push(n);
          resolve(n);
        },
        fail: reject,
      });
    });
  return { link, tries, order, send, lanes: new PublishLanes(link) };
}

const redisDown = () =>
  new StabilizerError(ErrorCode.BackendUnavailable, 'publish failed: Connection is closed.', {
    cause: new Error('Connection is closed.'),
  });

describe('PublishLanes', () => {
  it('pipelines while healthy; after a failed try, retries the oldest alone, then the rest in call order', async () => {
    vi.useFakeTimers();
    const { link, tries, order, send, lanes } = scripted();
    const results = [1, 2, 3].map((n) => lanes.run('t', send(n)));
    expect(tries.map((t) => t.n)).toEqual([1, 2, 3]); // all sent at once
    // The master dies: all three fail (the later ones on the same dead connection).
    link.unsettled = true;
    link.generation++;
    for (const t of tries.splice(0)) t.fail(redisDown());
    await vi.advanceTimersByTimeAsync(0);
    const later = lanes.run('t', send(4)); // called during the failover: waits
    expect(tries).toEqual([]);
    await vi.advanceTimersByTimeAsync(RETRY_DELAY_MS);
    expect(tries.map((t) => t.n)).toEqual([1]); // the oldest, alone
    tries.shift()!.fail(redisDown()); // still failing over
    await vi.advanceTimersByTimeAsync(RETRY_DELAY_MS);
    expect(tries.map((t) => t.n)).toEqual([1]);
    link.unsettled = false; // promoted
    tries.shift()!.ok();
    await vi.advanceTimersByTimeAsync(0);
    // 2 and 3 failed before: still one at a time, oldest first; then 4.
    for (const n of [2, 3, 4]) {
      expect(tries.map((t) => t.n)).toEqual([n]);
      tries.shift()!.ok();
      await vi.advanceTimersByTimeAsync(RETRY_DELAY_MS);
    }
    expect(await Promise.all([...results, later])).toEqual([1, 2, 3, 4]);
    expect(order).toEqual([1, 2, 3, 4]);
    expect(link.pending).toBe(0);
  });

  it('a publish never overtakes one sent before the link last turned unsettled', async () => {
    vi.useFakeTimers();
    const { link, tries, send, lanes } = scripted();
    const first = lanes.run('t', send(1)); // in flight (ioredis may hold it through a failover)
    link.generation++; // a node was lost, and the probe already passed again
    const second = lanes.run('t', send(2));
    expect(tries.map((t) => t.n)).toEqual([1]);
    tries.shift()!.ok();
    await vi.advanceTimersByTimeAsync(0);
    expect(tries.map((t) => t.n)).toEqual([2]);
    tries.shift()!.ok();
    expect(await Promise.all([first, second])).toEqual([1, 2]);
    // Other topics are independent lanes.
    const a = lanes.run('a', send(3));
    const b = lanes.run('b', send(4));
    expect(tries.map((t) => t.n)).toEqual([3, 4]);
    for (const t of tries.splice(0)) t.ok();
    expect(await Promise.all([a, b])).toEqual([3, 4]);
  });

  it('does not retry a lost history, the capacity bound or an unacknowledged durable publish', async () => {
    const { tries, send, lanes } = scripted();
    const errors = [
      new StabilizerError(ErrorCode.HistoryLost, 'publish: redis lost its history'),
      new StabilizerError(ErrorCode.BackendUnavailable, 'too many redis operations pending'),
      new StabilizerError(
        ErrorCode.BackendUnavailable,
        'stored at offset 2 on the master, but 0 of 1 replicas',
      ),
    ];
    for (const err of errors) {
      const p = lanes.run('t', send(1));
      tries.shift()!.fail(err);
      await expect(p).rejects.toBe(err);
    }
  });
});
