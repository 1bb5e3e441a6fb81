import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CloseCode, WebSocketConnectionManager, type ManagerEvents } from '../../src/server/index.js';
import { closeAllServers, closed, startServer, upgradeStatus, waitFor } from '../helpers/server.js';
import { cleanup, client, directPair, directServer, idFromQuery, sleep, upgradeResponse } from './support.js';

afterEach(async () => {
  await closeAllServers();
  await cleanup();
});

describe('connection limits', () => {
  it('maxConnections: the next upgrade gets HTTP 503, and a freed slot is usable again', async () => {
    const s = await startServer({ maxConnections: 2 });
    const a = await client(s.url);
    await client(s.url);
    await waitFor(() => s.manager.getConnectionCount() === 2, 'two registered');
    expect(await upgradeStatus(s.url)).toBe(503);
    expect(s.manager.getConnectionCount()).toBe(2);

    a.close();
    await waitFor(() => s.manager.getConnectionCount() === 1, 'slot freed');
    expect(await upgradeStatus(s.url)).toBe(101);
  });

  it('maxConnections: concurrent upgrades with a slow authenticate never overshoot the limit', async () => {
    const s = await startServer({ maxConnections: 2 }, { authenticate: async () => (await sleep(30), true) });
    const statuses = await Promise.all([1, 2, 3, 4, 5].map(() => upgradeStatus(s.url)));
    expect(statuses.filter((c) => c === 101)).toHaveLength(2);
    expect(statuses.filter((c) => c === 503)).toHaveLength(3);
  });

  it('maxConnections: a socket handed to connect() over the limit is closed with 1013', async () => {
    const m = new WebSocketConnectionManager({ maxConnections: 1 });
    const d = await directServer();
    const first = await directPair(d);
    await m.connect(first.serverSide, 'first');
    const second = await directPair(d);
    const secondClosed = closed(second.ws);
    await expect(m.connect(second.serverSide, 'second')).rejects.toMatchObject({ code: 'CONNECTION_LIMIT' });
    expect((await secondClosed).code).toBe(CloseCode.TryAgainLater);
    expect(m.getActiveConnections()).toEqual(['first']);
    expect(first.ws.readyState).toBe(WebSocket.OPEN);
    await m.gracefulShutdown({ timeoutMs: 200 });
  });

  it('maxConnectionsPerIp: a second connection from the same IP gets HTTP 503', async () => {
    const s = await startServer({ maxConnectionsPerIp: 1 });
    await client(s.url);
    await waitFor(() => s.manager.getConnectionCount() === 1, 'registered');
    expect(await upgradeStatus(s.url)).toBe(503);
    expect(s.manager.getConnectionCount()).toBe(1);
  });

  it('maxConnectionsPerIp: concurrent upgrades with a slow authenticate get HTTP 503, not a 101 then 1013', async () => {
    const s = await startServer(
      { maxConnectionsPerIp: 1 },
      { authenticate: async () => (await sleep(30), true) },
    );
    const statuses = await Promise.all([1, 2, 3].map(() => upgradeStatus(s.url)));
    expect(statuses.sort()).toEqual([101, 503, 503]);
  });

  it('maxConnectionsPerIp: a socket that was already closed when passed to connect() does not use up a slot', async () => {
    const m = new WebSocketConnectionManager({ maxConnectionsPerIp: 1 });
    const d = await directServer();
    const dead = await directPair(d);
    const serverSeesClose = new Promise((r) => dead.serverSide.once('close', r));
    dead.ws.terminate();
    await serverSeesClose;
    await expect(m.connect(dead.serverSide, 'dead', { remoteAddress: '10.1.1.1' })).rejects.toMatchObject({
      code: 'NOT_OPEN',
    });
    const live = await directPair(d);
    await expect(m.connect(live.serverSide, 'live', { remoteAddress: '10.1.1.1' })).resolves.toBe('live');
    expect(live.ws.readyState).toBe(WebSocket.OPEN);
    await m.gracefulShutdown({ timeoutMs: 200 });
  });

  it('maxConnectionsPerIp with trustProxy counts the address our proxy appended (rightmost X-Forwarded-For)', async () => {
    const s = await startServer({ maxConnectionsPerIp: 1 }, { trustProxy: true });
    await client(s.url, { headers: { 'X-Forwarded-For': '172.16.0.1, 10.0.0.1' } });
    await waitFor(() => s.manager.getConnectionCount() === 1, 'registered');
    expect(await upgradeStatus(s.url, { 'X-Forwarded-For': '10.0.0.1' })).toBe(503);
    // A client forging entries on the left cannot escape the limit.
    expect(await upgradeStatus(s.url, { 'X-Forwarded-For': '1.2.3.4, 10.0.0.1' })).toBe(503);
    expect(await upgradeStatus(s.url, { 'X-Forwarded-For': '10.0.0.2' })).toBe(101);
  });
});

describe('upgrade checks', () => {
  it('allowedOrigins: another origin gets HTTP 403; a listed one, the own one or none is upgraded', async () => {
    const s = await startServer({ allowedOrigins: ['https://app.example'] });
    expect(await upgradeStatus(s.url, { Origin: 'https://evil.example' })).toBe(403);
    expect(await upgradeStatus(s.url, { Origin: 'https://app.example' })).toBe(101);
    expect(await upgradeStatus(s.url, { Origin: 'HTTPS://App.example:443' })).toBe(101);
    expect(await upgradeStatus(s.url, { Origin: `http://127.0.0.1:${s.port}` })).toBe(101);
    expect(await upgradeStatus(s.url)).toBe(101); // no Origin: not a browser
  });

  it('authenticate returning false (sync or async) gets HTTP 401', async () => {
    const sync = await startServer({}, { authenticate: () => false });
    expect(await upgradeStatus(sync.url)).toBe(401);
    const async_ = await startServer({}, { authenticate: async () => false });
    expect(await upgradeStatus(async_.url)).toBe(401);
    expect(sync.manager.getConnectionCount() + async_.manager.getConnectionCount()).toBe(0);
  });

  it('authenticate that throws or rejects gets HTTP 401 and is reported as an error', async () => {
    const errors: string[] = [];
    const s = await startServer(
      {},
      {
        authenticate: (req) => {
          if (req.url?.endsWith('?throw')) throw new Error('auth backend down (sync)');
          return Promise.reject(new Error('auth backend down (async)'));
        },
      },
    );
    s.manager.on('error', (e) => void errors.push(e.error.message));
    expect(await upgradeStatus(`${s.url}?throw`)).toBe(401);
    expect(await upgradeStatus(`${s.url}?reject`)).toBe(401);
    expect(errors).toEqual(['auth backend down (sync)', 'auth backend down (async)']);
  });

  it('authenticate returning { clientId } registers the client under that id', async () => {
    const s = await startServer({}, { authenticate: idFromQuery });
    await client(`${s.url}?id=user-42`);
    await waitFor(() => s.manager.isConnected('user-42'), 'registered as user-42');
    expect(s.manager.getActiveConnections()).toEqual(['user-42']);
  });

  it('a malformed upgrade gets HTTP 400 and does not keep a connection slot', async () => {
    const s = await startServer({ maxConnections: 1 });
    expect((await upgradeResponse(s.port, '/ws', { 'Sec-WebSocket-Key': 'not a key' })).status).toBe(400);
    expect((await upgradeResponse(s.port, '/ws', { 'Sec-WebSocket-Key': undefined })).status).toBe(400);
    expect((await upgradeResponse(s.port, '/ws', { 'Sec-WebSocket-Version': '7' })).status).toBe(400);
    // The refused attempts released their reservation: the single slot is still free.
    expect(await upgradeStatus(s.url)).toBe(101);
  });

  it('a refusal at the limit carries Retry-After from shutdownRetryAfterMs (rounded up to seconds)', async () => {
    const s = await startServer({ maxConnections: 1, shutdownRetryAfterMs: 1_200 });
    await client(s.url);
    await waitFor(() => s.manager.getConnectionCount() === 1, 'registered');
    expect(await upgradeResponse(s.port, '/ws')).toEqual({ status: 503, retryAfter: '2' });
  });

  it('a wrong path gets HTTP 404; the right path with a query string is upgraded', async () => {
    const s = await startServer();
    expect(await upgradeStatus(`ws://127.0.0.1:${s.port}/other`)).toBe(404);
    expect(await upgradeStatus(`ws://127.0.0.1:${s.port}/`)).toBe(404);
    expect(await upgradeStatus(`${s.url}?room=1`)).toBe(101);
  });
});

describe('inbound limits', () => {
  it('maxPayloadBytes: a larger frame closes the connection with 1009; one at the limit passes', async () => {
    const s = await startServer({ maxPayloadBytes: 1024 }, { authenticate: idFromQuery });
    const sizes: number[] = [];
    const reasons: string[] = [];
    s.manager.on('message', (e) => void sizes.push((e.data as string).length));
    s.manager.on('disconnect', (e) => void reasons.push(e.reason));
    const ws = await client(`${s.url}?id=big`);
    await waitFor(() => s.manager.isConnected('big'), 'registered');
    const c = closed(ws);
    ws.send('a'.repeat(1024));
    ws.send('b'.repeat(1025));
    expect((await c).code).toBe(CloseCode.MessageTooBig);
    expect(sizes).toEqual([1024]);
    await waitFor(() => reasons.length === 1, 'disconnect');
    expect(reasons).toEqual(['message-too-big']);
  });

  it('rateLimit: messages over the burst close the connection with 4002; only the burst is delivered', async () => {
    const s = await startServer(
      { rateLimit: { messagesPerSecond: 1, burst: 3 } },
      { authenticate: idFromQuery },
    );
    const got: unknown[] = [];
    const reasons: string[] = [];
    s.manager.on('message', (e) => void got.push(e.data));
    s.manager.on('disconnect', (e) => void reasons.push(e.reason));
    const ws = await client(`${s.url}?id=spammer`);
    await waitFor(() => s.manager.isConnected('spammer'), 'registered');
    const c = closed(ws);
    for (let i = 0; i < 10; i++) ws.send(`m${i}`);
    expect((await c).code).toBe(CloseCode.RateLimited);
    expect(got).toEqual(['m0', 'm1', 'm2']);
    await waitFor(() => reasons.length === 1, 'disconnect');
    expect(reasons).toEqual(['rate-limited']);
  });

  it('rateLimit is per connection: a quiet client is not affected by a noisy one', async () => {
    const s = await startServer(
      { rateLimit: { messagesPerSecond: 1, burst: 2 } },
      { authenticate: idFromQuery },
    );
    const got: string[] = [];
    s.manager.on('message', (e) => void got.push(`${e.clientId}:${String(e.data)}`));
    const noisy = await client(`${s.url}?id=noisy`);
    const quiet = await client(`${s.url}?id=quiet`);
    await waitFor(() => s.manager.getConnectionCount() === 2, 'both registered');
    const c = closed(noisy);
    for (let i = 0; i < 5; i++) noisy.send('n');
    expect((await c).code).toBe(CloseCode.RateLimited);
    quiet.send('q1');
    quiet.send('q2');
    await waitFor(() => got.filter((g) => g.startsWith('quiet')).length === 2, 'quiet delivered');
    expect(quiet.readyState).toBe(WebSocket.OPEN);
  });
});

describe('handler errors', () => {
  async function twoClients() {
    const s = await startServer({}, { authenticate: idFromQuery });
    const errors: Array<ManagerEvents['error']> = [];
    const disconnects: Array<ManagerEvents['disconnect']> = [];
    s.manager.on('error', (e) => void errors.push(e));
    s.manager.on('disconnect', (e) => void disconnects.push(e));
    const bad = await client(`${s.url}?id=bad`);
    const good = await client(`${s.url}?id=good`);
    await waitFor(() => s.manager.getConnectionCount() === 2, 'both registered');
    return { s, errors, disconnects, bad, good };
  }

  it('a message handler that throws closes only that connection with 1011', async () => {
    const { s, errors, disconnects, bad, good } = await twoClients();
    const handled: string[] = [];
    s.manager.on('message', (e) => {
      if (e.data === 'boom') throw new Error('handler exploded');
      handled.push(`${e.clientId}:${String(e.data)}`);
    });
    const c = closed(bad);
    bad.send('boom');
    expect((await c).code).toBe(CloseCode.InternalError);
    expect(errors.map((e) => [e.clientId, e.error.message])).toEqual([['bad', 'handler exploded']]);
    await waitFor(() => disconnects.length === 1, 'disconnect');
    expect(disconnects[0]).toMatchObject({ clientId: 'bad', code: 1011, reason: 'handler-error' });

    good.send('fine');
    await waitFor(() => handled.length === 1, 'good handled');
    expect(handled).toEqual(['good:fine']);
    expect(good.readyState).toBe(WebSocket.OPEN);
    expect(s.manager.getActiveConnections()).toEqual(['good']);
  });

  it('an async message handler that rejects closes only that connection with 1011', async () => {
    const { s, errors, bad, good } = await twoClients();
    s.manager.on('message', async (e) => {
      await sleep(1);
      if (e.clientId === 'bad') throw new Error('async handler failed');
    });
    const c = closed(bad);
    bad.send('x');
    good.send('x');
    expect((await c).code).toBe(CloseCode.InternalError);
    expect(errors.map((e) => e.error.message)).toEqual(['async handler failed']);
    expect(good.readyState).toBe(WebSocket.OPEN);
    expect(s.manager.isConnected('good')).toBe(true);
  });

  it('an error listener that throws does not crash the process', async () => {
    const { s, bad, good } = await twoClients();
    s.manager.on('error', () => {
      throw new Error('error listener broken too');
    });
    s.manager.on('message', () => {
      throw new Error('handler exploded');
    });
    const c = closed(bad);
    bad.send('boom');
    expect((await c).code).toBe(CloseCode.InternalError);
    expect(good.readyState).toBe(WebSocket.OPEN);
  });
});
