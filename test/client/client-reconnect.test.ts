import { describe, expect, it, vi } from 'vitest';
import type { ClientError } from '../../src/client/index.js';
import { FakeWebSocket } from './fake-socket.js';
import { flush, makeClient, openClient, track, useFakes } from './setup.js';

useFakes();

describe('reconnecting', () => {
  it.each([1006, 1001, 1011, 1012, 1013, 4000, 4001, 4003])('reconnects after retryable close %i', (code) => {
    const { ws, events, client } = openClient();
    ws().serverClose(code, 'bye');
    expect(events.close).toEqual([{ code, reason: 'bye', willReconnect: true }]);
    expect(events.reconnecting).toEqual([{ attempt: 1, delayMs: 750 }]);
    expect(client.state).toBe('reconnecting');
    vi.advanceTimersByTime(749);
    expect(FakeWebSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeWebSocket.instances).toHaveLength(2);
    expect(client.state).toBe('connecting');
  });

  it.each([1000, 4500, 4501, 4502, 4503, 1008, 1002])(
    'stops for good after terminal close %i',
    async (code) => {
      const { ws, events, client } = openClient();
      const pending = track(client.send('x'));
      ws().serverClose(code);
      vi.advanceTimersByTime(10 * 60_000);
      await flush();
      expect(FakeWebSocket.instances).toHaveLength(1);
      expect(client.state).toBe('closed');
      expect(events.close).toEqual([{ code, reason: '', willReconnect: false }]);
      expect(events.reconnecting).toEqual([]);
      expect((pending.error as ClientError).code).toBe('CLIENT_CLOSED');
    },
  );

  it('backs off further on each failed attempt and starts over after a welcome', () => {
    const { ws, events } = makeClient();
    ws().serverClose(1006);
    vi.advanceTimersByTime(750);
    ws().serverClose(1006);
    vi.advanceTimersByTime(1250);
    ws().serverClose(1006);
    expect(events.reconnecting).toEqual([
      { attempt: 1, delayMs: 750 },
      { attempt: 2, delayMs: 1250 },
      { attempt: 3, delayMs: 2250 },
    ]);
    vi.advanceTimersByTime(2250);
    ws().welcome().serverClose(1006);
    expect(events.reconnecting.at(-1)).toEqual({ attempt: 1, delayMs: 750 });
  });

  it('waits at least the retryAfterMs of a reconnect hint, once', () => {
    const { ws, events } = openClient();
    ws().receive({ t: 'reconnect', retryAfterMs: 5000, reason: 'shutdown' }).serverClose(1012);
    expect(events.reconnecting).toEqual([{ attempt: 1, delayMs: 5750 }]);
    vi.advanceTimersByTime(5749);
    expect(FakeWebSocket.instances).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(FakeWebSocket.instances).toHaveLength(2);
    ws().serverClose(1006);
    expect(events.reconnecting.at(-1)).toEqual({ attempt: 2, delayMs: 1250 });
  });

  it('asks shouldReconnect and stops when it says no', () => {
    const shouldReconnect = vi.fn(() => false);
    const { ws, client, events } = openClient({ shouldReconnect });
    ws().serverClose(1006, 'gone');
    expect(shouldReconnect).toHaveBeenCalledWith({ code: 1006, reason: 'gone' });
    expect(client.state).toBe('closed');
    expect(events.close).toEqual([{ code: 1006, reason: 'gone', willReconnect: false }]);
  });

  it('gives up after maxAttempts reconnects without a welcome', () => {
    const { ws, client, events } = makeClient({ maxAttempts: 2 });
    ws().serverClose(1006);
    vi.advanceTimersByTime(750);
    ws().serverClose(1006);
    vi.advanceTimersByTime(1250);
    ws().serverClose(1006);
    expect(FakeWebSocket.instances).toHaveLength(3);
    expect(client.state).toBe('closed');
    expect(events.close.map((c) => c.willReconnect)).toEqual([true, true, false]);
  });

  it('reconnect() drops the socket and connects at once, also from closed', () => {
    const { ws, client, events } = openClient();
    const first = ws();
    client.reconnect();
    expect(first.closedBy).toBe('terminate');
    expect(events.close).toEqual([{ code: 1005, reason: 'reconnect', willReconnect: true }]);
    expect(FakeWebSocket.instances).toHaveLength(2);
    ws().serverClose(4501);
    expect(client.state).toBe('closed');
    client.reconnect();
    expect(client.state).toBe('connecting');
    expect(FakeWebSocket.instances).toHaveLength(3);
  });

  it('close() closes the socket with its code, emits one final close and never reconnects', () => {
    const { ws, client, events } = openClient();
    ws().data(1); // an ack is pending: close() flushes it
    client.close(4100, 'done');
    expect(ws().framesOf('ack')).toEqual([{ t: 'ack', s: 1 }]);
    expect(ws().closedBy).toEqual({ code: 4100, reason: 'done' });
    expect(events.close).toEqual([{ code: 4100, reason: 'done', willReconnect: false }]);
    client.close();
    vi.advanceTimersByTime(60_000);
    expect(events.close).toHaveLength(1);
    expect(FakeWebSocket.instances).toHaveLength(1);
  });

  it('still closes the socket when the browser refuses the code', () => {
    const { ws, client } = openClient();
    const sock = ws();
    const close = sock.close.bind(sock);
    sock.close = (code?: number, reason?: string) => {
      if (code !== undefined) throw new Error('InvalidAccessError');
      close(code, reason);
    };
    sock.terminate = undefined as never;
    client.close(1001);
    expect(sock.closedBy).toEqual({ code: undefined, reason: undefined });
    expect(client.state).toBe('closed');
  });

  it('close() while waiting to reconnect cancels the reconnect', () => {
    const { ws, client, events } = openClient();
    ws().serverClose(1006);
    client.close();
    vi.advanceTimersByTime(60_000);
    expect(FakeWebSocket.instances).toHaveLength(1);
    expect(events.close.at(-1)).toEqual({ code: 1000, reason: '', willReconnect: false });
  });
});

describe('4004 (stale hello) for its own newest token', () => {
  const hello = () => FakeWebSocket.last.open().framesOf('hello')[0]!;

  it('retries once with the same token, then gives the session up: fresh with token-replayed, never a loop', () => {
    const { ws, events, client } = openClient();
    ws().serverClose(1006);
    vi.advanceTimersByTime(750);
    expect(hello()).toMatchObject({ token: 'tok1', sessionId: 's1' });
    ws().serverClose(4004);
    vi.advanceTimersByTime(1250);
    expect(hello()).toMatchObject({ token: 'tok1', sessionId: 's1' }); // one 4004 may be a race between nodes
    ws().serverClose(4004);
    vi.advanceTimersByTime(2250);
    const third = hello();
    expect(third.token).toBeUndefined(); // a first hello: the server answers with a new session
    expect(third.sessionId).toBeUndefined();
    ws().welcome({ sessionId: 's2', token: 'tok2', reason: 'new' });
    expect(events.fresh.at(-1)).toEqual({ sessionId: 's2', reason: 'token-replayed' });
    expect(client.state).toBe('open');
    expect(events.close.map((c) => c.code)).toEqual([1006, 4004, 4004]);
  });

  it('counts refusals in a row only: a welcome in between starts over', () => {
    const { ws, events } = openClient();
    ws().serverClose(4004);
    vi.advanceTimersByTime(750);
    expect(hello()).toMatchObject({ token: 'tok1' });
    ws().welcome({ sessionId: 's1', token: 'tok2', resume: 'resumed', reason: undefined });
    ws().serverClose(4004);
    vi.advanceTimersByTime(750);
    expect(hello()).toMatchObject({ token: 'tok2', sessionId: 's1' });
    ws().welcome({ sessionId: 's1', token: 'tok3', resume: 'resumed', reason: undefined });
    expect(events.resumed).toHaveLength(2);
    expect(events.fresh.map((f) => f.reason)).toEqual(['new']);
  });

  it('reports the server reason when the retry without a token is not the first welcome after the refusals', () => {
    const { ws, events } = openClient();
    ws().serverClose(4004);
    vi.advanceTimersByTime(750);
    ws().serverClose(4004);
    vi.advanceTimersByTime(1250);
    ws().welcome({ sessionId: 's2', token: 'tok2', reason: 'new' });
    ws().serverClose(1006);
    vi.advanceTimersByTime(750);
    ws().welcome({ sessionId: 's3', token: 'tok3', reason: 'expired' });
    expect(events.fresh.map((f) => f.reason)).toEqual(['new', 'token-replayed', 'expired']);
  });
});
