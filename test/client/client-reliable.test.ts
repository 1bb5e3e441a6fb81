import { describe, expect, it, vi } from 'vitest';
import { decodeBinaryData } from '../../src/protocol/index.js';
import { ClientError } from '../../src/client/index.js';
import { FakeWebSocket } from './fake-socket.js';
import { flush, makeClient, openClient, track, useFakes } from './setup.js';

useFakes();

describe('reliable client → server messages', () => {
  it('numbers messages and resolves each when the cumulative ack covers it', async () => {
    const { client, ws } = openClient();
    const a = track(client.send({ n: 1 }));
    const b = track(client.send('two'));
    expect(ws().framesOf('d')).toEqual([
      { t: 'd', s: 1, p: { n: 1 } },
      { t: 'd', s: 2, p: 'two' },
    ]);
    ws().receive({ t: 'ack', s: 1 });
    await flush();
    expect([a.state, b.state]).toEqual(['resolved', 'pending']);
    expect(client.queuedMessages).toBe(1);
    ws().receive({ t: 'ack', s: 2 });
    await flush();
    expect(b.state).toBe('resolved');
    expect(client.queuedMessages).toBe(0);
    expect(client.queuedBytes).toBe(0);
  });

  it('writes binary payloads in the binary frame format', () => {
    const { client, ws } = openClient();
    void client.send(new Uint8Array([7, 8, 9]));
    expect(client.sendVolatile(new Uint8Array([1, 2]).buffer)).toBe(true);
    const [reliable, volatile] = ws().sent.slice(1) as Uint8Array[];
    expect(decodeBinaryData(reliable!)).toEqual({ t: 'd', s: 1, p: new Uint8Array([7, 8, 9]) });
    expect(decodeBinaryData(volatile!)).toEqual({ t: 'd', p: new Uint8Array([1, 2]) });
  });

  it('rejects a payload that is not JSON with a TypeError and queues nothing', async () => {
    const { client } = openClient();
    const r = track(client.send(undefined));
    await flush();
    expect(r.error).toBeInstanceOf(TypeError);
    expect(client.queuedMessages).toBe(0);
  });

  it('resends unacked messages with their original sequences after a resumed welcome', async () => {
    const { client, ws, events } = openClient();
    const sends = ['a', 'b', 'c'].map((p) => track(client.send(p)));
    ws().receive({ t: 'ack', s: 1 }).serverClose(1006);
    const d = track(client.send('d')); // offline: queued, not written
    expect(client.queuedMessages).toBe(3);
    vi.advanceTimersByTime(750);
    ws().welcome({ resume: 'resumed', reason: undefined, token: 'tok2', lastClientSeq: 2 });
    await flush();
    expect(sends.map((s) => s.state)).toEqual(['resolved', 'resolved', 'pending']);
    expect(ws().framesOf('d')).toEqual([
      { t: 'd', s: 3, p: 'c' },
      { t: 'd', s: 4, p: 'd' },
    ]);
    expect(events.resumed).toHaveLength(1);
    ws().receive({ t: 'ack', s: 4 });
    await flush();
    expect([sends[2]!.state, d.state]).toEqual(['resolved', 'resolved']);
  });

  it('on a fresh welcome rejects written messages with SESSION_LOST and renumbers unwritten ones', async () => {
    const { client, ws, events } = openClient();
    const written = track(client.send('w'));
    ws().serverClose(1006);
    const queued = [track(client.send('q1')), track(client.send('q2'))];
    vi.advanceTimersByTime(750);
    ws().welcome({ sessionId: 's2', reason: 'expired' });
    await flush();
    expect(written.state).toBe('rejected');
    expect(written.error).toBeInstanceOf(ClientError);
    expect((written.error as ClientError).code).toBe('SESSION_LOST');
    expect(queued.map((q) => q.state)).toEqual(['pending', 'pending']);
    expect(ws().framesOf('d')).toEqual([
      { t: 'd', s: 1, p: 'q1' },
      { t: 'd', s: 2, p: 'q2' },
    ]);
    void client.send('next');
    expect(ws().framesOf('d').at(-1)).toEqual({ t: 'd', s: 3, p: 'next' });
    expect(events.fresh.at(-1)).toEqual({ sessionId: 's2', reason: 'expired' });
  });

  it('renumbers binary messages queued before a fresh session too', () => {
    const { client, ws } = openClient();
    void client.send('x');
    ws().serverClose(1006);
    void client.send(new Uint8Array([5]));
    vi.advanceTimersByTime(750);
    ws().welcome({ reason: 'gap' });
    expect(decodeBinaryData(ws().sent[1] as Uint8Array)).toEqual({ t: 'd', s: 1, p: new Uint8Array([5]) });
  });

  it('does not leave a sequence gap after close() rejected unwritten messages', () => {
    const { client, ws } = openClient();
    void client.send('a');
    ws().serverClose(1006);
    void client.send('never written');
    client.close();
    client.reconnect();
    ws().welcome({ resume: 'resumed', lastClientSeq: 1 });
    void client.send('c');
    expect(ws().framesOf('d')).toEqual([{ t: 'd', s: 2, p: 'c' }]);
  });

  it('reuses the sequence of a written message that close() rejected and the server never got', () => {
    const { client, ws } = openClient();
    void client.send('lost in the network');
    client.close();
    client.reconnect();
    ws().welcome({ resume: 'resumed', lastClientSeq: 0 });
    void client.send('next');
    expect(ws().framesOf('d')).toEqual([{ t: 'd', s: 1, p: 'next' }]);
  });

  it('rejects pending messages with CLIENT_CLOSED on close(), and later sends at once', async () => {
    const { client } = openClient();
    const pending = track(client.send('a'));
    client.close();
    const late = track(client.send('b'));
    await flush();
    expect((pending.error as ClientError).code).toBe('CLIENT_CLOSED');
    expect((late.error as ClientError).code).toBe('CLIENT_CLOSED');
  });

  it('never reports an ignored rejection as unhandled', async () => {
    const handler = vi.fn();
    process.on('unhandledRejection', handler);
    try {
      const { client } = openClient();
      client.close();
      void client.send('fire and forget');
      vi.useRealTimers();
      await new Promise((r) => setImmediate(r));
      expect(handler).not.toHaveBeenCalled();
    } finally {
      process.off('unhandledRejection', handler);
    }
  });
});

describe('volatile messages', () => {
  it('are written only while open, without a sequence, and never queued', () => {
    const { client, ws } = makeClient();
    expect(client.sendVolatile('early')).toBe(false);
    ws().welcome();
    expect(client.sendVolatile({ x: 1 })).toBe(true);
    ws().serverClose(1006);
    expect(client.sendVolatile('offline')).toBe(false);
    vi.advanceTimersByTime(750);
    ws().welcome({ resume: 'resumed' });
    expect(FakeWebSocket.instances[0]!.framesOf('d')).toEqual([{ t: 'd', p: { x: 1 } }]);
    expect(ws().framesOf('d')).toEqual([]);
  });
});

describe('reliable server → client messages', () => {
  it('delivers in order and drops duplicates', () => {
    const { ws, events } = openClient();
    ws().data(1, 2, 2, 1, 3);
    expect(events.message).toEqual(['m1', 'm2', 'm3']);
  });

  it('delivers volatile and binary data', () => {
    const { ws, events } = openClient();
    ws().receive({ t: 'd', p: 'v' });
    const frame = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0, 0, 42]);
    new DataView(frame.buffer).setFloat64(1, 1);
    ws().receive(frame.buffer);
    expect(events.message).toEqual(['v', new Uint8Array([42])]);
  });

  it('treats a sequence gap as a protocol violation: closes with 4502 and resumes from lastSeq', () => {
    const { ws, events } = openClient();
    const first = ws();
    first.data(1, 3);
    expect(events.message).toEqual(['m1']);
    expect(events.error[0]?.code).toBe('PROTOCOL_VIOLATION');
    expect(first.closedBy).toMatchObject({ code: 4502 });
    expect(events.close[0]).toMatchObject({ code: 4502, willReconnect: true });
    vi.advanceTimersByTime(750);
    ws().open();
    expect(ws().frames[0]).toMatchObject({ t: 'hello', lastSeq: 1 });
  });

  it('acks every ackEveryMessages at once', () => {
    const { ws } = openClient();
    ws().data(...Array.from({ length: 31 }, (_, i) => i + 1));
    expect(ws().framesOf('ack')).toEqual([]);
    ws().data(32);
    expect(ws().framesOf('ack')).toEqual([{ t: 'ack', s: 32 }]);
  });

  it('acks after ackDelayMs when fewer arrive', () => {
    const { ws } = openClient({ ackDelayMs: 200 });
    ws().data(1, 2);
    vi.advanceTimersByTime(199);
    expect(ws().framesOf('ack')).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ws().framesOf('ack')).toEqual([{ t: 'ack', s: 2 }]);
    vi.advanceTimersByTime(1000);
    expect(ws().framesOf('ack')).toHaveLength(1);
  });

  it('acks a duplicate again', () => {
    const { ws } = openClient({ ackEveryMessages: 2 });
    ws().data(1, 2);
    expect(ws().framesOf('ack')).toEqual([{ t: 'ack', s: 2 }]);
    ws().data(2);
    vi.advanceTimersByTime(200);
    expect(ws().framesOf('ack')).toEqual([
      { t: 'ack', s: 2 },
      { t: 'ack', s: 2 },
    ]);
  });

  it('answers ping with pong carrying lastSeq, which also acks', () => {
    const { ws } = openClient();
    ws().data(1, 2).receive({ t: 'ping' });
    expect(ws().framesOf('pong')).toEqual([{ t: 'pong', s: 2 }]);
    vi.advanceTimersByTime(1000);
    expect(ws().framesOf('ack')).toEqual([]);
  });

  it('starts server sequences again at 1 in a fresh session', () => {
    const { ws, events } = openClient();
    ws().data(1, 2).serverClose(1006);
    vi.advanceTimersByTime(750);
    ws().welcome({ sessionId: 's2', reason: 'unknown-session' }).data(1);
    expect(events.message).toEqual(['m1', 'm2', 'm1']);
    expect(events.error).toEqual([]);
  });
});
