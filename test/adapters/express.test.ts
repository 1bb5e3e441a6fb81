import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type RequestHandler } from 'express';
import session from 'express-session';
import { afterEach, describe, expect, it } from 'vitest';
import { attachExpress } from '../../src/adapters/express.js';
import { closeOnSignals, WebSocketConnectionManager } from '../../src/server/index.js';
import { waitFor } from '../helpers/server.js';
import {
  closeClients,
  closes,
  cookieClient,
  cookieOf,
  expectGracefulClose,
  expectResumeAfterDrop,
  inbox,
  upgradeStatus,
} from './support.js';

declare module 'express-session' {
  interface SessionData {
    user?: string;
  }
}

const servers: Server[] = [];
afterEach(async () => {
  closeClients();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** An Express 5 app with express-session: POST /login?user=ann logs in. */
async function start(extra: RequestHandler[] = []) {
  const app = express();
  const sessions = session({ secret: 'express-test-secret', resave: false, saveUninitialized: false });
  app.use(sessions);
  app.post('/login', (req, res) => {
    req.session.user = String(req.query.user);
    res.send('ok');
  });
  const manager = new WebSocketConnectionManager({ shutdownRetryAfterMs: 300 });
  const server = app.listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise((r) => server.once('listening', r));
  attachExpress(manager, server, {
    path: '/ws',
    app,
    middleware: [sessions, ...extra],
    authenticate: (req) => (req.session.user ? { data: { user: req.session.user } } : false),
  });
  const base = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const login = await fetch(`http://${base}/login?user=ann`, { method: 'POST' });
  return { app, manager, server, url: `ws://${base}/ws`, cookie: cookieOf(login) };
}

describe('Express 5 adapter', () => {
  it('runs express-session on the upgrade: authenticate sees req.session; 401 without it; other checks stay', async () => {
    const { manager, url, cookie } = await start();
    expect(await upgradeStatus(url)).toBe(401);
    expect(await upgradeStatus(url, 'connect.sid=s%3Aforged.bad')).toBe(401);
    expect(await upgradeStatus(url.replace('/ws', '/other'), cookie)).toBe(404);
    const users: unknown[] = [];
    manager.on('connect', ({ data }) => void users.push(data));
    const client = cookieClient(url, cookie);
    await client.send({ hi: 1 });
    expect(users).toEqual([{ user: 'ann' }]);
    void manager.gracefulShutdown({ timeoutMs: 200 });
    expect(await upgradeStatus(url, cookie)).toBe(503);
  });

  it('a middleware that answers refuses the upgrade with its status; Express helpers work with `app`', async () => {
    const limiter: RequestHandler = (req, res, next) => {
      if (req.get('x-flood') === 'yes') res.status(429).send('slow down');
      else next();
    };
    const { url, cookie } = await start([limiter]);
    expect(await upgradeStatus(url, cookie, { 'x-flood': 'yes' })).toBe(429);
    expect(await upgradeStatus(url, cookie)).toBe(101);
  });

  it('next(err) refuses with err.status (400-599) or 401; a throwing or rejecting middleware gets 401', async () => {
    const errors: string[] = [];
    const failing: RequestHandler = (req, _res, next) => {
      const how = req.get('x-fail');
      if (how === 'status') next(Object.assign(new Error('forbidden'), { status: 403 }));
      else if (how === 'plain') next(new Error('store down'));
      else if (how === 'throw') throw new Error('middleware bug');
      else if (how === 'reject') return Promise.reject(new Error('async middleware bug'));
      else next();
    };
    const { manager, url, cookie } = await start([failing]);
    manager.on('error', (e) => void errors.push(e.error.message));
    expect(await upgradeStatus(url, cookie, { 'x-fail': 'status' })).toBe(403);
    expect(await upgradeStatus(url, cookie, { 'x-fail': 'plain' })).toBe(401);
    expect(await upgradeStatus(url, cookie, { 'x-fail': 'throw' })).toBe(401);
    expect(await upgradeStatus(url, cookie, { 'x-fail': 'reject' })).toBe(401);
    expect(await upgradeStatus(url, cookie)).toBe(101);
    expect(errors).toEqual(['store down', 'middleware bug', 'async middleware bug']);
  });

  it('resumes after a dropped socket with every message exactly once', async () => {
    const { manager, url, cookie } = await start();
    const client = cookieClient(url, cookie);
    await expectResumeAfterDrop(manager, client, inbox(client));
  });

  it('drains on shutdown: clients get 1012 with the retry hint, not 1006', async () => {
    const { manager, server, url, cookie } = await start();
    const client = cookieClient(url, cookie);
    const seen = closes(client);
    await waitFor(() => client.state === 'open');
    const done: unknown[] = [];
    closeOnSignals(manager, server, { signals: ['SIGUSR2'], restart: true, onClosed: (s) => done.push(s) });
    process.emit('SIGUSR2');
    await expectGracefulClose(seen);
    expect(seen[0]!.code).toBe(1012);
    await waitFor(() => done.length === 1, 'shutdown done');
  });
});
