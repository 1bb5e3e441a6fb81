import type { WebSocket } from 'ws';
import { encodeBinaryData } from '../../protocol/binary.js';
import type { ServerMessage } from '../../protocol/messages.js';
import type { MsgpackCodec } from '../../frames/msgpack.js';
import type { Payload } from '../../frames/payload.js';
import type { FrameCompressor } from './compression.js';
import { deadSocket, type RawSocket } from './direct-socket.js';
import type { Publication } from '../topics/publication.js';
import type { WriteOutcome } from './write-outcome.js';

/** What the frame choice needs of a connection (`Connection` implements it; named here so neither imports back). */
export interface FrameTarget {
  readonly isOpen: boolean;
  readonly socket: WebSocket;
  readonly protocol: boolean;
  readonly maxBufferedBytes: number;
  readonly msgpack: MsgpackCodec | undefined;
  readonly compressor: FrameCompressor | undefined;
  readonly deflate: boolean;
  directSocket(): RawSocket | undefined;
  writeMessage(message: ServerMessage, nowMs: number, json?: string): WriteOutcome;
  send(data: string | Buffer, isBinary: boolean, nowMs: number): WriteOutcome;
  writeDirect(
    raw: RawSocket,
    head: Buffer,
    tail: Buffer | undefined,
    nowMs: number,
    coalesce: boolean,
  ): WriteOutcome;
}

/**
 * Which frame variant a connection gets for a payload or a publication: plain, JSON or MessagePack; reliable or
 * volatile; deflated (shared per variant) for a socket that negotiated that. Plain functions over the connection,
 * so the write path builds nothing per recipient and adds no indirection.
 */

/**
 * Write a payload the way `conn`'s mode wants it; `seq` makes it reliable in protocol mode. The frame comes from
 * the payload, built once for all recipients; a reliable protocol frame only gets its own small
 * `{"t":"d","s":N,"p":` head.
 */
export function writePayloadFrame(
  conn: FrameTarget,
  payload: Payload,
  seq: number | undefined,
  nowMs: number,
): WriteOutcome {
  if (!conn.isOpen) return 'closed';
  if (deadSocket(conn.socket)) return 'failed';
  if (conn.socket.bufferedAmount > conn.maxBufferedBytes) return 'slow';
  const raw = conn.directSocket();
  const mp = conn.msgpack;
  if (mp) {
    // A request or reply (one recipient, never shared): the whole message packed with its request fields.
    if (payload.rpc && seq !== undefined)
      return conn.writeMessage({ t: 'd', s: seq, p: payload.value(), ...payload.rpc }, nowMs);
    const frames = payload.msgpack(mp);
    if (!raw)
      return conn.send(
        seq === undefined ? frames.volatileMessage() : frames.reliableMessage(seq),
        true,
        nowMs,
      );
    if (seq === undefined) {
      const frame = conn.deflate
        ? conn.compressor!.frameFor(payload, 'mp-volatile', payload.bytes, frames.volatileMessage(), true)
        : undefined;
      return conn.writeDirect(raw, frame ?? frames.volatileFrame(), undefined, nowMs, true);
    }
    if (conn.deflate && conn.compressor!.syncSize(payload.bytes)) {
      // As for JSON below: deflated for its one recipient, and kept for its replay.
      const body = frames.reliableMessage(seq);
      const frame = conn.compressor!.frameFor(payload, `mp-s${seq}`, payload.bytes, body, true);
      if (frame) return conn.writeDirect(raw, frame, undefined, nowMs, true);
    }
    return conn.writeDirect(raw, frames.reliableHead(seq), frames.reliableTail(), nowMs, true);
  }
  if (!raw) {
    if (!conn.protocol) return conn.send(payload.plain, payload.isBinary, nowMs);
    if (payload.isBinary)
      return conn.send(Buffer.from(encodeBinaryData(payload.plain as Buffer, seq)), true, nowMs);
    return conn.send(seq === undefined ? payload.volatileText() : payload.reliableText(seq), false, nowMs);
  }
  if (!conn.protocol) return conn.writeDirect(raw, plainFrameOf(conn, payload), undefined, nowMs, true);
  if (seq === undefined) {
    let frame: Buffer | undefined;
    if (conn.deflate && !payload.isBinary)
      frame = conn.compressor!.frameFor(payload, 'volatile', payload.bytes, payload.volatileText(), false);
    return conn.writeDirect(raw, frame ?? payload.volatileFrameBytes(), undefined, nowMs, true);
  }
  if (conn.deflate && conn.compressor!.syncSize(payload.bytes)) {
    // One recipient, one sequence: deflated for it, and kept for its replay (the payload is in its inbox).
    const body = payload.isBinary
      ? Buffer.from(encodeBinaryData(payload.plain as Buffer, seq))
      : payload.reliableText(seq);
    const frame = conn.compressor!.frameFor(payload, `s${seq}`, payload.bytes, body, payload.isBinary);
    if (frame) return conn.writeDirect(raw, frame, undefined, nowMs, true);
  }
  const head = payload.reliableFrameHead(seq);
  return conn.writeDirect(raw, head, payload.reliableFrameTail(), nowMs, true);
}

/**
 * The shared frame `conn` gets for `pub`: plain, JSON or MessagePack; the data or the `skip`. Data frames are
 * deflated for a socket that negotiated that, when it pays, once per encoding (variants `topic` and `mp-topic`);
 * `skip` frames are small and never are.
 */
export function publicationFrame(conn: FrameTarget, pub: Publication, skip: boolean): Buffer {
  if (!conn.protocol) return plainFrameOf(conn, pub.payload);
  const mp = conn.msgpack;
  if (mp) {
    if (skip) return pub.msgpack(mp).skipFrame();
    const frames = pub.msgpack(mp);
    if (conn.deflate) {
      const frame = conn.compressor!.frameFor(pub, 'mp-topic', pub.payload.bytes, frames.body(), true);
      if (frame) return frame;
    }
    return frames.frame();
  }
  if (skip) return pub.skipFrame();
  if (conn.deflate) {
    const p = pub.payload;
    const frame = conn.compressor!.frameFor(pub, 'topic', p.bytes, pub.message(), p.isBinary);
    if (frame) return frame;
  }
  return pub.frame();
}

/** The shared plain-mode frame of a payload, deflated for a socket that negotiated that. */
function plainFrameOf(conn: FrameTarget, payload: Payload): Buffer {
  if (conn.deflate) {
    const frame = conn.compressor!.frameFor(payload, 'plain', payload.bytes, payload.plain, payload.isBinary);
    if (frame) return frame;
  }
  return payload.plainFrame();
}
