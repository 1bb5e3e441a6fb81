import { describe, expect, it, vi } from 'vitest';
import type { ClientError } from '../../src/client/index.js';
import { flush, makeClient, openClient, track, useFakes } from './setup.js';

useFakes();

const utf8 = (s: string) => new TextEncoder().encode(s).byteLength;

describe('offline queue bounds', () => {
  it('refuses the new message with QUEUE_FULL once maxQueuedMessages wait, and keeps the accepted ones', async () => {
    const { client, ws } = makeClient({ maxQueuedMessages: 3 });
    const accepted = [1, 2, 3].map((n) => track(client.send(n)));
    const refused = track(client.send(4));
    await flush();
    expect(refused.state).toBe('rejected');
    expect((refused.error as ClientError).code).toBe('QUEUE_FULL');
    expect(accepted.map((a) => a.state)).toEqual(['pending', 'pending', 'pending']);
    expect(client.queuedMessages).toBe(3);
    ws().welcome();
    expect(
      ws()
        .framesOf('d')
        .map((f) => [f.s, f.p]),
    ).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
  });

  it('counts encoded UTF-8 bytes against maxQueuedBytes and still accepts a message that fits', async () => {
    const frame = (s: number, p: string) => JSON.stringify({ t: 'd', s, p });
    const big = 'é€😀'.repeat(10);
    const bytes1 = utf8(frame(1, big));
    const { client } = makeClient({ maxQueuedBytes: bytes1 + utf8(frame(2, 'ok')) });
    void client.send(big);
    expect(client.queuedBytes).toBe(bytes1);
    const tooBig = track(client.send(big));
    const fits = track(client.send('ok'));
    await flush();
    expect((tooBig.error as ClientError).code).toBe('QUEUE_FULL');
    expect(fits.state).toBe('pending');
    expect(client.queuedBytes).toBe(bytes1 + utf8(frame(2, 'ok')));
    expect(client.queuedMessages).toBe(2);
  });

  it('recounts the bytes of a frame renumbered for a fresh session', () => {
    const { client, ws } = openClient();
    for (let i = 0; i < 10; i++) void client.send(i);
    ws().receive({ t: 'ack', s: 10 }).serverClose(1006);
    void client.send('x'); // s:11
    expect(client.queuedBytes).toBe(utf8('{"t":"d","s":11,"p":"x"}'));
    vi.advanceTimersByTime(750);
    ws().welcome({ sessionId: 's2' });
    expect(ws().framesOf('d')).toEqual([{ t: 'd', s: 1, p: 'x' }]);
    expect(client.queuedBytes).toBe(utf8('{"t":"d","s":1,"p":"x"}'));
  });

  it('refuses a message bigger than maxQueuedBytes even with an empty queue', async () => {
    const { client, ws } = openClient({ maxQueuedBytes: 64 });
    const r = track(client.send(new Uint8Array(100)));
    await flush();
    expect((r.error as ClientError).code).toBe('QUEUE_FULL');
    expect(ws().sent).toHaveLength(1); // the hello only
  });

  it('bounds in-flight (unacked) messages too, and frees room on ack', async () => {
    const { client, ws } = openClient({ maxQueuedMessages: 2 });
    void client.send('a');
    void client.send('b');
    const c = track(client.send('c'));
    await flush();
    expect((c.error as ClientError).code).toBe('QUEUE_FULL');
    ws().receive({ t: 'ack', s: 1 });
    const d = track(client.send('d'));
    await flush();
    expect(d.state).toBe('pending');
    expect(
      ws()
        .framesOf('d')
        .map((f) => f.p),
    ).toEqual(['a', 'b', 'd']);
    expect(ws().framesOf('d').at(-1)?.s).toBe(3);
  });
});

describe("the server's maxPayloadBytes", () => {
  it('refuses a message over the limit from the welcome, at once, and when it was queued before the welcome', async () => {
    const { client, ws } = makeClient();
    const queued = track(client.send('x'.repeat(200))); // queued while connecting: the limit is not known yet
    ws().welcome({ maxPayloadBytes: 100 });
    await flush();
    expect(queued.state).toBe('rejected');
    expect((queued.error as { code?: string }).code).toBe('MESSAGE_TOO_BIG');
    const now = track(client.send('y'.repeat(200)));
    await flush();
    expect((now.error as { code?: string }).code).toBe('MESSAGE_TOO_BIG');
    const small = track(client.send('ok'));
    await flush();
    expect(small.state).toBe('pending');
    expect(ws().framesOf('d')).toEqual([{ t: 'd', s: 1, p: 'ok' }]);
  });
});
