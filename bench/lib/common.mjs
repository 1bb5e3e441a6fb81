// Shared helpers of the benchmark processes.
import hdr from 'hdr-histogram-js';

/** Microseconds on CLOCK_MONOTONIC: the same clock in every process on this machine. */
export function nowUs() {
  const t = process.hrtime();
  return t[0] * 1e6 + Math.floor(t[1] / 1000);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** An HDR histogram of microseconds (1 µs .. 120 s, 3 significant digits). */
export function histogram() {
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

/**
 * The broadcast message, as an object the systems serialize once per broadcast. Its JSON text starts with
 * `{"ph":P,"ts":T,"n":N,` so that a load generator finds the phase, the intended send time and the message
 * number with one `indexOf`, whatever envelope (stabilizer.v1, Socket.IO) wraps it.
 */
export function makeMessage(phase, tsUs, n, pad) {
  return { ph: phase, ts: tsUs, n, pad };
}

/** A padding string such that the JSON of `makeMessage` is about `bytes` long. */
export function padFor(bytes) {
  const probe = JSON.stringify(makeMessage(1, nowUs(), 1_000_000, ''));
  return 'x'.repeat(Math.max(0, bytes - probe.length));
}

/**
 * `count` different padding values of realistic JSON (records with ids, prices, symbols, user ids), such that the
 * JSON of `makeMessage` is about `bytes` long. Messages cycle through them, so that a compressor that keeps its
 * context between messages (ws and Socket.IO by default) does not get the same text again and again.
 */
export function realisticPads(bytes, count = 64) {
  let s = 12345;
  const rnd = () => (s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const words = [
    'order',
    'filled',
    'price',
    'market',
    'update',
    'BTC-USD',
    'ETH-USD',
    'pending',
    'ok',
    'cancel',
  ];
  const base = JSON.stringify(makeMessage(1, nowUs(), 1_000_000, { items: [] })).length;
  const pads = [];
  for (let k = 0; k < count; k++) {
    const items = [];
    for (;;) {
      const item = {
        id: 100_000 + Math.floor(rnd() * 900_000),
        sym: words[Math.floor(rnd() * words.length)],
        px: +(rnd() * 50_000).toFixed(2),
        qty: +(rnd() * 10).toFixed(4),
        side: rnd() < 0.5 ? 'buy' : 'sell',
        user: `u${Math.floor(rnd() * 1e6).toString(36)}`,
        note: `${words[Math.floor(rnd() * words.length)]} ${words[Math.floor(rnd() * words.length)]}`,
      };
      if (items.length > 0 && base + JSON.stringify(items).length + JSON.stringify(item).length > bytes)
        break;
      items.push(item);
    }
    pads.push({ items });
  }
  return pads;
}

export const MARKER = Buffer.from('{"ph":');

/** Parse an unsigned decimal at `buf[i..]`; returns [value, indexAfter]. */
export function readUint(buf, i) {
  let v = 0;
  for (;;) {
    const c = buf[i];
    if (c < 48 || c > 57 || c === undefined) return [v, i];
    v = v * 10 + (c - 48);
    i++;
  }
}

/**
 * Find the message fields inside any envelope. Returns false if the frame carries no benchmark message.
 * Writes phase, ts and n into `out`.
 */
export function parseMessage(buf, out) {
  const at = buf.indexOf(MARKER);
  if (at < 0) return false;
  let i = at + 6;
  [out.ph, i] = readUint(buf, i);
  [out.ts, i] = readUint(buf, i + 6); // ,"ts":
  [out.n, i] = readUint(buf, i + 5); // ,"n":
  return true;
}

/** Summary of a histogram, in microseconds. */
export function summarize(h) {
  if (h.totalCount === 0) return { count: 0, p50: null, p99: null, max: null };
  return {
    count: h.totalCount,
    p50: h.getValueAtPercentile(50),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    max: h.maxValue,
  };
}

export function memory() {
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, rss: m.rss, external: m.external, arrayBuffers: m.arrayBuffers };
}

/** Full GC a few times so that heap figures are stable. Needs --expose-gc. */
export async function fullGc() {
  for (let i = 0; i < 4; i++) {
    globalThis.gc?.();
    await sleep(50);
  }
}
