// The server-side cost of the dashboard, open and closed, under a steady chat load.
//   npm run build && node bench/dashboard-cost.mjs [--rounds=6] [--window-ms=5000] [--protocol=90] [--plain=30]
// The chat demo (examples/chat, dashboard at /dashboard) runs in a child process; this process drives the load
// (bench/lib/chat-load.mjs) and, in an "open" window, reads the dashboard's update stream as a viewer would (the
// page's rendering costs the browser, not the server). Each round measures one open and one closed window, in
// alternating order; the figure is the child's CPU time (user + system) per second of window. Loopback only.
import { request } from 'node:http';
import { writeFileSync, mkdirSync } from 'node:fs';
import { serve, spawnChild } from './lib/ipc.mjs';
import { sleep } from './lib/common.mjs';

const arg = (name, fallback) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);

if (process.env.DASHBOARD_BENCH_ROLE === 'server') {
  const { createChatServer } = await import('../examples/chat/app.mjs');
  const { createDashboard } = await import('../dist/dashboard.js');
  const { server, manager, dashboard } = createChatServer();
  // A second dashboard that samples as fast as its timer allows: its cost per sample stands out of the noise.
  const fast = createDashboard(manager, {
    path: '/fast-dashboard',
    allowLoopback: true,
    sampleIntervalMs: 1,
  });
  const [chat] = server.listeners('request');
  server.removeAllListeners('request');
  server.on('request', (req, res) => fast(req, res) || chat(req, res));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  serve({
    port: () => server.address().port,
    cpu: () => {
      const u = process.cpuUsage();
      return u.user + u.system;
    },
    state: () => ({
      sampling: dashboard.sampling || fast.sampling,
      viewers: dashboard.viewers,
      sent: manager.counters.sentReliable + manager.counters.sentVolatile + manager.counters.sentPlain,
      connections: manager.getConnectionCount(),
    }),
  });
} else {
  const rounds = arg('rounds', 6);
  const windowMs = arg('window-ms', 5000);
  const child = spawnChild(new URL(import.meta.url).pathname, { env: { DASHBOARD_BENCH_ROLE: 'server' } });
  const { startChatLoad } = await import('./lib/chat-load.mjs');
  const port = await child.call('port');
  const load = await startChatLoad(`ws://127.0.0.1:${port}/ws`, {
    protocol: arg('protocol', 90),
    plain: arg('plain', 30),
    idle: 10,
    sayEveryMs: 1000,
  });
  await sleep(5000); // warm-up

  /** Read an update stream until `stop()`; resolves once the first sample arrived. */
  const openViewer = (path = '/dashboard') =>
    new Promise((resolve, reject) => {
      let bytes = 0;
      let samples = 0;
      const req = request(`http://127.0.0.1:${port}${path}/events`, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`stream answered ${res.statusCode}`));
        res.setEncoding('latin1');
        res.on('data', (chunk) => {
          bytes += chunk.length;
          samples += chunk.split('data: ').length - 1;
          if (samples > 0) resolve({ stop: () => req.destroy(), bytes: () => bytes, samples: () => samples });
        });
      });
      req.on('error', () => {});
      req.end();
    });
  const waitSampling = async (want) => {
    for (let i = 0; i < 200 && (await child.call('state')).sampling !== want; i++) await sleep(25);
    if ((await child.call('state')).sampling !== want) throw new Error(`sampling did not become ${want}`);
  };

  const measure = async () => {
    const s0 = await child.call('state');
    const c0 = await child.call('cpu');
    const t0 = process.hrtime.bigint();
    await sleep(windowMs);
    const c1 = await child.call('cpu');
    const t1 = process.hrtime.bigint();
    const s1 = await child.call('state');
    const seconds = Number(t1 - t0) / 1e9;
    return { cpuMsPerS: (c1 - c0) / 1000 / seconds, outPerS: (s1.sent - s0.sent) / seconds };
  };

  const results = { open: [], closed: [], diff: [], streamBytesPerS: [], outPerS: [], usPerSample: [] };
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? ['open', 'closed'] : ['closed', 'open'];
    const round = {};
    for (const mode of order) {
      let viewer;
      if (mode === 'open') {
        viewer = await openViewer();
        await waitSampling(true);
      } else await waitSampling(false);
      await sleep(1000); // settle: the previous window's garbage is not this one's
      const before = viewer?.bytes() ?? 0;
      const m = await measure();
      round[mode] = m.cpuMsPerS;
      results.outPerS.push(m.outPerS);
      if (viewer) {
        results.streamBytesPerS.push(((viewer.bytes() - before) * 1000) / windowMs);
        viewer.stop();
        await waitSampling(false);
      }
    }
    // The fast dashboard: ~1 sample per ms for one window, against this round's closed window.
    const fastViewer = await openViewer('/fast-dashboard');
    const s0 = fastViewer.samples();
    const fastRound = await measure();
    const samplesPerS = ((fastViewer.samples() - s0) * 1000) / windowMs;
    fastViewer.stop();
    await waitSampling(false);
    results.usPerSample.push(((fastRound.cpuMsPerS - round.closed) * 1000) / samplesPerS);
    results.open.push(round.open);
    results.closed.push(round.closed);
    results.diff.push(round.open - round.closed);
    console.log(
      `round ${r + 1}/${rounds}: open ${round.open.toFixed(1)} ms/s, closed ${round.closed.toFixed(1)} ms/s, ` +
        `difference ${(round.open - round.closed).toFixed(1)} ms/s; ` +
        `${results.usPerSample.at(-1).toFixed(0)} us per sample (${fastRound.cpuMsPerS.toFixed(1)} ms/s at ${samplesPerS.toFixed(0)} samples/s)`,
    );
  }
  await load.stop();
  await child.kill();

  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const m = Math.floor(s.length / 2);
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
  };
  const f = (x) => x.toFixed(1);
  const row = (name, xs) => `| ${name} | ${f(median(xs))} | ${f(Math.min(...xs))} – ${f(Math.max(...xs))} |`;
  const md = [
    `Chat load: ${arg('protocol', 90)} library clients + ${arg('plain', 30)} plain sockets talking once a second, ` +
      `10 idle sockets; ${f(median(results.outPerS))} messages out/s (median). ${rounds} rounds of ${windowMs / 1000} s ` +
      `windows, open and closed interleaved. Server CPU (user + system), ms per second:`,
    '',
    '| dashboard | median | min – max |',
    '|---|---|---|',
    row('open (one viewer)', results.open),
    row('closed', results.closed),
    row('open − closed, per round', results.diff),
    '',
    `Update stream: ${f(median(results.streamBytesPerS) / 1024)} KiB/s per viewer (median). ` +
      `One sample (read, serialize, write), measured with a second dashboard sampling every 1 ms against the ` +
      `round's closed window: ${f(median(results.usPerSample))} µs CPU median ` +
      `(${f(Math.min(...results.usPerSample))} – ${f(Math.max(...results.usPerSample))}).`,
  ].join('\n');
  console.log(`\n${md}`);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/dashboard-cost.md', import.meta.url), `${md}\n`);
  writeFileSync(
    new URL('./results/dashboard-cost.json', import.meta.url),
    JSON.stringify({ rounds, windowMs, ...results }, null, 2),
  );
}
