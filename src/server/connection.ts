import type { WebSocket } from 'ws';
import { clampCloseReason } from '../protocol/close-codes.js';
import { encodeBinaryData } from '../protocol/binary.js';
import type { RateBucket, SessionRecord } from '../backends/types.js';
import { unownedCounters, type ServerCounters } from './counters.js';
import type { DisconnectReason } from './events.js';
import { dataFrame, PING_FRAME, PROTOCOL_PING_FRAME, PROTOCOL_PONG_FRAME, type Payload } from './payload.js';
import type { Publication } from './publication.js';
import type { MsgpackCodec } from './msgpack.js';
import {
  MSGPACK_PING_FRAME,
  MSGPACK_PING_MESSAGE,
  MSGPACK_PONG_FRAME,
  MSGPACK_PONG_MESSAGE,
} from './msgpack-frames.js';
import type { ServerMessage } from '../protocol/messages.js';
import type { FrameCompressor } from './compression.js';
import { corkForTurn } from './cork.js';

/** Result of one write: `ok`, `closed` (socket not open), `slow` (over the buffered-bytes cap), `failed`. */
export type WriteOutcome = 'ok' | 'closed' | 'slow' | 'failed';

const OPEN = 1;
const CLOSED = 3;
/** `Sender#_state` of ws when it is neither compressing nor reading a Blob, i.e. it writes synchronously. */
const SENDER_IDLE = 0;

/** The TCP socket under a `ws` WebSocket (a `net.Socket`, or any Duplex with cork/uncork). */
interface RawSocket {
  readonly writableCorked: number;
  readonly destroyed?: boolean;
  readonly writable?: boolean;
  readonly writableEnded?: boolean;
  /** Bytes queued in the stream (corked or not yet taken by the kernel). */
  readonly writableLength: number;
  write(chunk: Buffer): boolean;
  cork(): void;
  uncork(): void;
}

/** The `ws` internals the direct write path relies on. Feature-detected on every write, never assumed. */
interface WsInternals {
  _isServer?: boolean;
  _socket?: RawSocket | null;
  _sender?: { _state?: number; _firstFragment?: boolean; _bufferedBytes?: number } | null;
  _extensions?: Record<string, { params?: Record<string, unknown> } | undefined>;
}

/**
 * Whether the TCP socket under `ws` can no longer take a write although `ws` may still say OPEN: destroyed (by a
 * reset, an error or `destroy()`), or its write side ended. A write to it does not throw; it is silently lost.
 */
function deadSocket(socket: WebSocket): boolean {
  const raw = (socket as unknown as WsInternals)._socket;
  return !!raw && (raw.destroyed === true || raw.writable === false || raw.writableEnded === true);
}

/** Close timer callback, shared by every connection: the peer did not finish the close handshake in time. */
function terminateLate(conn: Connection): void {
  conn.closeTimer = undefined;
  conn.socket.terminate();
}

/**
 * One live socket and its small per-connection state. This is the only place that touches the `ws` socket: the
 * manager, broadcast, heartbeat and shutdown all go through it. Kept lean on purpose (no closures, no request).
 */
export class Connection {
  /** `handshaking` until the protocol `hello` is answered; plain sockets start `open`. */
  state: 'handshaking' | 'open' | 'closed' = 'open';
  /** Coarse time (sweep clock) of the last inbound and outbound frame. */
  lastInboundMs: number;
  lastOutboundMs: number;
  /** When the heartbeat pinged and has not heard back since; 0 when not waiting. */
  pingSentAtMs = 0;
  /**
   * The stable principal the `authenticate` hook returned (e.g. a user id), set by `connect`. A protocol session
   * keeps its creator's principal, and a resume from another principal is refused.
   */
  principal: string | undefined = undefined;
  /** Protocol mode: the session this socket serves. */
  session: SessionRecord | undefined = undefined;
  /** Why the server closed it, reported in `disconnect`; unset means the peer closed. */
  closeReason: DisconnectReason | undefined = undefined;
  /** The close code the server sent, if it closed first: it decides the session's fate, not the peer's echo. */
  sentCloseCode: number | undefined = undefined;
  /** Plain mode: rate limiter bucket (protocol mode keeps it on the session). Created on the first message. */
  rate: RateBucket | undefined = undefined;
  /**
   * Inbound messages waiting for a shared rate limiter (`rateLimiters.messagesPerPrincipal`): the last one's
   * delivery, which every later message of this socket waits for (arrival order), their count, and the highest
   * client sequence admitted among them (protocol mode). Unset while nothing waits.
   */
  inboundTail: Promise<void> | undefined = undefined;
  pendingChecks = 0;
  admittedClientSeq: number | undefined = undefined;
  /** A rate limit refused a message while earlier ones still waited: ignore inbound frames until the close. */
  inboundRefused = false;
  /** Protocol mode: a frame arrived after the welcome, so a client really holds this connection's session. */
  confirmed = false;
  /** Protocol mode: the nonce of the token this resume consumed, until the client's first frame confirms it. */
  unconfirmedNonce: string | undefined = undefined;
  /** Protocol mode: when the sweep sends a replacement resume token (half its lifetime). */
  tokenRefreshAtMs = 0;
  /**
   * Protocol mode: `connect`'s `authenticateHello`, until the `hello` arrives (then cleared: with `attach` it
   * holds the upgrade request, which must not outlive the handshake).
   */
  authenticateHello: ((auth: unknown) => unknown) | undefined = undefined;
  /** Protocol mode: the client said its page is hidden (`vis` frame): the heartbeat waits `hiddenPongTimeoutMs`. */
  hidden = false;
  /** Protocol mode: handshake deadline timer (cleared on welcome). */
  handshakeTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** Plain mode: the topics this socket is a member of (a protocol socket's are on its session). */
  topics: Set<string> | undefined = undefined;
  /** While a close handshake is under way: terminates the socket `closeTimeoutMs` after it was armed. */
  closeTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** Wall-clock time the socket was accepted, for the connection duration in the disconnect log. */
  readonly openedAtMs = Date.now();
  /**
   * Protocol mode over `stabilizer.v1.msgpack`: the codec, and every frame to and from this socket is a MessagePack
   * map in a binary frame (PROTOCOL.md §2.7). `undefined`: JSON text frames.
   */
  msgpack: MsgpackCodec | undefined = undefined;
  /** The manager's counters (shared by all its connections), incremented on every data write. */
  counters: ServerCounters = unownedCounters;
  /** The manager's shared compressor, when `compression.enabled`. */
  compressor: FrameCompressor | undefined = undefined;
  /**
   * The TCP socket if this is a server-side `ws` socket without permessage-deflate, or with the permessage-deflate
   * settings of {@link compressor} (`null` if not), found on the first write. Those facts are settled at the
   * upgrade and never change; the sender's state does, and is checked on every write.
   */
  private direct: RawSocket | null | undefined = undefined;
  /** Settled with `direct`: this socket negotiated permessage-deflate and gets the shared compressed frames. */
  private deflate = false;

  constructor(
    public id: string,
    readonly socket: WebSocket,
    readonly protocol: boolean,
    readonly remoteAddress: string | undefined,
    /** `connect`'s `data`; replaced by what `authenticateHello` returns. */
    public data: unknown,
    nowMs: number,
    private readonly maxBufferedBytes: number,
    private readonly closeTimeoutMs: number,
  ) {
    this.lastInboundMs = nowMs;
    this.lastOutboundMs = nowMs;
    if (protocol) this.state = 'handshaking';
  }

  get isOpen(): boolean {
    return this.state !== 'closed' && this.socket.readyState === OPEN;
  }

  get bufferedBytes(): number {
    return this.socket.bufferedAmount;
  }

  /** Send a control or data frame as it is (plain frames, protocol control messages). */
  write(data: string | Buffer, isBinary: boolean, nowMs: number): WriteOutcome {
    if (!this.isOpen) return 'closed';
    if (deadSocket(this.socket)) return 'failed';
    if (this.socket.bufferedAmount > this.maxBufferedBytes) return 'slow';
    const raw = this.directSocket();
    if (raw) return this.writeDirect(raw, dataFrame(data, isBinary), undefined, nowMs, true);
    return this.send(data, isBinary, nowMs);
  }

  /**
   * Send a protocol control message (`welcome`, `ack`, `sub`, `error`, ...) in this connection's encoding: `json`
   * (the message's JSON text, when the caller has it at hand) or `JSON.stringify(message)`; MessagePack on a
   * `stabilizer.v1.msgpack` connection.
   */
  writeMessage(message: ServerMessage, nowMs: number, json?: string): WriteOutcome {
    const mp = this.msgpack;
    if (mp) return this.write(mp.packMessage(message), true, nowMs);
    return this.write(json ?? JSON.stringify(message), false, nowMs);
  }

  /**
   * Send a payload the way this connection's mode wants it; `seq` makes it reliable in protocol mode. The frame
   * comes from the payload, built once for all recipients; a reliable protocol frame only gets its own small
   * `{"t":"d","s":N,"p":` head.
   */
  writePayload(payload: Payload, seq: number | undefined, nowMs: number): WriteOutcome {
    const outcome = this.writePayloadFrame(payload, seq, nowMs);
    this.counters.countWrite(this.protocol, seq !== undefined, outcome);
    return outcome;
  }

  private writePayloadFrame(payload: Payload, seq: number | undefined, nowMs: number): WriteOutcome {
    if (!this.isOpen) return 'closed';
    if (deadSocket(this.socket)) return 'failed';
    if (this.socket.bufferedAmount > this.maxBufferedBytes) return 'slow';
    const raw = this.directSocket();
    const mp = this.msgpack;
    if (mp) {
      // A request or reply (one recipient, never shared): the whole message packed with its request fields.
      if (payload.rpc && seq !== undefined)
        return this.writeMessage({ t: 'd', s: seq, p: payload.value(), ...payload.rpc }, nowMs);
      const frames = payload.msgpack(mp);
      if (!raw)
        return this.send(
          seq === undefined ? frames.volatileMessage() : frames.reliableMessage(seq),
          true,
          nowMs,
        );
      if (seq === undefined) {
        const frame = this.deflate
          ? this.compressor!.frameFor(payload, 'mp-volatile', payload.bytes, frames.volatileMessage(), true)
          : undefined;
        return this.writeDirect(raw, frame ?? frames.volatileFrame(), undefined, nowMs, true);
      }
      if (this.deflate && this.compressor!.syncSize(payload.bytes)) {
        // As for JSON below: deflated for its one recipient, and kept for its replay.
        const body = frames.reliableMessage(seq);
        const frame = this.compressor!.frameFor(payload, `mp-s${seq}`, payload.bytes, body, true);
        if (frame) return this.writeDirect(raw, frame, undefined, nowMs, true);
      }
      return this.writeDirect(raw, frames.reliableHead(seq), frames.reliableTail(), nowMs, true);
    }
    if (!raw) {
      if (!this.protocol) return this.send(payload.plain, payload.isBinary, nowMs);
      if (payload.isBinary)
        return this.send(Buffer.from(encodeBinaryData(payload.plain as Buffer, seq)), true, nowMs);
      return this.send(seq === undefined ? payload.volatileText() : payload.reliableText(seq), false, nowMs);
    }
    if (!this.protocol) return this.writeDirect(raw, this.plainFrameOf(payload), undefined, nowMs, true);
    if (seq === undefined) {
      let frame: Buffer | undefined;
      if (this.deflate && !payload.isBinary)
        frame = this.compressor!.frameFor(payload, 'volatile', payload.bytes, payload.volatileText(), false);
      return this.writeDirect(raw, frame ?? payload.volatileFrameBytes(), undefined, nowMs, true);
    }
    if (this.deflate && this.compressor!.syncSize(payload.bytes)) {
      // One recipient, one sequence: deflated for it, and kept for its replay (the payload is in its inbox).
      const body = payload.isBinary
        ? Buffer.from(encodeBinaryData(payload.plain as Buffer, seq))
        : payload.reliableText(seq);
      const frame = this.compressor!.frameFor(payload, `s${seq}`, payload.bytes, body, payload.isBinary);
      if (frame) return this.writeDirect(raw, frame, undefined, nowMs, true);
    }
    const head = payload.reliableFrameHead(seq);
    return this.writeDirect(raw, head, payload.reliableFrameTail(), nowMs, true);
  }

  /**
   * Write a topic publication: the shared protocol frame (or, with `skip`, the shared `skip` frame for an excluded
   * member), or the bare payload frame in plain mode. Nothing is built per recipient.
   */
  writePublication(pub: Publication, skip: boolean, nowMs: number): WriteOutcome {
    const outcome = this.writePublicationFrame(pub, skip, nowMs);
    if (!skip) this.counters.countWrite(this.protocol, pub.offset !== undefined, outcome);
    return outcome;
  }

  private writePublicationFrame(pub: Publication, skip: boolean, nowMs: number): WriteOutcome {
    if (this.state === 'closed' || this.socket.readyState !== OPEN) return 'closed';
    // The hot path of every publication: the same checks as `directSocket()`, `deadSocket()` and `bufferedAmount`,
    // without re-reading per write what cannot change (on 1,000 clients those re-reads were half of the publish
    // loop).
    const direct = this.direct === undefined ? this.findDirect() : this.direct;
    const sender = (this.socket as unknown as WsInternals)._sender;
    if (direct && sender && sender._state === SENDER_IDLE && sender._firstFragment !== false) {
      if (direct.destroyed === true || direct.writable === false || direct.writableEnded === true)
        return 'failed';
      if (direct.writableLength + (sender._bufferedBytes ?? 0) > this.maxBufferedBytes) return 'slow';
      return this.writeDirect(direct, this.publicationFrame(pub, skip), undefined, nowMs, true);
    }
    if (deadSocket(this.socket)) return 'failed';
    if (this.socket.bufferedAmount > this.maxBufferedBytes) return 'slow';
    const raw = this.directSocket();
    if (!raw) {
      if (!this.protocol) return this.send(pub.payload.plain, pub.payload.isBinary, nowMs);
      const mp = this.msgpack;
      if (mp) return this.send(skip ? pub.msgpack(mp).skipBody() : pub.msgpack(mp).body(), true, nowMs);
      if (skip) return this.send(pub.skipMessage(), false, nowMs);
      return this.send(pub.message(), pub.payload.isBinary, nowMs);
    }
    return this.writeDirect(raw, this.publicationFrame(pub, skip), undefined, nowMs, true);
  }

  /**
   * Whether this open socket gets the shared compressed frames: it negotiated permessage-deflate with the
   * compressor's settings. The publish path asks before it deflates a large publication off the event loop.
   */
  get deflates(): boolean {
    if (this.direct === undefined) this.findDirect();
    return this.deflate;
  }

  /**
   * The shared frame this connection gets for `pub`: plain, JSON or MessagePack; the data or the `skip`. Data
   * frames are deflated for a socket that negotiated that, when it pays, once per encoding (variants `topic` and
   * `mp-topic`); `skip` frames are small and never are.
   */
  private publicationFrame(pub: Publication, skip: boolean): Buffer {
    if (!this.protocol) return this.plainFrameOf(pub.payload);
    const mp = this.msgpack;
    if (mp) {
      if (skip) return pub.msgpack(mp).skipFrame();
      const frames = pub.msgpack(mp);
      if (this.deflate) {
        const frame = this.compressor!.frameFor(pub, 'mp-topic', pub.payload.bytes, frames.body(), true);
        if (frame) return frame;
      }
      return frames.frame();
    }
    if (skip) return pub.skipFrame();
    if (this.deflate) {
      const p = pub.payload;
      const frame = this.compressor!.frameFor(pub, 'topic', p.bytes, pub.message(), p.isBinary);
      if (frame) return frame;
    }
    return pub.frame();
  }

  /** The shared plain-mode frame of a payload, deflated for a socket that negotiated that. */
  private plainFrameOf(payload: Payload): Buffer {
    if (this.deflate) {
      const frame = this.compressor!.frameFor(
        payload,
        'plain',
        payload.bytes,
        payload.plain,
        payload.isBinary,
      );
      if (frame) return frame;
    }
    return payload.plainFrame();
  }

  /**
   * Heartbeat: a protocol-level ping (plain mode) or `{"t":"ping"}` (protocol mode), both framed once for all
   * connections. Not coalesced: a sweep writes one frame per socket, so corking would only add work.
   */
  ping(nowMs: number): WriteOutcome {
    if (!this.isOpen) return 'closed';
    if (deadSocket(this.socket)) return 'failed';
    if (this.protocol && this.socket.bufferedAmount > this.maxBufferedBytes) return 'slow';
    const raw = this.directSocket();
    const mp = this.msgpack !== undefined;
    if (raw) {
      const frame = mp ? MSGPACK_PING_FRAME : this.protocol ? PROTOCOL_PING_FRAME : PING_FRAME;
      return this.writeDirect(raw, frame, undefined, nowMs, false);
    }
    if (mp) return this.send(MSGPACK_PING_MESSAGE, true, nowMs);
    if (this.protocol) return this.send('{"t":"ping"}', false, nowMs);
    try {
      this.socket.ping();
    } catch {
      return 'failed';
    }
    this.lastOutboundMs = nowMs;
    return 'ok';
  }

  /** Protocol mode: answer a client's `ping` with `{"t":"pong"}` (or its MessagePack), framed once for all. */
  pong(nowMs: number): WriteOutcome {
    if (!this.isOpen) return 'closed';
    if (deadSocket(this.socket)) return 'failed';
    if (this.socket.bufferedAmount > this.maxBufferedBytes) return 'slow';
    const raw = this.directSocket();
    const mp = this.msgpack !== undefined;
    if (raw)
      return this.writeDirect(raw, mp ? MSGPACK_PONG_FRAME : PROTOCOL_PONG_FRAME, undefined, nowMs, true);
    return mp ? this.send(MSGPACK_PONG_MESSAGE, true, nowMs) : this.send('{"t":"pong"}', false, nowMs);
  }

  /**
   * The TCP socket, when a frame may be written to it directly (see `direct`) and its sender is idle (nothing
   * queued that the frame could overtake) and not in the middle of a fragmented message. `undefined` means: go
   * through `ws.send`.
   */
  private directSocket(): RawSocket | undefined {
    const raw = this.direct === undefined ? this.findDirect() : this.direct;
    if (!raw) return undefined;
    const sender = (this.socket as unknown as WsInternals)._sender;
    if (!sender || sender._state !== SENDER_IDLE || sender._firstFragment === false) return undefined;
    return raw;
  }

  /**
   * The socket's settled direct-write facts (see `direct`); called once the socket is open. A socket with
   * permessage-deflate is written to directly only if it negotiated `server_no_context_takeover` and a server
   * window the compressor's frames fit (our upgrade handler only accepts such offers; a socket from another
   * `WebSocketServer` may have other settings and then keeps going through `ws.send`, which compresses it).
   */
  private findDirect(): RawSocket | null {
    const ws = this.socket as unknown as WsInternals;
    const extensions = ws._extensions;
    const raw = ws._socket;
    const deflate = extensions?.['permessage-deflate'];
    const params = deflate?.params;
    const windowBits = params?.['server_max_window_bits'];
    const shared =
      deflate === undefined ||
      (this.compressor !== undefined &&
        params?.['server_no_context_takeover'] === true &&
        (typeof windowBits === 'number' ? windowBits : 15) >= this.compressor.windowBits);
    this.direct =
      ws._isServer === true && extensions !== undefined && shared && raw && typeof raw.cork === 'function'
        ? raw
        : null;
    this.deflate = this.direct !== null && deflate !== undefined;
    return this.direct;
  }

  /** Write pre-built frame bytes (`tail` shared between recipients), corked for the turn when `coalesce`. */
  private writeDirect(
    raw: RawSocket,
    head: Buffer,
    tail: Buffer | undefined,
    nowMs: number,
    coalesce: boolean,
  ): WriteOutcome {
    try {
      if (coalesce && raw.writableCorked === 0) corkForTurn(raw);
      raw.write(head);
      if (tail) raw.write(tail);
    } catch {
      return 'failed';
    }
    this.lastOutboundMs = nowMs;
    return 'ok';
  }

  /** The public-API path: `ws.send`, which frames (and maybe compresses) the data itself. */
  private send(data: string | Buffer, isBinary: boolean, nowMs: number): WriteOutcome {
    try {
      this.socket.send(data, { binary: isBinary });
    } catch {
      return 'failed';
    }
    this.lastOutboundMs = nowMs;
    return 'ok';
  }

  /**
   * Start the close handshake. Never throws. From here on, inbound frames are ignored. A peer that has not
   * finished the handshake within `closeTimeoutMs` is terminated: one that does not read (a slow consumer, a
   * stalled or vanished peer) never would, and it would hold its registry entry and its connection slots meanwhile.
   */
  close(code: number, reason: string, why: DisconnectReason): void {
    this.closeReason ??= why;
    this.sentCloseCode ??= code;
    this.state = 'closed';
    try {
      this.socket.close(code, clampCloseReason(reason));
    } catch {
      this.socket.terminate();
      return;
    }
    this.limitCloseWait();
  }

  /**
   * `ws` rejected an inbound frame and has sent the close frame itself (`code`: 1002, 1007, 1008, 1009): report
   * that code and `why`, and bound the close handshake like {@link close}.
   */
  closedBySocket(code: number, why: DisconnectReason): void {
    this.closeReason ??= why;
    this.sentCloseCode ??= code;
    this.state = 'closed';
    this.limitCloseWait();
  }

  /** The socket has closed: stop the close timer. */
  released(): void {
    clearTimeout(this.closeTimer);
    this.closeTimer = undefined;
  }

  /** Terminate the socket if its close handshake (started by either side) has not finished in `closeTimeoutMs`. */
  limitCloseWait(): void {
    if (this.closeTimer !== undefined || this.socket.readyState === CLOSED) return;
    this.closeTimer = setTimeout(terminateLate, this.closeTimeoutMs, this);
    this.closeTimer.unref?.();
  }

  /** Drop the TCP connection at once (no close handshake). */
  terminate(why: DisconnectReason): void {
    this.closeReason ??= why;
    this.state = 'closed';
    this.socket.terminate();
  }

  /** Cork the underlying TCP socket for a burst of writes, if it exposes cork/uncork. */
  cork(): void {
    (this.socket as unknown as { _socket?: { cork?: () => void } })._socket?.cork?.();
  }

  uncork(): void {
    (this.socket as unknown as { _socket?: { uncork?: () => void } })._socket?.uncork?.();
  }
}
