// Heartbeat work by counts, not timings (timings are noisy on a loaded machine): per connection and per
// heartbeat interval, the frames and bytes each way, and (with --strace) the server's syscalls.
//
//   node bench/heartbeat-counts.mjs --connections=2000 --windows=3 --strace
//   node bench/heartbeat-counts.mjs --systems=stabilizer-reliable,stabilizer,ws-naive
//
// Same server and load generator processes as the idle workload of run.mjs (`npm run build` first: it imports
// ../dist). Every system is connected side by side and counted over the same 5 s windows (one heartbeat interval),
// after two warm-up windows.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnChild } from './lib/ipc.mjs';
import { sleep } from './lib/common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const arg = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const n = Number(arg('connections') ?? 2000);
const windows = Number(arg('windows') ?? 3);
const useStrace = process.argv.includes('--strace');
const heartbeatMs = 5000;
const LOCAL_ADDRESSES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);
const SYSTEMS = {
  'stabilizer-reliable': { server: { system: 'stabilizer', pongTimeoutMs: 10_000 }, dialect: 'stabilizer' },
  stabilizer: { server: { system: 'stabilizer', pongTimeoutMs: 10_000 }, dialect: 'plain' },
  'ws-naive': { server: { system: 'ws-naive' }, dialect: 'plain' },
};
const names = (arg('systems') ?? 'stabilizer-reliable,ws-naive').split(',');

async function start(name) {
  const server = spawnChild(join(here, 'server.mjs'), { execArgv: ['--expose-gc'] });
  const loadgen = spawnChild(join(here, 'loadgen.mjs'), { execArgv: ['--max-old-space-size=4096'] });
  const { port, controlPort } = await server.call('start', { ...SYSTEMS[name].server, heartbeatMs });
  await loadgen.call('control', { port: controlPort });
  await loadgen.call('connect', {
    url: `ws://127.0.0.1:${port}/`,
    dialect: SYSTEMS[name].dialect,
    n,
    localAddresses: LOCAL_ADDRESSES,
    concurrency: 500,
  });
  await server.call('waitCount', { n, timeoutMs: 60_000 });
  return { name, server, loadgen, port, rows: [] };
}

/** TCP segments out and in (data or not: ACKs too) summed over the server's sockets on `port` (`ss -ti`). */
function segments(port) {
  const text = execFileSync('ss', ['-tinH', 'state', 'established', `( sport = :${port} )`], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const sum = (key) => {
    let total = 0;
    for (const m of text.matchAll(new RegExp(`\\b${key}:(\\d+)`, 'g'))) total += Number(m[1]);
    return total;
  };
  return {
    out: sum('segs_out'),
    in: sum('segs_in'),
    dataOut: sum('data_segs_out'),
    dataIn: sum('data_segs_in'),
  };
}

/** The server's context switches so far: voluntary ones are mostly event-loop sleeps (an epoll wait that blocked). */
function switches(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name) => Number(new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return { voluntary: field('voluntary_ctxt_switches'), involuntary: field('nonvoluntary_ctxt_switches') };
}

/** `strace -c -f` attached to `pid` until the returned function is called; resolves to { syscall: calls }. */
function straceCounts(pid) {
  const file = join(tmpdir(), `hb-strace-${pid}-${Date.now()}.txt`);
  const child = spawn('strace', ['-c', '-f', '-p', String(pid), '-o', file], { stdio: 'ignore' });
  const done = new Promise((resolve) => child.once('exit', resolve));
  return async () => {
    child.kill('SIGINT');
    await done;
    const counts = {};
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      // % time, seconds, usecs/call, calls, [errors], syscall
      if (f.length >= 5 && /^\d+$/.test(f[3]) && f[f.length - 1] !== 'total')
        counts[f[f.length - 1]] = Number(f[3]);
    }
    rmSync(file, { force: true });
    return counts;
  };
}

const pairs = [];
try {
  for (const name of names) pairs.push(await start(name));
  await sleep(2 * heartbeatMs); // warm-up: the first pings, JIT
  for (let w = 0; w < windows; w++) {
    const stops = useStrace ? pairs.map((p) => straceCounts(p.server.pid)) : [];
    if (useStrace) await sleep(500); // attached
    await Promise.all(pairs.map((p) => p.loadgen.call('reset')));
    const before = await Promise.all(pairs.map((p) => p.server.call('wireCounts')));
    const segs0 = pairs.map((p) => segments(p.port));
    const sw0 = pairs.map((p) => switches(p.server.pid));
    const cpus = await Promise.all(pairs.map((p) => p.server.call('idleCpu', { ms: heartbeatMs })));
    const after = await Promise.all(pairs.map((p) => p.server.call('wireCounts')));
    const segs1 = pairs.map((p) => segments(p.port));
    const sw1 = pairs.map((p) => switches(p.server.pid));
    const stats = await Promise.all(pairs.map((p) => p.loadgen.call('stats')));
    const sys = await Promise.all(stops.map((stop) => stop()));
    pairs.forEach((p, k) => {
      const s = stats[k];
      const per = (x) => +(x / n).toFixed(3);
      p.rows.push({
        window: w,
        'pings in/conn': per(s.pings),
        'data frames in/conn': per(s.frames),
        'tokens in/conn': per(s.tokens),
        'server bytes out/conn': per(after[k].written - before[k].written),
        'server bytes in/conn': per(after[k].read - before[k].read),
        'TCP segs out/conn': per(segs1[k].out - segs0[k].out),
        'of them data': per(segs1[k].dataOut - segs0[k].dataOut),
        'TCP segs in/conn': per(segs1[k].in - segs0[k].in),
        'of them data ': per(segs1[k].dataIn - segs0[k].dataIn),
        'sleeps (voluntary switches)': sw1[k].voluntary - sw0[k].voluntary,
        'preempted (involuntary)': sw1[k].involuntary - sw0[k].involuntary,
        'GC minor': after[k].gc.minor - before[k].gc.minor,
        'GC major': after[k].gc.major - before[k].gc.major,
        'GC ms': +(after[k].gc.ms - before[k].gc.ms).toFixed(1),
        'user µs/conn': per(cpus[k].userUs),
        'system µs/conn': per(cpus[k].systemUs),
        ...(useStrace
          ? Object.fromEntries(
              Object.entries(sys[k])
                .filter(([, calls]) => calls >= 20)
                .map(([call, calls]) => [call, calls]),
            )
          : {}),
      });
    });
  }
  const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const key of ['user µs/conn', 'system µs/conn']) {
    const ratios = pairs[0].rows.map((r, w) => r[key] / pairs.at(-1).rows[w][key]);
    console.log(
      `${key}: ${pairs[0].name} ÷ ${pairs.at(-1).name} per window: ${ratios.map((x) => x.toFixed(2)).join(' ')}; median ${median(ratios).toFixed(2)}`,
    );
  }
  for (const p of pairs) {
    console.log(`\n${p.name} (${n} connections, per connection per 5 s window)`);
    console.table(p.rows);
  }
} finally {
  for (const p of pairs) {
    await p.server.kill();
    await p.loadgen.kill();
  }
}
