import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CloseCode, WebSocketConnectionManager, type ManagerEvents } from '../../src/server/index.js';
import { closeAllServers, closed, startServer, waitFor } from '../helpers/server.js';
import { cleanup, client, directPair, directServer, idFromQuery } from './support.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const managers: WebSocketConnectionManager[] = [];

function manager(config: ConstructorParameters<typeof WebSocketConnectionManager>[0] = {}) {
  const m = new WebSocketConnectionManager(config);
  managers.push(m);
  return m;
}

afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.gracefulShutdown({ timeoutMs: 200 })));
  await closeAllServers();
  await cleanup();
});

describe('registry: connect', () => {
  it('connect(socket) resolves with a generated UUID and tracks the socket', async () => {
    const m = manager();
    const d = await directServer();
    const { serverSide } = await directPair(d);
    const id = await m.connect(serverSide);
    expect(id).toMatch(UUID);
    expect(m.getActiveConnections()).toEqual([id]);
    expect(m.getConnectionCount()).toBe(1);
    expect(m.isConnected(id)).toBe(true);
  });

  it('connect(socket, clientId) resolves with the given id', async () => {
    const m = manager();
    const d = await directServer();
    const a = await directPair(d);
    const b = await directPair(d);
    expect(await m.connect(a.serverSide, 'alice')).toBe('alice');
    expect(await m.connect(b.serverSide, 'bob')).toBe('bob');
    expect(m.getActiveConnections().sort()).toEqual(['alice', 'bob']);
    expect(m.getConnectionCount()).toBe(2);
  });

  it('connect of a socket that is no longer open rejects with NOT_OPEN and registers nothing', async () => {
    const m = manager();
    const d = await directServer();
    const { ws, serverSide } = await directPair(d);
    const serverClosed = new Promise((r) => serverSide.once('close', r));
    ws.terminate();
    await serverClosed;
    await expect(m.connect(serverSide, 'late')).rejects.toMatchObject({ code: 'NOT_OPEN' });
    expect(m.getConnectionCount()).toBe(0);
    expect(m.isConnected('late')).toBe(false);
  });

  it('tracks clients that connect through attach and forgets them when they close', async () => {
    const s = await startServer();
    const disconnects: Array<ManagerEvents['disconnect']> = [];
    s.manager.on('disconnect', (e) => void disconnects.push(e));
    const a = await client(s.url);
    const b = await client(s.url);
    const c = await client(s.url);
    await waitFor(() => s.manager.getConnectionCount() === 3, 'three registered');
    expect(new Set(s.manager.getActiveConnections()).size).toBe(3);

    b.close(1000, 'bye');
    await waitFor(() => s.manager.getConnectionCount() === 2, 'one gone');
    expect(disconnects).toHaveLength(1);
    expect(disconnects[0]).toMatchObject({ code: 1000, reason: 'client-closed', sessionRetained: false });
    expect(s.manager.getActiveConnections()).not.toContain(disconnects[0]!.clientId);

    a.terminate();
    c.terminate();
    await waitFor(() => s.manager.getConnectionCount() === 0, 'all gone');
    expect(disconnects.map((e) => e.code)).toEqual([1000, 1006, 1006]);
    expect(s.manager.getStats()).toMatchObject({ connections: 0, handshaking: 0, backend: 'memory' });
  });

  it('emits connect with the id, mode, remote address and the data from authenticate', async () => {
    const s = await startServer({}, { authenticate: () => ({ clientId: 'u1', data: { role: 'admin' } }) });
    const events: Array<ManagerEvents['connect']> = [];
    s.manager.on('connect', (e) => void events.push(e));
    await client(s.url);
    await waitFor(() => events.length === 1, 'connect event');
    expect(events[0]).toMatchObject({
      clientId: 'u1',
      mode: 'plain',
      resume: 'fresh',
      replayed: 0,
      remoteAddress: '127.0.0.1',
      data: { role: 'admin' },
    });
  });
});

describe('registry: duplicate ids', () => {
  it("policy 'replace' (default) closes the old socket with 4501 and keeps the new one", async () => {
    const s = await startServer({}, { authenticate: () => ({ clientId: 'dup' }) });
    const disconnects: Array<ManagerEvents['disconnect']> = [];
    s.manager.on('disconnect', (e) => void disconnects.push(e));
    const first = await client(s.url);
    await waitFor(() => s.manager.isConnected('dup'), 'first registered');
    const firstClosed = closed(first);
    const second = await client(s.url);
    expect((await firstClosed).code).toBe(CloseCode.Replaced);
    expect(second.readyState).toBe(WebSocket.OPEN);
    expect(s.manager.getActiveConnections()).toEqual(['dup']);
    // The replaced socket is reported with reason 'replaced' (README "Registry and messages"); the id stays connected.
    await waitFor(() => disconnects.length === 1, 'disconnect of the replaced socket');
    expect(disconnects[0]).toMatchObject({ clientId: 'dup', code: CloseCode.Replaced, reason: 'replaced' });
    expect(s.manager.isConnected('dup')).toBe(true);

    const got = new Promise<string>((r) => second.once('message', (d) => r(d.toString())));
    expect(s.manager.sendToClient('dup', 'to-newest')).toBe('sent');
    expect(await got).toBe('to-newest');
  });

  it("policy 'reject' closes the new socket with 4501 and keeps the old one", async () => {
    const m = manager({ duplicateIdPolicy: 'reject' });
    const d = await directServer();
    const a = await directPair(d);
    const b = await directPair(d);
    await m.connect(a.serverSide, 'dup');
    const bClosed = closed(b.ws);
    await expect(m.connect(b.serverSide, 'dup')).rejects.toMatchObject({ code: 'DUPLICATE_CLIENT_ID' });
    expect((await bClosed).code).toBe(CloseCode.Replaced);
    expect(a.ws.readyState).toBe(WebSocket.OPEN);
    expect(m.getActiveConnections()).toEqual(['dup']);

    const got = new Promise<string>((r) => a.ws.once('message', (data) => r(data.toString())));
    m.sendToClient('dup', 'still-first');
    expect(await got).toBe('still-first');
  });

  it("policy 'reject' never delivers a message from the refused socket under the taken id", async () => {
    const m = manager({ duplicateIdPolicy: 'reject' });
    const received: unknown[] = [];
    m.on('message', (e) => void received.push(e.data));
    const d = await directServer();
    const a = await directPair(d);
    const b = await directPair(d);
    await m.connect(a.serverSide, 'dup');
    // The refused client speaks right away, before it has read the server's close frame.
    const bClosed = closed(b.ws);
    b.ws.send('impostor');
    await m.connect(b.serverSide, 'dup').catch(() => {});
    expect((await bClosed).code).toBe(CloseCode.Replaced);
    a.ws.send('genuine');
    await waitFor(() => received.length >= 1, 'genuine message');
    expect(received).toEqual(['genuine']);
  });
});

describe('registry: disconnect', () => {
  it('disconnect(id, code, reason) closes with that code and reason and resolves true', async () => {
    const s = await startServer();
    const reasons: string[] = [];
    s.manager.on('disconnect', (e) => void reasons.push(e.reason));
    const ws = await client(s.url);
    await waitFor(() => s.manager.getConnectionCount() === 1, 'register');
    const id = s.manager.getActiveConnections()[0]!;
    const c = closed(ws);
    expect(await s.manager.disconnect(id, 4321, 'kicked')).toBe(true);
    expect(await c).toEqual({ code: 4321, reason: 'kicked' });
    expect(s.manager.isConnected(id)).toBe(false);
    expect(reasons).toEqual(['server-closed']);
  });

  it('disconnect clamps a long close reason to the 123-byte limit', async () => {
    const s = await startServer({}, { authenticate: idFromQuery });
    const ws = await client(`${s.url}?id=long`);
    await waitFor(() => s.manager.isConnected('long'), 'register');
    const c = closed(ws);
    expect(await s.manager.disconnect('long', 4000, 'é'.repeat(100))).toBe(true);
    const { code, reason } = await c;
    expect(code).toBe(4000);
    expect(Buffer.byteLength(reason)).toBeLessThanOrEqual(123);
    expect(reason.length).toBeGreaterThan(40);
    expect(reason).toBe('é'.repeat(reason.length));
  });

  it('disconnect with a code that may not be sent (1005) terminates instead of throwing', async () => {
    const s = await startServer({}, { authenticate: idFromQuery });
    const ws = await client(`${s.url}?id=bad-code`);
    await waitFor(() => s.manager.isConnected('bad-code'), 'register');
    const c = closed(ws);
    expect(await s.manager.disconnect('bad-code', 1005)).toBe(true);
    expect((await c).code).toBe(1006);
    expect(s.manager.isConnected('bad-code')).toBe(false);
  });

  it('disconnect of an unknown id resolves false and touches nothing', async () => {
    const s = await startServer();
    const ws = await client(s.url);
    await waitFor(() => s.manager.getConnectionCount() === 1, 'register');
    expect(await s.manager.disconnect('nobody')).toBe(false);
    expect(s.manager.getConnectionCount()).toBe(1);
    expect(ws.readyState).toBe(WebSocket.OPEN);
  });
});
