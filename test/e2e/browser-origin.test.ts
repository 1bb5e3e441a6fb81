// Cross-Site WebSocket Hijacking in a real Chromium: the user logs in to the app (a session cookie), then visits a
// page on another origin (a second local port). That page opens a WebSocket to the app; the browser sends the
// user's cookie with it (same site: cookies ignore the port). Under the defaults the upgrade is refused (403) before
// authenticate runs, so the page reads nothing; with the page's origin in allowedOrigins it opens. The app's own
// page connects under the defaults.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketConnectionManager, type WebSocketConfig } from '../../src/server/index.js';
import { launchChromium } from '../helpers/chromium.js';

/** A page whose `tryWs(url)` opens a socket and says what happened: the first message, or the close code. */
const PAGE = `<!doctype html><title>p</title><script>
window.tryWs = (url) => new Promise((resolve) => {
  const ws = new WebSocket(url);
  ws.onmessage = (e) => { resolve('message:' + e.data); ws.close(); };
  ws.onclose = (e) => resolve('closed:' + e.code);
});
</script>`;

interface Site {
  server: Server;
  origin: string;
  ws: string;
  manager?: WebSocketConnectionManager;
  /** The Cookie header of every upgrade authenticate saw. */
  cookies: string[];
}

const sites: Site[] = [];

/** The app: /login sets the session cookie, / is its page, /ws pushes the user's private data once connected. */
async function startApp(config: WebSocketConfig = {}): Promise<Site> {
  const manager = new WebSocketConnectionManager(config);
  const server = createServer((req, res) => {
    if (req.url === '/login') {
      res.writeHead(200, {
        'set-cookie': 'sid=ann; Path=/; HttpOnly; SameSite=Lax',
        'content-type': 'text/html',
      });
      res.end('logged in');
    } else res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
  });
  const cookies: string[] = [];
  manager.attach(server, {
    path: '/ws',
    authenticate: (req) => {
      cookies.push(req.headers.cookie ?? '');
      return req.headers.cookie === 'sid=ann' ? { clientId: 'ann' } : false;
    },
  });
  manager.on(
    'connect',
    ({ clientId }) => void manager.sendToClient(clientId, { inbox: `private to ${clientId}` }),
  );
  return listen({ server, manager, cookies });
}

/** Another site: only the page. */
function startOtherSite(): Promise<Site> {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE));
  return listen({ server, cookies: [] });
}

async function listen(site: Omit<Site, 'origin' | 'ws'>): Promise<Site> {
  await new Promise<void>((resolve) => site.server.listen(0, '127.0.0.1', resolve));
  const { port } = site.server.address() as AddressInfo;
  const full = { ...site, origin: `http://127.0.0.1:${port}`, ws: `ws://127.0.0.1:${port}/ws` };
  sites.push(full);
  return full;
}

let browser: Browser;
let context: BrowserContext;
beforeAll(async () => {
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
});
afterEach(async () => {
  await context?.close();
  for (const s of sites.splice(0)) {
    await s.manager?.gracefulShutdown({ timeoutMs: 200 });
    s.server.closeAllConnections();
    await new Promise((r) => s.server.close(r));
  }
});

async function open(url: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForFunction('typeof window.tryWs === "function"');
  return page;
}

const tryWs = (page: Page, url: string) =>
  page.evaluate((u) => (window as unknown as { tryWs(u: string): Promise<string> }).tryWs(u), url);

/** Log the user in to `app` in this browser (its cookie jar). */
async function login(app: Site): Promise<void> {
  const page = await open(`${app.origin}/`);
  await page.goto(`${app.origin}/login`);
  await page.close();
}

describe('Chromium: a page on another origin and the user cookie', () => {
  it("under the defaults the other origin cannot open a socket (403); the app's own page can", async () => {
    context = await browser.newContext();
    const app = await startApp();
    const other = await startOtherSite();
    await login(app);

    const evil = await open(`${other.origin}/`);
    expect(await tryWs(evil, app.ws)).toBe('closed:1006');
    expect(app.cookies).toEqual([]); // refused before authenticate: nothing read, nothing pushed
    expect(app.manager!.counters.upgradeRejections['origin-not-allowed']).toBe(1);

    const own = await open(`${app.origin}/`);
    expect(await tryWs(own, app.ws)).toBe('message:{"inbox":"private to ann"}');
    expect(app.cookies).toEqual(['sid=ann']);
  }, 60_000);

  it('with the other origin in allowedOrigins it opens, with the cookie (what the default refusal protects)', async () => {
    context = await browser.newContext();
    const other = await startOtherSite();
    const app = await startApp({ allowedOrigins: [other.origin] });
    await login(app);
    const page = await open(`${other.origin}/`);
    expect(await tryWs(page, app.ws)).toBe('message:{"inbox":"private to ann"}');
    expect(app.cookies).toEqual(['sid=ann']);
  }, 60_000);
});
