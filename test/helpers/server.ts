import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import {
  WebSocketConnectionManager,
  type WebSocketConfig,
  type ManagerHooks,
} from '../../src/server/index.js';
import type { AttachOptions } from '../../src/server/upgrade/upgrade.js';

export interface TestServer {
  manager: WebSocketConnectionManager;
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

const open: TestServer[] = [];

/** An http.Server on a port chosen by the OS, with a manager attached at /ws. */
export async function startServer(
  config: WebSocketConfig = {},
  attach: AttachOptions = {},
  hooks: ManagerHooks = {},
): Promise<TestServer> {
  const manager = new WebSocketConnectionManager(config, hooks);
  const server = createServer((_req, res) => {
    res.writeHead(200).end('ok');
  });
  manager.attach(server, { path: '/ws', ...attach });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const ts: TestServer = {
    manager,
    server,
    port,
    url: `ws://127.0.0.1:${port}/ws`,
    async close() {
      await manager.gracefulShutdown({ timeoutMs: 500 });
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  open.push(ts);
  return ts;
}

export async function closeAllServers(): Promise<void> {
  await Promise.all(open.splice(0).map((s) => s.close()));
}

/** Open a plain ws client and wait until it is open. */
export function openClient(
  url: string,
  options: ConstructorParameters<typeof WebSocket>[2] = {},
  protocols?: string | string[],
): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

/** Resolve with the close code and reason the client sees. */
export function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) resolve({ code: -1, reason: 'already closed' });
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
}

/** Collect messages a client receives. */
export function collect(ws: WebSocket): Array<string | Buffer> {
  const out: Array<string | Buffer> = [];
  ws.on('message', (data, isBinary) => out.push(isBinary ? (data as Buffer) : data.toString()));
  return out;
}

/** Next message the client receives. */
export function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => ws.once('message', (d) => resolve(d.toString())));
}

/** Poll until `predicate` holds (real sockets need a moment); fails with `what` after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, what = 'condition', timeoutMs = 5000): Promise<void> {
  const start = Date.now();
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The HTTP status an upgrade attempt gets, or 101. */
export function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => {
      resolve(101);
      ws.close();
    });
    ws.once('error', () => {});
  });
}
