// Shared steps of the framework adapter tests: a bundled client that sends a cookie, the raw upgrade status,
// a drop-and-resume check and a drain check.
import { expect } from 'vitest';
import { WebSocket } from 'ws';
import { StabilizerClient, type CloseInfo } from '../../src/client/index.js';
import type { WebSocketConnectionManager } from '../../src/server/index.js';
import { waitFor } from '../helpers/server.js';

const clients: StabilizerClient[] = [];

/** The bundled client on `ws`, sending `cookie` with every upgrade (what a browser does on its own). */
export function cookieClient(url: string, cookie?: string): StabilizerClient {
  class CookieWebSocket extends WebSocket {
    constructor(address: string, protocols?: string | string[]) {
      super(address, protocols, cookie ? { headers: { cookie } } : {});
    }
  }
  const client = new StabilizerClient(url, {
    WebSocket: CookieWebSocket as never,
    minDelayMs: 10,
    maxDelayMs: 50,
  });
  clients.push(client);
  return client;
}

export function closeClients(): void {
  for (const c of clients.splice(0)) c.close();
}

/** The HTTP status the upgrade gets (101 if it is accepted), with `cookie` and `headers` if given. */
export function upgradeStatus(
  url: string,
  cookie?: string,
  headers: Record<string, string> = {},
): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, 'stabilizer.v1', { headers: cookie ? { ...headers, cookie } : headers });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => {
      resolve(101);
      ws.terminate();
    });
    ws.once('error', () => {});
  });
}

/** The `name=value` part of the first Set-Cookie header of a response. */
export function cookieOf(res: Response): string {
  const header = res.headers.get('set-cookie');
  expect(header).toBeTruthy();
  return header!.split(';')[0]!;
}

/** Collect what the client receives. */
export function inbox(client: StabilizerClient): unknown[] {
  const got: unknown[] = [];
  client.on('message', (m) => void got.push(m));
  return got;
}

/**
 * Drop the server side of the client's socket (as a network failure would), send 5 messages while it is away,
 * and check the client resumes the same session and gets every message exactly once, in order.
 */
export async function expectResumeAfterDrop(
  manager: WebSocketConnectionManager,
  client: StabilizerClient,
  got: unknown[],
): Promise<void> {
  await waitFor(() => client.state === 'open', 'client open');
  const id = client.sessionId!;
  const resumed: string[] = [];
  client.on('resumed', ({ sessionId }) => void resumed.push(sessionId));
  manager.sendToClient(id, { n: 1 });
  await waitFor(() => got.length === 1, 'first message');
  manager.connections.get(id)!.terminate('socket-error');
  for (let n = 2; n <= 6; n++) manager.sendToClient(id, { n });
  await waitFor(() => resumed.length === 1 && got.length >= 6, 'resume and replay');
  await new Promise((r) => setTimeout(r, 50)); // a duplicate would arrive now
  expect(resumed).toEqual([id]);
  expect(got).toEqual([1, 2, 3, 4, 5, 6].map((n) => ({ n })));
}

/** Record the closes the client sees. */
export function closes(client: StabilizerClient): CloseInfo[] {
  const seen: CloseInfo[] = [];
  client.on('close', ({ code, reason }) => void seen.push({ code, reason }));
  return seen;
}

/** The first close is a graceful one (1001 or 1012) with the retry hint, not 1006. */
export async function expectGracefulClose(seen: CloseInfo[]): Promise<void> {
  await waitFor(() => seen.length > 0, 'close');
  expect([1001, 1012]).toContain(seen[0]!.code);
  expect(seen[0]!.reason).toMatch(/retry-after=\d+/);
}

/** The app side of {@link expectHelloAuth}: the hello's `{ token: 'good' }` is user `by-token`, anything else 401. */
export function authByHelloToken(hello?: { auth: unknown }): false | { data: { user: string } } {
  const token = (hello?.auth as { token?: string } | undefined)?.token;
  return token === 'good' ? { data: { user: 'by-token' } } : false;
}

/**
 * A client that sends credentials in its hello (a browser: no headers, no cookies) reaches the app's authenticate
 * ({@link authByHelloToken}): a good token connects as that user, a bad one ends with `unauthorized` (4504).
 */
export async function expectHelloAuth(manager: WebSocketConnectionManager, url: string): Promise<void> {
  const users: unknown[] = [];
  manager.on('connect', ({ data }) => void users.push(data));
  const good = new StabilizerClient(url, {
    WebSocket: WebSocket as never,
    auth: async () => ({ token: 'good' }),
  });
  const bad = new StabilizerClient(url, { WebSocket: WebSocket as never, auth: { token: 'bad' } });
  clients.push(good, bad);
  const refused: Array<{ code: number }> = [];
  bad.on('unauthorized', (e) => void refused.push(e));
  await good.send('hi');
  expect(users).toEqual([{ user: 'by-token' }]);
  await waitFor(() => refused.length === 1, 'unauthorized');
  expect(refused[0]!.code).toBe(4504);
}
