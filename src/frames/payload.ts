import type { MsgpackCodec } from './msgpack.js';
import { PayloadMsgpack } from './msgpack-frames.js';
import {
  frame,
  headerBytes,
  INLINE_TAIL_BYTES,
  OPCODE_BINARY,
  OPCODE_TEXT,
  textFrame,
  writeHeader,
} from './ws-frame.js';

export {
  dataFrame,
  frame,
  headerBytes,
  INLINE_TAIL_BYTES,
  OPCODE_BINARY,
  PING_FRAME,
  PROTOCOL_PING_FRAME,
  PROTOCOL_PONG_FRAME,
  textFrame,
  writeHeader,
} from './ws-frame.js';

/** A shared message's deflated frames by variant (`topic`, `plain`, `volatile`, ...); `null`: sent uncompressed. */
export type DeflatedFrames = Map<string, Buffer | null>;

/** What applications may send: text, any JSON value, or bytes. */
export type SendData = string | Buffer | ArrayBuffer | Uint8Array | object | number | boolean | null;

/** Bytes, sent as a binary frame: accepted by every send, whatever the manager's `Out` (as by the client's). */
export type BinaryPayload = Uint8Array | ArrayBuffer;

/** The request/reply fields of a payload: a request id `q`, or the id `r` it answers (with `e`, an error code). */
export interface PayloadRpc {
  q?: number;
  r?: number;
  e?: string;
}

/**
 * One outbound message, encoded once and shared by every recipient of a broadcast and by every replay buffer
 * that holds it. Plain mode sends `plain` as it is; protocol mode wraps `json` (or `binary`) in a data frame.
 */
export class Payload {
  /** Plain-mode frame: the text as given, the JSON text of a value, or the bytes. */
  readonly plain: string | Buffer;
  readonly isBinary: boolean;
  private jsonText: string | undefined;
  private byteCount: number | undefined;
  private volatileFrame: string | undefined;
  /**
   * Request/reply fields (PROTOCOL.md §2.8) of a reliable direct message, as JSON text after `p`: `,"q":7` for a
   * request, `,"r":7` for a reply, `,"r":7,"e":"CODE"` for an error reply. Empty for every other message.
   */
  readonly fields: string = '';
  /** The same fields as values, for storage backends that re-create the payload elsewhere. */
  readonly rpc: PayloadRpc | undefined;
  /** Wire frames, built on first use and then shared by every recipient (see `Connection.writePayload`). */
  private plainWire: Buffer | undefined;
  private volatileWire: Buffer | undefined;
  /** Protocol mode, reliable: the bytes after the per-recipient header (`<json>}`, or the binary payload). */
  private reliableTail: Buffer | undefined;
  /** Whether `plain` is the JSON text of a value (not a string payload as given). */
  private readonly isJsonValue: boolean = false;
  /** The `stabilizer.v1.msgpack` frames, built on the first MessagePack recipient and then shared. */
  private mp: PayloadMsgpack | undefined;

  /**
   * permessage-deflate frames of this payload by variant (`plain`, `volatile`, `mp-volatile`; `s<seq>`, `mp-s<seq>`
   * for a direct message), deflated once (compression.ts).
   */
  deflated: DeflatedFrames | undefined = undefined;

  constructor(data: SendData, rpc?: PayloadRpc) {
    if (rpc) {
      if (
        typeof data === 'object' &&
        data !== null &&
        (Buffer.isBuffer(data) || ArrayBuffer.isView(data) || data instanceof ArrayBuffer)
      ) {
        throw new TypeError('requests and replies carry JSON, not bytes');
      }
      this.rpc = rpc;
      this.fields =
        rpc.q !== undefined
          ? `,"q":${rpc.q}`
          : `,"r":${rpc.r}${rpc.e === undefined ? '' : `,"e":${JSON.stringify(rpc.e)}`}`;
    }
    if (typeof data === 'string') {
      this.plain = data;
      this.isBinary = false;
    } else if (Buffer.isBuffer(data)) {
      this.plain = data;
      this.isBinary = true;
    } else if (data instanceof Uint8Array) {
      this.plain = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      this.isBinary = true;
    } else if (data instanceof ArrayBuffer) {
      this.plain = Buffer.from(data);
      this.isBinary = true;
    } else {
      const json = JSON.stringify(data);
      if (json === undefined) throw new TypeError('payload is not JSON-serializable');
      this.plain = json;
      this.jsonText = json;
      this.isBinary = false;
      this.isJsonValue = true;
    }
  }

  /**
   * The MessagePack frames of this payload (PROTOCOL.md §2.7), encoded once on first use. The value is the one
   * JSON recipients get (decoded from its JSON text), so every encoding of a topic delivers equal values; bytes
   * become a MessagePack `bin`.
   */
  msgpack(codec: MsgpackCodec): PayloadMsgpack {
    return (this.mp ??= new PayloadMsgpack(codec.pack(this.value())));
  }

  /** The payload as a value: the JSON value it was given as, or the text or bytes as they are. */
  value(): unknown {
    return this.isJsonValue ? (JSON.parse(this.plain as string) as unknown) : this.plain;
  }

  /** UTF-8 size of the payload, for replay-buffer accounting (computed once, shared by every buffer). */
  get bytes(): number {
    return (this.byteCount ??=
      typeof this.plain === 'string' ? Buffer.byteLength(this.plain) : this.plain.length);
  }

  /** The payload as JSON text, for protocol-mode text frames (computed once). */
  get json(): string {
    return (this.jsonText ??= JSON.stringify(this.plain));
  }

  /** Protocol-mode text frame for a reliable message with sequence `seq`. */
  reliableText(seq: number): string {
    return `{"t":"d","s":${seq},"p":${this.json}${this.fields}}`;
  }

  /** Protocol-mode text frame for a volatile message; identical for every recipient, so built once. */
  volatileText(): string {
    return (this.volatileFrame ??= `{"t":"d","p":${this.json}}`);
  }

  /** The complete WebSocket frame of a plain-mode send (built once, written to every plain recipient). */
  plainFrame(): Buffer {
    return (this.plainWire ??= this.isBinary
      ? frame(OPCODE_BINARY, this.plain as Buffer)
      : textFrame(this.plain as string));
  }

  /** The complete WebSocket frame of a protocol-mode volatile message (built once). */
  volatileFrameBytes(): Buffer {
    if (this.volatileWire) return this.volatileWire;
    if (!this.isBinary) return (this.volatileWire = frame(OPCODE_TEXT, Buffer.from(this.volatileText())));
    const bytes = this.plain as Buffer;
    const body = Buffer.allocUnsafe(1 + bytes.length);
    body[0] = BINARY_VOLATILE;
    bytes.copy(body, 1);
    return (this.volatileWire = frame(OPCODE_BINARY, body));
  }

  /**
   * The frame of a protocol-mode reliable message for sequence `seq`, as a per-recipient head and the tail
   * shared by all recipients (`undefined` when the tail is small enough to be copied into the head: one write
   * is cheaper than two for small messages). Only the head is built per recipient; the payload is never
   * serialized again.
   */
  reliableFrameHead(seq: number): Buffer {
    const tail = (this.reliableTail ??= this.isBinary
      ? (this.plain as Buffer)
      : Buffer.from(`${this.json}${this.fields}}`));
    const inline = tail.length <= INLINE_TAIL_BYTES;
    if (this.isBinary) {
      const length = 9 + tail.length;
      const head = Buffer.allocUnsafe(headerBytes(length) + 9 + (inline ? tail.length : 0));
      let at = writeHeader(head, OPCODE_BINARY, length);
      head[at] = BINARY_RELIABLE;
      head.writeDoubleBE(seq, at + 1);
      at += 9;
      if (inline) tail.copy(head, at);
      return head;
    }
    const digits = decimalDigits(seq);
    const length = RELIABLE_PREFIX.length + digits + RELIABLE_INFIX.length + tail.length;
    const headLength = length - (inline ? 0 : tail.length);
    const head = Buffer.allocUnsafe(headerBytes(length) + headLength);
    let at = writeHeader(head, OPCODE_TEXT, length);
    at += RELIABLE_PREFIX.copy(head, at);
    at = writeDecimal(head, at, seq, digits);
    at += RELIABLE_INFIX.copy(head, at);
    if (inline) tail.copy(head, at);
    return head;
  }

  /** The shared tail of `reliableFrameHead`, or `undefined` when the head holds the whole frame. */
  reliableFrameTail(): Buffer | undefined {
    const tail = this.reliableTail;
    return tail && tail.length > INLINE_TAIL_BYTES ? tail : undefined;
  }
}

// PROTOCOL.md §2: byte 0 of a binary data frame, and the fixed parts of a reliable text data frame.
const BINARY_RELIABLE = 1;
const BINARY_VOLATILE = 2;
const RELIABLE_PREFIX = Buffer.from('{"t":"d","s":');
const RELIABLE_INFIX = Buffer.from(',"p":');

function decimalDigits(n: number): number {
  let digits = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    digits++;
  }
  return digits;
}

function writeDecimal(buf: Buffer, at: number, n: number, digits: number): number {
  for (let i = at + digits - 1; i >= at; i--) {
    const q = Math.floor(n / 10);
    buf[i] = 48 + (n - q * 10);
    n = q;
  }
  return at + digits;
}
