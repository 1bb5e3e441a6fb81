import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { StabilizerClient, type ClientOptions } from '../../src/client/index.js';
import type { HelloAuth } from '../../src/server/index.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, startServer, upgradeStatus, waitFor } from '../helpers/server.js';

const clients: StabilizerClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await closeAllServers();
});

function client(url: string, options: ClientOptions = {}) {
  const c = new StabilizerClient(url, {
    WebSocket: WebSocket as never,
    minDelayMs: 10,
    maxDelayMs: 50,
    ...options,
  });
  const events = {
    unauthorized: [] as unknown[],
    fresh: [] as unknown[],
    resumed: [] as unknown[],
    close: [] as { code: number }[],
  };
  for (const k of Object.keys(events) as (keyof typeof events)[]) c.on(k, (e) => events[k].push(e as never));
  clients.push(c);
  return { c, events };
}

const settle = (ms = 200) => new Promise((r) => setTimeout(r, ms));

describe('authenticate at the hello (client auth)', () => {
  it('runs once, at the hello, with the request and the auth value; its result sets data and principal', async () => {
    const calls: Array<{ url?: string; hello?: HelloAuth }> = [];
    const s = await startServer(
      {},
      {
        authenticate: (req: IncomingMessage, hello?: HelloAuth) => {
          calls.push({ url: req.url, hello });
          return hello?.auth === 'good' ? { data: { user: 'ann' }, principal: 'ann' } : false;
        },
      },
    );
    const connects: unknown[] = [];
    s.manager.on('connect', (e) => connects.push(e.data));
    const { c } = client(`${s.url}?room=1`, { auth: 'good' });
    await waitFor(() => c.state === 'open', 'welcome');
    expect(calls).toEqual([{ url: '/ws?room=1', hello: { auth: 'good' } }]);
    expect(connects).toEqual([{ user: 'ann' }]);
  });

  it('keeps authenticating requests without stabilizer.auth at the upgrade (401), and takes Node headers', async () => {
    const s = await startServer(
      {},
      {
        authenticate: (req) => (req.headers.authorization === 'Bearer good' ? { principal: 'ann' } : false),
      },
    );
    expect(await upgradeStatus(s.url)).toBe(401);
    expect(await upgradeStatus(s.url, { authorization: 'Bearer good' })).toBe(101);
    const { c } = client(s.url, { webSocketOptions: { headers: { authorization: 'Bearer good' } } });
    await waitFor(() => c.state === 'open', 'welcome with header auth');
  });

  it('refuses with 4504; the client reports unauthorized once and does not loop', async () => {
    let calls = 0;
    const s = await startServer({}, { authenticate: () => (calls++, false) });
    const { c, events } = client(s.url, { auth: 'wrong' });
    await waitFor(() => c.state === 'closed', 'client to give up');
    await settle();
    expect(calls).toBe(1);
    expect(events.unauthorized).toEqual([{ code: 4504, reason: 'unauthorized' }]);
    expect(events.close.map((e) => e.code)).toEqual([4504]);
    expect(s.manager.getConnectionCount()).toBe(0);
  });

  it('maps a thrown 403 to 4503 (terminal)', async () => {
    const s = await startServer(
      {},
      {
        authenticate: () => {
          throw Object.assign(new Error('no'), { status: 403 });
        },
      },
    );
    const { c, events } = client(s.url, { auth: 'x' });
    await waitFor(() => c.state === 'closed', 'client to give up');
    expect(events.unauthorized).toEqual([{ code: 4503, reason: 'forbidden' }]);
  });

  it('after "expired" the client refreshes once and resumes: queued messages arrive exactly once, missed ones too', async () => {
    let valid = 'v1';
    const s = await startServer(
      {},
      {
        authenticate: (_req, hello) => (hello?.auth === valid ? { principal: 'ann' } : 'expired'),
      },
    );
    const got: unknown[] = [];
    s.manager.on('message', ({ data }) => void got.push(data));
    const asked: boolean[] = [];
    let cached = 'v1';
    const { c, events } = client(s.url, {
      auth: ({ expired }: { expired: boolean }) => {
        asked.push(expired);
        if (expired) cached = valid; // the app's refresh, e.g. a call to its token endpoint
        return Promise.resolve(cached);
      },
    });
    await waitFor(() => c.state === 'open', 'first welcome');
    const sessionId = c.sessionId!;
    await c.send('before');

    valid = 'v2'; // the cached token expires on the server
    s.manager.connections.get(sessionId)!.terminate('socket-error');
    await waitFor(() => c.state !== 'open', 'client to see the drop');
    const queued = [c.send('q1'), c.send('q2')];
    void s.manager.sendToClient(sessionId, 'missed while away');
    const inbox: unknown[] = [];
    c.on('message', (m) => void inbox.push(m));
    await Promise.all(queued);

    expect(asked).toEqual([false, false, true]);
    expect(events.unauthorized).toEqual([]);
    expect(events.close.map((e) => e.code)).toEqual([1006, 4505]);
    expect(events.resumed).toEqual([{ sessionId }]);
    expect(events.fresh).toHaveLength(1); // the first connection only
    expect(c.sessionId).toBe(sessionId);
    await waitFor(() => inbox.length === 1, 'replayed message');
    await settle(100);
    expect(got).toEqual(['before', 'q1', 'q2']);
    expect(inbox).toEqual(['missed while away']);
  });
});

describe('hidden pages (vis frame)', () => {
  it('waits hiddenPongTimeoutMs instead of pongTimeoutMs for a hidden client, and keeps its session', async () => {
    const s = await startServer({ pingIntervalMs: 40, pongTimeoutMs: 80, hiddenPongTimeoutMs: 900 });
    const hidden = await RawProtocolClient.handshake(s.url);
    const visible = await RawProtocolClient.handshake(s.url);
    const shown = await RawProtocolClient.handshake(s.url);
    hidden.client.send({ t: 'vis', hidden: true });
    shown.client.send({ t: 'vis', hidden: true });
    shown.client.send({ t: 'vis', hidden: false });
    // None of them answers a ping from here on: a frozen tab, a dead peer.
    expect(await visible.client.waitClose(2000)).toEqual({ code: 4000, reason: 'heartbeat timeout' });
    expect(await shown.client.waitClose(2000)).toEqual({ code: 4000, reason: 'heartbeat timeout' });
    expect(hidden.client.closeInfo).toBeUndefined();
    expect(s.manager.isConnected(hidden.welcome.sessionId)).toBe(true);
    const start = Date.now();
    expect(await hidden.client.waitClose(3000)).toEqual({ code: 4000, reason: 'heartbeat timeout' });
    expect(Date.now() - start).toBeGreaterThan(300); // far beyond the 80 ms of a visible page
    // The session waits for a resume either way.
    const back = await RawProtocolClient.handshake(s.url, {
      token: hidden.welcome.token,
      sessionId: hidden.welcome.sessionId,
    });
    expect(back.welcome).toMatchObject({ resume: 'resumed', sessionId: hidden.welcome.sessionId });
  });

  it('refuses a malformed vis frame as a protocol violation', async () => {
    const s = await startServer();
    const a = await RawProtocolClient.handshake(s.url);
    a.client.send({ t: 'vis', hidden: 'yes' });
    expect(await a.client.waitClose()).toEqual({ code: 4502, reason: 'bad vis' });
  });
});
