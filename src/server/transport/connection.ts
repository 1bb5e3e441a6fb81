import type { WebSocket } from 'ws';
import { clampCloseReason } from '../../protocol/close-codes.js';
import type { RateBucket, SessionRecord } from '../../backends/types.js';
import { unownedCounters, type ServerCounters } from '../operations/counters.js';
import type { DisconnectReason } from '../events.js';
import {
  dataFrame,
  PING_FRAME,
  PROTOCOL_PING_FRAME,
  PROTOCOL_PONG_FRAME,
  type Payload,
} from '../../frames/payload.js';
import type { Publication } from '../topics/publication.js';
import type { MsgpackCodec } from '../../frames/msgpack.js';
import {
  MSGPACK_PING_FRAME,
  MSGPACK_PING_MESSAGE,
  MSGPACK_PONG_FRAME,
  MSGPACK_PONG_MESSAGE,
} from '../../frames/msgpack-frames.js';
import type { ServerMessage } from '../../protocol/messages.js';
import type { FrameCompressor } from './compression.js';
import { corkForTurn } from './cork.js';
import {
  deadSocket,
  findDirectSocket,
  negotiatedDeflate,
  SENDER_IDLE,
  type RawSocket,
  type WsInternals,
} from './direct-socket.js';
import { publicationFrame, writePayloadFrame } from './connection-frames.js';
import type { Transport } from './transport.js';
import type { WriteOutcome } from './write-outcome.js';

export type { WriteOutcome };

const OPEN = 1;
const CLOSED = 3;

/** Close timer callback, shared by every connection: the peer did not finish the close handshake in time. */
function terminateLate(conn: Connection): void {
  conn.closeTimer = undefined;
  conn.socket.terminate();
}

/**
 * One live socket and its small per-connection state. This is the only place that touches the `ws` socket: the
 * manager, broadcast, heartbeat and shutdown all go through it. Kept lean on purpose (no closures, no request).
 */
export class Connection implements Transport {
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
  /** Whether `remoteAddress` is known to be the client's own (see `ConnectOptions.clientAddress`). */
  clientAddress = true;
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
  /**
   * @internal Settled with `direct`: this socket negotiated permessage-deflate and gets the shared compressed
   * frames (read by connection-frames.ts).
   */
  deflate = false;

  constructor(
    public id: string,
    readonly socket: WebSocket,
    readonly protocol: boolean,
    readonly remoteAddress: string | undefined,
    /** `connect`'s `data`; replaced by what `authenticateHello` returns. */
    public data: unknown,
    nowMs: number,
    /** @internal */
    readonly maxBufferedBytes: number,
    private readonly closeTimeoutMs: number,
  ) {
    this.lastInboundMs = nowMs;
    this.lastOutboundMs = nowMs;
    if (protocol) this.state = 'handshaking';
  }

  get isOpen(): boolean {
    return this.state !== 'closed' && this.socket.readyState === OPEN;
  }

  get socketOpen(): boolean {
    return this.socket.readyState === OPEN;
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
    const outcome = writePayloadFrame(this, payload, seq, nowMs);
    this.counters.countWrite(this.protocol, seq !== undefined, outcome);
    return outcome;
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
      return this.writeDirect(direct, publicationFrame(this, pub, skip), undefined, nowMs, true);
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
    return this.writeDirect(raw, publicationFrame(this, pub, skip), undefined, nowMs, true);
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
   * through `ws.send`. @internal
   */
  directSocket(): RawSocket | undefined {
    const raw = this.direct === undefined ? this.findDirect() : this.direct;
    if (!raw) return undefined;
    const sender = (this.socket as unknown as WsInternals)._sender;
    if (!sender || sender._state !== SENDER_IDLE || sender._firstFragment === false) return undefined;
    return raw;
  }

  /** The socket's settled direct-write facts (see `direct`); called once the socket is open. */
  private findDirect(): RawSocket | null {
    this.direct = findDirectSocket(this.socket, this.compressor);
    this.deflate = this.direct !== null && negotiatedDeflate(this.socket);
    return this.direct;
  }

  /** @internal Write pre-built frame bytes (`tail` shared between recipients), corked for the turn when `coalesce`. */
  writeDirect(
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

  /** @internal The public-API path: `ws.send`, which frames (and maybe compresses) the data itself. */
  send(data: string | Buffer, isBinary: boolean, nowMs: number): WriteOutcome {
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
