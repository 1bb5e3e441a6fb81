// Load generator process: many raw `ws` clients that speak the wire format of each system directly
// (plain WebSocket, stabilizer.v1 per PROTOCOL.md, or Engine.IO v4 / Socket.IO v5), so that the client side
// costs as little as possible and the same client code measures every server.
import { connect as tcpConnect } from 'node:net';
import { WebSocket } from 'ws';
import { serve } from './lib/ipc.mjs';
import { histogram, nowUs, parseMessage, sleep, summarize } from './lib/common.mjs';

const SUBPROTOCOL = 'stabilizer.v1';
const ACK_EVERY = 32; // the client library's default ackEveryMessages
let ackDelayMs = 200; // and ackDelayMs

/** Per-client state. Kept on the socket as `ws.c`; handlers are shared, not closures per socket. */
class Client {
  constructor(index, opts) {
    this.index = index;
    this.dialect = opts.dialect;
    this.deflate = opts.deflate === true;
    this.localAddress = opts.localAddresses[index % opts.localAddresses.length];
    this.slow = false;
    this.ws = null;
    this.wantOpen = false;
    this.attempt = 0;
    this.ready = false;
    this.readyAtUs = 0;
    // stabilizer.v1
    this.sessionId = undefined;
    this.token = undefined;
    this.lastSeq = 0; // inbox (direct messages): highest sequence received in order
    this.lastAcked = 0;
    this.resume = undefined;
    /** Topic → position (highest offset received in order), from welcome / sub / publications / skip. */
    this.topics = new Map();
    // Socket.IO recovery
    this.sid = undefined;
    this.pid = undefined;
    this.offset = undefined;
    // delivery check: how often each message number arrived
    this.seen = opts.trackIds ? new Uint8Array(opts.trackIds + 1) : null;
    this.received = 0;
  }
}

let clients = [];
let url = '';
let hist = histogram();
let counters;
let trackIds = 0;
let ackTimer;
let onAllReady;
let ackEnabled = true;

let cpuMark = process.cpuUsage();
let wallMark = nowUs();

function resetCounters() {
  cpuMark = process.cpuUsage();
  wallMark = nowUs();
  counters = {
    received: 0,
    measured: 0,
    lastMeasuredUs: 0,
    pings: 0,
    // data frames received (all dialects) and, of those, stabilizer.v1 `token` refreshes
    frames: 0,
    tokens: 0,
    // stabilizer.v1: ack frames sent (inbox only: topic publications are never acked), and the welcome
    // confirmations (one per connect/resume, PROTOCOL.md §3 item 4)
    acks: 0,
    confirms: 0,
    retries: 0,
    // inbox sequence errors; topic publications (and skips) out of order: duplicates dropped, gaps (with the
    // number of offsets jumped over), publications of a topic the client is not in
    seqErrors: 0,
    topicDuplicates: 0,
    topicGaps: 0,
    topicLost: 0,
    topicUnknown: 0,
    skips: 0,
    closes: 0,
    closeCodes: {},
    errors: 0,
  };
  hist = histogram();
}
resetCounters();

/**
 * Flow control of the server's saturation runs: the count of messages received in the current run goes to the
 * server on its control port at every multiple of `reportEvery` (one turn: what the server waits for), and for the
 * tail once reception has gone quiet (no message between two 5 ms ticks). Not on every tick: while slow clients
 * (e.g. inflating) receive a turn over a second, a report every 5 ms woke the server 200 times a second, and that
 * harness cost, paid per second of wall time, was counted as server CPU per delivery.
 */
const flow = {
  socket: undefined,
  runId: -1,
  reportEvery: Infinity,
  reported: 0,
  timer: undefined,
  lastTick: -1,
};

function report() {
  flow.reported = counters.received;
  flow.socket.write(`${flow.runId} ${counters.received}\n`);
}

function reportTail() {
  const received = counters.received;
  if (flow.socket && received !== flow.reported && received === flow.lastTick) report();
  flow.lastTick = received;
}

const scratch = { ph: 0, ts: 0, n: 0 };

function record(c, buf) {
  if (!parseMessage(buf, scratch)) return;
  c.received++;
  if (++counters.received % flow.reportEvery === 0 && flow.socket) report();
  if (c.seen && scratch.n <= trackIds) c.seen[scratch.n]++;
  if (scratch.ph === 1 && !c.slow) {
    counters.measured++;
    const now = nowUs();
    counters.lastMeasuredUs = now;
    const lat = now - scratch.ts;
    hist.recordValue(lat > 0 ? lat : 1);
  }
}

function markReady(c) {
  if (c.ready) return;
  c.ready = true;
  c.attempt = 0;
  c.readyAtUs = nowUs();
  onAllReady?.();
}

// ---------------------------------------------------------------- message handlers (shared by all sockets)

function onPlainMessage(data) {
  counters.frames++;
  record(this.c, data);
}

function onPing() {
  counters.pings++;
}

/**
 * Advance client `c`'s position in `topic` to `o` (a publication or a skip), as the client library does: `o` must
 * be position + 1; a smaller one is a duplicate (dropped: returns false), a larger one a gap (counted; the real
 * client would resume, the load generator carries on from `o`).
 */
function advanceTopic(c, topic, o) {
  const position = c.topics.get(topic);
  if (position === undefined) {
    counters.topicUnknown++;
    return false;
  }
  if (o <= position) {
    counters.topicDuplicates++;
    return false;
  }
  if (o !== position + 1) {
    counters.topicGaps++;
    counters.topicLost += o - position - 1;
  }
  c.topics.set(topic, o);
  return true;
}

/**
 * stabilizer.v1 (PROTOCOL.md §2): data frames are parsed by hand, control messages with JSON.parse.
 * `{"t":"d","s":N,"p":…}` is a direct (inbox) message: sequenced, acked every ACK_EVERY messages or ackDelayMs.
 * `{"t":"d","c":"topic","o":N,"p":…}` is a topic publication (`broadcast()` publishes to `$all`): checked for
 * contiguity per topic, never acked. `{"t":"d","p":…}` / `{"t":"d","c":"topic","p":…}` are volatile.
 */
function onStabilizerMessage(data) {
  const c = this.c;
  counters.frames++;
  // {"t":"d", … : bytes 0..8
  if (data[6] === 0x64 && data[2] === 0x74 && data[7] === 0x22) {
    const k = data[10];
    if (k === 0x63 /* c */) {
      // {"t":"d","c":"<name>","o":N,"p":…  (the name starts at byte 14)
      let i = 14;
      while (data[i] !== 0x22 && data[i] !== 0x5c /* \ */) i++;
      if (data[i] === 0x5c) return onStabilizerJson(c, this, JSON.parse(data.toString()));
      if (data[i + 3] === 0x6f /* o */) {
        const topic = data.toString('latin1', 14, i);
        let o = 0;
        for (let j = i + 6, ch = data[j]; ch >= 48 && ch <= 57; ch = data[++j]) o = o * 10 + (ch - 48);
        if (!advanceTopic(c, topic, o)) return;
      }
    } else if (k === 0x73 /* s */) {
      let s = 0;
      let i = 13;
      for (let ch = data[i]; ch >= 48 && ch <= 57; ch = data[++i]) s = s * 10 + (ch - 48);
      if (s !== c.lastSeq + 1) {
        counters.seqErrors++;
        if (s <= c.lastSeq) return; // duplicate: drop, as the client library does
      }
      c.lastSeq = s;
      if (ackEnabled && s - c.lastAcked >= ACK_EVERY) {
        c.lastAcked = s;
        counters.acks++;
        this.send(`{"t":"ack","s":${s}}`);
      }
    }
    record(c, data);
    return;
  }
  // The heartbeat ping, matched from its bytes like the server matches the pong: the load generator answers
  // thousands of pings in one burst, and should answer them as promptly as the same number of separate clients.
  if (data.length === PING.length && data.equals(PING)) return answerPing(c, this);
  onStabilizerJson(c, this, JSON.parse(data.toString()));
}

const PING = Buffer.from('{"t":"ping"}');

/** `ping` → `{"t":"pong","s":N}`, which acks too (PROTOCOL.md §2.4), as the client library answers. */
function answerPing(c, ws) {
  counters.pings++;
  ws.send(`{"t":"pong","s":${c.lastSeq}}`);
  c.lastAcked = c.lastSeq;
}

function onStabilizerJson(c, ws, m) {
  switch (m.t) {
    case 'd':
      if (m.c !== undefined && m.o !== undefined && !advanceTopic(c, m.c, m.o)) return;
      record(c, Buffer.from(JSON.stringify(m.p)));
      return;
    case 'skip':
      counters.skips++;
      advanceTopic(c, m.c, m.o);
      return;
    case 'sub':
      // The answer to a subscribe, or a join by the server: a member from offset o on.
      if (m.o !== undefined && !c.topics.has(m.c)) c.topics.set(m.c, m.o);
      return;
    case 'unsub':
      c.topics.delete(m.c);
      return;
    case 'welcome':
      c.sessionId = m.sessionId;
      c.token = m.token;
      c.resume = m.resume;
      if (m.resume === 'fresh') {
        c.lastSeq = 0;
        c.lastAcked = 0;
      }
      // Every topic the session is in, each resumed (the replay continues after o) or fresh (continue from o).
      // A topic the hello named and the welcome does not list was left meanwhile.
      c.topics.clear();
      for (const t of m.topics ?? []) c.topics.set(t.c, t.o);
      // Confirm the welcome right away (PROTOCOL.md §3 item 4), as the client library does.
      counters.confirms++;
      ws.send(`{"t":"ack","s":${c.lastSeq}}`);
      c.lastAcked = c.lastSeq;
      markReady(c);
      return;
    case 'ping':
      return answerPing(c, ws);
    case 'token':
      counters.tokens++;
      c.token = m.token;
      return;
    default:
      return;
  }
}

/** Engine.IO v4 + Socket.IO v5 packets over a raw WebSocket. */
function onEngineMessage(data) {
  const c = this.c;
  counters.frames++;
  const type = data[0];
  if (type === 0x34 /* 4 message */) {
    const sub = data[1];
    if (sub === 0x32 /* 2 event */) {
      if (c.pid !== undefined) {
        // With connection state recovery every packet ends with its offset: 42["m",{...},"offset"]
        const s = data.toString('latin1');
        const q = s.lastIndexOf('"', s.length - 3);
        c.offset = s.slice(q + 1, s.length - 2);
      }
      record(c, data);
      return;
    }
    if (sub === 0x30 /* 0 connect */) {
      const body = data.length > 2 ? JSON.parse(data.toString('utf8', 2)) : {};
      // A recovered Socket.IO session keeps its id (and its pid).
      c.resume = c.sid === undefined ? 'new' : body.sid === c.sid ? 'resumed' : 'fresh';
      c.sid = body.sid;
      if (body.pid !== undefined) c.pid = body.pid;
      markReady(c);
    }
    return;
  }
  if (type === 0x32 /* 2 ping */) {
    counters.pings++;
    this.send('3');
    return;
  }
  if (type === 0x30 /* 0 open */) {
    if (c.pid !== undefined && c.offset !== undefined) {
      this.send(`40${JSON.stringify({ pid: c.pid, offset: c.offset })}`);
    } else this.send('40');
  }
}

function onOpen() {
  const c = this.c;
  if (c.dialect === 'stabilizer') {
    const hello = { t: 'hello', v: 1 };
    if (c.token) {
      hello.token = c.token;
      hello.sessionId = c.sessionId;
      hello.lastSeq = c.lastSeq;
      if (c.topics.size > 0) hello.topics = Object.fromEntries(c.topics);
    }
    this.send(JSON.stringify(hello));
  } else if (c.dialect === 'plain') markReady(c);
}

function onClose(code) {
  counters.closes++;
  counters.closeCodes[code] = (counters.closeCodes[code] ?? 0) + 1;
  const c = this.c;
  if (c.ws !== this) return;
  c.ready = false;
  c.ws = null;
  // Like the client library: a client that wants to be connected retries with backoff and jitter.
  if (c.wantOpen) {
    counters.retries++;
    setTimeout(open, backoffDelayMs(c.attempt++), c);
  }
}

/** The client library's backoff (src/client/backoff.ts) with its defaults: 500 ms .. 30 s, full jitter. */
function backoffDelayMs(attempt, minDelayMs = 500, maxDelayMs = 30_000) {
  const capMs = Math.max(minDelayMs, Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(attempt + 1, 31)));
  return Math.round(minDelayMs + Math.random() * (capMs - minDelayMs));
}

function onError() {
  counters.errors++;
}

function open(c) {
  if (!c.wantOpen || c.ws) return;
  const target = c.dialect === 'socketio' ? `${url}socket.io/?EIO=4&transport=websocket` : url;
  const ws = new WebSocket(target, c.dialect === 'stabilizer' ? SUBPROTOCOL : undefined, {
    localAddress: c.localAddress,
    // ws inflates in the thread pool, by default at most 10 messages at a time for the whole process: with 1,000
    // clients that queue, not the inflating, would set the pace.
    perMessageDeflate: c.deflate ? { concurrencyLimit: 64 } : false,
    skipUTF8Validation: true,
    autoPong: true,
  });
  ws.c = c;
  c.ws = ws;
  c.ready = false;
  ws.on('open', onOpen);
  ws.on(
    'message',
    c.dialect === 'stabilizer'
      ? onStabilizerMessage
      : c.dialect === 'socketio'
        ? onEngineMessage
        : onPlainMessage,
  );
  ws.on('ping', onPing);
  ws.on('close', onClose);
  ws.on('error', onError);
}

/** Open `list` with at most `concurrency` handshakes in flight; resolves when all are ready (or timeout). */
async function openAll(list, concurrency, timeoutMs, delayMs) {
  const t0 = nowUs();
  let next = 0;
  let pending = 0;
  const ready = () => list.reduce((n, c) => n + (c.ready ? 1 : 0), 0);
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      onAllReady = undefined;
      reject(new Error(`only ${ready()} of ${list.length} clients ready after ${timeoutMs} ms`));
    }, timeoutMs);
    let done = 0;
    const pump = () => {
      while (pending < concurrency && next < list.length) {
        const c = list[next++];
        pending++;
        c.wantOpen = true;
        if (delayMs) setTimeout(open, delayMs(c), c);
        else open(c);
      }
    };
    onAllReady = () => {
      pending--;
      done++;
      if (done === list.length) {
        clearTimeout(timer);
        onAllReady = undefined;
        resolve();
      } else pump();
    };
    pump();
  });
  return (nowUs() - t0) / 1000;
}

function ackTick() {
  for (const c of clients) {
    if (c.ws && c.ready && !c.slow && c.lastSeq > c.lastAcked) {
      c.lastAcked = c.lastSeq;
      counters.acks++;
      c.ws.send(`{"t":"ack","s":${c.lastSeq}}`);
    }
  }
}

serve({
  async connect(opts) {
    url = opts.url;
    trackIds = opts.trackIds ?? 0;
    const from = clients.length;
    const list = [];
    for (let i = 0; i < opts.n; i++) list.push(new Client(from + i, opts));
    clients.push(...list);
    ackEnabled = opts.ack !== false;
    ackDelayMs = opts.ackDelayMs ?? 200;
    if (opts.dialect === 'stabilizer' && ackEnabled && !ackTimer) ackTimer = setInterval(ackTick, ackDelayMs);
    const ms = await openAll(list, opts.concurrency ?? 200, opts.timeoutMs ?? 120_000);
    return { ms, ready: clients.filter((c) => c.ready).length };
  },

  /** Zero the counters; with `runId`, report progress of that run to the server's control port. */
  reset({ runId, reportEvery } = {}) {
    resetCounters();
    flow.reported = 0;
    flow.lastTick = -1;
    if (runId !== undefined) {
      flow.runId = runId;
      flow.reportEvery = reportEvery;
      flow.timer ??= setInterval(reportTail, 5);
    } else {
      flow.reportEvery = Infinity;
      clearInterval(flow.timer);
      flow.timer = undefined;
    }
    return true;
  },

  /** Open the flow-control connection to the server (see `saturateRun` in server.mjs). */
  async control({ port }) {
    flow.socket?.destroy();
    flow.socket = tcpConnect({ port, host: '127.0.0.1', noDelay: true });
    await new Promise((resolve, reject) => {
      flow.socket.once('connect', resolve);
      flow.socket.once('error', reject);
    });
    return true;
  },

  /** Stop reading on `fraction` of the clients (they keep their sockets open). */
  pauseSlow({ fraction }) {
    const every = Math.round(1 / fraction);
    let n = 0;
    for (const c of clients) {
      if (c.index % every === 0) {
        c.slow = true;
        c.ws?.pause();
        n++;
      }
    }
    return n;
  },

  stats() {
    return { ...counters, latency: summarize(hist), ready: clients.filter((c) => c.ready).length };
  },

  /** Wait until `expected` measured messages arrived (or `timeoutMs` passed). */
  async waitMeasured({ expected, timeoutMs }) {
    const until = Date.now() + timeoutMs;
    while (counters.measured < expected && Date.now() < until) await sleep(10);
    const cpu = process.cpuUsage(cpuMark);
    const cpuPct = ((cpu.user + cpu.system) / (nowUs() - wallMark)) * 100;
    return { ...counters, latency: summarize(hist), cpuPct };
  },

  /** Resume storm, step 1: every socket dies at once (TCP destroyed, no close handshake). */
  cut() {
    for (const c of clients) {
      const ws = c.ws;
      c.wantOpen = false;
      c.ws = null;
      c.ready = false;
      ws?.terminate();
    }
    return true;
  },

  /**
   * Resume storm, step 2: every client reconnects at once and resumes (token + lastSeq, or pid + offset).
   * Resolves when every client is ready again and holds every message up to `lastN`.
   */
  async reconnectAll({ lastN, timeoutMs, concurrency, jitter = false }) {
    const t0 = nowUs();
    const resumedAt = new Float64Array(clients.length);
    counters.retries = 0;
    // `jitter`: the client library's first retry delay (500-1000 ms); otherwise all at the same instant.
    const delay = jitter ? () => backoffDelayMs(0) : undefined;
    await openAll(clients, concurrency ?? clients.length, timeoutMs, delay);
    const until = Date.now() + timeoutMs;
    const complete = (c) => c.seen[lastN] > 0;
    for (;;) {
      let all = true;
      for (const c of clients) {
        if (resumedAt[c.index] === 0 && c.ready && complete(c)) resumedAt[c.index] = nowUs();
        if (resumedAt[c.index] === 0) all = false;
      }
      if (all || Date.now() > until) break;
      await sleep(5);
    }
    const done = [...resumedAt].filter((t) => t > 0);
    return {
      ms: done.length ? (Math.max(...done) - t0) / 1000 : null,
      completed: done.length,
      resumed: clients.filter((c) => c.resume === 'resumed').length,
      fresh: clients.filter((c) => c.resume === 'fresh').length,
      retries: counters.retries,
    };
  },

  /** Count, over every client, the message numbers 1..lastN that never arrived or arrived more than once. */
  verify({ firstN, lastN }) {
    let lost = 0;
    let duplicated = 0;
    for (const c of clients) {
      for (let n = firstN; n <= lastN; n++) {
        const k = c.seen[n];
        if (k === 0) lost++;
        else if (k > 1) duplicated += k - 1;
      }
    }
    return {
      lost,
      duplicated,
      clients: clients.length,
      messages: lastN - firstN + 1,
      seqErrors: counters.seqErrors,
    };
  },

  async closeAll() {
    clearInterval(ackTimer);
    ackTimer = undefined;
    for (const c of clients) {
      c.wantOpen = false;
      c.ws?.terminate();
    }
    clients = [];
    return true;
  },
});
