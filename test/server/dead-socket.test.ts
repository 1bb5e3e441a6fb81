/**
 * Writes to a socket whose TCP connection is already gone (destroyed, ended) while `ws` still says OPEN: the write
 * does not throw, so it must be detected, on the direct write path and on the `ws.send` path alike.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { StabilizerClient } from '../../src/client/index.js';
import { SUBPROTOCOL } from '../../src/protocol/index.js';
import {
  CloseCode,
  WebSocketConnectionManager,
  type ManagerEvents,
  type WebSocketConfig,
} from '../../src/server/index.js';
import { closeAllServers, closed, collect, startServer, waitFor } from '../helpers/server.js';
import { cleanup, client, idFromQuery, recordingLogger } from './support.js';

const httpServers: Server[] = [];
const stabilizerClients: StabilizerClient[] = [];

afterEach(async () => {
  for (const c of stabilizerClients.splice(0)) c.close();
  await closeAllServers();
  await cleanup();
  for (const http of httpServers.splice(0)) {
    http.closeAllConnections();
    await new Promise((r) => http.close(r));
  }
});

/** The TCP socket under a server-side `ws` socket. */
function tcp(ws: WebSocket): { destroy(): void; end(): void } {
  return (ws as unknown as { _socket: { destroy(): void; end(): void } })._socket;
}

/** Destroy the server side of a client's TCP connection, as a reset or a failed write would. */
function killTcp(manager: WebSocketConnectionManager, clientId: string): void {
  tcp(manager.connections.get(clientId)!.socket).destroy();
}

/** A server whose plain clients are named by `?id=`, with the disconnect events recorded. */
async function named(config: WebSocketConfig = {}) {
  const s = await startServer(config, { authenticate: idFromQuery });
  const disconnects: Array<ManagerEvents['disconnect']> = [];
  s.manager.on('disconnect', (e) => void disconnects.push(e));
  const join = async (id: string) => {
    const ws = await client(`${s.url}?id=${id}`);
    await waitFor(() => s.manager.isConnected(id), `${id} registered`);
    return ws;
  };
  return { s, join, disconnects };
}

/** A manager fed by a `ws` server that negotiates permessage-deflate, so every write goes through `ws.send`. */
async function deflateServer(manager: WebSocketConnectionManager): Promise<string> {
  const http = createServer();
  httpServers.push(http);
  const wss = new WebSocketServer({
    server: http,
    perMessageDeflate: { threshold: 0 },
    handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });
  wss.on('connection', (ws, req) => {
    manager
      .connect(ws, new URL(req.url ?? '/', 'http://x').searchParams.get('id') ?? undefined)
      .catch(() => {});
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return `ws://127.0.0.1:${(http.address() as AddressInfo).port}`;
}

describe('a write to a dead socket (direct write path)', () => {
  it('broadcast lists it as send-failed, the others get the message, and disconnect says send-failed', async () => {
    const { s, join, disconnects } = await named();
    const inboxes: Array<Array<string | Buffer>> = [];
    for (const id of ['a', 'b', 'c', 'd', 'e']) inboxes.push(collect(await join(id)));
    killTcp(s.manager, 'c');

    const result = s.manager.broadcast('tick');
    expect(result).toEqual({
      delivered: 4,
      buffered: 0,
      dropped: 0,
      failed: [{ clientId: 'c', reason: 'send-failed' }],
    });
    await waitFor(() => disconnects.length === 1, 'disconnect event');
    expect(disconnects[0]).toMatchObject({ clientId: 'c', reason: 'send-failed', sessionRetained: false });
    expect(s.manager.getActiveConnections().sort()).toEqual(['a', 'b', 'd', 'e']);
    await waitFor(() => [0, 1, 3, 4].every((i) => inboxes[i]!.length === 1), 'the others received it');
    expect(inboxes[2]).toEqual([]);
  });

  it('sendToClient throws SEND_FAILED, logs send.failed, and the client is disconnected', async () => {
    const logger = recordingLogger();
    const { s, join, disconnects } = await named({ logger });
    await join('a');
    killTcp(s.manager, 'a');
    expect(() => s.manager.sendToClient('a', 'x')).toThrow(expect.objectContaining({ code: 'SEND_FAILED' }));
    expect(logger.events('send.failed').map((e) => e.obj)).toEqual([
      { event: 'send.failed', clientId: 'a', reason: 'send-failed' },
    ]);
    await waitFor(() => disconnects.length === 1, 'disconnect event');
    expect(disconnects[0]).toMatchObject({ clientId: 'a', code: 1006, reason: 'send-failed' });
    expect(s.manager.isConnected('a')).toBe(false);
  });

  it('a socket whose TCP write side was ended (half-closed by the server) counts as dead too', async () => {
    const { s, join, disconnects } = await named();
    await join('a');
    tcp(s.manager.connections.get('a')!.socket).end();
    expect(s.manager.broadcast('x').failed).toEqual([{ clientId: 'a', reason: 'send-failed' }]);
    await waitFor(() => disconnects.length === 1, 'disconnect event');
    expect(disconnects[0]).toMatchObject({ clientId: 'a', reason: 'send-failed' });
  });

  it('a healthy socket that is merely closing is still skipped, not failed', async () => {
    const { s, join } = await named();
    const ws = await join('a');
    const c = closed(ws);
    void s.manager.disconnect('a', CloseCode.Normal, 'bye');
    expect(s.manager.broadcast('x')).toEqual({ delivered: 0, buffered: 0, dropped: 0, failed: [] });
    expect(await c).toEqual({ code: 1000, reason: 'bye' });
  });
});

describe('a write to a dead socket (ws.send path: permessage-deflate)', () => {
  it('broadcast and sendToClient report send-failed; disconnect says send-failed', async () => {
    const manager = new WebSocketConnectionManager();
    const disconnects: Array<ManagerEvents['disconnect']> = [];
    manager.on('disconnect', (e) => void disconnects.push(e));
    try {
      const url = await deflateServer(manager);
      const good = await client(`${url}?id=good`, { perMessageDeflate: true });
      await client(`${url}?id=bad`, { perMessageDeflate: true });
      await client(`${url}?id=worse`, { perMessageDeflate: true });
      await waitFor(() => manager.getConnectionCount() === 3, 'registered');
      expect(manager.connections.get('bad')!.socket.extensions).toContain('permessage-deflate');
      const goodGot = collect(good);
      killTcp(manager, 'bad');
      killTcp(manager, 'worse');

      const result = manager.broadcast('tick');
      expect(result.delivered).toBe(1);
      expect(result.failed).toEqual([
        { clientId: 'bad', reason: 'send-failed' },
        { clientId: 'worse', reason: 'send-failed' },
      ]);
      await waitFor(() => goodGot.length === 1, 'good received');
      expect(goodGot).toEqual(['tick']);
      await waitFor(() => disconnects.length === 2, 'disconnect events');
      expect(disconnects.map((d) => d.reason)).toEqual(['send-failed', 'send-failed']);

      await client(`${url}?id=next`, { perMessageDeflate: true });
      await waitFor(() => manager.isConnected('next'), 'next registered');
      killTcp(manager, 'next');
      expect(() => manager.sendToClient('next', { n: 1 })).toThrow(
        expect.objectContaining({ code: 'SEND_FAILED' }),
      );
      await waitFor(() => disconnects.length === 3, 'disconnect event of next');
      expect(disconnects[2]).toMatchObject({ clientId: 'next', reason: 'send-failed' });
    } finally {
      await manager.gracefulShutdown({ timeoutMs: 200 });
    }
  });

  it('the ws.send path while the sender is busy (a fragmented message in progress) detects it too', async () => {
    const { s, join, disconnects } = await named();
    await join('a');
    const serverSide = s.manager.connections.get('a')!.socket;
    serverSide.send('part1-', { fin: false }); // the direct path is off until the message is finished
    tcp(serverSide).destroy();
    expect(s.manager.broadcast('x').failed).toEqual([{ clientId: 'a', reason: 'send-failed' }]);
    await waitFor(() => disconnects.length === 1, 'disconnect event');
    expect(disconnects[0]).toMatchObject({ clientId: 'a', reason: 'send-failed' });
  });
});

describe('a write to a dead socket (protocol client)', () => {
  const secret = 'dead-socket-secret-0123456789abcdef0123456789';

  it('on the ws.send path too (permessage-deflate): buffered, send-failed, then resumed with everything', async () => {
    const manager = new WebSocketConnectionManager({ tokens: { secret } });
    const disconnects: Array<ManagerEvents['disconnect']> = [];
    manager.on('disconnect', (e) => void disconnects.push(e));
    try {
      const url = await deflateServer(manager);
      const c = new StabilizerClient<number>(url, {
        WebSocket: WebSocket as never,
        minDelayMs: 10,
        maxDelayMs: 50,
      });
      stabilizerClients.push(c as StabilizerClient);
      const received: number[] = [];
      c.on('message', (n) => void received.push(n));
      const resumed: string[] = [];
      c.on('resumed', ({ sessionId }) => void resumed.push(sessionId));
      await waitFor(() => c.state === 'open' && manager.isConnected(c.sessionId!), 'client open');
      const id = c.sessionId!;
      expect(manager.connections.get(id)!.socket.extensions).toContain('permessage-deflate');
      expect(manager.sendToClient(id, 1)).toBe('sent');
      await waitFor(() => received.length === 1, 'first');

      killTcp(manager, id);
      expect(manager.sendToClient(id, 2)).toBe('buffered');
      expect(manager.broadcast(3)).toMatchObject({ delivered: 0, buffered: 1, failed: [] });
      await waitFor(() => disconnects.length === 1, 'disconnect event');
      expect(disconnects[0]).toMatchObject({ clientId: id, reason: 'send-failed', sessionRetained: true });
      await waitFor(() => resumed.length === 1 && received.length === 3, 'resumed with everything', 10_000);
      expect(received).toEqual([1, 2, 3]);
    } finally {
      await manager.gracefulShutdown({ timeoutMs: 200 });
    }
  });

  it('the reliable message is buffered, the socket is dropped resumably, and the resume delivers everything once', async () => {
    const s = await startServer({ tokens: { secret } });
    const disconnects: Array<ManagerEvents['disconnect']> = [];
    s.manager.on('disconnect', (e) => void disconnects.push(e));
    const c = new StabilizerClient<number>(s.url, {
      WebSocket: WebSocket as never,
      minDelayMs: 10,
      maxDelayMs: 50,
    });
    stabilizerClients.push(c as StabilizerClient);
    const received: number[] = [];
    c.on('message', (n) => void received.push(n));
    const resumed: string[] = [];
    c.on('resumed', ({ sessionId }) => void resumed.push(sessionId));
    await waitFor(() => c.state === 'open', 'client open');
    const id = c.sessionId!;
    for (let n = 1; n <= 3; n++) expect(s.manager.sendToClient(id, n)).toBe('sent');
    await waitFor(() => received.length === 3, 'first three');

    killTcp(s.manager, id);
    expect(s.manager.sendToClient(id, 4)).toBe('buffered');
    expect(s.manager.broadcast(5)).toMatchObject({ delivered: 0, buffered: 1, failed: [] });
    await waitFor(() => disconnects.length === 1, 'disconnect event');
    expect(disconnects[0]).toMatchObject({ clientId: id, reason: 'send-failed', sessionRetained: true });
    expect(s.manager.sendToClient(id, 6)).toBe('buffered'); // detached now

    await waitFor(() => resumed.length === 1 && received.length === 6, 'resumed with everything', 10_000);
    expect(resumed).toEqual([id]);
    // Each stream in order and once: the inbox (1-4, 6) and `$all` (5); no order across the two (PROTOCOL §2.6).
    expect(received.filter((n) => n !== 5)).toEqual([1, 2, 3, 4, 6]);
    expect(received.filter((n) => n === 5)).toEqual([5]);
    expect(s.manager.sendToClient(id, 7)).toBe('sent');
    await waitFor(() => received.length === 7, 'live again');
    expect(received.at(-1)).toBe(7);
  });
});
