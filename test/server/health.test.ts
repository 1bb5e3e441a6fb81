import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { createHealthHandler, type HealthHandler, type HealthOptions } from '../../src/server/index.js';
import { closeAllServers, startServer, waitFor, type TestServer } from '../helpers/server.js';
import { cleanup, client, sleep } from './support.js';

const handlers: HealthHandler[] = [];
afterEach(async () => {
  for (const h of handlers.splice(0)) h.close();
  await closeAllServers();
  await cleanup();
});

/** A test server whose HTTP requests go to a health handler first, then to a 404 fallback. */
async function healthServer(
  options: HealthOptions = {},
  config = {},
): Promise<TestServer & { health: HealthHandler }> {
  const s = await startServer(config);
  const health = createHealthHandler(s.manager, options);
  handlers.push(health);
  s.server.removeAllListeners('request');
  s.server.on('request', (req, res) => health(req, res) || res.writeHead(404).end('app'));
  return { ...s, health };
}

/** A real HTTP request: status, content type and the raw body. */
function get(
  port: number,
  path: string,
  method = 'GET',
): Promise<{ status: number; type: string | undefined; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], text }));
    });
    req.on('error', reject);
    req.end();
  });
}

const json = async (port: number, path: string) => {
  const r = await get(port, path);
  return { status: r.status, body: JSON.parse(r.text) as unknown };
};

describe('createHealthHandler', () => {
  it('answers liveness and readiness with JSON, and leaves every other request to the application', async () => {
    const s = await healthServer();
    expect(await get(s.port, '/livez')).toEqual({
      status: 200,
      type: 'application/json; charset=utf-8',
      text: '{"status":"alive"}',
    });
    expect(await json(s.port, '/readyz?verbose=1')).toEqual({
      status: 200,
      body: { status: 'ready', reasons: [], connections: 0 },
    });
    expect(await get(s.port, '/readyz', 'HEAD')).toMatchObject({ status: 200, text: '' });
    expect(await get(s.port, '/other')).toMatchObject({ status: 404, text: 'app' });
    expect(await get(s.port, '/readyz', 'POST')).toMatchObject({ status: 404, text: 'app' });
  });

  it('uses the configured paths and calls next() for other requests (Express/Connect middleware)', async () => {
    const s = await startServer();
    const health = createHealthHandler(s.manager, {
      livenessPath: '/health/live',
      readinessPath: '/health/ready',
    });
    handlers.push(health);
    let nextCalls = 0;
    s.server.removeAllListeners('request');
    s.server.on('request', (req, res) => {
      const handled = health(req, res, () => {
        nextCalls++;
        res.writeHead(404).end('app');
      });
      expect(typeof handled).toBe('boolean');
    });
    expect((await json(s.port, '/health/live')).status).toBe(200);
    expect((await json(s.port, '/health/ready')).status).toBe(200);
    expect(nextCalls).toBe(0);
    expect((await get(s.port, '/livez')).status).toBe(404);
    expect(nextCalls).toBe(1);
  });

  it('is not ready while draining (visible in getStats) and while shutting down; liveness stays 200', async () => {
    const s = await healthServer();
    await client(s.url);
    await waitFor(() => s.manager.getConnectionCount() === 1, 'registered');
    s.manager.drain();
    expect(s.manager.getStats()).toMatchObject({ draining: true, shuttingDown: false });
    expect(await json(s.port, '/readyz')).toEqual({
      status: 503,
      body: { status: 'not-ready', reasons: ['draining'], connections: 1 },
    });
    // Draining changes nothing else: a new client is still accepted.
    await client(s.url);
    await waitFor(() => s.manager.getConnectionCount() === 2, 'second client registered');

    await s.manager.gracefulShutdown({ timeoutMs: 500 });
    expect(await json(s.port, '/readyz')).toEqual({
      status: 503,
      body: { status: 'not-ready', reasons: ['shutting-down', 'draining'], connections: 0 },
    });
    expect((await json(s.port, '/livez')).status).toBe(200);
  });

  it('is not ready at maxConnections (counting handshaking sockets) and ready again below it', async () => {
    const s = await healthServer({ maxConnections: 2 });
    const a = await client(s.url);
    await waitFor(() => s.manager.getConnectionCount() === 1, 'one registered');
    expect((await json(s.port, '/readyz')).status).toBe(200);
    // A protocol socket that has not sent its hello yet counts too.
    await client(s.url, {}, 'stabilizer.v1');
    await waitFor(() => s.manager.getStats().handshaking === 1, 'one handshaking');
    expect(await json(s.port, '/readyz')).toEqual({
      status: 503,
      body: { status: 'not-ready', reasons: ['too-many-connections'], connections: 2 },
    });
    a.close();
    await waitFor(() => s.manager.getConnectionCount() === 0, 'one left');
    expect((await json(s.port, '/readyz')).status).toBe(200);
  });

  it('is not ready when the event loop was blocked since the previous check, and ready again after', async () => {
    const s = await healthServer({ maxEventLoopDelayMs: 250 });
    s.health.readiness(); // starts a new window
    await sleep(60);
    const start = Date.now();
    while (Date.now() - start < 600); // block the event loop for 600 ms
    await sleep(50);
    const blocked = s.health.readiness();
    expect(blocked.status).toBe('not-ready');
    expect(blocked.reasons).toEqual(['event-loop-delay']);
    expect(blocked.eventLoopDelayMs).toBeGreaterThan(250);
    // The next window has no block in it (the test only sleeps).
    await sleep(200);
    const after = await json(s.port, '/readyz');
    expect(after).toMatchObject({ status: 200, body: { status: 'ready', reasons: [] } });
    expect((after.body as { eventLoopDelayMs: number }).eventLoopDelayMs).toBeLessThan(250);
  });

  it('works as Express middleware: probes answered, other routes reach the app', async () => {
    const s = await startServer();
    const health = createHealthHandler(s.manager);
    handlers.push(health);
    const app = express();
    app.use(health);
    app.get('/hello', (_req, res) => void res.send('from express'));
    const http = createServer(app);
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const port = (http.address() as AddressInfo).port;
    try {
      expect(await json(port, '/readyz')).toEqual({
        status: 200,
        body: { status: 'ready', reasons: [], connections: 0 },
      });
      expect(await get(port, '/hello')).toMatchObject({ status: 200, text: 'from express' });
      s.manager.drain();
      expect((await json(port, '/readyz')).status).toBe(503);
    } finally {
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  });
});
