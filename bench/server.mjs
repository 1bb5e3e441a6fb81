// Benchmark server process: one system under test per process. Driven over IPC by run.mjs.
// Server CPU is measured here with process.cpuUsage(), around exactly the work being measured.
import { createServer } from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer as createTcpServer } from 'node:net';
import { constants as perfConstants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';
import { Sender, WebSocketServer } from 'ws';
import { Server as SocketIOServer } from 'socket.io';
import { WebSocketConnectionManager } from '../dist/index.js';
import { serve } from './lib/ipc.mjs';
import { fullGc, makeMessage, memory, nowUs, padFor, realisticPads, sleep } from './lib/common.mjs';

const SECRET = 'benchmark-secret-benchmark-secret-0123456789';

/** @type {{ name: string, broadcast(msg: object): number, count(): number, close(): Promise<void>, [k: string]: any }} */
let system;
let httpServer;
let watch;

/** Rooms (topics) of the rooms workload: `room:0` .. `room:<rooms-1>`; clients are dealt round-robin. */
const roomName = (k) => `room:${k}`;

/**
 * Flow control of the saturation runs: the load generator reports, on a TCP connection of its own, how many
 * benchmark messages its clients have received in the current run (`<runId> <count>\n`). Cheap for the server:
 * one small read per turn at most, the same for every system.
 */
const flow = { runId: -1, received: 0, waiter: undefined, tail: '' };
function onFlowData(chunk) {
  const text = flow.tail + chunk.toString('latin1');
  const end = text.lastIndexOf('\n');
  flow.tail = text.slice(end + 1);
  if (end < 0) return;
  const line = text.slice(text.lastIndexOf('\n', end - 1) + 1, end);
  const space = line.indexOf(' ');
  if (Number(line.slice(0, space)) !== flow.runId) return; // a late report of an earlier run
  flow.received = Number(line.slice(space + 1));
  const w = flow.waiter;
  flow.waiter = undefined;
  w?.();
}
const controlServer = createTcpServer((socket) => {
  socket.setNoDelay(true);
  socket.on('data', onFlowData);
  socket.on('error', () => {});
});

// ------------------------------------------------------------------ systems

function stabilizer(opts) {
  const manager = new WebSocketConnectionManager({
    pingIntervalMs: opts.heartbeatMs ?? 30_000,
    pongTimeoutMs: opts.pongTimeoutMs ?? 10_000,
    maxBufferedBytes: opts.maxBufferedBytes ?? 4 * 1024 * 1024,
    tokens: { secret: SECRET },
    compression: opts.compression ? { enabled: true } : undefined,
  });
  manager.attach(httpServer, { path: '/' });
  const volatile = opts.volatile === true;
  const stats = { slowClosed: 0, dropped: 0, resumed: 0, fresh: 0 };
  manager.on('disconnect', (e) => {
    if (e.reason === 'slow-consumer') stats.slowClosed++;
  });
  let joined = 0;
  manager.on('connect', (e) => {
    if (e.resume === 'resumed') stats.resumed++;
    else stats.fresh++;
    if (opts.rooms && e.resume === 'fresh') manager.join(e.clientId, roomName(joined++ % opts.rooms));
  });
  return {
    name: 'stabilizer',
    manager,
    get stats() {
      // Slow consumers closed with 4001 whose close handshake is still pending (they do not read) have not
      // emitted `disconnect` yet: count them from the registry too.
      let closing = 0;
      let maxBuffered = 0;
      for (const conn of manager.connections.values()) {
        if (conn.closeReason === 'slow-consumer') closing++;
        maxBuffered = Math.max(maxBuffered, conn.socket.bufferedAmount);
      }
      return { ...stats, slowClosed: stats.slowClosed + closing, maxBufferedBytes: maxBuffered };
    },
    broadcast(msg) {
      const r = manager.broadcast(msg, volatile ? { volatile: true } : undefined);
      stats.dropped += r.dropped;
      return r.delivered;
    },
    publish(room, msg) {
      const r = manager.publish(room, msg, volatile ? { volatile: true } : undefined);
      stats.dropped += r.dropped;
      return r.delivered;
    },
    count: () => manager.getConnectionCount(),
    async close() {
      await manager.gracefulShutdown({ timeoutMs: 200 });
    },
  };
}

/** Raw ws. `mode`: `naive` (one JSON.stringify per broadcast, ws.send per client) or `limit` (pre-framed, corked). */
function rawWs(opts, mode) {
  const wss = new WebSocketServer({ server: httpServer, perMessageDeflate: opts.perMessageDeflate ?? false });
  const stats = {};
  let interval;
  if (opts.heartbeatMs) {
    // The heartbeat recipe of the ws README, as it is.
    function heartbeat() {
      this.isAlive = true;
    }
    wss.on('connection', function connection(ws) {
      ws.isAlive = true;
      ws.on('error', console.error);
      ws.on('pong', heartbeat);
    });
    interval = setInterval(function ping() {
      wss.clients.forEach(function each(ws) {
        if (ws.isAlive === false) return ws.terminate();
        ws.isAlive = false;
        ws.ping();
      });
    }, opts.heartbeatMs);
  } else {
    wss.on('connection', (ws) => ws.on('error', () => {}));
  }
  // Rooms: a client list per room, kept by the application (as a ws user would).
  const rooms = opts.rooms ? new Map() : undefined;
  if (rooms) {
    let joined = 0;
    wss.on('connection', (ws) => {
      const name = roomName(joined++ % opts.rooms);
      let list = rooms.get(name);
      if (!list) rooms.set(name, (list = new Set()));
      list.add(ws);
      ws.on('close', () => list.delete(ws));
    });
  }

  // The limit: every socket touched in a turn is corked once and uncorked once, and the frame is built once.
  const touched = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    for (let i = 0; i < touched.length; i++) touched[i].uncork();
    touched.length = 0;
  };
  const limitSend = (clients, msg) => {
    const data = Buffer.from(JSON.stringify(msg));
    const frame = Buffer.concat(Sender.frame(data, { fin: true, opcode: 1, mask: false, readOnly: false }));
    let n = 0;
    for (const ws of clients) {
      if (ws.readyState !== 1) continue;
      const s = ws._socket;
      if (s.writableCorked === 0) {
        s.cork();
        touched.push(s);
      }
      s.write(frame);
      n++;
    }
    if (!scheduled) {
      scheduled = true;
      process.nextTick(flush);
    }
    return n;
  };
  const naiveSend = (clients, msg) => {
    const text = JSON.stringify(msg);
    let n = 0;
    for (const ws of clients) {
      if (ws.readyState !== 1) continue;
      ws.send(text);
      n++;
    }
    return n;
  };
  return {
    name: mode === 'limit' ? 'ws-limit' : 'ws-naive',
    get stats() {
      let maxBuffered = 0;
      for (const ws of wss.clients) maxBuffered = Math.max(maxBuffered, ws.bufferedAmount);
      return { ...stats, maxBufferedBytes: maxBuffered };
    },
    broadcast: (msg) => (mode === 'limit' ? limitSend : naiveSend)(wss.clients, msg),
    publish: (room, msg) => (mode === 'limit' ? limitSend : naiveSend)(rooms?.get(room) ?? [], msg),
    count: () => wss.clients.size,
    async close() {
      clearInterval(interval);
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}

function socketio(opts) {
  const io = new SocketIOServer(httpServer, {
    transports: ['websocket'],
    perMessageDeflate: opts.perMessageDeflate ?? false,
    serveClient: false,
    pingInterval: opts.heartbeatMs ?? 25_000,
    pingTimeout: opts.pongTimeoutMs ?? 20_000,
    connectionStateRecovery: opts.recovery
      ? { maxDisconnectionDuration: 120_000, skipMiddlewares: true }
      : undefined,
  });
  const stats = { resumed: 0, fresh: 0 };
  let joined = 0;
  io.on('connection', (socket) => {
    if (socket.recovered) stats.resumed++;
    else stats.fresh++;
    if (opts.rooms && !socket.recovered) socket.join(roomName(joined++ % opts.rooms));
  });
  const roomSizes = io.of('/').adapter.rooms;
  return {
    name: 'socketio',
    io,
    stats,
    broadcast(msg) {
      io.emit('m', msg);
      return io.engine.clientsCount;
    },
    publish(room, msg) {
      io.to(room).emit('m', msg);
      return roomSizes.get(room)?.size ?? 0;
    },
    count: () => io.engine.clientsCount,
    async close() {
      io.close();
    },
  };
}

// ------------------------------------------------------------------ commands

/** Options of the running system, for names of diagnostics files. */
let opts = {};

/**
 * Diagnostics (BENCH_PROFILE_DIR=<dir>): a CPU profile of exactly the measured window of each saturation run,
 * written to `<dir>/<system>-run<id>.cpuprofile` (open it in Chrome DevTools, or summarize its self times).
 */
async function windowProfiler(dir) {
  const { Session } = await import('node:inspector');
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(dir, { recursive: true });
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 200 });
  return {
    start: () => session.post('Profiler.start'),
    stop: (name) =>
      session.post('Profiler.stop', (err, result) => {
        if (!err) writeFileSync(`${dir}/${name}.cpuprofile`, JSON.stringify(result.profile));
        session.disconnect();
      }),
  };
}

let idleWindows = 0;

/** Every TCP connection of the HTTP server, for the bytes written on the wire. */
const sockets = new Set();
const wireBytes = () => {
  let total = 0;
  for (const s of sockets) total += s.bytesWritten;
  return total;
};

/**
 * CPU time of this process by thread name (`node`: the JavaScript thread; `libuv-worker`: zlib's thread pool;
 * `V8 …`: GC and compiler helpers), in µs, from /proc (Linux; an empty object elsewhere). Clock-tick resolution
 * (10 ms): meaningful over windows of seconds.
 */
const threadCpu = () => {
  const out = {};
  let tids = [];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name =
        tid === String(process.pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const us = ((Number(f[11]) + Number(f[12])) * 1e6) / 100;
      out[name] = (out[name] ?? 0) + us;
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
};
const threadCpuSince = (start) => {
  const now = threadCpu();
  return Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v - (start[k] ?? 0)]));
};

/** Garbage collections since start, by kind (minor = scavenge, major = mark-sweep-compact), with their time. */
const gc = { minor: 0, major: 0, other: 0, ms: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = e.detail?.kind;
    if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) gc.minor++;
    else if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) gc.major++;
    else gc.other++;
    gc.ms += e.duration;
  }
}).observe({ entryTypes: ['gc'] });

/** Bytes written and read over every TCP connection of the HTTP server (counts, for diagnostics). */
const wireCounts = () => {
  let written = 0;
  let read = 0;
  for (const s of sockets) {
    written += s.bytesWritten;
    read += s.bytesRead;
  }
  return { written, read, sockets: sockets.size, gc: { ...gc } };
};

const cpuNow = () => {
  const c = process.cpuUsage();
  return c.user + c.system;
};

serve({
  async start(startOpts) {
    opts = startOpts;
    httpServer = createServer((_req, res) => res.writeHead(404).end());
    httpServer.maxConnections = 100_000;
    httpServer.on('connection', (socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    if (opts.system === 'stabilizer') system = stabilizer(opts);
    else if (opts.system === 'ws-naive') system = rawWs(opts, 'naive');
    else if (opts.system === 'ws-limit') system = rawWs(opts, 'limit');
    else if (opts.system === 'socketio') system = socketio(opts);
    else throw new Error(`unknown system ${opts.system}`);
    await new Promise((resolve) => httpServer.listen(0, '127.0.0.1', 4096, resolve));
    await new Promise((resolve) => controlServer.listen(0, '127.0.0.1', resolve));
    return {
      port: httpServer.address().port,
      controlPort: controlServer.address().port,
      pid: process.pid,
    };
  },

  count: () => system.count(),

  async waitCount({ n, timeoutMs = 60_000 }) {
    const until = Date.now() + timeoutMs;
    while (system.count() < n) {
      if (Date.now() > until) throw new Error(`only ${system.count()} of ${n} clients connected`);
      await sleep(20);
    }
    return system.count();
  },

  /**
   * Closed-loop broadcast at saturation: turns run back to back (one per event-loop iteration, so the I/O of the
   * previous turn is processed in between), `bpt` broadcasts per turn (with `rooms`: `bpt` publications to each
   * room), as fast as the server writes and the clients read. Flow control keeps `inFlightTurns` turns in flight:
   * turn k starts once the load generator reports that its clients received every message of turn
   * k - inFlightTurns. So the socket buffers never hold more than a few turns (no partial writes, no drain
   * events), yet neither side waits for a round trip. The measured window runs from the start of the first
   * measured turn to the moment the turn after the last one may start: it holds exactly the measured turns' work,
   * including their flushes. Each message carries its turn's start time.
   */
  async saturateRun({
    runId,
    bpt,
    bytes,
    rooms = 0,
    realistic = false,
    warmupTurns,
    measureTurns,
    inFlightTurns = 2,
    stallMs = 20_000,
  }) {
    const pad = padFor(bytes);
    const pads = realistic ? realisticPads(bytes) : undefined;
    const padOf = (m) => (pads ? pads[m % pads.length] : pad);
    const total = warmupTurns + measureTurns;
    let wireStart = 0;
    flow.runId = runId;
    flow.received = 0;
    const sentAfter = new Float64Array(total);
    let sent = 0;
    let n = 0;
    let deliveries = 0;
    let broadcasts = 0;
    let cpuStart = 0;
    let cpuSplit;
    let threadsStart = {};
    let rusageStart;
    let wallStart = 0;
    let waits = 0;
    const roomNames = Array.from({ length: rooms }, (_, k) => roomName(k));
    const profiler = process.env.BENCH_PROFILE_DIR
      ? await windowProfiler(process.env.BENCH_PROFILE_DIR)
      : undefined;
    return new Promise((resolve, reject) => {
      let turn = 0;
      let stall;
      // CPU of each measured turn from its start to the next check phase, where the systems that cork for the turn
      // have flushed: the publishing work itself, without the waits for the clients (synchronous work only: a
      // system that deflates in the thread pool does part of its work outside it).
      let turnCpu;
      let busyUs = 0;
      const next = () => {
        if (turnCpu !== undefined) {
          busyUs += cpuNow() - turnCpu;
          turnCpu = undefined;
        }
        const need = turn >= inFlightTurns ? sentAfter[turn - inFlightTurns] : 0;
        if (flow.received < need) {
          waits++;
          flow.waiter = next;
          stall ??= setTimeout(() => {
            flow.waiter = undefined;
            reject(new Error(`saturateRun stalled at turn ${turn}: received ${flow.received} of ${need}`));
          }, stallMs);
          return;
        }
        if (stall) {
          clearTimeout(stall);
          stall = undefined;
        }
        if (turn === warmupTurns) {
          profiler?.start();
          cpuSplit = process.cpuUsage();
          threadsStart = threadCpu();
          rusageStart = process.resourceUsage();
          wireStart = wireBytes();
          cpuStart = cpuNow();
          wallStart = nowUs();
          waits = 0;
        }
        if (turn === total) {
          const cpuUs = cpuNow() - cpuStart;
          const wire = wireBytes() - wireStart;
          const split = process.cpuUsage(cpuSplit);
          const threads = threadCpuSince(threadsStart);
          const ru = process.resourceUsage();
          const wallUs = nowUs() - wallStart;
          profiler?.stop(`${system.name}${opts.rooms ? '-rooms' : ''}-run${runId}`);
          resolve({
            broadcasts,
            deliveries,
            sentTotal: sent,
            cpuUs,
            busyUs,
            wireBytes: wire,
            userUs: split.user,
            systemUs: split.system,
            wallUs,
            waits,
            threads,
            contextSwitches: {
              voluntary: ru.voluntaryContextSwitches - rusageStart.voluntaryContextSwitches,
              involuntary: ru.involuntaryContextSwitches - rusageStart.involuntaryContextSwitches,
            },
            stats: system.stats,
          });
          return;
        }
        const phase = turn >= warmupTurns ? 1 : 0;
        const ts = nowUs();
        let d = 0;
        if (phase) turnCpu = cpuNow();
        for (let b = 0; b < bpt; b++) {
          if (rooms)
            for (const room of roomNames) d += system.publish(room, makeMessage(phase, ts, ++n, padOf(n)));
          else d += system.broadcast(makeMessage(phase, ts, ++n, padOf(n)));
        }
        if (phase) {
          deliveries += d;
          broadcasts += rooms ? bpt * rooms : bpt;
        }
        sent += d;
        sentAfter[turn] = sent;
        turn++;
        setImmediate(next);
      };
      setImmediate(next);
    });
  },

  /**
   * Open-loop broadcast schedule: a turn every `periodMs` (fixed schedule from the start time, never adjusted to
   * how fast the system is), `bpt` broadcasts per turn. Each message carries its turn's intended time, so late
   * turns show up as latency (no coordinated omission). CPU is measured over exactly the measured turns.
   */
  async broadcastRun({ bpt, bytes, periodMs, warmupTurns, measureTurns, sampleMemory = false }) {
    const pad = padFor(bytes);
    const periodUs = periodMs * 1000;
    const total = warmupTurns + measureTurns;
    const startUs = nowUs() + 20_000;
    const eld = monitorEventLoopDelay({ resolution: 10 });
    let cpuStart = 0;
    let cpuEnd = 0;
    let cpuSplit;
    let wallStart = 0;
    let wallEnd = 0;
    let deliveries = 0;
    let broadcasts = 0;
    let maxLateUs = 0;
    let n = 0;
    let maxRss = process.memoryUsage.rss();
    const sampler = sampleMemory
      ? setInterval(() => {
          maxRss = Math.max(maxRss, process.memoryUsage.rss());
        }, 100)
      : undefined;
    await new Promise((resolve) => {
      let turn = 0;
      const step = () => {
        const intended = startUs + turn * periodUs;
        const late = nowUs() - intended;
        if (late < -1000) {
          // Woke up early (timer granularity): wait again.
          setTimeout(step, Math.max(0, Math.floor(-late / 1000) - 1));
          return;
        }
        if (turn === warmupTurns) {
          cpuSplit = process.cpuUsage();
          cpuStart = cpuNow();
          wallStart = nowUs();
          eld.enable();
        }
        if (turn === total) {
          cpuEnd = cpuNow();
          cpuSplit = process.cpuUsage(cpuSplit);
          wallEnd = nowUs();
          eld.disable();
          resolve();
          return;
        }
        const phase = turn >= warmupTurns ? 1 : 0;
        if (phase) maxLateUs = Math.max(maxLateUs, late);
        for (let b = 0; b < bpt; b++) {
          const d = system.broadcast(makeMessage(phase, intended, ++n, pad));
          if (phase) {
            deliveries += d;
            broadcasts++;
          }
        }
        turn++;
        const wait = (startUs + turn * periodUs - nowUs()) / 1000;
        setTimeout(step, Math.max(0, Math.floor(wait)));
      };
      setTimeout(step, 20);
    });
    clearInterval(sampler);
    maxRss = Math.max(maxRss, process.memoryUsage.rss());
    return {
      maxRss,
      broadcasts,
      deliveries,
      cpuUs: cpuEnd - cpuStart,
      userUs: cpuSplit.user,
      systemUs: cpuSplit.system,
      windowStartUs: wallStart,
      // The schedule's window: from the intended time of the first measured turn, measureTurns periods long.
      scheduledStartUs: startUs + warmupTurns * periodUs,
      scheduledUs: measureTurns * periodUs,
      wallUs: wallEnd - wallStart,
      maxLateUs,
      eventLoopP99Ms: eld.count ? eld.percentile(99) / 1e6 : null,
      stats: system.stats,
    };
  },

  /** Send `count` broadcasts now (one turn), e.g. while the clients of a resume storm are away. */
  broadcastNow({ count, bytes, startN }) {
    const pad = padFor(bytes);
    let delivered = 0;
    for (let i = 0; i < count; i++) delivered += system.broadcast(makeMessage(0, nowUs(), startN + i, pad));
    return { delivered };
  },

  async waitAtMost({ n, timeoutMs = 60_000 }) {
    const until = Date.now() + timeoutMs;
    while (system.count() > n) {
      if (Date.now() > until) throw new Error(`still ${system.count()} clients connected, expected <= ${n}`);
      await sleep(20);
    }
    return system.count();
  },

  /**
   * Memory after forced full GCs. With `samples` > 1, the lowest of several readings 200 ms apart: garbage the
   * collector has not reclaimed yet can only inflate a reading, never deflate it.
   */
  async memory({ gc = true, samples = 1 } = {}) {
    let low;
    for (let i = 0; i < samples; i++) {
      if (i > 0) await sleep(200);
      if (gc) await fullGc();
      const m = memory();
      low = low ? Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Math.min(v, low[k])])) : m;
    }
    return low;
  },

  /** CPU used over `ms` of wall time while nothing but background work (heartbeats) runs. */
  async idleCpu({ ms }) {
    // BENCH_PROFILE_DIR: a CPU profile of exactly this window (`idle-<system>-<pid>-<n>.cpuprofile`).
    const profiler = process.env.BENCH_PROFILE_DIR
      ? await windowProfiler(process.env.BENCH_PROFILE_DIR)
      : undefined;
    profiler?.start();
    const gc0 = { ...gc };
    const split = process.cpuUsage();
    const c0 = cpuNow();
    const w0 = nowUs();
    await sleep(ms);
    const { user, system: sys } = process.cpuUsage(split);
    profiler?.stop(`idle-${opts.system}-${process.pid}-${++idleWindows}`);
    return {
      cpuUs: cpuNow() - c0,
      wallUs: nowUs() - w0,
      userUs: user,
      systemUs: sys,
      gcMinor: gc.minor - gc0.minor,
      gcMajor: gc.major - gc0.major,
    };
  },

  /** Event-loop delay and CPU from now until `stopWatch`. */
  startWatch() {
    watch = {
      eld: monitorEventLoopDelay({ resolution: 10 }),
      cpu0: cpuNow(),
      wall0: nowUs(),
      mem0: memory(),
    };
    watch.eld.enable();
    return true;
  },
  stopWatch() {
    const { eld, cpu0, wall0, mem0 } = watch;
    eld.disable();
    return {
      cpuUs: cpuNow() - cpu0,
      wallUs: nowUs() - wall0,
      eventLoopP99Ms: eld.count ? eld.percentile(99) / 1e6 : null,
      eventLoopMaxMs: eld.count ? eld.max / 1e6 : null,
      mem0,
      mem1: memory(),
    };
  },

  wireCounts,

  stats: () => ({ ...system.stats, count: system.count(), ...memory() }),

  async stop() {
    await system?.close();
    return true;
  },

  async heapSnapshot({ file }) {
    await fullGc();
    const v8 = await import('node:v8');
    return v8.writeHeapSnapshot(file);
  },

  /** Diagnostics: CPU profile of the next `ms` of this process, written to `file`. */
  async profile({ ms, file }) {
    const { Session } = await import('node:inspector/promises');
    const { writeFileSync } = await import('node:fs');
    const session = new Session();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    await sleep(ms);
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
    return file;
  },

  exit() {
    setTimeout(() => process.exit(0), 50);
    return true;
  },
});
