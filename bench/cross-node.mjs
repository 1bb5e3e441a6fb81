// Cross-node broadcast: three server processes share one Redis; clients are spread over them; node 0 broadcasts.
//
//   npx tsup && node bench/cross-node.mjs [--clients=300] [--rate=200] [--seconds=5] [--burst=1000] [--rounds=3]
//
// Systems, on the same private redis-server:
//   stabilizer  websocket-stabilizer with websocket-stabilizer/redis, stabilizer.v1 reliable clients (acking
//               sequenced messages; topic publications, when the backend has topics, are never acked)
//   socketio    Socket.IO 4 with @socket.io/redis-streams-adapter, websocket transport
// Workloads: a fixed rate for some seconds (end-to-end latency: broadcast call → client receipt, and delivery
// ratio), then a burst sent as fast as possible (time until every client has every message).
// Rounds: every round runs both systems (fresh node processes, Redis flushed), in an order that alternates; the
// summary gives medians over rounds and the median of the per-round ratios (stabilizer ÷ Socket.IO) with min–max.
// BENCH_CPU_PROF=<dir> writes a CPU profile of every node process there.
import { fork, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { createServer as netServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const arg = (name, def) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? def);
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------------------ node process

async function runNode(system, redisUrl) {
  const server = createServer();
  let broadcast;
  if (system === 'stabilizer') {
    const dist = pathToFileURL(join(here, '../dist/')).href;
    const { WebSocketConnectionManager } = await import(`${dist}index.js`);
    const { createRedisBackend } = await import(`${dist}redis.js`);
    const backend = await createRedisBackend({ url: redisUrl, keyPrefix: 'bench:' });
    const manager = new WebSocketConnectionManager({
      backend,
      tokens: { secret: 'cross-node-bench-secret-0123456789abcdef' },
    });
    manager.attach(server, { path: '/' });
    broadcast = (data) => manager.broadcast(data);
  } else {
    const { Server } = await import('socket.io');
    const { createAdapter } = await import('@socket.io/redis-streams-adapter');
    const { Redis } = await import('ioredis');
    const io = new Server(server, { transports: ['websocket'], adapter: createAdapter(new Redis(redisUrl)) });
    broadcast = (data) => io.emit('m', data);
  }
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  process.on('SIGINT', () => process.exit(0)); // lets --cpu-prof write its profile
  process.send({ type: 'ready', port: server.address().port });
  process.on('message', async (msg) => {
    if (msg.cmd === 'rate') {
      const interval = 1000 / msg.rate;
      const start = now();
      for (let k = 0; k < msg.count; k++) {
        const due = start + k * interval;
        const wait = due - now();
        if (wait > 1) await sleep(wait);
        broadcast({ k, t: now() });
      }
    } else if (msg.cmd === 'burst') {
      for (let k = 0; k < msg.count; k++) broadcast({ k: msg.offset + k, t: now() });
    }
    process.send({ type: 'done', id: msg.id });
  });
}

// ------------------------------------------------------------------------------------------------ clients

async function stabilizerClient(url, onMessage) {
  const { WebSocket } = await import('ws');
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, 'stabilizer.v1');
    let last = 0;
    let unacked = 0;
    const positions = new Map(); // topic → offset, for topic publications (PROTOCOL.md §2.6): never acked
    ws.on('open', () => ws.send('{"t":"hello","v":1}'));
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (m.t === 'welcome') {
        for (const t of m.topics ?? []) positions.set(t.c, t.o);
        ws.send(JSON.stringify({ t: 'ack', s: m.lastSeq })); // confirms the welcome (PROTOCOL.md §3)
        return resolve(ws);
      }
      if (m.t === 'ping') return ws.send(JSON.stringify({ t: 'pong', s: last }));
      if (m.t === 'd' && m.c !== undefined) {
        // A publication on a topic (the Redis backend sequences broadcasts per session for now; topics later).
        if (m.o === undefined) return onMessage(m.p);
        if (m.o !== (positions.get(m.c) ?? 0) + 1) onMessage(null);
        positions.set(m.c, m.o);
        return onMessage(m.p);
      }
      if (m.t !== 'd' || m.s === undefined) return;
      if (m.s !== last + 1) onMessage(null); // out of sequence: counted as an error
      last = m.s;
      onMessage(m.p);
      if (++unacked >= 32) {
        unacked = 0;
        ws.send(JSON.stringify({ t: 'ack', s: last }));
      }
    });
    ws.on('error', reject);
  });
}

async function socketioClient(url, onMessage) {
  const { io } = await import('socket.io-client');
  return new Promise((resolve, reject) => {
    const socket = io(url, { transports: ['websocket'], reconnection: false });
    socket.on('m', onMessage);
    socket.on('connect', () => resolve(socket));
    socket.on('connect_error', reject);
  });
}

// ------------------------------------------------------------------------------------------------ driver

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
}

async function freePort() {
  const srv = netServer();
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

async function startRedis() {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  const { Redis } = await import('ioredis');
  const admin = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => 50 });
  for (let i = 0; i < 100; i++) {
    try {
      await admin.connect();
      break;
    } catch {
      await sleep(50);
    }
  }
  return { url: `redis://127.0.0.1:${port}`, admin, stop: () => (admin.disconnect(), child.kill('SIGKILL')) };
}

function startNodes(system, redisUrl, n) {
  return Promise.all(
    Array.from({ length: n }, () => {
      const execArgv = process.env.BENCH_CPU_PROF
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
        : [];
      const proc = fork(fileURLToPath(import.meta.url), ['--node', system, redisUrl], {
        stdio: 'inherit',
        execArgv,
      });
      let next = 1;
      const waiting = new Map();
      proc.on('message', (m) => {
        if (m.type !== 'done') return;
        waiting.get(m.id)?.();
        waiting.delete(m.id);
      });
      return new Promise((resolve) =>
        proc.once('message', (m) =>
          resolve({
            url: system === 'stabilizer' ? `ws://127.0.0.1:${m.port}/` : `http://127.0.0.1:${m.port}`,
            call: (cmd, args) =>
              new Promise((r) => (waiting.set(next, r), proc.send({ ...args, cmd, id: next++ }))),
            stop: () => proc.kill(process.env.BENCH_CPU_PROF ? 'SIGINT' : 'SIGKILL'),
          }),
        ),
      );
    }),
  );
}

async function runSystem(system, redis, opts) {
  await redis.admin.flushall();
  const nodes = await startNodes(system, redis.url, 3);
  const received = Array.from({ length: opts.clients }, () => new Map());
  const latencies = [];
  let errors = 0;
  let phase = 'rate';
  const connect = system === 'stabilizer' ? stabilizerClient : socketioClient;
  const sockets = [];
  for (let i = 0; i < opts.clients; i++) {
    const seen = received[i];
    sockets.push(
      await connect(nodes[i % nodes.length].url, (p) => {
        const t = now();
        if (p === null) return void errors++;
        if (seen.has(p.k)) errors++;
        seen.set(p.k, t);
        if (phase === 'rate') latencies.push(t - p.t);
      }),
    );
  }
  await sleep(500);
  const count = opts.rate * opts.seconds;
  await nodes[0].call('rate', { rate: opts.rate, count });
  const waitAll = async (total, timeoutMs) => {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until && received.some((m) => m.size < total)) await sleep(20);
  };
  await waitAll(count, 10_000);
  const delivered = received.reduce((n, m) => n + m.size, 0);
  latencies.sort((a, b) => a - b);
  const result = {
    system,
    clients: opts.clients,
    rate: opts.rate,
    deliveredPct: (100 * delivered) / (count * opts.clients),
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
    max: latencies.at(-1),
  };
  phase = 'burst';
  const burstStart = now();
  await nodes[0].call('burst', { count: opts.burst, offset: count });
  await waitAll(count + opts.burst, 30_000);
  const lastArrival = Math.max(...received.map((m) => Math.max(...[...m.values()].slice(-1))));
  const burstDelivered = received.reduce((n, m) => n + m.size, 0) - delivered;
  result.burstMs = lastArrival - burstStart;
  result.burstDeliveriesPerSec = (burstDelivered / result.burstMs) * 1000;
  result.burstDeliveredPct = (100 * burstDelivered) / (opts.burst * opts.clients);
  result.errors = errors;
  for (const s of sockets) (s.terminate ?? s.disconnect).call(s);
  for (const n of nodes) n.stop();
  return result;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

async function main() {
  const opts = {
    clients: arg('clients', 300),
    rate: arg('rate', 200),
    seconds: arg('seconds', 5),
    burst: arg('burst', 1000),
  };
  const rounds = arg('rounds', 3);
  const systems = ['stabilizer', 'socketio'];
  const redis = await startRedis();
  const results = [];
  try {
    for (let r = 0; r < rounds; r++) {
      for (const system of r % 2 ? [...systems].reverse() : systems) {
        console.error(
          `[cross-node] round ${r + 1}/${rounds} ${system}: ${opts.clients} clients on 3 nodes, ${opts.rate} msg/s × ${opts.seconds} s, burst ${opts.burst}`,
        );
        results.push({ ...(await runSystem(system, redis, opts)), round: r + 1 });
      }
    }
  } finally {
    redis.stop();
  }
  const f = (v, d = 1) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(d) : '–');
  console.log(
    '| round | system | delivered (rate) | p50 ms | p90 ms | p99 ms | max ms | burst: all delivered in ms | burst deliveries/s | burst delivered | errors |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(
      `| ${r.round} | ${r.system} | ${f(r.deliveredPct, 2)} % | ${f(r.p50, 2)} | ${f(r.p90, 2)} | ${f(r.p99, 2)} | ${f(r.max)} | ${f(r.burstMs, 0)} | ${f(r.burstDeliveriesPerSec, 0)} | ${f(r.burstDeliveredPct, 2)} % | ${r.errors} |`,
    );
  }
  const of = (system) => results.filter((r) => r.system === system);
  const [ours, theirs] = systems.map(of);
  console.log('');
  console.log(
    `| metric (median over ${rounds} rounds) | stabilizer | socketio | stabilizer ÷ socketio: median [min–max] of rounds |`,
  );
  console.log('|---|---|---|---|');
  for (const [key, label] of [
    ['burstDeliveriesPerSec', 'burst deliveries/s'],
    ['p50', `p50 ms at ${opts.rate} msg/s`],
    ['p99', `p99 ms at ${opts.rate} msg/s`],
  ]) {
    const ratios = ours.map((o, i) => o[key] / theirs[i][key]);
    console.log(
      `| ${label} | ${f(median(ours.map((o) => o[key])), 2)} | ${f(median(theirs.map((o) => o[key])), 2)} | ${f(median(ratios), 2)} [${f(Math.min(...ratios), 2)}–${f(Math.max(...ratios), 2)}] |`,
    );
  }
  process.exit(0);
}

if (process.argv[2] === '--node') await runNode(process.argv[3], process.argv[4]);
else await main();
