import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireBinary } from '../helpers/binaries.js';
import { waitFor } from '../helpers/server.js';
// The demo imports the built package (dist/); `npm test` builds before it runs vitest.
// @ts-expect-error -- plain ESM example without type declarations
import { createChatServer } from '../../examples/chat/app.mjs';
import type { WebSocketConnectionManager } from '../../src/server/index.js';
import type { Server } from 'node:http';

// CHROMIUM_PATH, else Debian's /usr/bin/chromium. Without it this file fails at once with what to install.
const CHROMIUM = requireBinary('chromium');

// Real Chromium (Debian's, which the pretest step of `npm test` installs) loads the chat demo page, which uses the
// browser build of websocket-stabilizer/client with the native WebSocket. The flags suit Debian's chromium run as root
// in a container: no sandbox (root), no GPU, and /tmp instead of a small /dev/shm.
describe('browser client in real Chromium', () => {
  let browser: Browser;
  let manager: WebSocketConnectionManager;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    ({ server, manager } = createChatServer() as { server: Server; manager: WebSocketConnectionManager });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await manager?.gracefulShutdown({ timeoutMs: 500 });
    server?.closeAllConnections();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
  });

  it('chats, then resumes after the socket drops and shows what was missed exactly once', async () => {
    const page = await browser.newPage();
    const log = () => page.locator('#log div').allTextContents();
    await page.goto(`${base}/`);
    await page.waitForFunction(() => document.querySelector('#status')?.textContent?.startsWith('connected'));
    expect(manager.getConnectionCount()).toBe(1);
    const [sessionId] = manager.getActiveConnections();

    await page.fill('#text', 'hello from chromium');
    await page.click('button');
    await page.waitForFunction(() =>
      document.querySelector('#log')?.textContent?.includes('hello from chromium'),
    );

    // Drop the socket from the server side, and send while the page is away.
    manager.connections.get(sessionId!)!.terminate('socket-error');
    await waitFor(() => !manager.isConnected(sessionId!), 'server to see the drop');
    manager.broadcast({ type: 'chat', from: 'server', text: 'sent while you were away' });
    await page.waitForFunction(() =>
      document.querySelector('#log')?.textContent?.includes('nothing was missed'),
    );
    await page.waitForFunction(() =>
      document.querySelector('#log')?.textContent?.includes('sent while you were away'),
    );
    expect(manager.getActiveConnections()).toEqual([sessionId]); // same session id: resumed, not fresh

    const lines = await log();
    expect(lines.filter((l) => l.endsWith('hello from chromium'))).toHaveLength(1);
    expect(lines.filter((l) => l === 'server: sent while you were away')).toHaveLength(1);
    await page.close();
  }, 60_000);
});
