// MessagePack vs JSON on the same realistic messages: CPU to encode and to decode one protocol data frame, and its
// bytes on the wire. In-process micro-benchmark: `node bench/encoding.mjs [--rounds=N] [--json]` (`npm run bench`
// runs it as the `encoding` workload). Nothing is asserted.
//
// Each round times both encodings on the same message, in alternating order (so neither always runs warm or
// second); the report gives per-message medians with their p10–p90 spread and the median ratio over the rounds.
// Time is this process's CPU time (process.cpuUsage), not wall time.
// The codecs are the ones the package uses: JSON.stringify/parse, and msgpackr with the options of
// src/frames/msgpack.ts and src/client/msgpack.ts.
import { Packr, Unpackr } from 'msgpackr';

const arg = (name, fallback) => {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? Number(hit.split('=')[1]) : fallback;
};
const ROUNDS = arg('rounds', 21);
const asJson = process.argv.includes('--json');
const OPTIONS = {
  useRecords: false,
  variableMapSize: true,
  encodeUndefinedAsNil: true,
  int64AsType: 'number',
};
const packr = new Packr(OPTIONS);
const unpackr = new Unpackr(OPTIONS);

// Deterministic "realistic" payloads: a chat message (~150 B of JSON), a market/order update (~2 KB) and a
// dashboard snapshot (~16 KB), each wrapped in the topic data frame `{t:'d', c, o, p}` the server sends.
let seed = 42;
const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const word = () =>
  ['alpha', 'delta', 'orbit', 'quartz', 'nimbus', 'vector', 'harbor'][Math.floor(rand() * 7)];
const chat = {
  type: 'chat',
  room: 'room:42',
  user: { id: 'u_18342', name: 'Ada Lovelace' },
  text: 'Meeting moved to 3pm, bring the Q3 numbers',
  sentAt: 1732700000000,
};
const row = (i) => ({
  id: `ord_${100000 + i}`,
  symbol: ['AAPL', 'MSFT', 'NVDA', 'AMZN'][i % 4],
  side: i % 2 ? 'buy' : 'sell',
  price: Math.round(rand() * 100000) / 100,
  qty: Math.floor(rand() * 1000),
  filled: rand() > 0.5,
  tags: [word(), word()],
  ts: 1732700000000 + i * 137,
});
const orders = {
  type: 'orders',
  venue: 'XNAS',
  seq: 981234,
  rows: Array.from({ length: 14 }, (_, i) => row(i)),
};
const snapshot = {
  type: 'snapshot',
  dashboard: 'ops-eu-west',
  generatedAt: '2026-11-27T15:00:00.000Z',
  series: Array.from({ length: 110 }, (_, i) => ({
    name: `${word()}-${i}`,
    unit: i % 3 ? 'ms' : 'req/s',
    points: Array.from({ length: 12 }, () => Math.round(rand() * 1e5) / 100),
    alert: rand() > 0.9 ? { level: 'warn', note: `${word()} ${word()} over threshold` } : null,
  })),
};
const messages = {
  'chat (~150 B JSON)': { t: 'd', c: 'room:42', o: 1207, p: chat },
  'orders (~2 KB JSON)': { t: 'd', c: 'orders', o: 88211, p: orders },
  'snapshot (~16 KB JSON)': { t: 'd', c: 'dash', o: 5, p: snapshot },
  'ack (heartbeat)': { t: 'ack', s: 123456 },
};

let sink = 0;
/** One operation per variant and direction. Decoding starts from the bytes a socket delivers (a Buffer). */
function variantsFor(message) {
  const jsonBytes = Buffer.from(JSON.stringify(message));
  const packed = packr.pack(message);
  return {
    bytes: { json: jsonBytes.length, msgpack: packed.length },
    encode: {
      json: () => (sink += Buffer.byteLength(JSON.stringify(message))),
      msgpack: () => (sink += packr.pack(message).length),
    },
    decode: {
      json: () => (sink += JSON.parse(jsonBytes.toString('utf8')).t.length),
      msgpack: () => (sink += unpackr.unpack(packed).t.length),
    },
  };
}

/**
 * CPU time of this process (user + system), in ns: on a machine shared with other jobs, time spent descheduled
 * does not count, which wall-clock time would (the spread still shows the remaining noise: caches, frequency).
 */
const cpuNs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
};

/** Enough iterations for ~30 ms of CPU per variant per round. */
function iterationsFor(fn) {
  let n = 1;
  for (;;) {
    const t0 = cpuNs();
    for (let i = 0; i < n; i++) fn();
    if (cpuNs() - t0 > 30e6) return n;
    n *= 2;
  }
}

function timeNs(fn, n) {
  const t0 = cpuNs();
  for (let i = 0; i < n; i++) fn();
  return (cpuNs() - t0) / n;
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))];
};
const summary = (xs) => ({ median: quantile(xs, 0.5), p10: quantile(xs, 0.1), p90: quantile(xs, 0.9) });

const report = [];
for (const [name, message] of Object.entries(messages)) {
  const v = variantsFor(message);
  const entry = { message: name, bytes: v.bytes };
  for (const op of ['encode', 'decode']) {
    const fns = v[op];
    const n = Math.max(iterationsFor(fns.json), iterationsFor(fns.msgpack));
    const ns = { json: [], msgpack: [] };
    const ratios = [];
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 ? ['json', 'msgpack'] : ['msgpack', 'json'];
      const t = {};
      for (const k of order) t[k] = timeNs(fns[k], n);
      ns.json.push(t.json);
      ns.msgpack.push(t.msgpack);
      ratios.push(t.msgpack / t.json);
    }
    entry[op] = { json: summary(ns.json), msgpack: summary(ns.msgpack), ratio: summary(ratios), rounds: ns };
  }
  report.push(entry);
}

if (asJson) {
  console.log(JSON.stringify({ rounds: ROUNDS, node: process.version, results: report }));
} else {
  const f = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
  const s = (m) => `${f(m.median)} ns (p10 ${f(m.p10)}, p90 ${f(m.p90)})`;
  console.log(
    `node ${process.version}, ${ROUNDS} interleaved rounds; ratio = MessagePack / JSON (< 1: MessagePack wins)\n`,
  );
  for (const e of report) {
    console.log(
      `${e.message}: ${e.bytes.json} B JSON, ${e.bytes.msgpack} B MessagePack (${(e.bytes.msgpack / e.bytes.json).toFixed(2)}×)`,
    );
    for (const op of ['encode', 'decode']) {
      const r = e[op].ratio;
      console.log(`  ${op}: JSON ${s(e[op].json)}; MessagePack ${s(e[op].msgpack)}`);
      console.log(
        `  ${op} ratio: median ${r.median.toFixed(2)}× (p10 ${r.p10.toFixed(2)}×, p90 ${r.p90.toFixed(2)}×)`,
      );
    }
  }
}
if (sink === 0) console.log('');
