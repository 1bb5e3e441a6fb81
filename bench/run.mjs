// Side-by-side benchmark suite: websocket-stabilizer vs raw ws (naive and at the limit) vs Socket.IO 4.
//
//   npm run bench                 full run (several minutes)
//   npm run bench -- --quick      smaller run, under 3 minutes
//   npm run bench -- --only=broadcast,rooms,idle,resume,slow,encoding
//
// Every system runs in its own server process; the load generator is another process. Results go to
// bench/results/latest.json (every value measured in this run), latest.md (tables with ratios) and
// broadcast.svg (chart of the broadcast workload).
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { spawnChild } from './lib/ipc.mjs';
import { sleep } from './lib/common.mjs';
import { renderMarkdown, renderSvg } from './lib/report.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const run = promisify(execFile);
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args
  .find((a) => a.startsWith('--only='))
  ?.slice(7)
  .split(',');
const enabled = (name) => !only || only.includes(name);
/** `--systems=a,b`: only these systems in the broadcast, rooms and idle workloads (for experiments; ratios need both). */
const systemsFilter = args
  .find((a) => a.startsWith('--systems='))
  ?.slice(10)
  .split(',');
/** `--idle-connections=N`, `--idle-windows=N`: the idle/heartbeat workload's size and measured windows. */
const intArg = (name) => {
  const v = args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  return v === undefined ? undefined : Number.parseInt(v, 10);
};
const pick = (names) => (systemsFilter ? names.filter((n) => systemsFilter.includes(n)) : names);

/** Client sockets are spread over several source addresses, so that one run can open more than ~28k. */
const LOCAL_ADDRESSES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);

const results = [];
const notes = [];
/** One measured value; `rounds`: the value of each interleaved round (then `value` is their median). */
function record(workload, system, metric, value, unit, rounds) {
  if (value === null || value === undefined || Number.isNaN(value)) return;
  const row = { workload, system, metric, value: round(value), unit };
  if (rounds) row.rounds = rounds.map(round);
  results.push(row);
}
const round = (v) => (Math.abs(v) >= 100 ? Math.round(v * 10) / 10 : Math.round(v * 1000) / 1000);
const log = (...a) => console.log(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(3)}s]`, ...a);
const started = Date.now();

/** Systems: the server side under test and the wire dialect its clients speak. */
const SYSTEMS = {
  stabilizer: { server: { system: 'stabilizer' }, dialect: 'plain', label: 'stabilizer (plain)' },
  'stabilizer-reliable': {
    server: { system: 'stabilizer' },
    dialect: 'stabilizer',
    label: 'stabilizer (stabilizer.v1 reliable)',
  },
  'ws-naive': { server: { system: 'ws-naive' }, dialect: 'plain', label: 'raw ws (naive send loop)' },
  'ws-limit': { server: { system: 'ws-limit' }, dialect: 'plain', label: 'raw ws (pre-framed, corked)' },
  socketio: { server: { system: 'socketio' }, dialect: 'socketio', label: 'Socket.IO 4 (websocket)' },
  // Compression: permessage-deflate negotiated by every client (ws clients, `perMessageDeflate: true`).
  'stabilizer-deflate': {
    server: { system: 'stabilizer', compression: true },
    dialect: 'stabilizer',
    deflate: true,
    label: 'stabilizer (v1 reliable, compression: deflate once per broadcast)',
  },
  'ws-deflate': {
    server: { system: 'ws-naive', perMessageDeflate: { zlibDeflateOptions: { level: 1 } } },
    dialect: 'plain',
    deflate: true,
    label: 'raw ws (ws.send per socket, permessage-deflate per socket)',
  },
  'socketio-deflate': {
    server: { system: 'socketio', perMessageDeflate: { zlibDeflateOptions: { level: 1 } } },
    dialect: 'socketio',
    deflate: true,
    label: 'Socket.IO 4 (websocket, perMessageDeflate on)',
  },
};

/**
 * Start a server process for `name` (with extra server options) and a load generator process.
 * BENCH_CPU_PROF=<dir> writes a CPU profile of every server process there (`node --cpu-prof`).
 */
async function startPair(name, serverOpts = {}) {
  const prof = process.env.BENCH_CPU_PROF;
  const server = spawnChild(join(here, 'server.mjs'), {
    execArgv: ['--expose-gc', ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [])],
  });
  // Clients that negotiate permessage-deflate inflate every message in libuv's thread pool: a larger pool keeps
  // the load generator from setting the pace of the compression workload.
  const loadgen = spawnChild(join(here, 'loadgen.mjs'), {
    execArgv: ['--max-old-space-size=4096'],
    env: SYSTEMS[name].deflate ? { UV_THREADPOOL_SIZE: '16' } : {},
  });
  const { port, controlPort } = await server.call('start', { ...SYSTEMS[name].server, ...serverOpts });
  await loadgen.call('control', { port: controlPort });
  const url = `ws://127.0.0.1:${port}/`;
  return {
    server,
    loadgen,
    url,
    async connect(n, extra = {}) {
      const r = await loadgen.call('connect', {
        url,
        dialect: SYSTEMS[name].dialect,
        deflate: SYSTEMS[name].deflate === true,
        n,
        localAddresses: LOCAL_ADDRESSES,
        ...extra,
      });
      await server.call('waitCount', { n, timeoutMs: 60_000 });
      return r;
    },
    async stop() {
      // The server goes first, so TIME_WAIT lands on its (per-run) port, not on the client source ports.
      if (prof) {
        await server.call('exit').catch(() => {}); // a clean exit writes the --cpu-prof profile
        await sleep(3000);
      }
      await server.kill();
      await loadgen.kill();
    },
  };
}

// ---------------------------------------------------------------- 1. broadcast fan-out, at saturation

/**
 * Saturation runs (see `saturateRun` in server.mjs): closed loop, 2 turns in flight. Every system does the same
 * number of measured deliveries; a run measures about `measured` deliveries after `warmup` ones.
 */
const SATURATION = {
  inFlightTurns: 2,
  measured: quick ? 60_000 : 100_000,
  warmup: 20_000,
  minTurns: 4,
  // Rounds: every system once per round, interleaved, in an order that rotates from round to round. Many short
  // rounds rather than a few long ones: the machine's other load changes from second to second, and the median
  // and interquartile range of many per-round ratios shrug off the rounds it hit hardest.
  rounds: Number(args.find((a) => a.startsWith('--rounds='))?.slice(9) ?? (quick ? 5 : 7)),
};
let runCounter = 0;

/**
 * One workload at saturation: `rounds` interleaved rounds over `names` (whose pairs are up and connected).
 * Records the median of each metric with its per-round values, so that the report can give every ratio as the
 * median of per-round ratios with their spread.
 */
async function saturationWorkload(
  workload,
  pairs,
  names,
  {
    clients,
    bpt,
    bytes,
    rooms = 0,
    measured = SATURATION.measured,
    realistic = false,
    warmup = SATURATION.warmup,
  },
) {
  const perTurn = clients * bpt;
  const measureTurns = Math.max(SATURATION.minTurns, Math.round(measured / perTurn));
  const warmupTurns = Math.max(2, Math.round(warmup / perTurn));
  const runs = Object.fromEntries(names.map((n) => [n, []]));
  for (let round = 0; round < SATURATION.rounds; round++) {
    const order = names.map((_, i) => names[(i + round) % names.length]);
    for (const name of order) {
      const pair = pairs[name];
      const runId = ++runCounter;
      await pair.loadgen.call('reset', { runId, reportEvery: perTurn });
      const r = await pair.server.call('saturateRun', {
        runId,
        bpt,
        bytes,
        rooms,
        realistic,
        warmupTurns,
        measureTurns,
        inFlightTurns: SATURATION.inFlightTurns,
      });
      const s = await pair.loadgen.call('waitMeasured', { expected: r.deliveries, timeoutMs: 30_000 });
      runs[name].push({
        cpuPerDelivery: r.cpuUs / r.deliveries,
        wirePerDelivery: r.wireBytes / r.deliveries,
        busyPerDelivery: r.busyUs / r.deliveries,
        userPerDelivery: r.userUs / r.deliveries,
        systemPerDelivery: r.systemUs / r.deliveries,
        deliveriesPerS: r.deliveries / (r.wallUs / 1e6),
        cpuPct: (r.cpuUs / r.wallUs) * 100,
        p50: s.latency.p50 / 1000,
        p99: s.latency.p99 / 1000,
        delivered: (s.measured / r.deliveries) * 100,
        acksPerDelivery: s.acks / r.sentTotal,
        errors: s.seqErrors + s.topicDuplicates + s.topicGaps + s.topicUnknown,
        lost: s.topicLost,
        duplicates: s.topicDuplicates,
        loadgenPct: s.cpuPct,
      });
      log(
        `  ${workload} [round ${round + 1}] ${name}: ${(r.cpuUs / r.deliveries).toFixed(2)} µs/delivery ` +
          `(user ${(r.userUs / r.deliveries).toFixed(2)}, system ${(r.systemUs / r.deliveries).toFixed(2)}), ` +
          `${Math.round(r.deliveries / (r.wallUs / 1e6)).toLocaleString('en-US')} deliveries/s, ` +
          `server ${((r.cpuUs / r.wallUs) * 100).toFixed(0)}% CPU (waited ${r.waits}× for the clients), ` +
          `loadgen ${s.cpuPct.toFixed(0)}% CPU, ${s.measured}/${r.deliveries} delivered` +
          `, threads µs/delivery {${Object.entries(r.threads ?? {})
            .filter(([, us]) => us > 0)
            .map(([k, us]) => `${k}: ${(us / r.deliveries).toFixed(2)}`)
            .join(
              ', ',
            )}}, ctx switches/delivery ${((r.contextSwitches?.voluntary ?? 0) / r.deliveries).toFixed(3)}` +
          (SYSTEMS[name].dialect === 'stabilizer'
            ? `, acks ${s.acks}, topic dup ${s.topicDuplicates} gaps ${s.topicGaps} (lost ${s.topicLost})`
            : ''),
      );
    }
  }
  for (const name of names) {
    const list = runs[name];
    const put = (key, metric, unit) => {
      const values = list.map((x) => x[key]);
      record(workload, name, metric, median(values), unit, values);
    };
    put('cpuPerDelivery', 'server CPU per delivery', 'µs');
    put('userPerDelivery', 'server CPU per delivery: user (JS, V8)', 'µs');
    put('systemPerDelivery', 'server CPU per delivery: system (kernel: writev on loopback)', 'µs');
    put('deliveriesPerS', 'deliveries/s at saturation', 'deliveries/s');
    if (realistic) {
      put('wirePerDelivery', 'bytes on the wire per delivery (server to client)', 'B');
      put('busyPerDelivery', 'server CPU per delivery in the publishing turns (sync work, no waits)', 'µs');
    }
    put('cpuPct', 'server CPU busy at saturation', '% of a core');
    put('loadgenPct', 'load generator CPU', '% of a core');
    put('p50', 'latency p50 (closed loop)', 'ms');
    put('p99', 'latency p99 (closed loop)', 'ms');
    record(workload, name, 'delivered', Math.min(...list.map((x) => x.delivered)), '%');
    if (SYSTEMS[name].dialect === 'stabilizer') {
      put('acksPerDelivery', 'acks from clients per delivery', 'acks');
      record(workload, name, 'topic messages lost', sum(list.map((x) => x.lost)), 'messages');
      record(workload, name, 'topic messages duplicated', sum(list.map((x) => x.duplicates)), 'messages');
      record(workload, name, 'order errors', sum(list.map((x) => x.errors)), 'messages');
    }
  }
}

const sum = (values) => values.reduce((a, v) => a + v, 0);

async function broadcastWorkload() {
  notes.push(
    'Broadcast and rooms: at saturation, closed loop. Turns (K broadcasts each) run back to back, one per ' +
      'event-loop iteration, as fast as the server writes and the clients read; flow control keeps ' +
      `${SATURATION.inFlightTurns} turns in flight (turn k starts once the clients have received turn ` +
      `k − ${SATURATION.inFlightTurns}; the load generator reports its count on a TCP connection of its own), so ` +
      'socket buffers never fill and no system pays for partial writes or drain events. Every system does the ' +
      `same measured deliveries (about ${SATURATION.measured.toLocaleString('en-US')} per run, after ` +
      `${SATURATION.warmup.toLocaleString('en-US')} warm-up ones); server CPU per delivery is the server ` +
      "process's CPU over exactly the measured turns (including their flushes) ÷ their deliveries.",
    `Broadcast and rooms: ${SATURATION.rounds} rounds; in each round every system runs once (all servers stay ` +
      'up; the order rotates from round to round). Values are medians over the rounds; a ratio is the median of ' +
      'the per-round ratios, with their spread: the interquartile range (IQR) from 5 rounds on, else min–max ' +
      '(min–max is shown too). A target counts as met or not met only when the whole spread is on one side of ' +
      'the limit; otherwise: no verdict.',
    'Broadcast, stabilizer.v1 reliable: `broadcast()` publishes to the built-in topic `$all`: one offset, one ' +
      'frame for every client, stored once in the topic history. Clients check the offsets (contiguous, no ' +
      'duplicates) and never ack topic publications; `acks from clients per delivery` counts every ack they ' +
      'sent during the runs.',
    'Latency (closed loop) is from the start of the turn to arrival; with turns in flight it mostly shows how ' +
      'fast the load generator reads, not the server.',
  );
  const clientCounts = quick ? [1000] : [1000, 5000];
  const shapesFor = (clients) =>
    quick || clients > 1000
      ? [{ bpt: 10, bytes: 150 }]
      : [
          { bpt: 10, bytes: 150 },
          // Secondary shapes, half the measured deliveries (the full run has a time budget).
          { bpt: 1, bytes: 150, measured: SATURATION.measured / 2 },
          { bpt: 10, bytes: 4096, measured: SATURATION.measured / 2 },
        ];
  for (const clients of clientCounts) {
    const names = pick(['stabilizer-reliable', 'stabilizer', 'ws-limit', 'socketio']);
    if (!quick && clients === 1000) names.push(...pick(['ws-naive']));
    const pairs = {};
    try {
      for (const name of names) {
        pairs[name] = await startPair(name);
        const c = await pairs[name].connect(clients);
        log(`broadcast: ${name} ${clients} clients connected in ${c.ms.toFixed(0)} ms`);
      }
      for (const [i, { bpt, bytes, measured }] of shapesFor(clients).entries()) {
        const workload = `broadcast ${clients} clients, ${bpt}/turn, ${bytes === 150 ? '150 B' : '4 KB'}`;
        // The naive ws loop is a reference for the main workload only (it is slow, and the run has a budget).
        const shapeNames = i === 0 ? names : names.filter((n) => n !== 'ws-naive');
        await saturationWorkload(workload, pairs, shapeNames, { clients, bpt, bytes, measured });
      }
    } finally {
      for (const pair of Object.values(pairs)) await pair.stop();
    }
  }
}

/** 100 rooms of 50 clients; each turn publishes K messages to every room. */
async function roomsWorkload() {
  const rooms = 100;
  const perRoom = 50;
  const clients = rooms * perRoom;
  const bpt = 10;
  notes.push(
    `Rooms: ${clients.toLocaleString('en-US')} clients dealt round-robin into ${rooms} rooms at connect; a turn ` +
      `publishes ${bpt} messages of ~150 B to every room. stabilizer: \`manager.join(id, room)\` on connect and ` +
      '`manager.publish(room, msg)`; Socket.IO: `socket.join(room)` and `io.to(room).emit()`; raw ws: the ' +
      'application keeps a client list per room, and the limit path (frame once, cork) writes to it.',
  );
  const names = pick(['stabilizer-reliable', 'stabilizer', 'ws-limit', 'socketio']);
  const workload = `rooms: ${rooms} rooms of ${perRoom} clients, ${bpt}/turn to each room, 150 B`;
  const pairs = {};
  try {
    for (const name of names) {
      pairs[name] = await startPair(name, { rooms });
      const c = await pairs[name].connect(clients, { concurrency: 500 });
      log(`rooms: ${name} ${clients} clients connected in ${c.ms.toFixed(0)} ms`);
    }
    await saturationWorkload(workload, pairs, names, { clients, bpt, bytes: 150, rooms });
  } finally {
    for (const pair of Object.values(pairs)) await pair.stop();
  }
}

/**
 * Compression: broadcast of realistic JSON (records with ids, prices, symbols; 64 different messages in turn) to
 * 1,000 clients that all negotiated permessage-deflate. Ours deflates once per broadcast; ws and Socket.IO once
 * per socket (their only way), at the same zlib level (1) and threshold (1 KB).
 */
async function compressionWorkload() {
  const clients = 1000;
  const sizes = (
    args
      .find((a) => a.startsWith('--sizes='))
      ?.slice(8)
      .split(',') ?? [150, 2048, 16_384]
  ).map(Number);
  // Per-socket deflate of 16 KB costs ws and Socket.IO ~0.25 ms per delivery: fewer deliveries per run (at least
  // 4 measured turns of 10,000).
  const measured = 40_000;
  notes.push(
    `Compression: broadcast to ${clients.toLocaleString('en-US')} clients, 10 broadcasts per turn, realistic JSON ` +
      '(64 different messages of records with ids, prices, symbols and user ids, cycled, so a compressor that ' +
      'keeps its context between messages cannot just repeat the last one). Every client offers ' +
      'permessage-deflate (ws client, `perMessageDeflate: true`). stabilizer (v1 reliable) with ' +
      '`compression: { enabled: true }` (level 1, threshold 1 KB) deflates each broadcast once; raw ws ' +
      '(`ws.send` per socket) and Socket.IO deflate per socket with their default context takeover, set to the ' +
      'same level 1 (their threshold is 1 KB too). "Bytes on the wire per delivery" is the TCP bytes the server ' +
      `process wrote in the measured window ÷ deliveries (frame headers, envelopes, pings included). About ` +
      `${measured.toLocaleString('en-US')} measured deliveries per run.`,
    'Compression: the clients inflate every message (ws, in the thread pool), so they set the pace and a ' +
      'compressed run lasts several times longer than an uncompressed one. Whatever the server does per second ' +
      'of wall time then weighs per delivery: the harness wakes it once per turn (the flow report) and runs no ' +
      'timer of its own in the window; the log line of each run shows the CPU per thread and the voluntary ' +
      'context switches per delivery.',
  );
  const names = pick(['stabilizer-deflate', 'stabilizer-reliable', 'ws-deflate', 'socketio-deflate']);
  const pairs = {};
  try {
    for (const name of names) {
      pairs[name] = await startPair(name);
      const c = await pairs[name].connect(clients);
      log(`compression: ${name} ${clients} clients connected in ${c.ms.toFixed(0)} ms`);
    }
    for (const bytes of sizes) {
      const size = bytes < 1024 ? `${bytes} B` : `${bytes / 1024} KB`;
      const workload = `compression: broadcast ${clients} clients, 10/turn, ${size} realistic JSON`;
      await saturationWorkload(workload, pairs, names, {
        clients,
        bpt: 10,
        bytes,
        realistic: true,
        measured,
        warmup: 5000,
      });
    }
  } finally {
    for (const pair of Object.values(pairs)) await pair.stop();
  }
}

// ---------------------------------------------------------------- 2. idle connections and heartbeat

async function idleWorkload() {
  notes.push(
    'Idle: memory is the lowest of 3 readings after forced GCs (--expose-gc), before and after connecting. ' +
      'Heartbeat CPU is the ' +
      'server process CPU per second of wall time over 5-second windows (one heartbeat interval: every connection ' +
      'is pinged once per window), median over the windows after a warm-up of two windows. The systems stay ' +
      'connected side by side and are measured over the same windows, so background noise hits them alike. ' +
      'stabilizer.v1 clients answer `{"t":"ping"}` with `{"t":"pong","s":N}`; the others answer protocol pings ' +
      '(ws auto-pong) or Engine.IO `2`/`3`. Each system pings on its own timer, so a window holds between none ' +
      'and two ping bursts: the heartbeat target compares CPU per ping received (window CPU ÷ pings), per window. ' +
      'The mean of the windows keeps the ones the median leaves out (every resume token is refreshed once a ' +
      'minute, all in one sweep after a mass connect); token refreshes, minor and major GCs are counted over the ' +
      'measured windows.',
  );
  const n = intArg('idle-connections') ?? (quick ? 4000 : 10_000);
  const heartbeatMs = 5000;
  const windowMs = heartbeatMs;
  const warmupWindows = 2;
  const windowCount = warmupWindows + (intArg('idle-windows') ?? (quick ? 2 : 4));
  const workload = `idle ${n} connections, heartbeat every 5 s`;
  const systems = [
    ['stabilizer-reliable', { heartbeatMs, pongTimeoutMs: 10_000 }],
    ...(quick ? [] : [['stabilizer', { heartbeatMs, pongTimeoutMs: 10_000 }]]),
    ['ws-naive', { heartbeatMs }],
    ['socketio', { heartbeatMs, pongTimeoutMs: 20_000 }],
  ].filter(([name]) => !systemsFilter || systemsFilter.includes(name));
  const pairs = [];
  try {
    // Memory: one system at a time, each in its own process.
    for (const [name, opts] of systems) {
      const system = name === 'ws-naive' ? 'ws-heartbeat' : name;
      const pair = await startPair(name, opts);
      pairs.push({ system, pair, windows: [] });
      const base = await pair.server.call('memory', { gc: true, samples: 3 });
      const c = await pair.connect(n, { concurrency: 500 });
      await sleep(quick ? 500 : 1000);
      const after = await pair.server.call('memory', { gc: true, samples: 3 });
      const heapKb = (after.heapUsed - base.heapUsed) / n / 1024;
      record(workload, system, 'heap per connection', heapKb, 'KB');
      record(workload, system, 'RSS per connection', (after.rss - base.rss) / n / 1024, 'KB');
      record(
        workload,
        system,
        'external+arrayBuffers per connection',
        (after.external - base.external) / n / 1024,
        'KB',
      );
      log(
        `idle: ${system}: ${n} connected in ${c.ms.toFixed(0)} ms, heap ${heapKb.toFixed(2)} KB/connection`,
      );
    }
    // Heartbeat CPU: every system over the same windows.
    for (let i = 0; i < windowCount; i++) {
      await Promise.all(pairs.map(({ pair }) => pair.loadgen.call('reset')));
      const cpus = await Promise.all(pairs.map(({ pair }) => pair.server.call('idleCpu', { ms: windowMs })));
      const stats = await Promise.all(pairs.map(({ pair }) => pair.loadgen.call('stats')));
      pairs.forEach((p, k) => {
        const wallS = cpus[k].wallUs / 1e6;
        p.windows.push({
          cpuPerS: cpus[k].cpuUs / wallS / 1000,
          pingsPerS: stats[k].pings / wallS,
          gcMinor: cpus[k].gcMinor,
          gcMajor: cpus[k].gcMajor,
          s: stats[k],
        });
      });
    }
    for (const { system, windows } of pairs) {
      const measured = windows.slice(warmupWindows);
      const cpuPerS = median(measured.map((w) => w.cpuPerS));
      const pingsPerS = median(measured.map((w) => w.pingsPerS));
      // A 5 s window holds between none and two ping bursts (each system's timer has its own phase, and a burst
      // may straddle a window's edge): per window, CPU ÷ pings received compares the same work.
      const perPing = measured.map((w) => (w.pingsPerS > 0 ? (w.cpuPerS * 1000) / w.pingsPerS : NaN));
      const tokens = measured.reduce((a, w) => a + w.s.tokens, 0);
      const closes = windows.reduce((a, w) => a + w.s.closes, 0);
      // Every system is measured over the same windows, so the windows are the interleaved rounds of the ratio.
      record(
        workload,
        system,
        'heartbeat CPU',
        cpuPerS,
        'ms/s',
        measured.map((w) => w.cpuPerS),
      );
      record(workload, system, 'pings received', pingsPerS, 'pings/s');
      if (perPing.every((v) => v > 0))
        record(workload, system, 'CPU per ping', median(perPing), 'µs', perPing);
      // The mean keeps the windows the median leaves out, such as the one where every resume token is refreshed.
      const mean = measured.reduce((a, w) => a + w.cpuPerS, 0) / measured.length;
      record(workload, system, 'heartbeat CPU, mean of the windows', mean, 'ms/s');
      record(workload, system, 'token refreshes per connection', tokens / n, 'frames');
      record(
        workload,
        system,
        'minor GCs',
        measured.reduce((a, w) => a + w.gcMinor, 0),
        'GCs',
      );
      record(
        workload,
        system,
        'major GCs',
        measured.reduce((a, w) => a + w.gcMajor, 0),
        'GCs',
      );
      record(workload, system, 'connections dropped by heartbeat', closes, 'connections');
      log(
        `idle: ${system}: heartbeat ${windows.map((w) => w.cpuPerS.toFixed(1)).join(', ')} ms CPU/s, ` +
          `${windows.map((w) => w.pingsPerS.toFixed(0)).join(', ')} pings/s, ` +
          `${windows.map((w) => w.s.tokens).join(', ')} token refreshes, closes ${closes}`,
      );
    }
  } finally {
    for (const { pair } of pairs) await pair.stop();
  }
}

// ---------------------------------------------------------------- 3. resume storm

async function resumeWorkload() {
  notes.push(
    'Resume storm: the clients drop their TCP connections at once (no close handshake); the server broadcasts the ' +
      'missed messages (to `$all`); the clients reconnect with their token, inbox lastSeq and topic positions (Socket.IO: ' +
      'pid and offset, connection state recovery). Lost and duplicated count every message number on every ' +
      'client. Listen backlog 4096 for every system.',
  );
  const n = 5000;
  const missed = 20;
  const systems = [
    ['stabilizer-reliable', {}, 'stabilizer-reliable'],
    ...(quick ? [] : [['socketio', { recovery: true }, 'socketio']]),
  ];
  // Two storms on the same 5,000 sessions: first with the client library's reconnect jitter (first retry after
  // 500-1000 ms), then the worst case: every client at the same instant.
  const storms = [
    { jitter: true, label: 'client backoff jitter (0.5-1 s)' },
    { jitter: false, label: 'all at the same instant' },
  ];
  for (const [name, opts, system] of systems) {
    const pair = await startPair(name, opts);
    try {
      await pair.connect(n, { trackIds: 100, concurrency: 500 });
      let next = 1; // message numbers 1, 2, ... in broadcast order
      const live = async (count) => {
        await pair.server.call('broadcastNow', { count, bytes: 150, startN: next });
        next += count;
        const want = n * (next - 1);
        await waitFor(
          async () => (await pair.loadgen.call('stats')).received >= want,
          20_000,
          'live messages',
        );
      };
      await pair.loadgen.call('reset');
      await live(5);
      for (const storm of storms) {
        const workload = `resume storm: ${n} clients cut, ${missed} messages missed each, ${storm.label}`;
        await sleep(300); // acks (every 200 ms) reach the server
        await pair.loadgen.call('cut');
        await pair.server.call('waitAtMost', { n: 0, timeoutMs: 30_000 });
        await pair.server.call('broadcastNow', { count: missed, bytes: 150, startN: next });
        next += missed;
        await pair.server.call('startWatch');
        const result = await pair.loadgen.call(
          'reconnectAll',
          { lastN: next - 1, timeoutMs: 60_000, concurrency: n, jitter: storm.jitter },
          120_000,
        );
        const watch = await pair.server.call('stopWatch');
        await live(5); // live traffic again after the storm
        const v = await pair.loadgen.call('verify', { firstN: 1, lastN: next - 1 });
        record(workload, system, 'time until all resumed', result.ms, 'ms');
        record(workload, system, 'clients resumed', result.resumed, 'clients');
        record(workload, system, 'clients with every message', result.completed, 'clients');
        record(workload, system, 'messages lost', v.lost, 'messages');
        record(workload, system, 'messages duplicated', v.duplicated, 'messages');
        record(workload, system, 'event-loop delay p99', watch.eventLoopP99Ms, 'ms');
        record(workload, system, 'event-loop delay max', watch.eventLoopMaxMs, 'ms');
        record(workload, system, 'server CPU during storm', watch.cpuUs / 1000, 'ms');
        log(
          `resume (${storm.label}): ${system}: ${result.completed}/${n} complete in ${result.ms?.toFixed(0)} ms ` +
            `(resumed ${result.resumed}, fresh ${result.fresh}, retries ${result.retries}), lost ${v.lost} ` +
            `dup ${v.duplicated} of ${v.messages} messages x ${v.clients} clients, ` +
            `event loop p99 ${watch.eventLoopP99Ms?.toFixed(1)} ms max ${watch.eventLoopMaxMs?.toFixed(0)} ms, ` +
            `server CPU ${(watch.cpuUs / 1000).toFixed(0)} ms`,
        );
      }
    } finally {
      await pair.stop();
    }
  }
}

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

async function waitFor(check, timeoutMs, what) {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// ---------------------------------------------------------------- 4. slow consumers

async function slowWorkload() {
  notes.push(
    'Slow consumers: 5% of the clients pause their socket (stop reading). Memory held is heap + external after ' +
      'forced GCs, at the end of the window, minus the same before it. The stabilizer closes a slow consumer with ' +
      '4001 at maxBufferedBytes; raw ws and Socket.IO have no cap.',
  );
  const n = 40;
  const bytes = 4096;
  const capBytes = 1024 * 1024;
  const windowMs = quick ? 2500 : 10_000;
  const workload = `slow consumers: ${n} clients, 5% stop reading, 1,000 msg/s of 4 KB, maxBufferedBytes 1 MiB`;
  const systems = [
    ['stabilizer-reliable', { maxBufferedBytes: capBytes }, 'stabilizer-reliable'],
    ['ws-naive', {}, 'ws-naive'],
    ...(quick ? [] : [['socketio', {}, 'socketio']]),
  ];
  for (const [name, opts, system] of systems) {
    const p99 = {};
    const growth = {};
    for (const withSlow of [false, true]) {
      const pair = await startPair(name, opts);
      try {
        await pair.connect(n);
        let slow = 0;
        if (withSlow) slow = await pair.loadgen.call('pauseSlow', { fraction: 0.05 });
        const before = await pair.server.call('memory', { gc: true });
        await pair.loadgen.call('reset');
        const periodMs = 10; // 10 broadcasts every 10 ms: 1,000 messages/s to each client
        const measureTurns = windowMs / periodMs;
        const r = await pair.server.call('broadcastRun', {
          bpt: 10,
          bytes,
          periodMs,
          warmupTurns: 50,
          measureTurns,
          sampleMemory: true,
        });
        // What the server still holds once garbage is collected: the buffers queued for slow clients.
        const held = await pair.server.call('memory', { gc: true });
        const heldMb = (held.heapUsed + held.external - before.heapUsed - before.external) / 1048576;
        const healthy = n - slow;
        const s = await pair.loadgen.call('waitMeasured', {
          expected: r.broadcasts * healthy,
          timeoutMs: 15_000,
        });
        p99[withSlow] = s.latency.p99 / 1000;
        growth[withSlow] = (r.maxRss - before.rss) / 1048576;
        const tag = withSlow ? 'with 5% slow' : 'no slow clients';
        record(workload, system, `healthy p99 (${tag})`, s.latency.p99 / 1000, 'ms');
        record(workload, system, `healthy p50 (${tag})`, s.latency.p50 / 1000, 'ms');
        record(workload, system, `server peak RSS growth (${tag})`, growth[withSlow], 'MB');
        record(workload, system, `server memory held after GC, growth (${tag})`, heldMb, 'MB');
        if (withSlow) {
          if (system === 'stabilizer-reliable') {
            // Per slow client its socket buffer (maxBufferedBytes); once for all, the history of `$all`
            // (replay.maxBytes of payload, each publication held as payload text, message text and frame bytes).
            const replayBytes = 1024 * 1024;
            record(
              workload,
              system,
              'bound: slow × maxBufferedBytes + 3 × replay.maxBytes',
              (slow * capBytes + 3 * replayBytes) / 1048576,
              'MB',
            );
          }
          record(
            workload,
            system,
            'healthy messages delivered',
            (s.measured / (r.broadcasts * healthy)) * 100,
            '%',
          );
          if (r.stats?.slowClosed !== undefined)
            record(workload, system, 'slow clients closed (4001)', r.stats.slowClosed, 'clients');
        }
        log(
          `slow: ${system} ${tag}: healthy p50 ${(s.latency.p50 / 1000).toFixed(1)} ms p99 ${(s.latency.p99 / 1000).toFixed(1)} ms, ` +
            `RSS ${(before.rss / 1048576).toFixed(0)} -> max ${(r.maxRss / 1048576).toFixed(0)} MB, held after GC +${heldMb.toFixed(1)} MB, ` +
            `${s.measured}/${r.broadcasts * healthy}, ` +
            `server CPU ${((r.cpuUs / r.wallUs) * 100).toFixed(0)}%, ${JSON.stringify(r.stats)}`,
        );
      } finally {
        await pair.stop();
      }
    }
    if (p99[true] && p99[false])
      record(workload, system, 'healthy p99 ratio (slow / none)', p99[true] / p99[false], '×');
  }
}

// ---------------------------------------------------------------- encoding

/** MessagePack vs JSON (bench/encoding.mjs, in its own process): encode/decode CPU and bytes per message. */
async function encodingWorkload() {
  const workload = 'encoding: MessagePack vs JSON, one data frame';
  const rounds = quick ? 11 : 21;
  const { stdout } = await run(
    process.execPath,
    [join(here, 'encoding.mjs'), '--json', `--rounds=${rounds}`],
    {
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  const { results: rows } = JSON.parse(stdout.trim().split('\n').pop());
  for (const e of rows) {
    record(workload, 'json', `${e.message}: bytes`, e.bytes.json, 'B');
    record(workload, 'msgpack', `${e.message}: bytes`, e.bytes.msgpack, 'B');
    for (const op of ['encode', 'decode']) {
      for (const system of ['json', 'msgpack'])
        record(workload, system, `${e.message}: ${op}`, e[op][system].median, 'ns', e[op].rounds[system]);
      log(
        `encoding: ${e.message} ${op}: JSON ${e[op].json.median.toFixed(0)} ns, MessagePack ` +
          `${e[op].msgpack.median.toFixed(0)} ns, ratio ${e[op].ratio.median.toFixed(2)}× ` +
          `(p10 ${e[op].ratio.p10.toFixed(2)}×, p90 ${e[op].ratio.p90.toFixed(2)}×)`,
      );
    }
    log(`encoding: ${e.message}: ${e.bytes.json} B JSON, ${e.bytes.msgpack} B MessagePack`);
  }
}

// ---------------------------------------------------------------- main

const t0 = Date.now();
const env = {
  node: process.version,
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model,
  loadavgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  mode: quick ? 'quick' : 'full',
};
log(
  `websocket-stabilizer bench (${env.mode}), ${env.cpus} CPUs, load average ${env.loadavgAtStart.join(' ')}`,
);
try {
  if (enabled('broadcast')) await broadcastWorkload();
  if (enabled('rooms')) await roomsWorkload();
  if (enabled('compression')) await compressionWorkload();
  if (enabled('idle')) await idleWorkload();
  if (enabled('resume')) await resumeWorkload();
  if (enabled('slow')) await slowWorkload();
  if (enabled('encoding')) await encodingWorkload();
} finally {
  const durationS = (Date.now() - t0) / 1000;
  env.durationS = Math.round(durationS);
  env.loadavgAtEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  const outDir = join(here, 'results');
  mkdirSync(outDir, { recursive: true });
  // `--out=<name>`: a partial run writes results/<name>.{json,md} and leaves the full run's latest.* alone.
  const outName = args.find((a) => a.startsWith('--out='))?.slice(6) ?? 'latest';
  writeFileSync(join(outDir, `${outName}.json`), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(join(outDir, `${outName}.md`), renderMarkdown(results, { env, notes, systems: SYSTEMS }));
  if (outName === 'latest') writeFileSync(join(outDir, 'broadcast.svg'), renderSvg(results));
  log(`done in ${durationS.toFixed(0)} s; wrote bench/results/${outName}.{json,md}`);
}
