// One server node of a Redis-backed cluster benchmark, in its own process, driven over IPC (lib/ipc.mjs).
//
//   stabilizer  websocket-stabilizer + websocket-stabilizer/redis, public API only: `createRedisBackend`,
//               `manager.broadcast` (every session) or `manager.publish(topic)` after `manager.join` on connect
//   socketio    Socket.IO 4 + @socket.io/redis-streams-adapter, websocket transport, connection state recovery
//               on (its reliable mode: every packet gets an offset and stays in the Redis stream), `io.emit` or
//               `io.to(room).emit` after `socket.join(room)` on connect
//
// Messages are `makeMessage(1, nowUs(), n, pad)` from lib/common.mjs, which the load generator recognizes in any
// envelope and times (same CLOCK_MONOTONIC in every process).
import { createServer } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { makeMessage, nowUs, padFor, sleep } from './common.mjs';
import { serve } from './ipc.mjs';

const SECRET = 'redis-cost-bench-secret-0123456789abcdef';
const topicName = (k) => `t${k}`;

let publish; // (topicIndex | undefined, message) => Promise | undefined
let connected = () => 0;
const joinErrors = [];
let eld;
let cpuMark;
let wallMarkUs;

async function startStabilizer(httpServer, { redisUrl, keyPrefix, nodeId, topics, pingIntervalMs }) {
  const { WebSocketConnectionManager } = await import('../../dist/index.js');
  const { createRedisBackend } = await import('../../dist/redis.js');
  const backend = await createRedisBackend({ url: redisUrl, keyPrefix, nodeId });
  const manager = new WebSocketConnectionManager({
    backend,
    tokens: { secret: SECRET },
    ...(pingIntervalMs ? { pingIntervalMs } : {}), // default: the library's
  });
  manager.attach(httpServer, { path: '/' });
  let dealt = 0;
  if (topics > 0) {
    manager.on('connect', (e) => {
      if (e.resume !== 'fresh') return;
      try {
        manager.join(e.clientId, topicName(dealt++ % topics));
      } catch (err) {
        if (joinErrors.length < 3) joinErrors.push(`${err.code ?? ''} ${err.message}`);
      }
    });
  }
  connected = () => manager.getStats().connections ?? manager.connections.size;
  publish = (topic, message) => {
    const result =
      topic === undefined ? manager.broadcast(message) : manager.publish(topicName(topic), message);
    return result.cluster; // resolves once Redis has taken it (undefined for an in-process delivery)
  };
}

async function startSocketIo(httpServer, { redisUrl, topics }) {
  const { Server } = await import('socket.io');
  const { createAdapter } = await import('@socket.io/redis-streams-adapter');
  const { Redis } = await import('ioredis');
  const io = new Server(httpServer, {
    transports: ['websocket'],
    perMessageDeflate: false,
    serveClient: false,
    adapter: createAdapter(new Redis(redisUrl)),
    connectionStateRecovery: { maxDisconnectionDuration: 120_000, skipMiddlewares: true },
  });
  let dealt = 0;
  io.on('connection', (socket) => {
    if (topics > 0 && !socket.recovered) socket.join(topicName(dealt++ % topics));
  });
  connected = () => io.engine.clientsCount;
  publish = (topic, message) => {
    if (topic === undefined) io.emit('m', message);
    else io.to(topicName(topic)).emit('m', message);
    return undefined;
  };
}

serve({
  async start(opts) {
    const httpServer = createServer();
    if (opts.system === 'stabilizer') await startStabilizer(httpServer, opts);
    else await startSocketIo(httpServer, opts);
    await new Promise((r) => httpServer.listen(0, '127.0.0.1', r));
    return { port: httpServer.address().port };
  },

  connected: () => ({ connected: connected(), joinErrors }),

  /**
   * `count` messages of about `bytes` bytes, numbered from `firstN`, as fast as the system takes them: to every
   * session, or (with `topics`) round-robin over `topics` topics. Resolves when the backend has taken them all.
   */
  async burst({ count, bytes, firstN, topics }) {
    const pad = padFor(bytes);
    const pending = [];
    for (let k = 0; k < count; k++) {
      const p = publish(topics ? k % topics : undefined, makeMessage(1, nowUs(), firstN + k, pad));
      if (p) pending.push(p);
    }
    const settled = await Promise.allSettled(pending);
    const failed = settled.filter((s) => s.status === 'rejected');
    return { failed: failed.length, firstError: failed[0] ? String(failed[0].reason) : undefined };
  },

  /**
   * An open-loop schedule: `ratePerSec` messages a second for `seconds`, round-robin over `topics` topics
   * starting at `topicOffset` (so that the nodes of a cluster share the topics), numbered from `firstN`.
   */
  async rate({ ratePerSec, seconds, bytes, firstN, topics, topicOffset = 0 }) {
    const pad = padFor(bytes);
    const count = Math.round(ratePerSec * seconds);
    const intervalUs = 1e6 / ratePerSec;
    const pending = [];
    const startUs = nowUs();
    for (let k = 0; k < count; k++) {
      const dueUs = startUs + k * intervalUs;
      const waitMs = (dueUs - nowUs()) / 1000;
      if (waitMs > 1) await sleep(waitMs);
      const topic = topics ? (topicOffset + k) % topics : undefined;
      const p = publish(topic, makeMessage(1, Math.round(dueUs), firstN + k, pad));
      if (p) pending.push(p);
    }
    const settled = await Promise.allSettled(pending);
    return { count, failed: settled.filter((s) => s.status === 'rejected').length };
  },

  /** Start measuring event-loop delay (1 ms resolution) and this process's CPU. */
  markStart() {
    eld?.disable();
    eld = monitorEventLoopDelay({ resolution: 1 });
    eld.enable();
    cpuMark = process.cpuUsage();
    wallMarkUs = nowUs();
    return true;
  },

  /** Event-loop delay (ms) and CPU (% of one core) since `markStart`. */
  markEnd() {
    eld.disable();
    const cpu = process.cpuUsage(cpuMark);
    const ms = (ns) => Math.round(ns / 1e4) / 100;
    return {
      eldP50Ms: ms(eld.percentile(50)),
      eldP99Ms: ms(eld.percentile(99)),
      eldMaxMs: ms(eld.max),
      cpuPct: Math.round(((cpu.user + cpu.system) / (nowUs() - wallMarkUs)) * 1000) / 10,
      rssMb: Math.round(process.memoryUsage().rss / 1e5) / 10,
    };
  },
});
