/**
 * Shared helpers of the server Foundation suite (not a test file: vitest only runs `*.test.ts`).
 * Builds on test/helpers/server.ts and adds client tracking, a server that hands raw sockets to
 * `manager.connect`, and a recording logger.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import type { Logger } from '../../src/server/index.js';
import { openClient } from '../helpers/server.js';

const clients = new Set<WebSocket>();
const directServers = new Set<DirectServer>();

/** `openClient`, remembered so `cleanup` can drop it even if a test failed half-way. */
export async function client(
  url: string,
  options: ConstructorParameters<typeof WebSocket>[2] = {},
  protocols?: string | string[],
): Promise<WebSocket> {
  const ws = await openClient(url, options, protocols);
  clients.add(ws);
  ws.once('close', () => clients.delete(ws));
  return ws;
}

/** Terminate every tracked client and close every direct server. Use in `afterEach` after `closeAllServers`. */
export async function cleanup(): Promise<void> {
  for (const ws of clients) ws.terminate();
  clients.clear();
  await Promise.all([...directServers].map((d) => d.close()));
}

/** A `ws` server that does not use `attach`: each accepted socket is queued for the test to pass to `connect`. */
export interface DirectServer {
  url: string;
  /** The next server-side socket (waits for the next client). */
  accepted(): Promise<WebSocket>;
  close(): Promise<void>;
}

export async function directServer(): Promise<DirectServer> {
  const http: Server = createServer();
  const wss = new WebSocketServer({ server: http });
  const queue: WebSocket[] = [];
  const waiters: Array<(ws: WebSocket) => void> = [];
  wss.on('connection', (ws) => {
    const waiter = waiters.shift();
    if (waiter) waiter(ws);
    else queue.push(ws);
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  const d: DirectServer = {
    url: `ws://127.0.0.1:${port}`,
    accepted: () => {
      const ws = queue.shift();
      return ws ? Promise.resolve(ws) : new Promise((resolve) => waiters.push(resolve));
    },
    async close() {
      directServers.delete(d);
      http.closeAllConnections();
      await new Promise<void>((resolve) => wss.close(() => http.close(() => resolve())));
    },
  };
  directServers.add(d);
  return d;
}

/** Connect a client to a direct server and return both ends. */
export async function directPair(
  d: DirectServer,
  options: ConstructorParameters<typeof WebSocket>[2] = {},
): Promise<{ ws: WebSocket; serverSide: WebSocket }> {
  const serverSide = d.accepted();
  const ws = await client(d.url, options);
  return { ws, serverSide: await serverSide };
}

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  obj: Record<string, unknown>;
  msg: string;
}

/** A logger that records every call, with helpers to find entries by `event`. */
export function recordingLogger(): Logger & { entries: LogEntry[]; events(name: string): LogEntry[] } {
  const entries: LogEntry[] = [];
  const at =
    (level: LogEntry['level']) =>
    (obj: object, msg: string): void => {
      entries.push({ level, obj: obj as Record<string, unknown>, msg });
    };
  return {
    entries,
    events: (name) => entries.filter((e) => e.obj.event === name),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
}

/** The raw TCP socket under a `ws` client (to pause reading, simulating a stalled peer). */
export function rawSocket(ws: WebSocket): { pause(): void; resume(): void } {
  return (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `authenticate` hook that takes the client id from `?id=` (so tests can address clients by name). */
export function idFromQuery(request: { url?: string | undefined }): { clientId?: string } {
  const id = new URL(request.url ?? '/', 'http://localhost').searchParams.get('id');
  return id === null ? {} : { clientId: id };
}

/** Open a `stabilizer.v1` client, send `hello` with `fields`, and resolve with the socket and the `welcome`. */
export async function protocolHello(
  url: string,
  fields: Record<string, unknown> = {},
): Promise<{ ws: WebSocket; welcome: Record<string, unknown> }> {
  const ws = await client(url, {}, 'stabilizer.v1');
  const welcome = new Promise<Record<string, unknown>>((resolve, reject) => {
    ws.once('message', (data) => resolve(JSON.parse(data.toString()) as Record<string, unknown>));
    ws.once('close', (code) => reject(new Error(`closed with ${code} before welcome`)));
  });
  ws.send(JSON.stringify({ t: 'hello', v: 1, ...fields }));
  const w = await welcome;
  // Confirm the welcome as the real client does (PROTOCOL.md §3), and wait for a round trip so the server has it.
  const pong = new Promise<void>((resolve) => {
    const onMessage = (data: Buffer) => {
      if ((JSON.parse(data.toString()) as { t?: string }).t !== 'pong') return;
      ws.off('message', onMessage);
      resolve();
    };
    ws.on('message', onMessage);
    ws.once('close', () => resolve());
  });
  ws.send(JSON.stringify({ t: 'ack', s: w.resume === 'resumed' ? ((fields.lastSeq as number) ?? 0) : 0 }));
  ws.send('{"t":"ping"}');
  await pong;
  return { ws, welcome: w };
}

/**
 * Make every write to a server-side socket throw, as a socket in a broken state would. Covers both write paths of
 * `Connection`: `ws.send` and the direct write to the TCP socket.
 */
export function breakWrites(serverSide: WebSocket): void {
  const fail = () => {
    throw new Error('simulated broken pipe');
  };
  serverSide.send = fail;
  const raw = (serverSide as unknown as { _socket?: { write: unknown } })._socket;
  if (raw) raw.write = fail;
}

/**
 * A raw upgrade request (no ws client), to read the status and `Retry-After` of a refusal, or to send a malformed
 * upgrade. `headers` are merged over valid WebSocket upgrade headers; `undefined` removes one.
 */
export function upgradeResponse(
  port: number,
  path: string,
  headers: Record<string, string | undefined> = {},
): Promise<{ status: number; retryAfter: string | undefined }> {
  const all: Record<string, string | undefined> = {
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': Buffer.from('0123456789abcdef').toString('base64'),
    ...headers,
  };
  const sent = Object.fromEntries(Object.entries(all).filter(([, v]) => v !== undefined)) as Record<
    string,
    string
  >;
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: sent });
    req.on('response', (res) => {
      resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined });
      res.resume();
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      resolve({ status: 101, retryAfter: undefined });
    });
    req.on('error', reject);
    req.end();
  });
}
