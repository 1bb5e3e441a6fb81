import { constants, inflateRawSync } from 'node:zlib';

// Helpers for the permessage-deflate tests: realistic JSON, and server frames read and inflated by hand.

/** Realistic JSON of about `bytes`: records with numbers, ids and repeated keys (shrinks about 3× with deflate). */
export function realisticJson(bytes: number, seed = 1): { items: object[] } {
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const words = ['order', 'filled', 'price', 'market', 'update', 'BTC-USD', 'ETH-USD', 'pending', 'ok'];
  const items: object[] = [];
  while (JSON.stringify({ items }).length < bytes) {
    items.push({
      id: 100_000 + Math.floor(rnd() * 900_000),
      sym: words[Math.floor(rnd() * words.length)],
      px: +(rnd() * 50_000).toFixed(2),
      qty: +(rnd() * 10).toFixed(4),
      side: rnd() < 0.5 ? 'buy' : 'sell',
      user: `u${Math.floor(rnd() * 1e6).toString(36)}`,
    });
  }
  return { items };
}

export const RSV1 = 0x40;

/** The payload of one unfragmented server frame (header parsed, no mask). */
export function framePayload(frame: Buffer): Buffer {
  const length = frame[1]! & 0x7f;
  return frame.subarray(length === 126 ? 4 : length === 127 ? 10 : 2);
}

/** RFC 7692 §7.2.2: append 00 00 FF FF and inflate. */
export function inflateFrame(frame: Buffer): string {
  return inflateFrameBytes(frame).toString();
}

/** {@link inflateFrame} for a binary frame: the inflated bytes. */
export function inflateFrameBytes(frame: Buffer): Buffer {
  const body = Buffer.concat([framePayload(frame), Buffer.from([0, 0, 0xff, 0xff])]);
  return inflateRawSync(body, { finishFlush: constants.Z_SYNC_FLUSH });
}
