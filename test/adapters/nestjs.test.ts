import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { SubscribeMessage, WebSocketGateway, WebSocketServer, WsException } from '@nestjs/websockets';
import type { Request } from 'express';
import session from 'express-session';
import { of } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { SessionSocket, StabilizerWsAdapter } from '../../src/adapters/nestjs.js';
import type { WebSocketConnectionManager } from '../../src/server/index.js';
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

// The gateway is written as a Nest app would, but the decorators are applied by hand: the project's tsconfig has no
// `experimentalDecorators`, and this is exactly what the legacy decorator syntax compiles to.
class ChatGateway {
  server!: WebSocketConnectionManager;
  readonly connected: string[] = [];
  readonly disconnected: Array<[string, string]> = [];

  handleConnection(client: SessionSocket): void {
    this.connected.push(client.id);
  }

  handleDisconnect(client: SessionSocket, reason: string): void {
    this.disconnected.push([client.id, reason]);
  }

  echo(client: SessionSocket, data: unknown) {
    return { event: 'echo', data: { data, user: (client.data as { user: string }).user } };
  }

  fail(): never {
    throw new WsException('not allowed');
  }

  async later(_client: SessionSocket, data: number) {
    await new Promise((r) => setTimeout(r, 5));
    return { event: 'later', data: data + 1 };
  }

  count(_client: SessionSocket, data: number) {
    return of(...Array.from({ length: data }, (_, i) => ({ event: 'count', data: i + 1 })));
  }
}
WebSocketGateway({ path: '/ws' })(ChatGateway);
WebSocketServer()(ChatGateway.prototype, 'server');
for (const name of ['echo', 'fail', 'later', 'count'] as const) {
  SubscribeMessage(name)(
    ChatGateway.prototype,
    name,
    Object.getOwnPropertyDescriptor(ChatGateway.prototype, name)!,
  );
}
class AppModule {}
Module({ providers: [ChatGateway] })(AppModule);

const apps: INestApplication[] = [];
afterEach(async () => {
  closeClients();
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

/** A Nest app on platform-express with express-session: POST /login?user=ann logs in. */
async function start() {
  // forceCloseConnections: Nest destroys every open socket when it closes the HTTP server (a late drain → 1006).
  const app = await NestFactory.create(AppModule, { logger: false, forceCloseConnections: true });
  apps.push(app);
  const sessions = session({ secret: 'nest-test-secret', resave: false, saveUninitialized: false });
  app.use(sessions);
  app.use('/login', (req: Request & { session: { user?: string } }, res: { end(s: string): void }) => {
    req.session.user = String(req.query.user);
    res.end('ok');
  });
  app.useWebSocketAdapter(
    new StabilizerWsAdapter(app, {
      config: { shutdownRetryAfterMs: 300 },
      middleware: [sessions],
      authenticate: (req: Request & { session: { user?: string } }) =>
        req.session.user ? { data: { user: req.session.user } } : false,
      shutdown: { restart: true, timeoutMs: 1000 },
    }),
  );
  await app.listen(0, '127.0.0.1');
  const base = `127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  const login = await fetch(`http://${base}/login?user=ann`, { method: 'POST' });
  return { app, gateway: app.get(ChatGateway), base, url: `ws://${base}/ws`, cookie: cookieOf(login) };
}

describe('NestJS WebSocketAdapter', () => {
  it('serves @SubscribeMessage handlers on exactly-once sessions, authenticated by express-session', async () => {
    const { gateway, base, url, cookie } = await start();
    expect(await upgradeStatus(url)).toBe(401);
    expect(await upgradeStatus(`ws://${base}/other`, cookie)).toBe(404);
    const client = cookieClient(url, cookie);
    const got = inbox(client);
    await client.send({ event: 'echo', data: 'hi' });
    await waitFor(() => got.length === 1, 'echo reply');
    expect(got[0]).toEqual({ event: 'echo', data: { data: 'hi', user: 'ann' } });
    await client.send({ event: 'fail', data: null });
    await waitFor(() => got.length === 2, 'exception');
    expect(got[1]).toMatchObject({ event: 'exception', data: { status: 'error', message: 'not allowed' } });
    // A Promise and an Observable: every value goes back (the Observable's in order; the two replies interleave).
    await client.send({ event: 'later', data: 41 });
    await client.send({ event: 'count', data: 3 });
    await waitFor(() => got.length === 6, 'async and observable replies');
    const replies = got.slice(2) as Array<{ event: string; data: number }>;
    expect(replies.filter((m) => m.event === 'later')).toEqual([{ event: 'later', data: 42 }]);
    expect(replies.filter((m) => m.event === 'count').map((m) => m.data)).toEqual([1, 2, 3]);
    expect(gateway.connected).toEqual([client.sessionId]);
    expect(gateway.server.getConnectionCount()).toBe(1); // @WebSocketServer() is the manager
  });

  it('a dropped socket resumes without handleDisconnect/handleConnection, every message exactly once', async () => {
    const { gateway, url, cookie } = await start();
    const client = cookieClient(url, cookie);
    await expectResumeAfterDrop(gateway.server, client, inbox(client));
    expect(gateway.connected).toEqual([client.sessionId]);
    expect(gateway.disconnected).toEqual([]);
  });

  it('app.close() drains: clients get 1012 with the retry hint, not 1006; handleDisconnect runs', async () => {
    const { app, gateway, url, cookie } = await start();
    const client = cookieClient(url, cookie);
    const seen = closes(client);
    await waitFor(() => client.state === 'open');
    const id = client.sessionId!;
    await app.close();
    apps.length = 0;
    await expectGracefulClose(seen);
    expect(seen[0]!.code).toBe(1012);
    expect(gateway.disconnected).toEqual([[id, 'shutdown']]);
  });
});
