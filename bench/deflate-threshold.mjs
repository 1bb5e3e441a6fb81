// Where should a deflate leave the event loop? For realistic JSON of growing size, the event-loop time of one
// deflate done inline (`deflateRawSync`) and of one handed to zlib's thread pool (`deflateRaw`: the call and its
// callback; the compression itself runs on another thread). The compression settings are the library's defaults
// (level 1, memLevel 8, window 15, sync flush). Rounds are interleaved; medians with min–max.
//
//   node bench/deflate-threshold.mjs
import { constants, deflateRaw, deflateRawSync } from 'node:zlib';
import { makeMessage, realisticPads } from './lib/common.mjs';

const options = { level: 1, memLevel: 8, windowBits: 15, finishFlush: constants.Z_SYNC_FLUSH };
const sizes = [1024, 2048, 8192, 16_384, 32_768, 65_536, 262_144];
const rounds = 7;

const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
const us = (t0) => Number(process.hrtime.bigint() - t0) / 1000;

function inline(body, n) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) deflateRawSync(body, options);
  return us(t0) / n;
}

/** Event-loop time of `n` pool deflates, one after the other: the `deflateRaw` calls and the callbacks. */
function pooled(body, n) {
  return new Promise((resolve) => {
    let spent = 0;
    let left = n;
    const go = () => {
      const t0 = process.hrtime.bigint();
      deflateRaw(body, options, () => {
        const t1 = process.hrtime.bigint();
        if (--left === 0) resolve((spent + us(t1)) / n);
        else go();
        spent += us(t1);
      });
      spent += us(t0);
    };
    go();
  });
}

console.log('payload   ratio   inline deflate (event loop)    thread pool (event loop)');
for (const bytes of sizes) {
  const body = Buffer.from(JSON.stringify(makeMessage(1, 0, 1, realisticPads(bytes, 1)[0])));
  const ratio = body.length / (deflateRawSync(body, options).length - 4);
  const n = bytes >= 65_536 ? 20 : 200;
  const a = [];
  const b = [];
  for (let r = 0; r < rounds; r++) {
    a.push(inline(body, n));
    b.push(await pooled(body, n));
  }
  const fmt = (v) =>
    `${median(v).toFixed(0).padStart(6)} µs (${Math.min(...v).toFixed(0)}–${Math.max(...v).toFixed(0)})`.padEnd(
      30,
    );
  console.log(`${String(body.length).padStart(7)} B ${ratio.toFixed(2).padStart(5)}×  ${fmt(a)} ${fmt(b)}`);
}
