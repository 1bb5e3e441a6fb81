import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, type CDPSession, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  WebSocketConnectionManager,
  type AttachOptions,
  type WebSocketConfig,
} from '../../src/server/index.js';
import { launchChromium } from '../helpers/chromium.js';
import { waitFor } from '../helpers/server.js';

// The browser build of websocket-stabilizer/client (`npx tsup` first, as for browser.test.ts).
const clientBundle = new URL('../../dist/client.js', import.meta.url);

type App = {
  server: Server;
  manager: WebSocketConnectionManager;
  base: string;
  ws: string;
  token: { valid: string };
};
const apps: App[] = [];

/**
 * A manager at /ws, a blank page at /, the client bundle at /client.js, and /token: the app's token endpoint,
 * which hands out the currently valid token.
 */
async function startApp(config: WebSocketConfig, attach: AttachOptions = {}): Promise<App> {
  const manager = new WebSocketConnectionManager(config);
  const token = { valid: 'v1' };
  const server = createServer((req, res) => {
    if (req.url === '/client.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(clientBundle));
    } else if (req.url === '/token') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(token.valid);
    } else res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
  });
  manager.attach(server, { path: '/ws', ...attach });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const app = { server, manager, base: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/ws`, token };
  apps.push(app);
  return app;
}

/**
 * The page: loads the client bundle and offers `start(url, options)`, which makes a client (`window.c`) whose
 * events go to `window.log`. `options` is source text, so that it can hold functions.
 */
const PAGE = `<!doctype html><title>t</title><script type="module">
import { StabilizerClient } from '/client.js';
window.start = (url, options) => {
  const log = (window.log = { open: [], resumed: [], fresh: [], close: [], unauthorized: [], message: [], asked: [] });
  const opts = new Function('log', 'return (' + options + ')')(log);
  const c = (window.c = new StabilizerClient(url, { minDelayMs: 50, maxDelayMs: 200, ...opts }));
  for (const k of ['open', 'resumed', 'fresh', 'close', 'unauthorized', 'message']) c.on(k, (e) => log[k].push(e));
};
</script>`;

/** Opens the page and starts a client in it. */
async function startClient(app: App, options: string): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${app.base}/`);
  await page.waitForFunction('typeof window.start === "function"');
  await page.evaluate(
    ([url, opts]) => (window as unknown as { start(u: string, o: string): void }).start(url!, opts!),
    [app.ws, options],
  );
  return page;
}

const log = (page: Page) =>
  page.evaluate(() => (window as unknown as { log: Record<string, unknown[]> }).log);
const pageSend = (page: Page, text: string) =>
  page.evaluate(
    (t) => void (window as unknown as { c: { send(p: unknown): Promise<void> } }).c.send(t),
    text,
  );

async function until(page: Page, fn: string): Promise<void> {
  await page.waitForFunction(fn, undefined, { timeout: 15_000 });
}

let browser: Browser;

describe('client auth and hidden pages in real Chromium', () => {
  beforeAll(async () => {
    browser = await launchChromium();
  }, 60_000);

  afterEach(async () => {
    for (const context of browser.contexts()) await context.close();
    for (const { server, manager } of apps.splice(0)) {
      await manager.gracefulShutdown({ timeoutMs: 500 });
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('auth() refreshes an expired credential: the session resumes and the queue is sent exactly once', async () => {
    const app = await startApp(
      {},
      { authenticate: (_req, hello) => (hello?.auth === app.token.valid ? { principal: 'ann' } : 'expired') },
    );
    const got: unknown[] = [];
    app.manager.on('message', ({ data }) => void got.push(data));
    // The page caches its token and fetches a new one only when told it expired.
    const page = await startClient(
      app,
      `{ auth: (() => { let cached = 'v1'; return async ({ expired }) => {
          log.asked.push(expired);
          if (expired) cached = await (await fetch('/token')).text();
          return cached; }; })() }`,
    );
    await until(page, 'window.c.state === "open"');
    const sessionId = app.manager.getActiveConnections()[0]!;

    app.token.valid = 'v2'; // the page's cached token expires
    app.manager.connections.get(sessionId)!.terminate('socket-error');
    await until(page, 'window.c.state !== "open"');
    await pageSend(page, 'q1'); // queued while away
    await pageSend(page, 'q2');
    void app.manager.sendToClient(sessionId, 'missed while away');
    await until(page, 'window.log.message.length === 1 && window.c.queuedMessages === 0');

    const events = await log(page);
    expect(events.asked).toEqual([false, false, true]);
    expect((events.close as { code: number }[]).map((e) => e.code)).toEqual([1006, 4505]); // the browser sees 4505
    expect(events.unauthorized).toEqual([]);
    expect(events.resumed).toEqual([{ sessionId }]);
    expect(events.fresh).toHaveLength(1); // the first connection only
    expect(events.message).toEqual(['missed while away']);
    await waitFor(() => got.length >= 2, 'queued messages on the server');
    expect(got).toEqual(['q1', 'q2']);
    expect(app.manager.getActiveConnections()).toEqual([sessionId]);
  }, 60_000);

  it('a wrong credential ends with unauthorized instead of a reconnect loop', async () => {
    let calls = 0;
    const app = await startApp({}, { authenticate: () => (calls++, false) });
    const page = await startClient(app, `{ auth: 'wrong' }`);
    await until(page, 'window.c.state === "closed"');
    await new Promise((r) => setTimeout(r, 500));
    expect((await log(page)).unauthorized).toEqual([{ code: 4504, reason: 'unauthorized' }]);
    expect(calls).toBe(1);
  }, 60_000);

  /**
   * Hides the page (its visibility overridden in the page, with the real `visibilitychange` event the tab strip
   * would cause) and stops its script as a frozen tab's. `Page.setWebLifecycleState('frozen')` does not freeze a
   * page in this headless Chromium (timers kept running: measured), so the page is stopped in the debugger, which
   * stops every script on it the same way: no frame handler, no timer, no pong.
   */
  async function hideAndFreeze(page: Page, cdp: CDPSession, hide: boolean): Promise<void> {
    if (hide) await setVisibility(page, 'hidden');
    await cdp.send('Debugger.enable');
    await cdp.send('Debugger.pause');
  }

  async function showAndThaw(page: Page, cdp: CDPSession): Promise<void> {
    await cdp.send('Debugger.resume');
    await setVisibility(page, 'visible');
  }

  async function setVisibility(page: Page, state: 'hidden' | 'visible'): Promise<void> {
    await page.evaluate((state) => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state });
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => state === 'hidden' });
      document.dispatchEvent(new Event('visibilitychange'));
    }, state);
  }

  it('a hidden, frozen page silent far beyond the pong timeout is not declared dead, and loses nothing', async () => {
    const app = await startApp({ pingIntervalMs: 200, pongTimeoutMs: 200, hiddenPongTimeoutMs: 20_000 });
    const disconnects: Array<{ clientId: string; code?: number }> = [];
    app.manager.on('disconnect', (e) => void disconnects.push(e as never));
    const got: unknown[] = [];
    app.manager.on('message', ({ data }) => void got.push(data));

    const hidden = await startClient(app, '{}');
    const visible = await startClient(app, '{}'); // the control: frozen without saying it is hidden
    await until(hidden, 'window.c.state === "open"');
    await until(visible, 'window.c.state === "open"');
    const sessionOf = (page: Page) =>
      page.evaluate(() => (window as unknown as { c: { sessionId: string } }).c.sessionId);
    const hiddenId = await sessionOf(hidden);
    const visibleId = await sessionOf(visible);
    const hiddenCdp = await hidden.context().newCDPSession(hidden);
    const visibleCdp = await visible.context().newCDPSession(visible);

    await hideAndFreeze(hidden, hiddenCdp, true);
    await waitFor(() => app.manager.connections.get(hiddenId)?.hidden === true, 'the vis frame');
    // From here both pages are silent. (A loaded machine may have dropped a page's 200 ms pong before: that
    // page resumed, and the connection seen hidden above is the one under test.)
    await until(visible, 'window.c.state === "open"');
    const before = disconnects.length;
    await hideAndFreeze(visible, visibleCdp, false);
    // Frozen: no script runs, so no pong. 2 s is ten pong timeouts.
    await new Promise((r) => setTimeout(r, 2000));
    void app.manager.sendToClient(hiddenId, 'sent while frozen');
    await new Promise((r) => setTimeout(r, 200));

    expect(disconnects.slice(before).map((d) => d.clientId)).toEqual([visibleId]); // the control was declared dead...
    expect(app.manager.isConnected(hiddenId)).toBe(true); // ...the hidden page was not

    await showAndThaw(hidden, hiddenCdp);
    await showAndThaw(visible, visibleCdp);
    // Thawed, the page may find its own liveness window long past and resume; either way nothing is lost.
    await until(hidden, 'window.c.state === "open" && window.log.message.length >= 1');
    await pageSend(hidden, 'after thaw');
    await waitFor(() => got.includes('after thaw'), 'the message after the thaw');
    await until(visible, 'window.log.resumed.length >= 1'); // the control resumes its session

    const events = await log(hidden);
    expect(events.message).toEqual(['sent while frozen']);
    expect(events.fresh).toHaveLength(1);
    expect(got).toEqual(['after thaw']);
    expect(await sessionOf(hidden)).toBe(hiddenId);
    // Both are connected again (on a loaded machine a 200 ms pong timeout may cut the control once more: it resumes).
    await waitFor(
      () => app.manager.isConnected(hiddenId) && app.manager.isConnected(visibleId),
      'both pages connected',
      15_000,
    );
    expect(app.manager.getActiveConnections().sort()).toEqual([hiddenId, visibleId].sort());
  }, 60_000);
});
