// docs/dashboard.png: the chat demo's dashboard under a steady chat load, in real headless Chromium.
//   npm run build && node scripts/dashboard-screenshot.mjs [--seconds=40] [--out=docs/dashboard.png]
// The load (bench/lib/chat-load.mjs): library clients in three rooms and plain sockets in the lobby, all talking;
// every few seconds a few protocol sockets are cut (they resume), a client arrives and now and then one leaves for
// good. Some plain sockets stay silent, so the heartbeat pings them (after 30 s by default). Loopback only.
import { chromium } from 'playwright-core';
import { openProtocolClient, startChatLoad } from '../bench/lib/chat-load.mjs';
import { createChatServer } from '../examples/chat/app.mjs';

const arg = (name, fallback) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const seconds = Number(arg('seconds', 48));
const out = arg('out', 'docs/dashboard.png');

const { server, manager } = createChatServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${server.address().port}`;
const url = `${base.replace('http', 'ws')}/ws`;
const load = await startChatLoad(url, { protocol: 45, plain: 15, idle: 6, sayEveryMs: 700 });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
await page.goto(`${base}/dashboard`);

// Trouble to show: cut a few protocol sockets now and then (they resume), let one client leave for good, and
// new ones arrive.
const newcomers = [];
const protocolIds = () => [...manager.connections.values()].filter((c) => c.protocol).map((c) => c.id);
for (let s = 0; s < seconds; s += 4) {
  await new Promise((r) => setTimeout(r, 4000));
  const ids = protocolIds();
  for (const id of ids.slice(0, 3)) manager.connections.get(id)?.socket.terminate();
  if (s % 12 === 0) load.clients.pop()?.client.close();
  newcomers.push(await openProtocolClient(url, 'dev'));
}
for (const client of newcomers) client.close();
await page.screenshot({ path: out, fullPage: true });
console.log(`wrote ${out}`);
await browser.close();
await load.stop();
await manager.gracefulShutdown({ timeoutMs: 1000 });
server.closeAllConnections();
server.close();
