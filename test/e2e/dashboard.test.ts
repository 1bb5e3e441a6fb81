import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, type Page } from 'playwright-core';
import type { WebSocket } from 'ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDashboard, type DashboardOptions } from '../../src/dashboard/index.js';
import { WebSocketConnectionManager } from '../../src/server/index.js';
import { launchChromium } from '../helpers/chromium.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { openClient, waitFor } from '../helpers/server.js';

const TOKEN = 'dashboard-e2e-token-0123456789';

let browser: Browser;
const cleanups: Array<() => Promise<void>> = [];

/** A manager at /ws and its dashboard at /dashboard (token only: loopback is not let in). */
async function start(sampleIntervalMs = 200, options: DashboardOptions = { token: TOKEN }) {
  const manager = new WebSocketConnectionManager(
    {
      tokens: { secret: 'dashboard-e2e-secret-dashboard-e2e-secret' },
      pingIntervalMs: 300,
      pongTimeoutMs: 5000,
    },
    { authorizeSubscribe: () => true },
  );
  const dashboard = createDashboard(manager, { ...options, sampleIntervalMs });
  // The answers the server finished (an open event stream is not among them), with the Origin the browser sent.
  const answers: Array<{ url: string; status: number; origin: string | undefined }> = [];
  const server: Server = createServer((req, res) => {
    res.on('finish', () =>
      answers.push({ url: req.url ?? '', status: res.statusCode, origin: req.headers.origin }),
    );
    return dashboard(req, res) || res.writeHead(404).end();
  });
  manager.attach(server, { path: '/ws' });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  cleanups.push(async () => {
    dashboard.close();
    await manager.gracefulShutdown({ timeoutMs: 300 });
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return { manager, dashboard, base, answers, wsUrl: `${base.replace('http', 'ws')}/ws` };
}

/** Open the dashboard as a person would: the login form, then the live page. */
async function login(base: string): Promise<Page> {
  const page = await browser.newPage();
  const first = await page.goto(`${base}/dashboard`);
  expect(first?.status()).toBe(401);
  await page.fill('input[name=token]', TOKEN);
  await Promise.all([page.waitForURL(`${base}/dashboard`), page.click('button')]);
  await page.waitForFunction(() => document.querySelector('#status')?.textContent === 'live');
  return page;
}

/** Wait until the element's text satisfies `pred` (it follows the samples); polled from here (the page's CSP forbids eval). */
async function seeText(page: Page, selector: string, pred: (text: string) => boolean, what: string) {
  const deadline = Date.now() + 15_000;
  let text: string | null = null;
  while (Date.now() < deadline) {
    text = await page
      .locator(selector)
      .first()
      .textContent({ timeout: 15_000 })
      .catch(() => null);
    if (text !== null && pred(text)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what}: ${selector} shows ${JSON.stringify(text)}`);
}

/** Wait until a tally table row `key` shows `count`. */
const seeTally = (page: Page, table: string, key: string, count: number) =>
  seeText(
    page,
    `#${table} tr[data-key="${key}"] td:last-child`,
    (t) => t === String(count),
    `${table}/${key}`,
  );

describe('dashboard in real Chromium', () => {
  beforeAll(async () => {
    browser = await launchChromium();
  }, 60_000);

  afterEach(async () => {
    for (const context of browser.contexts()) await context.close();
    for (const c of cleanups.splice(0)) await c();
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('shows the connections, resumes by reason, topics and message rates as they happen', async () => {
    const { manager, dashboard, base, wsUrl } = await start();
    expect(dashboard.sampling).toBe(false);
    const page = await login(base);
    expect(dashboard.viewers).toBe(1);
    await seeText(page, '#v-connections', (t) => t === '0', 'no connections yet');

    // N plain sockets and M protocol sessions.
    const plain: WebSocket[] = [];
    for (let i = 0; i < 5; i++) plain.push(await openClient(wsUrl));
    const sessions: Array<{ client: RawProtocolClient; token: string; sessionId: string }> = [];
    for (let i = 0; i < 3; i++) {
      const { client, welcome } = await RawProtocolClient.handshake(wsUrl);
      sessions.push({ client, token: welcome.token, sessionId: welcome.sessionId });
    }
    await seeText(page, '#v-plain', (t) => t === '5', 'plain connections');
    await seeText(page, '#v-protocol', (t) => t === '3', 'protocol connections');
    await seeText(page, '#v-connections', (t) => t === '8', 'all connections');
    await seeTally(page, 'fresh', 'new', 3);

    // A topic with members, and who is in it.
    const ids = manager.getActiveConnections();
    for (const id of ids) manager.join(id, 'room:lobby');
    await seeText(
      page,
      '#topics tr[data-topic="room:lobby"] td:nth-child(2)',
      (t) => t === '8',
      'topic members',
    );
    const who = await page.locator('#topics tr[data-topic="room:lobby"] td:nth-child(3)').textContent();
    expect(ids.some((id) => who!.includes(id))).toBe(true);

    // Drop the protocol sockets: detached sessions, then resumed ones; and one resume with a forged token.
    for (const s of sessions) s.client.ws.terminate();
    await seeText(page, '#v-detached', (t) => t === '3', 'detached sessions');
    await seeText(page, '#v-protocol', (t) => t === '0', 'no protocol connection');
    await seeTally(page, 'codes', '1006', 3);
    for (const s of sessions) {
      const { welcome } = await RawProtocolClient.handshake(wsUrl, {
        token: s.token,
        sessionId: s.sessionId,
      });
      expect(welcome.resume).toBe('resumed');
    }
    await seeText(page, '#v-resumed', (t) => t === '3', 'resumed sessions');
    await seeText(page, '#v-detached', (t) => t === '0', 'no detached session');
    const forged = await RawProtocolClient.handshake(wsUrl, { token: 'forged.token', sessionId: 'nobody' });
    expect(forged.welcome.resume).toBe('fresh');
    await seeTally(page, 'fresh', forged.welcome.reason!, 1);

    // Publish and receive until the page shows a rate.
    let publishing = true;
    const loop = (async () => {
      while (publishing) {
        manager.publish('room:lobby', { text: 'hello' });
        plain[0]!.send('from a plain client');
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      await seeText(page, '#v-out', (t) => Number.parseFloat(t) > 0, 'messages out per second');
      await seeText(page, '#v-in', (t) => Number.parseFloat(t) > 0, 'messages in per second');
      // The sparkline of the rate has drawn something.
      const points = await page.locator('svg[data-series="outPerS"] polyline').getAttribute('points');
      expect(points!.split(' ').length).toBeGreaterThan(1);
    } finally {
      publishing = false;
      await loop;
    }
    // Heartbeat round trips: the server pings every 300 ms here.
    await seeText(page, '#v-rtt', (t) => t !== '–' && Number.isFinite(Number.parseFloat(t)), 'heartbeat rtt');

    // Plain sockets closed by their clients.
    for (const ws of plain) ws.close(1000);
    await seeText(page, '#v-plain', (t) => t === '0', 'plain connections gone');
    await seeTally(page, 'codes', '1000', 5);
    await seeTally(page, 'disconnects', 'client-closed', 5 + 3);

    // Nobody watching: the sampler stops.
    await page.close();
    await waitFor(() => dashboard.viewers === 0, 'the page to leave', 10_000);
    expect(dashboard.sampling).toBe(false);
    forged.client.ws.terminate();
  }, 90_000);

  it('refuses the stream without the login, and to a page of another site even on a loopback-open dashboard', async () => {
    const closed = await start();
    const page = await browser.newPage();
    expect((await page.goto(`${closed.base}/dashboard/events`))?.status()).toBe(401);

    // A dashboard open to this machine without credentials (the demo's setting), and another site's page in the
    // same browser that tries to read its stream and to post an action.
    const { base, answers, manager } = await start(200, { allowLoopback: true, actions: true });
    const own = await browser.newPage();
    expect((await own.goto(`${base}/dashboard`))?.status()).toBe(200);
    await own.waitForFunction(() => document.querySelector('#status')?.textContent === 'live');
    expect(await own.locator('#actions').isHidden()).toBe(true); // never for loopback without credentials
    const other = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/html' }).end('<p>another site</p>'),
    );
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((r) => other.close(() => r())));
    const otherOrigin = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    const evil = await browser.newPage();
    await evil.goto(`${otherOrigin}/`);
    await evil.evaluate((url) => {
      new EventSource(url);
      void fetch(url.replace('/events', '/actions/drain'), {
        method: 'POST',
        mode: 'no-cors',
        body: '{}',
      }).catch(() => {});
    }, `${base}/dashboard/events`);
    const refused = (url: string) => () =>
      answers.some((a) => a.url === url && a.status === 403 && a.origin === otherOrigin);
    await waitFor(refused('/dashboard/events'), 'the stream refused to the other site', 15_000);
    await waitFor(refused('/dashboard/actions/drain'), 'the action refused to the other site', 15_000);
    expect(manager.getStats().draining).toBe(false);
  }, 60_000);

  it('runs the actions from the page for a signed-in viewer: disconnect a client, drain the node', async () => {
    const { manager, base, wsUrl } = await start(200, { token: TOKEN, actions: true });
    const page = await login(base);
    expect(await page.locator('#actions').isVisible()).toBe(true);
    const ws = await openClient(wsUrl);
    await waitFor(() => manager.getConnectionCount() === 1, 'the client');
    const [id] = manager.getActiveConnections();
    const closedWith = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    await page.fill('#disconnect-id', id!);
    await page.uncheck('#disconnect-resume');
    await page.click('#disconnect-form button');
    expect(await closedWith).toBe(1000);
    await seeText(page, '#action-result', (t) => t.startsWith('disconnect: 200'), 'the action result');
    page.once('dialog', (d) => void d.accept());
    await page.click('#drain');
    await seeText(page, '#action-result', (t) => t.startsWith('drain: 200'), 'the drain result');
    expect(manager.getStats().draining).toBe(true);
    await seeText(page, '#backend', (t) => t.includes('draining'), 'the node shown draining');
  }, 60_000);
});
