// WebSocket framing (RFC 6455 §5.2). Server frames are never masked, so a frame can be built once and written to
// any number of sockets.

export const OPCODE_TEXT = 0x81; // FIN + text
export const OPCODE_BINARY = 0x82; // FIN + binary
export const OPCODE_PING = 0x89; // FIN + ping
/**
 * Tails up to this size are copied into each recipient's head: one chunk per frame, so a socket that gets one
 * message in a turn takes the single-buffer write path instead of writev, and a corked turn queues half the
 * chunks. Larger tails are written as they are, shared by every recipient (no copy per recipient).
 */
export const INLINE_TAIL_BYTES = 1024;

export function headerBytes(length: number): number {
  return length < 126 ? 2 : length < 65536 ? 4 : 10;
}

export function writeHeader(buf: Buffer, opcode: number, length: number): number {
  buf[0] = opcode;
  if (length < 126) {
    buf[1] = length;
    return 2;
  }
  if (length < 65536) {
    buf[1] = 126;
    buf.writeUInt16BE(length, 2);
    return 4;
  }
  buf[1] = 127;
  buf.writeUInt16BE(0, 2);
  buf.writeUIntBE(length, 4, 6);
  return 10;
}

/** One buffer holding the header and `data`. */
export function frame(opcode: number, data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(headerBytes(data.length) + data.length);
  data.copy(out, writeHeader(out, opcode, data.length));
  return out;
}

/** The frame `ws.send(data, { binary: isBinary })` would write. */
export function dataFrame(data: string | Buffer, isBinary: boolean): Buffer {
  if (typeof data === 'string') return isBinary ? frame(OPCODE_BINARY, Buffer.from(data)) : textFrame(data);
  return frame(isBinary ? OPCODE_BINARY : OPCODE_TEXT, data);
}

/** A text frame for a control message (`{"t":"ack",...}`, `welcome`, ...). */
export function textFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const out = Buffer.allocUnsafe(headerBytes(length) + length);
  out.write(text, writeHeader(out, OPCODE_TEXT, length));
  return out;
}

/** A protocol-level ping frame with an empty body (plain-mode heartbeat). Shared: frames are never mutated. */
export const PING_FRAME: Buffer = Buffer.from([OPCODE_PING, 0]);
/** The protocol-mode heartbeat `{"t":"ping"}`, framed once. */
export const PROTOCOL_PING_FRAME: Buffer = textFrame('{"t":"ping"}');
/** The protocol-mode answer `{"t":"pong"}` to a client's `ping`, framed once. */
export const PROTOCOL_PONG_FRAME: Buffer = textFrame('{"t":"pong"}');
