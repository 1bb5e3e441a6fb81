// Micro-benchmark: server CPU per inbound heartbeat frame, the byte-matching fast path against the JSON decoder,
// side by side. Not part of `npm test`; run it on an idle machine: `node bench/heartbeat-parse.mjs [--rounds=N]`.
//
// Each round times both variants on the same frames, in alternating order (so that neither always runs warm or
// second), and the report gives the median ratio over the rounds with its spread. Nothing is asserted.
import { build } from 'esbuild';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const arg = (name, fallback) => {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? Number(hit.split('=')[1]) : fallback;
};
const ROUNDS = arg('rounds', 31);
const FRAMES_PER_ROUND = arg('frames', 200_000);

// The functions under test come from the sources (they are not public API): bundle them to a temporary module.
const dir = mkdtempSync(join(tmpdir(), 'heartbeat-parse-'));
const out = join(dir, 'under-test.mjs');
const root = new URL('..', import.meta.url).pathname;
await build({
  stdin: {
    contents: [
      "export { matchHeartbeatFrame } from './src/server/session/heartbeat-frames.ts';",
      "export { decodeClientMessage } from './src/protocol/messages.ts';",
      "export { PROTOCOL_PONG_FRAME, textFrame } from './src/frames/payload.ts';",
    ].join('\n'),
    resolveDir: root,
    loader: 'ts',
  },
  bundle: true,
  platform: 'node',
  format: 'esm',
  outfile: out,
  logLevel: 'error',
});
const { matchHeartbeatFrame, decodeClientMessage, PROTOCOL_PONG_FRAME, textFrame } = await import(
  pathToFileURL(out).href
);
rmSync(dir, { recursive: true, force: true });

// What the bundled client sends on an idle connection: pongs and acks with its last sequence, now and then a ping.
const frames = [];
for (let i = 0; i < 1024; i++) {
  const s = 1000 + i * 37;
  const text = i % 16 === 0 ? '{"t":"ping"}' : `{"t":"${i % 2 ? 'pong' : 'ack'}","s":${s}}`;
  frames.push(Buffer.from(text));
}

let sink = 0;
const variants = {
  // Inbound: what ProtocolHandler.handleFrame does before and after the fast path.
  'decode: JSON': (buf) => {
    const m = decodeClientMessage(buf.toString('utf8'));
    sink += m.s ?? 1;
  },
  'decode: fast path': (buf) => {
    const m = matchHeartbeatFrame(buf) ?? decodeClientMessage(buf.toString('utf8'));
    sink += m.s ?? 1;
  },
  // Outbound answer to a client ping: framed per answer before, one shared frame now.
  'pong: framed per answer': () => {
    sink += textFrame('{"t":"pong"}').length;
  },
  'pong: pre-framed': () => {
    sink += PROTOCOL_PONG_FRAME.length;
  },
};

function timeNs(fn) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < FRAMES_PER_ROUND; i++) fn(frames[i & 1023]);
  return Number(process.hrtime.bigint() - t0);
}

function compare(slow, fast) {
  // Warm both up before measuring.
  timeNs(variants[slow]);
  timeNs(variants[fast]);
  const ratios = [];
  const perFrame = { [slow]: [], [fast]: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? [slow, fast] : [fast, slow];
    const ns = {};
    for (const name of order) ns[name] = timeNs(variants[name]);
    ratios.push(ns[slow] / ns[fast]);
    perFrame[slow].push(ns[slow] / FRAMES_PER_ROUND);
    perFrame[fast].push(ns[fast] / FRAMES_PER_ROUND);
  }
  return { ratios, perFrame };
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))];
};
const fmt = (x, digits = 1) => x.toFixed(digits);

console.log(
  `node ${process.version}, ${ROUNDS} interleaved rounds of ${FRAMES_PER_ROUND} frames per variant\n`,
);
for (const [slow, fast] of [
  ['decode: JSON', 'decode: fast path'],
  ['pong: framed per answer', 'pong: pre-framed'],
]) {
  const { ratios, perFrame } = compare(slow, fast);
  for (const name of [slow, fast]) {
    const xs = perFrame[name];
    console.log(
      `${name.padEnd(26)} median ${fmt(quantile(xs, 0.5))} ns/frame (p10 ${fmt(quantile(xs, 0.1))}, p90 ${fmt(quantile(xs, 0.9))})`,
    );
  }
  console.log(
    `${'ratio'.padEnd(26)} median ${fmt(quantile(ratios, 0.5), 2)}× (p10 ${fmt(quantile(ratios, 0.1), 2)}×, p90 ${fmt(quantile(ratios, 0.9), 2)}×, min ${fmt(Math.min(...ratios), 2)}×, max ${fmt(Math.max(...ratios), 2)}×)\n`,
  );
}
if (sink === 0) console.log(''); // keeps the work observable
