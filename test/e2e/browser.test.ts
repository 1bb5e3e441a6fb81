import type { AddressInfo } from 'node:net';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { launchChromium } from '../helpers/chromium.js';
import { waitFor } from '../helpers/server.js';
// The demo imports the built package (dist/); `npm test` builds before it runs vitest.
// @ts-expect-error -- plain ESM example without type declarations
import { createChatServer } from '../../examples/chat/app.mjs';
import type { WebSocketConfig, WebSocketConnectionManager } from '../../src/server/index.js';
import type { Server } from 'node:http';

type Demo = { server: Server; manager: WebSocketConnectionManager; base: string };
const demos: Demo[] = [];

/** The chat demo on a free port; closed after each test. */
async function startDemo(config: WebSocketConfig = {}): Promise<Demo> {
  const { server, manager } = createChatServer({ config }) as Omit<Demo, 'base'>;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const demo = { server, manager, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  demos.push(demo);
  return demo;
}

/** Lines of a room's log on the page. */
const roomLog = (page: Page, room: string) => page.locator(`.log[data-room="${room}"] div`).allTextContents();
/** Wait until the room's log on the page has a line containing `text`. */
const seeInRoom = (page: Page, room: string, text: string) =>
  page.waitForFunction(
    ({ room, text }) => document.querySelector(`.log[data-room="${room}"]`)?.textContent?.includes(text),
    { room, text },
  );
/** Names in the "who is online" list of the room the page shows. */
const members = (page: Page) => page.locator('#members li').allTextContents();

async function openChat(demo: Demo, nick?: string): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(`${demo.base}/`);
  await page.waitForFunction(() => document.querySelector('#status')?.textContent?.startsWith('connected'));
  await page.waitForFunction(() => document.querySelector('#title')?.textContent === '#lobby');
  if (nick) await say(page, `/nick ${nick}`);
  if (nick) await page.waitForFunction((n) => document.querySelector('#me')?.textContent === n, nick);
  return page;
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.click('#send');
}

/** Click the room's join/leave button in the room list. */
const toggleRoom = (page: Page, room: string) => page.click(`#rooms li[data-room="${room}"] .toggle`);

let browser: Browser;

// Real Chromium (test/helpers/chromium.ts) loads the chat demo page, which uses the browser build of
// websocket-stabilizer/client with the native WebSocket.
describe('chat demo in real Chromium', () => {
  beforeAll(async () => {
    browser = await launchChromium();
  }, 60_000);

  afterEach(async () => {
    for (const context of browser.contexts()) await context.close();
    for (const { server, manager } of demos.splice(0)) {
      await manager.gracefulShutdown({ timeoutMs: 500 });
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('chats in the lobby, then resumes after the socket drops and shows what was missed exactly once', async () => {
    const demo = await startDemo();
    const { manager } = demo;
    const page = await openChat(demo);
    expect(manager.getConnectionCount()).toBe(1);
    const [sessionId] = manager.getActiveConnections();
    expect(manager.getClientTopics(sessionId!)).toEqual(['room:lobby']); // everyone starts in the lobby

    await say(page, 'hello from chromium');
    await seeInRoom(page, 'lobby', 'hello from chromium');

    // Drop the socket from the server side, and publish while the page is away.
    manager.connections.get(sessionId!)!.terminate('socket-error');
    await waitFor(() => !manager.isConnected(sessionId!), 'server to see the drop');
    manager.publish('room:lobby', { type: 'chat', from: 'server', text: 'sent while you were away' });
    await seeInRoom(page, 'lobby', 'nothing missed in #lobby');
    await seeInRoom(page, 'lobby', 'sent while you were away');
    expect(manager.getActiveConnections()).toEqual([sessionId]); // same session id: resumed, not fresh
    expect(manager.getClientTopics(sessionId!)).toEqual(['room:lobby']); // not joined twice

    const lines = await roomLog(page, 'lobby');
    expect(lines.filter((l) => l.endsWith('hello from chromium'))).toHaveLength(1);
    expect(lines.filter((l) => l === 'server: sent while you were away')).toHaveLength(1);
  }, 60_000);

  it('two pages join a room, chat in it only, see who is online, and leave', async () => {
    const demo = await startDemo();
    const { manager } = demo;
    const alice = await openChat(demo, 'alice');
    const bob = await openChat(demo, 'bob');
    await alice.waitForFunction(() => document.querySelector('#members')?.textContent?.includes('bob'));
    expect((await members(alice)).sort()).toEqual(['alice (you)', 'bob']);

    await toggleRoom(alice, 'dev');
    await alice.waitForFunction(() => document.querySelector('#members')?.textContent === 'alice (you)');
    await toggleRoom(bob, 'dev');
    await waitFor(() => manager.getTopicMembers('room:dev').length === 2, 'both in room:dev');
    for (const page of [alice, bob]) {
      await page.waitForFunction(() => document.querySelector('#title')?.textContent === '#dev');
      await page.waitForFunction(() => document.querySelectorAll('#members li').length === 2);
    }
    expect((await members(bob)).sort()).toEqual(['alice', 'bob (you)']);
    await seeInRoom(alice, 'dev', 'bob joined');

    await say(alice, 'only for dev');
    await seeInRoom(bob, 'dev', 'alice: only for dev');
    await seeInRoom(alice, 'dev', 'alice: only for dev');
    for (const page of [alice, bob]) {
      expect((await roomLog(page, 'lobby')).some((l) => l.includes('only for dev'))).toBe(false);
    }

    await toggleRoom(bob, 'dev');
    await waitFor(() => manager.getTopicMembers('room:dev').length === 1, 'bob out of room:dev');
    await seeInRoom(alice, 'dev', 'bob left');
    await alice.waitForFunction(() => document.querySelectorAll('#members li').length === 1);
    expect(await members(alice)).toEqual(['alice (you)']);
    expect(await bob.locator('#rooms li[data-room="dev"] .toggle').textContent()).toBe('Join');
    await bob.waitForFunction(() => document.querySelector('#title')?.textContent === '#lobby');

    // Bob no longer gets the room's messages; he still gets the lobby's (written after it, on the same socket).
    await say(alice, 'after bob left');
    await seeInRoom(alice, 'dev', 'alice: after bob left');
    await alice.click('#rooms li[data-room="lobby"] .view');
    await say(alice, 'back in the lobby');
    await seeInRoom(bob, 'lobby', 'alice: back in the lobby');
    expect(await bob.locator('body').textContent()).not.toContain('after bob left');
    expect((await members(bob)).sort()).toEqual(['alice', 'bob (you)']);
  }, 60_000);

  it('Chromium negotiates permessage-deflate and decodes the shared compressed frames (client bundle and plain)', async () => {
    const demo = await startDemo({ compression: { enabled: true, thresholdBytes: 256 } });
    const { manager } = demo;
    const deflate = vi.spyOn(manager.compressor!, 'deflate');
    const alice = await openChat(demo, 'alice');
    const bob = await openChat(demo, 'bob');
    for (const conn of manager.connections.values()) {
      const ext = (conn.socket as unknown as { _extensions: Record<string, { params: object }> })._extensions;
      expect(ext['permessage-deflate']?.params).toEqual({
        server_no_context_takeover: true,
        server_max_window_bits: 15,
      });
    }
    const before = deflate.mock.calls.length;
    const long = `compressed ${'all the way through the browser, '.repeat(40)}end`;
    await say(alice, long);
    for (const page of [alice, bob]) await seeInRoom(page, 'lobby', `alice: ${long}`);
    // One deflate of the room publication for both pages (and none per page).
    expect(deflate.mock.calls.length - before).toBe(1);

    // A plain-mode page: the browser's own WebSocket, no library, decodes a compressed broadcast.
    const page = await browser.newPage();
    await page.goto(`${demo.base}/`);
    const url = demo.base.replace('http', 'ws') + '/ws';
    const opened = page.evaluate(
      (u) =>
        new Promise<string>((resolve) => {
          const ws = new WebSocket(u);
          (window as unknown as { got: string[] }).got = [];
          ws.onmessage = (e) => (window as unknown as { got: string[] }).got.push(String(e.data));
          ws.onopen = () => resolve(ws.extensions);
        }),
      url,
    );
    const extensions = await opened;
    expect(extensions).toContain('permessage-deflate');
    expect(extensions).toContain('server_no_context_takeover');
    const payload = { big: 'x'.repeat(100) + ' realistic enough '.repeat(50) };
    manager.broadcast(payload);
    await page.waitForFunction(() =>
      (window as unknown as { got: string[] }).got.some((t) => t.includes('big')),
    );
    const got = await page.evaluate(() => (window as unknown as { got: string[] }).got);
    expect(got.map((t) => JSON.parse(t) as unknown).filter((m) => (m as { big?: string }).big)).toEqual([
      payload,
    ]);
  }, 60_000);

  it('joins a room by name, and says in that room alone when its history no longer reaches back', async () => {
    const demo = await startDemo({ topics: { history: { maxMessages: 3 } } });
    const { manager } = demo;
    const page = await openChat(demo);
    const [sessionId] = manager.getActiveConnections();
    await page.fill('#room-name', 'Night-Owls');
    await page.click('#join-room');
    await page.waitForFunction(() => document.querySelector('#title')?.textContent === '#night-owls');
    expect(manager.getClientTopics(sessionId!).sort()).toEqual(['room:lobby', 'room:night-owls']);

    manager.connections.get(sessionId!)!.terminate('socket-error');
    await waitFor(() => !manager.isConnected(sessionId!), 'server to see the drop');
    for (let i = 1; i <= 5; i++)
      manager.publish('room:night-owls', { type: 'chat', from: 'server', text: `owl ${i}` });
    manager.publish('room:lobby', { type: 'chat', from: 'server', text: 'lobby while away' });

    await seeInRoom(page, 'night-owls', 'you missed messages in #night-owls (gap)');
    await seeInRoom(page, 'lobby', 'lobby while away');
    await seeInRoom(page, 'lobby', 'nothing missed in #lobby');
    expect(manager.getActiveConnections()).toEqual([sessionId]); // the session resumed; one room has a gap
    expect((await roomLog(page, 'night-owls')).some((l) => l.startsWith('server: owl'))).toBe(false); // none replayed
    expect((await roomLog(page, 'lobby')).some((l) => l.includes('missed messages'))).toBe(false);

    // The room goes on from there.
    manager.publish('room:night-owls', { type: 'chat', from: 'server', text: 'owl 6' });
    await seeInRoom(page, 'night-owls', 'server: owl 6');
  }, 60_000);

  it('shows a message going queued → sent → confirmed across an offline period, and how many were replayed', async () => {
    const demo = await startDemo();
    const { manager, server } = demo;
    const page = await openChat(demo, 'ann');
    const [sessionId] = manager.getActiveConnections();
    const mine = (text: string) => page.locator('.log[data-room="lobby"] .mine', { hasText: text });

    await say(page, 'while online');
    await page.waitForFunction(() =>
      Array.from(document.querySelectorAll('.log[data-room="lobby"] .mine[data-state="confirmed"]')).some(
        (row) => row.textContent?.endsWith('ann: while online'),
      ),
    );
    expect(await mine('while online').locator('.state').textContent()).toBe('you · confirmed');

    // Every state the page gives its rows, in order (the old value of each change, then the last one).
    await page.evaluate(() => {
      const seen: string[] = [];
      Object.assign(window, { seenStates: seen });
      new MutationObserver((records) => {
        for (const r of records) if (r.oldValue !== null) seen.push(r.oldValue);
      }).observe(document.querySelector('.log[data-room="lobby"]')!, {
        subtree: true,
        attributeFilter: ['data-state'],
        attributeOldValue: true,
      });
    });

    // Offline: the server stops listening and the socket drops; reconnect attempts are refused meanwhile.
    const port = (server.address() as AddressInfo).port;
    server.close();
    manager.connections.get(sessionId!)!.terminate('socket-error');
    await page.waitForFunction(() =>
      document.querySelector('#status')?.textContent?.startsWith('reconnecting'),
    );
    manager.publish('room:lobby', { type: 'chat', from: 'bob', text: 'missed one' });
    manager.publish('room:lobby', { type: 'chat', from: 'bob', text: 'missed two' });
    await say(page, 'typed offline');
    expect(await mine('typed offline').getAttribute('data-state')).toBe('queued');
    expect(await mine('typed offline').locator('.state').textContent()).toBe('you · queued');
    await page.waitForTimeout(800);
    expect(await mine('typed offline').getAttribute('data-state')).toBe('queued'); // still away
    expect(
      await page.evaluate(
        () => (window as unknown as { chatClient: { queuedMessages: number } }).chatClient.queuedMessages,
      ),
    ).toBe(1);

    // Back online: the session resumes, the queue goes out and the server acks it.
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    await page.waitForFunction(
      () =>
        Array.from(document.querySelectorAll('.log[data-room="lobby"] .mine'))
          .find((r) => r.textContent?.endsWith('typed offline'))
          ?.getAttribute('data-state') === 'confirmed',
      undefined,
      { timeout: 30_000 },
    );
    const row = mine('typed offline');
    expect(await row.getAttribute('data-state')).toBe('confirmed');
    expect(await row.textContent()).toBe('you · confirmed ann: typed offline');
    const states = await page.evaluate(() => (window as unknown as { seenStates: string[] }).seenStates);
    expect([...states, 'confirmed']).toEqual(['queued', 'sent', 'confirmed']);

    // The two messages published while away were replayed, once each, and the room says so.
    await seeInRoom(page, 'lobby', 'reconnected: nothing missed in #lobby (2 messages replayed)');
    expect(await page.locator('#status').textContent()).toMatch(/resumed session .*, 2 replayed\)$/);
    expect(manager.getActiveConnections()).toEqual([sessionId]);
    const lines = await roomLog(page, 'lobby');
    expect(lines.filter((l) => l === 'bob: missed one')).toHaveLength(1);
    expect(lines.filter((l) => l === 'bob: missed two')).toHaveLength(1);
    expect(lines.filter((l) => l.endsWith('ann: typed offline'))).toHaveLength(1); // its echo took the row over
  }, 60_000);
});
