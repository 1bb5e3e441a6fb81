import type { AckMessage, PingMessage, PongMessage } from '../protocol/messages.js';

/**
 * Fast path for the heartbeat frames of the bundled client: `{"t":"ping"}`, `{"t":"pong","s":N}`,
 * `{"t":"ack","s":N}` (and the bare `{"t":"pong"}`), recognised from their exact bytes with no UTF-8 decoding and no
 * `JSON.parse`. At thousands of idle connections these are most of the inbound frames.
 *
 * Returns the message `decodeClientMessage` would return for the same bytes, or `undefined` for anything else
 * (other spellings, spaces, leading zeros, sequences past 2^53 − 1): the caller then runs the full decoder, which
 * gives the answer it always gave. So the fast path never accepts or rejects what the decoder would not.
 */
export function matchHeartbeatFrame(data: Buffer): AckMessage | PingMessage | PongMessage | undefined {
  const length = data.length;
  // The shortest is `{"t":"ack","s":0}` / `{"t":"ping"}` (12 bytes); the longest has 16 digits.
  if (length < 12 || length > PONG_PREFIX.length + MAX_DIGITS + 1) return undefined;
  if (data[length - 1] !== CLOSE_BRACE) return undefined;
  if (length === PING.length) {
    if (startsWith(data, PING)) return { t: 'ping' };
    if (startsWith(data, BARE_PONG)) return { t: 'pong' };
    return undefined;
  }
  if (startsWith(data, PONG_PREFIX)) {
    const s = readSeq(data, PONG_PREFIX.length);
    return s === undefined ? undefined : { t: 'pong', s };
  }
  if (startsWith(data, ACK_PREFIX)) {
    const s = readSeq(data, ACK_PREFIX.length);
    return s === undefined ? undefined : { t: 'ack', s };
  }
  return undefined;
}

const CLOSE_BRACE = 0x7d;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
/** Digits of `Number.MAX_SAFE_INTEGER`; longer numbers are left to the decoder. */
const MAX_DIGITS = 16;
const PING = Buffer.from('{"t":"ping"}');
const BARE_PONG = Buffer.from('{"t":"pong"}');
const PONG_PREFIX = Buffer.from('{"t":"pong","s":');
const ACK_PREFIX = Buffer.from('{"t":"ack","s":');

/** A loop, not `Buffer.compare`: for a dozen bytes the native call costs more than the comparison. */
function startsWith(data: Buffer, prefix: Buffer): boolean {
  if (data.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[i] !== prefix[i]) return false;
  return true;
}

/**
 * The decimal sequence between `from` and the closing brace (the last byte): JSON's spelling (no sign, no leading
 * zero, no fraction or exponent) and a safe integer, else `undefined`.
 */
function readSeq(data: Buffer, from: number): number | undefined {
  const end = data.length - 1;
  const digits = end - from;
  if (digits < 1 || digits > MAX_DIGITS) return undefined;
  if (digits > 1 && data[from] === DIGIT_0) return undefined;
  let n = 0;
  for (let i = from; i < end; i++) {
    const c = data[i]!;
    if (c < DIGIT_0 || c > DIGIT_9) return undefined;
    n = n * 10 + (c - DIGIT_0); // exact while n ≤ 2^53; beyond, it stays above the safe range
  }
  return Number.isSafeInteger(n) ? n : undefined;
}
