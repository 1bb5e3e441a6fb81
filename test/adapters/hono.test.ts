import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { getSignedCookie, setSignedCookie } from 'hono/cookie';
import { HTTPException } from 'hono/http-exception';
import { afterEach, describe, expect, it } from 'vitest';
import { createHonoStabilizer } from '../../src/adapters/hono.js';
import { closeOnSignals, WebSocketConnectionManager } from '../../src/server/index.js';
import { waitFor } from '../helpers/server.js';
import {
  authByHelloToken,
  closeClients,
  closes,
  cookieClient,
  cookieOf,
  expectGracefulClose,
  expectHelloAuth,
  expectResumeAfterDrop,
  inbox,
  upgradeStatus,
} from './support.js';

type NodeServer = ReturnType<typeof serve>;
const servers: NodeServer[] = [];
afterEach(async () => {
  closeClients();
  for (const s of servers.splice(0)) {
    (s as { closeAllConnections?: () => void }).closeAllConnections?.();
    await new Promise((r) => s.close(r));
  }
});

const secret = 'hono-cookie-secret';

/** A Hono app on @hono/node-server: POST /login?user=ann sets a signed `sid` cookie. */
async function start() {
  const app = new Hono();
  const manager = new WebSocketConnectionManager({ shutdownRetryAfterMs: 300 });
  const ws = createHonoStabilizer(manager, { app });
  app.post('/login', async (c) => {
    await setSignedCookie(c, 'sid', c.req.query('user') ?? '', secret, { path: '/', httpOnly: true });
    return c.text('ok');
  });
  app.get(
    '/ws',
    async (c, next) => {
      if (c.req.header('x-banned')) throw new HTTPException(403);
      await next();
    },
    ws.upgrade(async (c) => {
      const user = await getSignedCookie(c, secret, 'sid');
      return user ? { data: { user } } : false;
    }),
  );
  app.get(
    '/ws-token',
    ws.upgrade((_c, hello) => authByHelloToken(hello)),
  );
  app.get('/plain', (c) => c.text('not a socket'));
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  servers.push(server);
  ws.attach(server);
  await new Promise((r) => server.once('listening', r));
  const base = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const login = await fetch(`http://${base}/login?user=ann`, { method: 'POST' });
  return { manager, server, base, url: `ws://${base}/ws`, cookie: cookieOf(login) };
}

describe('Hono adapter (@hono/node-server)', () => {
  it('authenticates from a signed Hono cookie; refusals keep their status; 404 off-route; 503 when draining', async () => {
    const { manager, base, url, cookie } = await start();
    expect(await upgradeStatus(url)).toBe(401);
    expect(await upgradeStatus(url, 'sid=ann.forged-signature')).toBe(401);
    expect(await upgradeStatus(url, cookie, { 'x-banned': '1' })).toBe(403);
    expect(await upgradeStatus(`ws://${base}/nowhere`, cookie)).toBe(404);
    expect(await upgradeStatus(`ws://${base}/plain`, cookie)).toBe(404);
    const users: unknown[] = [];
    manager.on('connect', ({ data }) => void users.push(data));
    const client = cookieClient(url, cookie);
    await client.send('hi');
    expect(users).toEqual([{ user: 'ann' }]);
    // Plain HTTP still goes to Hono; a GET of the socket route without an upgrade gets 426.
    expect((await fetch(`http://${base}/ws`, { headers: { cookie } })).status).toBe(426);
    void manager.gracefulShutdown({ timeoutMs: 100 });
    expect(await upgradeStatus(url, cookie)).toBe(503);
  });

  it("passes the hello's credentials to the route's authenticate (browsers: no headers, no cookies)", async () => {
    const { manager, base } = await start();
    await expectHelloAuth(manager, `ws://${base}/ws-token`);
  });

  it('resumes after a dropped socket with every message exactly once', async () => {
    const { manager, url, cookie } = await start();
    const client = cookieClient(url, cookie);
    await expectResumeAfterDrop(manager, client, inbox(client));
  });

  it('drains on shutdown: clients get 1001 with the retry hint, not 1006', async () => {
    const { manager, server, url, cookie } = await start();
    const client = cookieClient(url, cookie);
    const seen = closes(client);
    await waitFor(() => client.state === 'open');
    closeOnSignals(manager, server as never, { signals: ['SIGUSR2'] });
    process.emit('SIGUSR2');
    await expectGracefulClose(seen);
    expect(seen[0]!.code).toBe(1001);
  });
});
