import type { AckMessage, PingMessage, PongMessage } from '../../protocol/messages.js';

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

/**
 * The same fast path for `stabilizer.v1.msgpack` (PROTOCOL.md §2.7): `{t:'ping'}`, `{t:'pong'}`, `{t:'pong',s:N}`
 * and `{t:'ack',s:N}` as the bundled MessagePack codec writes them (fixmap, fixstr keys in that order, `s` a
 * positive fixint or uint 8/16/32). Anything else, including a longer spelling of the same message, returns
 * `undefined` and takes the full decoder, which gives the same answer.
 */
export function matchMsgpackHeartbeat(data: Buffer): AckMessage | PingMessage | PongMessage | undefined {
  const length = data.length;
  if (length === MP_PING.length) {
    if (startsWith(data, MP_PING)) return { t: 'ping' };
    if (startsWith(data, MP_PONG)) return { t: 'pong' };
    return undefined;
  }
  if (startsWith(data, MP_ACK_PREFIX)) {
    const s = readMsgpackUint(data, MP_ACK_PREFIX.length);
    return s === undefined ? undefined : { t: 'ack', s };
  }
  if (startsWith(data, MP_PONG_PREFIX)) {
    const s = readMsgpackUint(data, MP_PONG_PREFIX.length);
    return s === undefined ? undefined : { t: 'pong', s };
  }
  return undefined;
}

// 0x81/0x82: fixmap of 1/2; 0xa1 0x74: "t"; 0xa4/0xa3: the type name; 0xa1 0x73: "s".
const MP_PING = Buffer.from([0x81, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67]);
const MP_PONG = Buffer.from([0x81, 0xa1, 0x74, 0xa4, 0x70, 0x6f, 0x6e, 0x67]);
const MP_ACK_PREFIX = Buffer.from([0x82, 0xa1, 0x74, 0xa3, 0x61, 0x63, 0x6b, 0xa1, 0x73]);
const MP_PONG_PREFIX = Buffer.from([0x82, 0xa1, 0x74, 0xa4, 0x70, 0x6f, 0x6e, 0x67, 0xa1, 0x73]);

/** A MessagePack uint that ends the frame exactly at `from`, else `undefined`. */
function readMsgpackUint(data: Buffer, from: number): number | undefined {
  const tag = data[from];
  const rest = data.length - from - 1;
  if (tag === undefined) return undefined;
  if (tag < 0x80) return rest === 0 ? tag : undefined;
  if (tag === 0xcc) return rest === 1 ? data[from + 1] : undefined;
  if (tag === 0xcd) return rest === 2 ? data.readUInt16BE(from + 1) : undefined;
  if (tag === 0xce) return rest === 4 ? data.readUInt32BE(from + 1) : undefined;
  return undefined;
}
