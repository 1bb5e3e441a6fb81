// Every framework adapter under the default origin check (Cross-Site WebSocket Hijacking): a cross-site upgrade
// that carries the user's cookie is refused with 403 before the app's authenticate runs, a same-origin one and a
// client without Origin are accepted, and behind a real nginx (deploy/nginx/websocket.conf) with trustProxy the
// browser's own origin (nginx's host:port) is accepted while a cross-site one is still refused.
import 'reflect-metadata';
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { NestFactory } from '@nestjs/core';
import { Module, type INestApplication } from '@nestjs/common';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { Hono } from 'hono';
import { afterEach, describe, expect, it } from 'vitest';
import { attachExpress } from '../../src/adapters/express.js';
import { fastifyStabilizer } from '../../src/adapters/fastify.js';
import { createHonoStabilizer } from '../../src/adapters/hono.js';
import { StabilizerWsAdapter } from '../../src/adapters/nestjs.js';
import { WebSocketConnectionManager, type TrustProxy } from '../../src/server/index.js';
import { documentedNginxConfig, freePort, startNginxWithConfig } from '../helpers/nginx.js';
import type { RunningProxy } from '../helpers/proxy-process.js';
import { waitFor } from '../helpers/server.js';
import { closeClients, cookieClient, upgradeStatus } from './support.js';

const COOKIE = 'sid=ann';

/** The app's check: the session cookie, recorded so a test can tell whether it ran. */
function cookieAuth(seen: string[]) {
  return (req: IncomingMessage) => {
    seen.push(req.headers.cookie ?? '');
    return req.headers.cookie === COOKIE ? { data: { user: 'ann' } } : false;
  };
}

interface Started {
  port: number;
  manager: WebSocketConnectionManager;
  seen: string[];
  close(): Promise<void>;
}

type Starter = (trustProxy?: TrustProxy) => Promise<Started>;

async function listening(server: Server): Promise<number> {
  if (!server.listening) await new Promise((r) => server.once('listening', r));
  return (server.address() as AddressInfo).port;
}

const closeServer = async (server: Server) => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
};

const adapters: Record<string, Starter> = {
  async Express(trustProxy) {
    const app = express();
    const manager = new WebSocketConnectionManager();
    const seen: string[] = [];
    const server = app.listen(0, '127.0.0.1');
    attachExpress(manager, server, { path: '/ws', app, trustProxy, authenticate: cookieAuth(seen) });
    return { port: await listening(server), manager, seen, close: () => closeServer(server) };
  },
  async Fastify(trustProxy) {
    const app: FastifyInstance = Fastify({ forceCloseConnections: true });
    const seen: string[] = [];
    await app.register(fastifyStabilizer, { path: '/ws', trustProxy, authenticate: cookieAuth(seen) });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const port = (app.server.address() as AddressInfo).port;
    return { port, manager: app.websocketStabilizer as never, seen, close: () => app.close() };
  },
  async Hono(trustProxy) {
    const app = new Hono();
    const manager = new WebSocketConnectionManager();
    const seen: string[] = [];
    const ws = createHonoStabilizer(manager, { app, trustProxy });
    app.get(
      '/ws',
      ws.upgrade((c) => cookieAuth(seen)({ headers: { cookie: c.req.header('cookie') } } as IncomingMessage)),
    );
    const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
    ws.attach(server);
    return { port: await listening(server), manager, seen, close: () => closeServer(server) };
  },
  async NestJS(trustProxy) {
    class AppModule {}
    Module({})(AppModule);
    const app: INestApplication = await NestFactory.create(AppModule, {
      logger: false,
      forceCloseConnections: true,
    });
    const seen: string[] = [];
    const adapter = new StabilizerWsAdapter(app, {
      path: '/ws',
      trustProxy,
      authenticate: cookieAuth(seen),
    });
    app.useWebSocketAdapter(adapter);
    await app.listen(0, '127.0.0.1');
    adapter.create(0, { path: '/ws' }); // no gateway in this app: serve the path anyway
    const port = (app.getHttpServer().address() as AddressInfo).port;
    return { port, manager: adapter.manager as never, seen, close: () => app.close() };
  },
};

const running: Started[] = [];
const proxies: RunningProxy[] = [];
afterEach(async () => {
  closeClients();
  for (const p of proxies.splice(0)) await p.stop();
  for (const s of running.splice(0)) await s.close();
});

describe.each(Object.keys(adapters))('%s adapter: origin check', (name) => {
  const start: Starter = async (trustProxy) => {
    const s = await adapters[name]!(trustProxy);
    running.push(s);
    return s;
  };

  it('refuses a cross-site upgrade with the cookie (403, authenticate never runs); same origin and no Origin pass', async () => {
    const s = await start();
    const url = `ws://127.0.0.1:${s.port}/ws`;
    expect(await upgradeStatus(url, COOKIE, { origin: 'https://evil.example' })).toBe(403);
    // Another port of the same host is another origin (a page served by another local app).
    expect(await upgradeStatus(url, COOKIE, { origin: `http://127.0.0.1:${s.port + 1}` })).toBe(403);
    expect(s.seen).toEqual([]);
    expect(await upgradeStatus(url, COOKIE, { origin: `http://127.0.0.1:${s.port}` })).toBe(101);
    expect(await upgradeStatus(url, COOKIE)).toBe(101);
    expect(s.seen).toEqual([COOKIE, COOKIE]);
  });

  it('keeps working behind a real nginx with trustProxy: the browser origin nginx forwards is its own', async () => {
    const s = await start(true);
    const nginxPort = await freePort();
    proxies.push(await startNginxWithConfig(documentedNginxConfig(nginxPort, s.port, 30), nginxPort));
    const url = `ws://127.0.0.1:${nginxPort}/ws`;
    expect(await upgradeStatus(url, COOKIE, { origin: `http://127.0.0.1:${nginxPort}` })).toBe(101);
    expect(await upgradeStatus(url, COOKIE, { origin: 'http://evil.example' })).toBe(403);
    // The app's port is not the origin the browser used (it talked to nginx).
    expect(await upgradeStatus(url, COOKIE, { origin: `http://127.0.0.1:${s.port}` })).toBe(403);
    // A whole session through nginx (the bundled client on Node, no Origin).
    const connected: Array<string | undefined> = [];
    s.manager.on('connect', (e) => void connected.push(e.remoteAddress));
    const client = cookieClient(url, COOKIE);
    await waitFor(() => client.state === 'open', 'client open through nginx');
    expect(connected).toEqual(['127.0.0.1']);
  });
});
