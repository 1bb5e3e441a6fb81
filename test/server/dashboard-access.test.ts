import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createDashboard, type DashboardHandler, type DashboardOptions } from '../../src/dashboard/index.js';
import { isLocalRequest } from '../../src/dashboard/access.js';
import { WebSocketConnectionManager } from '../../src/server/index.js';
import { openClient, waitFor } from '../helpers/server.js';

const TOKEN = 'a-dashboard-token-of-some-length';
const open: Array<{ server: Server; manager: WebSocketConnectionManager; dashboard: DashboardHandler }> = [];

/** A manager attached at /ws with the dashboard at /dashboard, on 127.0.0.1. */
async function start(options: DashboardOptions, logs: unknown[] = []) {
  const logger = {
    info: () => {},
    debug: () => {},
    error: () => {},
    warn: (o: unknown) => logs.push(o),
  };
  const manager = new WebSocketConnectionManager({ logger });
  const dashboard = createDashboard(manager, options);
  const server = createServer((req, res) => dashboard(req, res) || res.writeHead(404).end());
  manager.attach(server, { path: '/ws' });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  open.push({ server, manager, dashboard });
  return { manager, dashboard, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

afterEach(async () => {
  for (const { server, manager, dashboard } of open.splice(0)) {
    dashboard.close();
    await manager.gracefulShutdown({ timeoutMs: 200 });
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

type Answer = { status: number; headers: IncomingMessage['headers']; body: string };

/** One request; for the event stream, resolves once the first event arrived (and ends the stream). */
function fetchRaw(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
) {
  return new Promise<Answer>((resolve, reject) => {
    const req = request(url, { method: init.method ?? 'GET', headers: init.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
        if (res.headers['content-type']?.startsWith('text/event-stream') && body.includes('data: ')) {
          resolve({ status: res.statusCode!, headers: res.headers, body });
          req.destroy();
        }
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

describe('dashboard access', () => {
  it('refuses to be created open to everyone', () => {
    const manager = new WebSocketConnectionManager();
    expect(() => createDashboard(manager, {})).toThrow(/token, authorize or allowLoopback/);
    expect(() => createDashboard(manager, { token: 'short' })).toThrow(/16 characters/);
    void manager.gracefulShutdown({ timeoutMs: 10 });
  });

  it('answers 401 without credentials (page, stream, actions), even from this machine unless allowLoopback', async () => {
    const { base } = await start({ token: TOKEN, actions: true });
    const page = await fetchRaw(`${base}/dashboard`);
    expect(page.status).toBe(401);
    expect(page.body).toContain('name="token"'); // the login form, not the dashboard
    expect(page.body).not.toContain('EventSource');
    expect((await fetchRaw(`${base}/dashboard/events`)).status).toBe(401);
    expect((await fetchRaw(`${base}/dashboard/actions/drain`, { method: 'POST', body: '{}' })).status).toBe(
      401,
    );
    // A wrong token, and the right one in the URL (never accepted there).
    const wrong = { authorization: 'Bearer not-the-dashboard-token-at-all' };
    expect((await fetchRaw(`${base}/dashboard/events`, { headers: wrong })).status).toBe(401);
    expect((await fetchRaw(`${base}/dashboard/events?token=${TOKEN}`)).status).toBe(401);
    expect((await fetchRaw(`${base}/dashboard?token=${TOKEN}`)).status).toBe(401);
  });

  it('lets the bearer token in, and answers 403 to a cross-site Origin even with it', async () => {
    const { base } = await start({ token: TOKEN });
    const auth = { authorization: `Bearer ${TOKEN}` };
    const page = await fetchRaw(`${base}/dashboard`, { headers: auth });
    expect(page.status).toBe(200);
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.body).toContain('EventSource');
    const stream = await fetchRaw(`${base}/dashboard/events`, { headers: auth });
    expect(stream.status).toBe(200);
    expect(JSON.parse(stream.body.split('data: ')[1]!.split('\n')[0]!)).toMatchObject({
      plain: 0,
      protocol: 0,
    });
    const host = new URL(base).host;
    for (const origin of ['http://evil.example', `https://${host}.evil.example`, 'null']) {
      const headers = { ...auth, origin };
      expect((await fetchRaw(`${base}/dashboard/events`, { headers })).status).toBe(403);
      expect((await fetchRaw(`${base}/dashboard`, { headers })).status).toBe(403);
    }
    // Its own origin passes.
    expect((await fetchRaw(`${base}/dashboard`, { headers: { ...auth, origin: base } })).status).toBe(200);
    // Not the dashboard's: left to the next handler.
    expect((await fetchRaw(`${base}/dashboardx`, { headers: auth })).status).toBe(404);
  });

  it('logs in through the form: an HttpOnly SameSite=Strict cookie that is not the token; a cross-site form is 403', async () => {
    const { base } = await start({ token: TOKEN });
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const bad = await fetchRaw(`${base}/dashboard/login`, {
      method: 'POST',
      headers: form,
      body: 'token=nope',
    });
    expect(bad.status).toBe(401);
    expect(bad.headers['set-cookie']).toBeUndefined();
    const crossSite = await fetchRaw(`${base}/dashboard/login`, {
      method: 'POST',
      headers: { ...form, origin: 'http://evil.example' },
      body: `token=${TOKEN}`,
    });
    expect(crossSite.status).toBe(403);
    const ok = await fetchRaw(`${base}/dashboard/login`, {
      method: 'POST',
      headers: { ...form, origin: base },
      body: `token=${encodeURIComponent(TOKEN)}`,
    });
    expect(ok.status).toBe(303);
    const cookie = ok.headers['set-cookie']![0]!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toContain(TOKEN);
    const pair = cookie.split(';')[0]!;
    expect((await fetchRaw(`${base}/dashboard/events`, { headers: { cookie: pair } })).status).toBe(200);
    expect((await fetchRaw(`${base}/dashboard/events`, { headers: { cookie: `${pair}x` } })).status).toBe(
      401,
    );
  });

  it('lets loopback in without credentials only with allowLoopback, never through a proxy, and says so in the log', async () => {
    const logs: unknown[] = [];
    const { base } = await start({ allowLoopback: true }, logs);
    expect(logs).toContainEqual(expect.objectContaining({ event: 'dashboard.loopback' }));
    expect((await fetchRaw(`${base}/dashboard`)).status).toBe(200);
    expect((await fetchRaw(`${base}/dashboard/events`)).status).toBe(200);
    for (const header of ['x-forwarded-for', 'forwarded', 'x-real-ip']) {
      expect(
        (await fetchRaw(`${base}/dashboard/events`, { headers: { [header]: '203.0.113.9' } })).status,
      ).toBe(401);
    }
    expect(
      (await fetchRaw(`${base}/dashboard/events`, { headers: { origin: 'http://evil.example' } })).status,
    ).toBe(403);
    // DNS rebinding: another site's name for this address, its own origin (the check above passes).
    const port = new URL(base).port;
    const rebound = { host: `evil.example:${port}`, origin: `http://evil.example:${port}` };
    expect((await fetchRaw(`${base}/dashboard/events`, { headers: rebound })).status).toBe(401);
    // Loopback without credentials never reaches an action.
    expect((await fetchRaw(`${base}/dashboard/actions/drain`, { method: 'POST', body: '{}' })).status).toBe(
      403,
    );
  });

  it('judges the peer address (loopback v4, v6 and mapped v4 only) and the name asked for', () => {
    const req = (remoteAddress: string, host = '127.0.0.1:3000') =>
      ({ headers: { host }, socket: { remoteAddress } }) as unknown as IncomingMessage;
    for (const a of ['127.0.0.1', '127.3.2.1', '::1', '::ffff:127.0.0.1'])
      expect(isLocalRequest(req(a))).toBe(true);
    for (const a of ['10.0.0.5', '192.168.1.2', '::ffff:10.0.0.1', 'fe80::1', '1127.0.0.1'])
      expect(isLocalRequest(req(a))).toBe(false);
    // Asked for by another name: DNS rebinding (another site's page, resolved to 127.0.0.1).
    for (const host of ['localhost', 'localhost:8080', '127.0.0.1', '[::1]:3000'])
      expect(isLocalRequest(req('127.0.0.1', host))).toBe(true);
    for (const host of ['evil.example', 'evil.example:3000', 'localhost.evil.example', '127.0.0.1.nip.io'])
      expect(isLocalRequest(req('127.0.0.1', host))).toBe(false);
  });

  it('runs the authorize hook: false is 403, true lets in; a throw is a 500 and the process lives', async () => {
    let verdict: boolean | 'throw' = false;
    const { base } = await start({
      authorize: (req) => {
        if (verdict === 'throw') throw new Error('hook failed');
        return verdict && req.headers['x-admin'] === 'yes';
      },
    });
    expect((await fetchRaw(`${base}/dashboard`, { headers: { 'x-admin': 'yes' } })).status).toBe(403);
    verdict = true;
    expect((await fetchRaw(`${base}/dashboard`, { headers: { 'x-admin': 'yes' } })).status).toBe(200);
    expect((await fetchRaw(`${base}/dashboard`)).status).toBe(403);
    verdict = 'throw';
    expect((await fetchRaw(`${base}/dashboard`)).status).toBe(500);
  });

  it('runs actions only when enabled, with credentials, and logs each one', async () => {
    const logs: Array<Record<string, unknown>> = [];
    const { base, manager } = await start({ token: TOKEN, actions: true }, logs);
    const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    const ws = await openClient(`${base.replace('http', 'ws')}/ws`);
    await waitFor(() => manager.getConnectionCount() === 1, 'connection');
    const [id] = manager.getActiveConnections();
    const closedCode = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    const res = await fetchRaw(`${base}/dashboard/actions/disconnect`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ clientId: id, resume: false }),
    });
    expect(res.status).toBe(200);
    expect(await closedCode).toBe(1000);
    expect(logs).toContainEqual(
      expect.objectContaining({ event: 'dashboard.action', action: 'disconnect', clientId: id }),
    );
    const unknown = { method: 'POST', headers: auth, body: JSON.stringify({ clientId: 'nobody' }) };
    expect((await fetchRaw(`${base}/dashboard/actions/disconnect`, unknown)).status).toBe(404);
    const bad = { method: 'POST', headers: auth, body: '{' };
    expect((await fetchRaw(`${base}/dashboard/actions/disconnect`, bad)).status).toBe(400);
    const big = { method: 'POST', headers: auth, body: 'x'.repeat(10_000) };
    expect((await fetchRaw(`${base}/dashboard/actions/disconnect`, big)).status).toBe(413);
    expect(manager.getStats().draining).toBe(false);
    expect(
      (await fetchRaw(`${base}/dashboard/actions/drain`, { method: 'POST', headers: auth })).status,
    ).toBe(200);
    expect(manager.getStats().draining).toBe(true);
    expect(logs).toContainEqual(expect.objectContaining({ event: 'dashboard.action', action: 'drain' }));
    // A cross-site POST with the credentials is still refused.
    const crossSite = { method: 'POST', headers: { ...auth, origin: 'http://evil.example' }, body: '{}' };
    expect((await fetchRaw(`${base}/dashboard/actions/drain`, crossSite)).status).toBe(403);

    const readOnly = await start({ token: TOKEN });
    expect(
      (await fetchRaw(`${readOnly.base}/dashboard/actions/drain`, { method: 'POST', headers: auth })).status,
    ).toBe(403);
    expect(readOnly.manager.getStats().draining).toBe(false);
  });

  it('samples only while someone watches: no sampler before, during only, none after', async () => {
    const { base, dashboard } = await start({ token: TOKEN, sampleIntervalMs: 20 });
    expect(dashboard.sampling).toBe(false);
    expect(dashboard.viewers).toBe(0);
    const events: string[] = [];
    const req = request(
      `${base}/dashboard/events`,
      { headers: { authorization: `Bearer ${TOKEN}` } },
      (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) =>
          events.push(...chunk.split('\n\n').filter((e) => e.startsWith('data: '))),
        );
      },
    );
    req.end();
    await waitFor(() => events.length >= 3, 'three samples');
    expect(dashboard.sampling).toBe(true);
    expect(dashboard.viewers).toBe(1);
    req.destroy();
    await waitFor(() => dashboard.viewers === 0, 'the viewer to leave');
    expect(dashboard.sampling).toBe(false);
  });
});
