import { describe, expect, it, vi } from 'vitest';
import { AUTH_SUBPROTOCOL, SUBPROTOCOL } from '../../src/protocol/index.js';
import { FakeWebSocket } from './fake-socket.js';
import { flush, makeClient, track, useFakes } from './setup.js';

useFakes();

const hello = (ws: FakeWebSocket) => ws.framesOf('hello')[0];

describe('client auth', () => {
  it('sends a plain auth value in every hello and offers stabilizer.auth', () => {
    const { ws } = makeClient({ auth: { token: 'abc' } });
    ws().open();
    expect(ws().protocols).toEqual([SUBPROTOCOL, AUTH_SUBPROTOCOL]);
    expect(hello(ws())).toMatchObject({ t: 'hello', auth: { token: 'abc' } });
  });

  it('offers only stabilizer.v1 and sends no auth field without the option', () => {
    const { ws } = makeClient();
    ws().open();
    expect(ws().protocols).toEqual([SUBPROTOCOL]);
    expect(hello(ws())).not.toHaveProperty('auth');
  });

  it('calls an async auth() on every connect, and resumes with the session token', async () => {
    let n = 0;
    const auth = vi.fn(async () => `t${++n}`);
    const { ws, events } = makeClient({ auth });
    ws().open();
    expect(hello(ws())).toBeUndefined(); // waits for auth()
    await flush();
    expect(hello(ws())).toMatchObject({ auth: 't1' });
    ws().welcome();
    ws().serverClose(1006);
    vi.advanceTimersByTime(750);
    ws().open();
    await flush();
    expect(hello(ws())).toMatchObject({ auth: 't2', token: 'tok1', sessionId: 's1' });
    expect(auth.mock.calls).toEqual([[{ expired: false }], [{ expired: false }]]);
    expect(events.unauthorized).toEqual([]);
  });

  it('passes webSocketOptions to the WebSocket constructor (headers and cookies in Node)', () => {
    const options = { headers: { authorization: 'Bearer x', cookie: 'sid=1' } };
    const { ws } = makeClient({ webSocketOptions: options });
    expect(ws().options).toBe(options);
  });

  it('on 4505 refreshes once with auth({ expired: true }), resumes, and sends the queue exactly once', async () => {
    const auth = vi.fn(({ expired }: { expired: boolean }) => (expired ? 'new' : 'old'));
    const { client, ws, events } = makeClient({ auth });
    ws().open();
    await flush();
    ws().welcome();
    const first = ws();
    first.serverClose(1006); // network drop: the client queues while away
    const queued = [track(client.send('a')), track(client.send('b'))];
    vi.advanceTimersByTime(750);
    ws().open();
    await flush();
    expect(hello(ws())).toMatchObject({ auth: 'old', token: 'tok1' });
    ws().serverClose(4505, 'credentials expired');
    expect(events.unauthorized).toEqual([]);
    expect(client.state).toBe('reconnecting');
    vi.advanceTimersByTime(1250); // second retry: 500 + 0.5 × (2000 − 500)
    const third = ws();
    expect(FakeWebSocket.instances).toHaveLength(3);
    third.open();
    await flush();
    expect(hello(third)).toMatchObject({ auth: 'new', token: 'tok1', sessionId: 's1' });
    expect(auth.mock.calls.map((c) => c[0])).toEqual([
      { expired: false },
      { expired: false },
      { expired: true },
    ]);
    third.welcome({ resume: 'resumed', lastClientSeq: 0 });
    expect(third.framesOf('d')).toEqual([
      { t: 'd', s: 1, p: 'a' },
      { t: 'd', s: 2, p: 'b' },
    ]);
    third.receive({ t: 'ack', s: 2 });
    await flush();
    expect(queued.map((q) => q.state)).toEqual(['resolved', 'resolved']);
    expect(events.resumed).toEqual([{ sessionId: 's1' }]);
    expect(events.fresh).toHaveLength(1); // only the first connection
    // A later expiry gets its refresh again: the welcome reset the count.
    third.serverClose(4505);
    expect(client.state).toBe('reconnecting');
  });

  it('gives up with unauthorized when the credentials are expired again after the refresh', async () => {
    const { client, ws, events } = makeClient({ auth: () => 'stale' });
    ws().open();
    await flush();
    ws().serverClose(4505, 'credentials expired');
    vi.advanceTimersByTime(1000);
    ws().open();
    await flush();
    ws().serverClose(4505, 'credentials expired');
    expect(events.unauthorized).toEqual([{ code: 4505, reason: 'credentials expired' }]);
    expect(events.close.at(-1)).toEqual({ code: 4505, reason: 'credentials expired', willReconnect: false });
    expect(client.state).toBe('closed');
    vi.advanceTimersByTime(60_000);
    expect(FakeWebSocket.instances).toHaveLength(2); // no loop
  });

  it.each([
    [4504, 'unauthorized'],
    [4503, 'forbidden'],
  ])('stops at once on %i with unauthorized instead of looping', async (code, reason) => {
    const { client, ws, events } = makeClient({ auth: 'bad' });
    ws().open();
    const pending = track(client.send('x'));
    ws().serverClose(code, reason);
    await flush();
    expect(events.unauthorized).toEqual([{ code, reason }]);
    expect(client.state).toBe('closed');
    expect(pending).toMatchObject({ state: 'rejected', error: { code: 'CLIENT_CLOSED' } });
    vi.advanceTimersByTime(60_000);
    expect(FakeWebSocket.instances).toHaveLength(1);
  });

  it('fails the attempt when auth() throws or rejects, and retries', async () => {
    let calls = 0;
    const { client, ws, events } = makeClient({
      auth: () => {
        if (++calls === 1) throw new Error('token service down');
        return Promise.reject(new Error('still down'));
      },
    });
    ws().open();
    await flush();
    expect(ws().closedBy).toEqual({ code: undefined, reason: undefined });
    expect(events.close[0]).toMatchObject({ code: 1005, willReconnect: true });
    vi.advanceTimersByTime(750);
    ws().open();
    await flush();
    expect(FakeWebSocket.instances[1]!.closedBy).toBeDefined();
    expect(client.state).toBe('reconnecting');
    expect(events.unauthorized).toEqual([]);
  });
});

describe('page visibility', () => {
  function stubDocument(visibilityState: string) {
    const doc = Object.assign(new EventTarget(), { visibilityState });
    vi.stubGlobal('document', doc);
    return {
      set(state: string) {
        doc.visibilityState = state;
        doc.dispatchEvent(new Event('visibilitychange'));
      },
    };
  }

  it('tells the server after the welcome when the page starts hidden, then on every change', () => {
    const page = stubDocument('hidden');
    const { ws } = makeClient();
    ws().open();
    expect(ws().framesOf('vis')).toEqual([]); // never before the welcome
    ws().welcome();
    expect(ws().framesOf('vis')).toEqual([{ t: 'vis', hidden: true }]);
    page.set('visible');
    page.set('hidden');
    expect(ws().framesOf('vis')).toEqual([
      { t: 'vis', hidden: true },
      { t: 'vis', hidden: false },
      { t: 'vis', hidden: true },
    ]);
    // A resume on a new socket while hidden says so again.
    ws().serverClose(1006);
    vi.advanceTimersByTime(750);
    ws().welcome({ resume: 'resumed' });
    expect(ws().framesOf('vis')).toEqual([{ t: 'vis', hidden: true }]);
  });

  it('sends nothing for a visible page', () => {
    stubDocument('visible');
    const { ws } = makeClient();
    ws().welcome();
    expect(ws().framesOf('vis')).toEqual([]);
  });
});
