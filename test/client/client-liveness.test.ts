import { describe, expect, it, vi } from 'vitest';
import { FakeWebSocket } from './fake-socket.js';
import { makeClient, openClient, useFakes } from './setup.js';

useFakes();

/** welcome: pingIntervalMs 25 s + pongTimeoutMs 10 s = 35 s without a server frame. */
const WINDOW_MS = 35_000;

/** Stubs `window` and `document` event targets, as in a browser. */
function stubBrowser(visibilityState = 'visible') {
  const win = new EventTarget();
  const doc = Object.assign(new EventTarget(), { visibilityState });
  vi.stubGlobal('addEventListener', win.addEventListener.bind(win));
  vi.stubGlobal('removeEventListener', win.removeEventListener.bind(win));
  vi.stubGlobal('document', doc);
  return { win, doc };
}

describe('liveness', () => {
  it('notices a dead connection on the wall clock in send(), even when timers did not run', () => {
    const { client, ws, events } = openClient();
    const first = ws();
    vi.setSystemTime(Date.now() + WINDOW_MS - 1);
    void client.send('still fine');
    expect(events.close).toEqual([]);
    vi.setSystemTime(Date.now() + 1); // timers are late, as in a throttled tab
    void client.send('after sleep');
    expect(first.closedBy).toBe('terminate');
    expect(events.close).toEqual([{ code: 4000, reason: 'heartbeat timeout', willReconnect: true }]);
    vi.advanceTimersByTime(750);
    expect(FakeWebSocket.instances).toHaveLength(2);
    ws().welcome({ resume: 'resumed', lastClientSeq: 1 });
    expect(ws().framesOf('d')).toEqual([{ t: 'd', s: 2, p: 'after sleep' }]);
  });

  it('checks the wall clock in sendVolatile() too', () => {
    const { client, events } = openClient();
    vi.setSystemTime(Date.now() + WINDOW_MS);
    expect(client.sendVolatile('x')).toBe(false);
    expect(events.close[0]?.code).toBe(4000);
  });

  it('pings a silent server after pingIntervalMs + pongTimeoutMs / 2, then drops it at the deadline', () => {
    const { ws, events } = openClient();
    vi.advanceTimersByTime(29_999);
    expect(ws().framesOf('ping')).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ws().framesOf('ping')).toEqual([{ t: 'ping' }]);
    vi.advanceTimersByTime(4999);
    expect(events.close).toEqual([]);
    expect(ws().framesOf('ping')).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(events.close).toEqual([{ code: 4000, reason: 'heartbeat timeout', willReconnect: true }]);
  });

  it('counts any frame from the server as liveness', () => {
    const { ws, events } = openClient();
    vi.advanceTimersByTime(20_000);
    ws().receive({ t: 'ping' });
    vi.advanceTimersByTime(20_000);
    ws().receive({ t: 'ack', s: 0 });
    vi.advanceTimersByTime(34_000);
    expect(events.close).toEqual([]);
    vi.advanceTimersByTime(1000);
    expect(events.close[0]?.code).toBe(4000);
  });

  it('uses the heartbeat of the welcome', () => {
    const { ws, events } = makeClient();
    ws().welcome({ pingIntervalMs: 1000, pongTimeoutMs: 500 });
    vi.advanceTimersByTime(1499);
    expect(events.close).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(events.close[0]?.code).toBe(4000);
  });
});

describe('browser environment', () => {
  it('re-checks liveness when the page becomes visible', () => {
    const { doc } = stubBrowser();
    const { events } = openClient();
    vi.setSystemTime(Date.now() + WINDOW_MS);
    doc.dispatchEvent(new Event('visibilitychange'));
    expect(events.close[0]?.code).toBe(4000);
  });

  it('does not check when the page becomes hidden', () => {
    const { doc } = stubBrowser('hidden');
    const { events } = openClient();
    vi.setSystemTime(Date.now() + WINDOW_MS);
    doc.dispatchEvent(new Event('visibilitychange'));
    expect(events.close).toEqual([]);
  });

  it.each(['online', 'pageshow'])('reconnects at once on %s instead of waiting for the backoff', (type) => {
    const { win } = stubBrowser();
    const { ws, events } = openClient({ minDelayMs: 20_000 });
    ws().serverClose(1006);
    expect(FakeWebSocket.instances).toHaveLength(1);
    win.dispatchEvent(new Event(type));
    expect(FakeWebSocket.instances).toHaveLength(2);
    ws().welcome({ resume: 'resumed' });
    vi.advanceTimersByTime(31_000); // past the 30 s backoff that was scheduled: it was cancelled
    expect(events.reconnecting).toHaveLength(1);
    expect(FakeWebSocket.instances).toHaveLength(2);
  });

  it('does not open a second socket on online while one is open', () => {
    const { win } = stubBrowser();
    openClient();
    win.dispatchEvent(new Event('online'));
    expect(FakeWebSocket.instances).toHaveLength(1);
  });

  it('stops listening after close()', () => {
    const { win } = stubBrowser();
    const { ws, client } = openClient();
    ws().serverClose(1006);
    client.close();
    win.dispatchEvent(new Event('online'));
    expect(FakeWebSocket.instances).toHaveLength(1);
  });
});
