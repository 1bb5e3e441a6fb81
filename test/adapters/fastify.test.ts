import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { fastifyStabilizer, type FastifyStabilizerOptions } from '../../src/adapters/fastify.js';
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

const apps: FastifyInstance[] = [];
afterEach(async () => {
  closeClients();
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

/** The `sid` cookie of a request (Fastify has no cookie parser without @fastify/cookie). */
function sidOf(req: IncomingMessage): string | undefined {
  return /(?:^|;\s*)sid=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
}

/** A Fastify 5 app with server-side sessions: POST /login?user=ann sets the `sid` cookie. */
async function start(options: Partial<FastifyStabilizerOptions> = {}) {
  const app = Fastify({ forceCloseConnections: true });
  apps.push(app);
  const sessions = new Map<string, string>();
  app.post<{ Querystring: { user: string } }>('/login', async (req, reply) => {
    const sid = randomUUID();
    sessions.set(sid, req.query.user);
    reply.header('set-cookie', `sid=${sid}; Path=/; HttpOnly`);
    return 'ok';
  });
  await app.register(fastifyStabilizer, {
    path: '/ws',
    config: { shutdownRetryAfterMs: 300 },
    authenticate: (req) => {
      const user = sessions.get(sidOf(req) ?? '');
      return user ? { data: { user } } : false;
    },
    ...options,
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const base = `127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const login = await fetch(`http://${base}/login?user=ann`, { method: 'POST' });
  return { app, url: `ws://${base}/ws`, cookie: cookieOf(login) };
}

const origin = { origin: 'https://app.example' };

describe('Fastify 5 plugin', () => {
  it("passes the hello's credentials (a browser's `auth`) to authenticate", async () => {
    const { app, url } = await start({ authenticate: (_req, hello) => authByHelloToken(hello) });
    await expectHelloAuth(app.websocketStabilizer, url);
  });

  it('keeps every upgrade check (401 without the session cookie, 403, 404, 503) and decorates the app', async () => {
    const { app, url, cookie } = await start({ config: { allowedOrigins: [origin.origin] } });
    expect(await upgradeStatus(url, undefined, origin)).toBe(401);
    expect(await upgradeStatus(url, 'sid=forged', origin)).toBe(401);
    expect(await upgradeStatus(url, cookie, { origin: 'https://evil.example' })).toBe(403);
    expect(await upgradeStatus(url.replace('/ws', '/other'), cookie, origin)).toBe(404);
    expect(await upgradeStatus(url, cookie, origin)).toBe(101);
    void app.websocketStabilizer.gracefulShutdown({ timeoutMs: 100 });
    expect(await upgradeStatus(url, cookie, origin)).toBe(503);
    // Fastify's HTTP routes are untouched.
    expect((await fetch(url.replace('ws://', 'http://').replace('/ws', '/nope'))).status).toBe(404);
  });

  it('authenticate sees the session; the client resumes after a drop with every message exactly once', async () => {
    const { app, url, cookie } = await start();
    const users: unknown[] = [];
    app.websocketStabilizer.on('connect', ({ data }) => void users.push(data));
    const client = cookieClient(url, cookie);
    await expectResumeAfterDrop(app.websocketStabilizer, client, inbox(client));
    expect(users).toEqual([{ user: 'ann' }, { user: 'ann' }]);
  });

  it('app.close() drains: clients get 1012 with the retry hint, not 1006, and close() completes', async () => {
    const { app, url, cookie } = await start({ shutdown: { restart: true, timeoutMs: 1000 } });
    const client = cookieClient(url, cookie);
    const seen = closes(client);
    await waitFor(() => client.state === 'open');
    await app.close();
    await expectGracefulClose(seen);
    expect(seen[0]!.code).toBe(1012);
    expect(app.websocketStabilizer.isShuttingDown).toBe(true);
  });
});
