// The Fetch-`Request` upgrade path that Deno (`Deno.upgradeWebSocket`), Bun and Workers need, run on Node: the
// runtime is stood in for by `ws` behind a facade that shows only the standard (WHATWG) WebSocket members, and the
// request reaches the core as a Fetch `Request`, as it would there. A socket is handed out not yet open, and opens
// once the upgrade response is written: Deno's order.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { StabilizerClient } from '../../src/client/index.js';
import {
  handleFetchUpgrade,
  WebSocketConnectionManager,
  type FetchUpgradeOptions,
  type StandardWebSocket,
} from '../../src/server/index.js';
import { closed, openClient, upgradeStatus, waitFor } from '../helpers/server.js';

/** A server-side standard WebSocket: CONNECTING until the runtime completes the upgrade, then `ws` underneath. */
class StandardFacade implements StandardWebSocket {
  binaryType = 'blob';
  private ws: WebSocket | undefined;
  private readonly listeners: Array<[string, (event: never) => void]> = [];
  get readyState(): number {
    return this.ws?.readyState ?? 0;
  }
  get protocol(): string {
    return this.ws?.protocol ?? '';
  }
  get bufferedAmount(): number {
    return this.ws?.bufferedAmount ?? 0;
  }
  send(data: string | ArrayBuffer | ArrayBufferView): void {
    this.ws!.send(data);
  }
  close(code?: number, reason?: string): void {
    this.ws!.close(code, reason);
  }
  addEventListener(type: string, listener: (event: never) => void): void {
    this.listeners.push([type, listener]);
    if (this.ws && type !== 'open') this.ws.addEventListener(type as 'message', listener as never);
  }
  /** The runtime's side: the handshake is done. */
  opened(ws: WebSocket): void {
    this.ws = ws;
    ws.binaryType = this.binaryType === 'arraybuffer' ? 'arraybuffer' : 'nodebuffer';
    for (const [type, listener] of this.listeners) {
      if (type !== 'open') ws.addEventListener(type as 'message', listener as never);
    }
    for (const [type, listener] of this.listeners) if (type === 'open') listener({} as never);
  }
}

const servers: Array<{ server: Server; manager: WebSocketConnectionManager }> = [];
afterEach(async () => {
  for (const { server, manager } of servers.splice(0)) {
    await manager.gracefulShutdown({ timeoutMs: 200 });
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

/** A "runtime" on node:http that hands each upgrade to the core as a Fetch Request. */
async function fetchRuntime(
  manager: WebSocketConnectionManager,
  options: FetchUpgradeOptions = {},
): Promise<string> {
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (p) => [...p][0] ?? false });
  const pending = new WeakMap<Response, StandardFacade>();
  const server = createServer((_req, res) => void res.writeHead(200).end('ok'));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
    const request = new Request(`http://${req.headers.host}${req.url}`, { headers });
    const upgrade = (_r: Request, protocol: string | undefined) => {
      const facade = new StandardFacade();
      const response = new Response(null, { status: 200, headers: { 'x-protocol': protocol ?? '' } });
      pending.set(response, facade);
      return { socket: facade, response };
    };
    void handleFetchUpgrade(manager, request, upgrade, { ...options, remoteAddress: '127.0.0.1' }).then(
      (response) => {
        const facade = pending.get(response);
        if (!facade) {
          let extra = '';
          response.headers.forEach((v, k) => (extra += `${k}: ${v}\r\n`));
          socket.end(
            `HTTP/1.1 ${response.status} X\r\nConnection: close\r\n${extra}Content-Length: 0\r\n\r\n`,
          );
          return;
        }
        const protocol = response.headers.get('x-protocol');
        if (!protocol) delete req.headers['sec-websocket-protocol'];
        wss.handleUpgrade(req, socket, head, (ws) => facade.opened(ws));
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push({ server, manager });
  return `ws://127.0.0.1:${(server.address() as AddressInfo).port}/ws`;
}

describe('handleFetchUpgrade over a standard WebSocket', () => {
  it('a protocol client connects, sends reliably, and resumes with every message exactly once', async () => {
    const manager = new WebSocketConnectionManager();
    const url = await fetchRuntime(manager, {
      authenticate: (req) => (req.headers.get('x-user') === null ? { data: 'anon' } : false),
    });
    const received: unknown[] = [];
    manager.on('message', (e) => void received.push(e.data));
    const client = new StabilizerClient<unknown, unknown>(url, { WebSocket, minDelayMs: 20, maxDelayMs: 50 });
    const got: unknown[] = [];
    client.on('message', (m) => void got.push(m));
    await client.send({ n: 1 });
    await client.send(new Uint8Array([7, 8]));
    expect(received[0]).toEqual({ n: 1 });
    expect([...(received[1] as Buffer)]).toEqual([7, 8]);
    const id = client.sessionId!;
    manager.sendToClient(id, 'before');

    // Drop the socket; what the server sends meanwhile is replayed on resume.
    manager.connections.get(id)!.terminate('socket-error');
    await waitFor(() => !manager.isConnected(id), 'the drop');
    manager.sendToClient(id, 'while away');
    await waitFor(() => manager.isConnected(id), 'the resume');
    manager.sendToClient(id, 'after');
    await waitFor(() => got.length === 3, 'three messages');
    expect(got).toEqual(['before', 'while away', 'after']);
    expect(client.sessionId).toBe(id);
    client.close();
  });

  it('keeps the upgrade answers: 426, 401, a thrown status, 403, 503', async () => {
    const manager = new WebSocketConnectionManager({ allowedOrigins: ['https://ok.example'] });
    const url = await fetchRuntime(manager, {
      authenticate: (req) => {
        if (req.headers.get('x-teapot')) throw Object.assign(new Error('no'), { status: 418 });
        return req.headers.get('x-user') !== null;
      },
    });
    const ok = { origin: 'https://ok.example', 'x-user': 'ann' };
    expect(await upgradeStatus(url, { origin: 'https://ok.example' })).toBe(401);
    expect(await upgradeStatus(url, { ...ok, 'x-teapot': '1' })).toBe(418);
    expect(await upgradeStatus(url, { origin: 'https://evil.example', 'x-user': 'ann' })).toBe(403);
    const plain = await openClient(url, { headers: ok });
    expect(manager.getConnectionCount()).toBe(1);
    void manager.gracefulShutdown({ timeoutMs: 200 });
    expect((await closed(plain)).code).toBe(1001);
    expect(await upgradeStatus(url, ok)).toBe(503);
    const response = await handleFetchUpgrade(manager, new Request('http://x/ws'), () => {
      throw new Error('not called');
    });
    expect(response.status).toBe(426);
  });

  it('refuses another origin by default (403), trusts forwarded headers only with trustProxy', async () => {
    const manager = new WebSocketConnectionManager();
    const addresses: Array<string | undefined> = [];
    manager.on('connect', (e) => void addresses.push(e.remoteAddress));
    const url = await fetchRuntime(manager);
    const own = url.replace('ws:', 'http:').replace('/ws', '');
    expect(await upgradeStatus(url, { origin: 'https://evil.example', cookie: 'sid=1' })).toBe(403);
    expect(await upgradeStatus(url, { origin: own, cookie: 'sid=1' })).toBe(101);
    expect(await upgradeStatus(url, { cookie: 'sid=1' })).toBe(101);
    const proxied = {
      origin: 'https://app.example',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'app.example',
    };
    const spoof = { ...proxied, 'x-forwarded-for': '203.0.113.9' };
    expect(await upgradeStatus(url, spoof)).toBe(403); // the peer is no trusted proxy
    const trusting = await fetchRuntime(manager, { trustProxy: ['127.0.0.1'] });
    expect(await upgradeStatus(trusting, spoof)).toBe(101);
    await waitFor(() => addresses.length === 3, 'three connects');
    expect(addresses).toEqual(['127.0.0.1', '127.0.0.1', '203.0.113.9']);
    addresses.length = 0;
    // The client address: the peer's unless the peer is a trusted proxy.
    const direct = await openClient(url, { headers: { 'x-forwarded-for': '198.51.100.1' } });
    const viaProxy = await openClient(trusting, { headers: spoof });
    await waitFor(() => addresses.length === 2, 'two connects');
    expect(addresses.sort()).toEqual(['127.0.0.1', '203.0.113.9']);
    direct.close();
    viaProxy.close();
  });

  it('answers 429 with Retry-After over rateLimiters.upgradesPerIp', async () => {
    const upgradesPerIp = new RateLimiterMemory({ points: 1, duration: 30 });
    const manager = new WebSocketConnectionManager({ rateLimiters: { upgradesPerIp } });
    const url = await fetchRuntime(manager);
    const first = await openClient(url);
    const refused = await handleFetchUpgrade(
      manager,
      new Request('http://x/ws', { headers: { upgrade: 'websocket' } }),
      () => {
        throw new Error('not called');
      },
      { remoteAddress: '127.0.0.1' },
    );
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    first.close();
  });

  it('a plain client goes through the same path: text in, JSON out, closes reported', async () => {
    const manager = new WebSocketConnectionManager();
    const url = await fetchRuntime(manager);
    const seen: string[] = [];
    manager.on('message', (e) => void seen.push(e.data as string));
    const disconnects: number[] = [];
    manager.on('disconnect', (e) => void disconnects.push(e.code));
    const ws = await openClient(url);
    const echo = new Promise<string>((resolve) => ws.once('message', (d) => resolve(String(d))));
    await waitFor(() => manager.getConnectionCount() === 1, 'registered');
    ws.send('hello');
    await waitFor(() => seen.length === 1, 'the message');
    manager.broadcast({ hi: 'there' });
    expect(JSON.parse(await echo)).toEqual({ hi: 'there' });
    ws.close(1000);
    await waitFor(() => disconnects.length === 1, 'the disconnect');
    expect(disconnects).toEqual([1000]);
    expect(seen).toEqual(['hello']);
  });
});
