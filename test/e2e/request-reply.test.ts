/**
 * Request/reply (PROTOCOL.md §2.8) between the real client (with `client/request`) and a real server, over real
 * sockets: both directions, typed errors with stable codes, and exactly-once handling across drops and resumes.
 */
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ClientError, StabilizerClient } from '../../src/client/index.js';
import { msgpackCodec } from '../../src/client/msgpack.js';
import { withRequests } from '../../src/client/request.js';
import { StabilizerError, WebSocketConnectionManager } from '../../src/server/index.js';
import { freePort } from '../helpers/nginx.js';
import { closeAllServers, startServer, waitFor } from '../helpers/server.js';

const secret = 'request-reply-secret-0123456789abcdef0123456789';
const clients: StabilizerClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await closeAllServers();
});

function client(url: string): StabilizerClient {
  const c = new StabilizerClient(url, { WebSocket: WebSocket as never, minDelayMs: 10, maxDelayMs: 50 });
  clients.push(c);
  return c;
}

async function opened(url: string): Promise<StabilizerClient> {
  const c = client(url);
  await waitFor(() => c.state === 'open', 'welcome');
  return c;
}

/** A promise and the function that resolves it. */
function gate<T = void>(): { promise: Promise<T>; open(value: T): void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => (open = resolve));
  return { promise, open };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('request/reply', () => {
  it('over MessagePack: both directions keep their request fields', async () => {
    const s = await startServer({ tokens: { secret } });
    s.manager.onRequest((req) => ({ echo: req }));
    const c = new StabilizerClient(s.url, {
      WebSocket: WebSocket as never,
      codec: msgpackCodec(),
      minDelayMs: 10,
      maxDelayMs: 50,
    });
    clients.push(c);
    await waitFor(() => c.state === 'open', 'welcome');
    expect(s.manager.connections.get(c.sessionId!)?.msgpack).toBeDefined();
    const rpc = withRequests(c);
    rpc.onRequest((q) => ({ got: q }));
    const messages: unknown[] = [];
    c.on('message', (m) => messages.push(m));
    expect(await rpc.request({ a: 1 })).toEqual({ echo: { a: 1 } });
    expect(await s.manager.request(c.sessionId!, { b: 2 }, { timeoutMs: 5_000 })).toEqual({ got: { b: 2 } });
    s.manager.sendToClient(c.sessionId!, 'plain');
    await waitFor(() => messages.length === 1, 'message');
    expect(messages).toEqual(['plain']);
  });

  it('client → server: the handler return value (sync or async) is the reply', async () => {
    const s = await startServer({ tokens: { secret } });
    const seen: Array<{ clientId: string; requestId: string }> = [];
    s.manager.onRequest(async (req, ctx) => {
      seen.push({ clientId: ctx.clientId, requestId: ctx.requestId });
      const { n } = req as { n: number };
      return n % 2 ? { doubled: n * 2 } : Promise.resolve({ doubled: n * 2 });
    });
    const messages: unknown[] = [];
    s.manager.on('message', ({ data }) => messages.push(data));
    const c = await opened(s.url);
    const rpc = withRequests(c);
    const replies = await Promise.all([1, 2, 3].map((n) => rpc.request({ n })));
    expect(replies).toEqual([{ doubled: 2 }, { doubled: 4 }, { doubled: 6 }]);
    expect(seen.map((e) => e.clientId)).toEqual([c.sessionId, c.sessionId, c.sessionId]);
    expect(new Set(seen.map((e) => e.requestId)).size).toBe(3);
    expect(messages).toEqual([]); // requests are not `message` events
    expect(rpc.pending).toBe(0);
    expect(withRequests(c)).toBe(rpc);
  });

  it('server → client: the client handler answers; a client message in between stays a message', async () => {
    const s = await startServer({ tokens: { secret } });
    const c = await opened(s.url);
    const rpc = withRequests(c);
    const asked: unknown[] = [];
    rpc.onRequest(async (q) => {
      asked.push(q);
      return { ok: (q as { x: number }).x + 1 };
    });
    const messages: unknown[] = [];
    c.on('message', (m) => messages.push(m));
    s.manager.sendToClient(c.sessionId!, 'plain');
    await expect(s.manager.request(c.sessionId!, { x: 41 })).resolves.toEqual({ ok: 42 });
    expect(asked).toEqual([{ x: 41 }]);
    expect(messages).toEqual(['plain']);
    expect(s.manager.requests.inFlight).toBe(0);
  });

  it('a timeout rejects with REQUEST_TIMEOUT in both directions; the late reply is dropped', async () => {
    const s = await startServer({ tokens: { secret } });
    const serverGate = gate<string>();
    s.manager.onRequest(() => serverGate.promise);
    const c = await opened(s.url);
    const rpc = withRequests(c);
    const clientGate = gate<string>();
    rpc.onRequest(() => clientGate.promise);

    const toServer = await rejection(rpc.request('slow', { timeoutMs: 100 }));
    expect(toServer).toBeInstanceOf(ClientError);
    expect((toServer as ClientError).code).toBe('REQUEST_TIMEOUT');
    const toClient = await rejection(s.manager.request(c.sessionId!, 'slow', { timeoutMs: 100 }));
    expect(toClient).toBeInstanceOf(StabilizerError);
    expect((toClient as StabilizerError).code).toBe('REQUEST_TIMEOUT');

    // The late replies arrive and are ignored: nothing pending, the connection is fine, and later requests work.
    serverGate.open('late');
    clientGate.open('late');
    s.manager.onRequest(() => 'on time');
    await expect(rpc.request('again')).resolves.toBe('on time');
    expect(rpc.pending).toBe(0);
    expect(s.manager.requests.inFlight).toBe(0);
  });

  it('a throwing handler answers HANDLER_ERROR (generic message), reports the error, keeps the connection', async () => {
    const s = await startServer({ tokens: { secret } });
    const errors: Error[] = [];
    s.manager.on('error', ({ error }) => errors.push(error));
    s.manager.onRequest((req) => {
      if (req === 'sync') throw new Error('secret detail');
      if (req === 'async') return Promise.reject(new Error('secret detail'));
      return 1n as never; // not JSON
    });
    const c = await opened(s.url);
    const rpc = withRequests(c);
    for (const q of ['sync', 'async', 'bigint']) {
      const err = await rejection(rpc.request(q));
      expect(err).toBeInstanceOf(ClientError);
      expect((err as ClientError).code).toBe('HANDLER_ERROR');
      expect((err as ClientError).message).not.toContain('secret detail');
    }
    expect(errors).toHaveLength(3);
    expect(c.state).toBe('open');
    expect(s.manager.connections.size).toBe(1);

    rpc.onRequest(() => {
      throw new Error('client handler broke');
    });
    const err = await rejection(s.manager.request(c.sessionId!, 'q'));
    expect((err as StabilizerError).code).toBe('HANDLER_ERROR');
  });

  it('without a handler the answer is NO_HANDLER in both directions', async () => {
    const s = await startServer({ tokens: { secret } });
    const c = await opened(s.url);
    const rpc = withRequests(c);
    expect(((await rejection(rpc.request(1))) as ClientError).code).toBe('NO_HANDLER');
    expect(((await rejection(s.manager.request(c.sessionId!, 1))) as StabilizerError).code).toBe(
      'NO_HANDLER',
    );
  });

  it('manager.request refuses unknown clients, bytes and plain sockets with typed errors', async () => {
    const s = await startServer({ tokens: { secret } });
    expect(((await rejection(s.manager.request('nobody', 1))) as StabilizerError).code).toBe(
      'UNKNOWN_CLIENT',
    );
    const plain = new WebSocket(s.url);
    await new Promise((r) => plain.once('open', r));
    await waitFor(() => s.manager.connections.size === 1);
    const [id] = [...s.manager.connections.keys()];
    expect(((await rejection(s.manager.request(id!, 1))) as StabilizerError).code).toBe(
      'REQUESTS_UNSUPPORTED',
    );
    plain.terminate();
    const c = await opened(s.url);
    await expect(s.manager.request(c.sessionId!, new Uint8Array([1]) as never)).rejects.toBeInstanceOf(
      TypeError,
    );
    await expect(withRequests(c).request(new Uint8Array([1]))).rejects.toBeInstanceOf(TypeError);
  });

  it('a request in flight across a forced drop is handled once and answered once after the resume', async () => {
    const s = await startServer({ tokens: { secret } });
    let runs = 0;
    const release = gate();
    s.manager.onRequest(async (req) => {
      runs++;
      await release.promise;
      return { echo: req };
    });
    const c = await opened(s.url);
    const id = c.sessionId!;
    const resumed: string[] = [];
    c.on('resumed', ({ sessionId }) => resumed.push(sessionId));
    const rpc = withRequests(c);
    const reply = rpc.request('in flight');
    await waitFor(() => runs === 1, 'handler started');
    s.manager.connections.get(id)!.terminate('socket-error'); // the network drops while the handler runs
    release.open(); // the reply is sequenced on the detached session, replayed on resume
    await expect(reply).resolves.toEqual({ echo: 'in flight' });
    expect(resumed).toEqual([id]);
    expect(runs).toBe(1);
  });

  it('a request written just before the client drops its socket is resent and handled exactly once', async () => {
    const s = await startServer({ tokens: { secret } });
    const runs = new Map<number, number>();
    s.manager.onRequest((req) => {
      const n = req as number;
      runs.set(n, (runs.get(n) ?? 0) + 1);
      return n * 10;
    });
    const c = await opened(s.url);
    const rpc = withRequests(c);
    for (let round = 0; round < 20; round++) {
      const replies = [1, 2, 3].map((k) => rpc.request(round * 10 + k));
      c.reconnect(); // the frames may or may not have reached the server: the resume sorts it out
      expect(await Promise.all(replies)).toEqual([1, 2, 3].map((k) => (round * 10 + k) * 10));
    }
    expect(runs.size).toBe(60);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
  });

  it('a server request to a detached session is delivered on resume and handled once', async () => {
    const s = await startServer({ tokens: { secret } });
    const c = await opened(s.url);
    const id = c.sessionId!;
    const rpc = withRequests(c);
    let runs = 0;
    rpc.onRequest((q) => {
      runs++;
      return `got ${String(q)}`;
    });
    s.manager.connections.get(id)!.terminate('socket-error');
    await waitFor(() => !s.manager.connections.has(id), 'detached');
    const reply = s.manager.request(id, 'while away');
    await expect(reply).resolves.toBe('got while away');
    expect(runs).toBe(1);
  });

  it('a lost session rejects with SESSION_LOST: client side on a fresh welcome, server side when it ends', async () => {
    const port = await freePort();
    const first = await serverOnPort(port);
    const c = await opened(`ws://127.0.0.1:${port}/ws`);
    const rpc = withRequests(c);
    const never = gate<string>();
    first.manager.onRequest(() => never.promise);
    const pending = rpc.request('will be lost', { timeoutMs: 0 });
    await waitFor(() => c.queuedMessages === 0, 'request acked');
    // Restart with in-memory storage: the client resumes into `fresh` / unknown-session.
    await first.manager.gracefulShutdown({ restart: true, timeoutMs: 500 });
    await new Promise<void>((resolve) => first.server.close(() => resolve()));
    const second = await serverOnPort(port);
    try {
      const err = await rejection(pending);
      expect(err).toBeInstanceOf(ClientError);
      expect((err as ClientError).code).toBe('SESSION_LOST');
      // Server side: the client closes for good (1000), which ends its session.
      await waitFor(() => c.state === 'open', 'welcome on the new server');
      rpc.onRequest(() => new Promise(() => {}));
      const asked = second.manager.request(c.sessionId!, 'never answered', { timeoutMs: 0 });
      await waitFor(() => second.manager.requests.inFlight === 1);
      await new Promise((r) => setTimeout(r, 50)); // let the request reach the client
      c.close();
      const lost = await rejection(asked);
      expect(lost).toBeInstanceOf(StabilizerError);
      expect((lost as StabilizerError).code).toBe('SESSION_LOST');
    } finally {
      await second.manager.gracefulShutdown({ timeoutMs: 200 });
      await new Promise<void>((resolve) => second.server.close(() => resolve()));
    }
  });

  it('closing the client rejects its pending requests with CLIENT_CLOSED', async () => {
    const s = await startServer({ tokens: { secret } });
    s.manager.onRequest(() => new Promise(() => {}));
    const c = await opened(s.url);
    const rpc = withRequests(c);
    const acked = rpc.request('acked');
    await waitFor(() => c.queuedMessages === 0);
    c.close();
    expect(((await rejection(acked)) as ClientError).code).toBe('CLIENT_CLOSED');
    expect(((await rejection(rpc.request('after close'))) as ClientError).code).toBe('CLIENT_CLOSED');
  });
});

async function serverOnPort(port: number): Promise<{ manager: WebSocketConnectionManager; server: Server }> {
  const manager = new WebSocketConnectionManager({ tokens: { secret }, shutdownRetryAfterMs: 50 });
  const server = createServer();
  manager.attach(server, { path: '/ws' });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { manager, server };
}
