import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { StabilizerClient } from '../../src/client/index.js';
import { WebSocketConnectionManager } from '../../src/server/index.js';
import { freePort } from '../helpers/nginx.js';
import { closeAllServers, startServer, waitFor } from '../helpers/server.js';

const secret = 'e2e-secret-0123456789abcdef0123456789abcdef';
const clients: StabilizerClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await closeAllServers();
});

function client<In = unknown, Out = unknown>(url: string, options = {}): StabilizerClient<In, Out> {
  const c = new StabilizerClient<In, Out>(url, {
    WebSocket: WebSocket as never,
    minDelayMs: 10,
    maxDelayMs: 50,
    ...options,
  });
  clients.push(c as StabilizerClient);
  return c;
}

/** A manager on an http.Server listening on a fixed port, so a "restarted" server comes back at the same URL. */
async function serverOnPort(port: number): Promise<{ manager: WebSocketConnectionManager; server: Server }> {
  const manager = new WebSocketConnectionManager({ tokens: { secret }, shutdownRetryAfterMs: 200 });
  const server = createServer();
  manager.attach(server, { path: '/ws' });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { manager, server };
}

describe('client and server end to end (Node)', () => {
  it('send() resolves once the server has the message; server messages arrive in order', async () => {
    const s = await startServer({ tokens: { secret } });
    const got: unknown[] = [];
    s.manager.on('message', ({ data }) => {
      got.push(data);
    });
    const c = client<{ n: number }, { text: string }>(s.url);
    const received: number[] = [];
    c.on('message', (m) => received.push(m.n));
    await c.send({ text: 'hello' });
    expect(got).toEqual([{ text: 'hello' }]);
    for (let n = 1; n <= 50; n++) s.manager.sendToClient(c.sessionId!, { n });
    await waitFor(() => received.length === 50);
    expect(received).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    // Binary both ways.
    const bin: Uint8Array[] = [];
    s.manager.on('message', ({ data, isBinary }) => {
      if (isBinary) bin.push(data as Uint8Array);
    });
    await c.send(new Uint8Array([1, 2, 3]));
    expect([...bin[0]!]).toEqual([1, 2, 3]);
  });

  it('resumes across a dropped socket with nothing lost or duplicated', async () => {
    const s = await startServer({ tokens: { secret } });
    const c = client<number>(s.url);
    const received: number[] = [];
    c.on('message', (m) => received.push(m));
    const resumed: string[] = [];
    c.on('resumed', ({ sessionId }) => resumed.push(sessionId));
    await waitFor(() => c.state === 'open');
    const id = c.sessionId!;
    for (let n = 1; n <= 10; n++) s.manager.sendToClient(id, n);
    s.manager.connections.get(id)!.terminate('socket-error'); // the network drops
    for (let n = 11; n <= 20; n++) s.manager.sendToClient(id, n); // sent while the client is away
    await waitFor(() => received.length === 20 && resumed.length === 1);
    expect(received).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(resumed).toEqual([id]);
  });

  it('after a server restart (in-memory backend) reports fresh with unknown-session, honouring the retry hint', async () => {
    const port = await freePort();
    const first = await serverOnPort(port);
    const url = `ws://127.0.0.1:${port}/ws`;
    const c = client<number>(url);
    const fresh: string[] = [];
    const delays: number[] = [];
    c.on('fresh', ({ reason }) => fresh.push(reason));
    c.on('reconnecting', ({ delayMs }) => delays.push(delayMs));
    const received: number[] = [];
    c.on('message', (m) => received.push(m));
    await waitFor(() => c.state === 'open');
    for (let n = 1; n <= 5; n++) first.manager.sendToClient(c.sessionId!, n);
    await waitFor(() => received.length === 5);

    const stats = await first.manager.gracefulShutdown({ restart: true, timeoutMs: 1000 });
    expect(stats.closed).toBe(1);
    await new Promise<void>((resolve) => first.server.close(() => resolve()));
    const second = await serverOnPort(port);
    try {
      await waitFor(() => fresh.length === 2, 'fresh after restart');
      expect(fresh).toEqual(['new', 'unknown-session']);
      expect(delays[0]).toBeGreaterThanOrEqual(200); // the server's retry-after hint
      const id = c.sessionId!;
      second.manager.sendToClient(id, 6);
      await waitFor(() => received.length === 6);
      expect(received).toEqual([1, 2, 3, 4, 5, 6]);
    } finally {
      c.close();
      await second.manager.gracefulShutdown({ timeoutMs: 200 });
      await new Promise<void>((resolve) => second.server.close(() => resolve()));
    }
  });

  it('stops reconnecting after a terminal close code', async () => {
    const s = await startServer({ tokens: { secret } });
    const c = client(s.url);
    const closes: Array<{ code: number; willReconnect: boolean }> = [];
    c.on('close', ({ code, willReconnect }) => closes.push({ code, willReconnect }));
    await waitFor(() => c.state === 'open');
    await s.manager.disconnect(c.sessionId!, 4503, 'forbidden');
    await waitFor(() => c.state === 'closed');
    expect(closes).toEqual([{ code: 4503, willReconnect: false }]);
    await new Promise((r) => setTimeout(r, 100));
    expect(s.manager.getConnectionCount()).toBe(0);
  });
});
