import type { MsgpackCodec } from './msgpack.js';
import { headerBytes, OPCODE_BINARY, writeHeader } from './ws-frame.js';

// The `stabilizer.v1.msgpack` data frames (PROTOCOL.md §2.7), built from bytes: MessagePack is a concatenation, so
// a payload encoded once (`p`) is followed by nothing and preceded by a small map head, like the JSON frames. A
// reliable message's head carries the recipient's sequence; everything else is the same bytes for every recipient.

/** `{t:'d', p}`, `{t:'d', s, p}`: fixmap of 2 / 3, then the keys and values up to `s`'s value. */
const VOLATILE_HEAD = Buffer.from([0x82, 0xa1, 0x74, 0xa1, 0x64, 0xa1, 0x70]); // …"p" key last
const RELIABLE_PREFIX = Buffer.from([0x83, 0xa1, 0x74, 0xa1, 0x64, 0xa1, 0x73]); // then s
const KEY_P = Buffer.from([0xa1, 0x70]);
const KEY_C = Buffer.from([0xa1, 0x63]);
const KEY_O = Buffer.from([0xa1, 0x6f]);
/** Small tails are copied into each head: one write per frame (as in payload.ts). */
const INLINE_TAIL_BYTES = 1024;

/** Bytes of a sequence or offset as MessagePack: a uint up to 2^32 − 1, beyond that a float64 (as msgpackr). */
function uintBytes(n: number): number {
  return n < 0x80 ? 1 : n <= 0xff ? 2 : n <= 0xffff ? 3 : n <= 0xffffffff ? 5 : 9;
}

function writeUint(buf: Buffer, at: number, n: number): number {
  if (n < 0x80) buf[at++] = n;
  else if (n <= 0xff) {
    buf[at++] = 0xcc;
    buf[at++] = n;
  } else if (n <= 0xffff) {
    buf[at] = 0xcd;
    buf.writeUInt16BE(n, at + 1);
    at += 3;
  } else if (n <= 0xffffffff) {
    buf[at] = 0xce;
    buf.writeUInt32BE(n, at + 1);
    at += 5;
  } else {
    buf[at] = 0xcb;
    buf.writeDoubleBE(n, at + 1);
    at += 9;
  }
  return at;
}

/** A binary WebSocket frame holding `parts`, concatenated. */
function binaryFrame(parts: Buffer[]): Buffer {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = Buffer.allocUnsafe(headerBytes(length) + length);
  let at = writeHeader(out, OPCODE_BINARY, length);
  for (const p of parts) at += p.copy(out, at);
  return out;
}

/** The MessagePack frames of one payload, cached on it (`Payload.msgpack`) and shared by every recipient. */
export class PayloadMsgpack {
  private volatileBody: Buffer | undefined;
  private volatileWire: Buffer | undefined;

  /** @param p the payload value, MessagePack-encoded once. */
  constructor(readonly p: Buffer) {}

  /** `{t:'d', p}` without the WebSocket header (for `ws.send`, and what a deflated volatile frame holds). */
  volatileMessage(): Buffer {
    return (this.volatileBody ??= Buffer.concat([VOLATILE_HEAD, this.p]));
  }

  /** The complete WebSocket frame of a volatile message, built once. */
  volatileFrame(): Buffer {
    return (this.volatileWire ??= binaryFrame([this.volatileMessage()]));
  }

  /** `{t:'d', s, p}` without the WebSocket header (for `ws.send`). */
  reliableMessage(seq: number): Buffer {
    const head = Buffer.allocUnsafe(RELIABLE_PREFIX.length + uintBytes(seq) + KEY_P.length);
    let at = RELIABLE_PREFIX.copy(head, 0);
    at = writeUint(head, at, seq);
    KEY_P.copy(head, at);
    return Buffer.concat([head, this.p]);
  }

  /**
   * The frame of a reliable message for `seq`: the per-recipient head, holding the whole frame when the payload is
   * small; else {@link reliableTail} (the shared payload bytes) follows it.
   */
  reliableHead(seq: number): Buffer {
    const inline = this.p.length <= INLINE_TAIL_BYTES;
    const headBody = RELIABLE_PREFIX.length + uintBytes(seq) + KEY_P.length;
    const length = headBody + this.p.length;
    const head = Buffer.allocUnsafe(headerBytes(length) + headBody + (inline ? this.p.length : 0));
    let at = writeHeader(head, OPCODE_BINARY, length);
    at += RELIABLE_PREFIX.copy(head, at);
    at = writeUint(head, at, seq);
    at += KEY_P.copy(head, at);
    if (inline) this.p.copy(head, at);
    return head;
  }

  /** The shared tail of {@link reliableHead}, or `undefined` when the head holds the whole frame. */
  reliableTail(): Buffer | undefined {
    return this.p.length > INLINE_TAIL_BYTES ? this.p : undefined;
  }
}

/**
 * The MessagePack frames of one topic publication (`{t:'d', c, o?, p}` and `{t:'skip', c, o}`), cached on the
 * publication and written to every MessagePack member and replay.
 */
export class PublicationMsgpack {
  private message: Buffer | undefined;
  private wire: Buffer | undefined;
  private skipWire: Buffer | undefined;

  constructor(
    private readonly codec: MsgpackCodec,
    private readonly topic: string,
    private readonly offset: number | undefined,
    private readonly payload: PayloadMsgpack,
  ) {}

  /** The data message without the WebSocket header (for `ws.send`). */
  body(): Buffer {
    if (this.message) return this.message;
    const reliable = this.offset !== undefined;
    const head = Buffer.allocUnsafe(5 + (reliable ? 2 + uintBytes(this.offset) : 0));
    head[0] = reliable ? 0x84 : 0x83;
    head.set([0xa1, 0x74, 0xa1, 0x64], 1); // t: 'd'
    if (reliable) {
      KEY_O.copy(head, 5);
      writeUint(head, 7, this.offset);
    }
    const parts = [head.subarray(0, 5), KEY_C, this.codec.pack(this.topic)];
    if (reliable) parts.push(head.subarray(5));
    parts.push(KEY_P, this.payload.p);
    return (this.message = Buffer.concat(parts));
  }

  /** The complete WebSocket frame of {@link body}, built once. */
  frame(): Buffer {
    return (this.wire ??= binaryFrame([this.body()]));
  }

  /** `{t:'skip', c, o}` without the WebSocket header. */
  skipBody(): Buffer {
    return this.codec.packMessage({ t: 'skip', c: this.topic, o: this.offset ?? 0 });
  }

  /** The complete WebSocket frame of {@link skipBody}, built once for every excluded member. */
  skipFrame(): Buffer {
    return (this.skipWire ??= binaryFrame([this.skipBody()]));
  }
}

/** `{t:'ping'}` and `{t:'pong'}` as MessagePack frames, framed once for every connection. */
export const MSGPACK_PING_MESSAGE = Buffer.from([0x81, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67]);
export const MSGPACK_PONG_MESSAGE = Buffer.from([0x81, 0xa1, 0x74, 0xa4, 0x70, 0x6f, 0x6e, 0x67]);
export const MSGPACK_PING_FRAME: Buffer = Buffer.concat([
  Buffer.from([OPCODE_BINARY, 8]),
  MSGPACK_PING_MESSAGE,
]);
export const MSGPACK_PONG_FRAME: Buffer = Buffer.concat([
  Buffer.from([OPCODE_BINARY, 8]),
  MSGPACK_PONG_MESSAGE,
]);
