import type { WebSocket } from 'ws';
import { clampCloseReason } from '../protocol/close-codes.js';
import { encodeBinaryData } from '../protocol/messages.js';
import type { SessionRecord } from '../backends/types.js';
import type { DisconnectReason } from './events.js';
import { dataFrame, PING_FRAME, PROTOCOL_PING_FRAME, type Payload } from './payload.js';
import type { Publication } from './publication.js';

/** Result of one write: `ok`, `closed` (socket not open), `slow` (over the buffered-bytes cap), `failed`. */
export type WriteOutcome = 'ok' | 'closed' | 'slow' | 'failed';

const OPEN = 1;
/** `Sender#_state` of ws when it is neither compressing nor reading a Blob, i.e. it writes synchronously. */
const SENDER_IDLE = 0;

/** The TCP socket under a `ws` WebSocket (a `net.Socket`, or any Duplex with cork/uncork). */
interface RawSocket {
  readonly writableCorked: number;
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
  _extensions?: Record<string, unknown>;
}

// Per-turn write coalescing. A socket written to directly is corked on its first write in an event-loop turn and
// uncorked together with every other such socket in one batch in the check phase of the same loop iteration
// (`setImmediate`), so that all the frames one socket gets in a turn leave in one writev syscall: 10 broadcasts
// from one callback, a welcome and its replay, and also broadcasts triggered by many inbound messages that one
// poll phase delivers. ws's `bufferedAmount` counts corked bytes (`_socket.writableLength`), so the slow-consumer
// cap still holds. The real `setImmediate` is kept at load, so fake timers in a test cannot hold writes back.
const schedule = setImmediate;
let corked: RawSocket[] = [];
let spare: RawSocket[] = [];
let flushQueued = false;

function flushCorked(): void {
  flushQueued = false;
  const list = corked;
  corked = spare;
  for (let i = 0; i < list.length; i++) list[i]!.uncork();
  list.length = 0;
  spare = list;
}

function corkForTurn(raw: RawSocket): void {
  raw.cork();
  corked.push(raw);
  if (!flushQueued) {
    flushQueued = true;
    schedule(flushCorked);
  }
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
  /** Protocol mode: the session this socket serves. */
  session: SessionRecord | undefined = undefined;
  /** Why the server closed it, reported in `disconnect`; unset means the peer closed. */
  closeReason: DisconnectReason | undefined = undefined;
  /** The close code the server sent, if it closed first: it decides the session's fate, not the peer's echo. */
  sentCloseCode: number | undefined = undefined;
  /** Rate limiter bucket. */
  rateTokens = 0;
  rateRefilledAtMs = 0;
  /** Protocol mode: the nonce of the token this resume consumed, until the client's first frame confirms it. */
  unconfirmedNonce: string | undefined = undefined;
  /** Protocol mode: when the sweep sends a replacement resume token (half its lifetime). */
  tokenRefreshAtMs = 0;
  /** Protocol mode: handshake deadline timer (cleared on welcome). */
  handshakeTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** Plain mode: the topics this socket is a member of (a protocol socket's are on its session). */
  topics: Set<string> | undefined = undefined;
  /**
   * The TCP socket if this is a server-side `ws` socket without permessage-deflate (`null` if not), found on the
   * first publication. Those facts are settled at the upgrade and never change; the sender's state does, and is
   * checked on every write.
   */
  private direct: RawSocket | null | undefined = undefined;

  constructor(
    public id: string,
    readonly socket: WebSocket,
    readonly protocol: boolean,
    readonly remoteAddress: string | undefined,
    readonly data: unknown,
    nowMs: number,
    private readonly maxBufferedBytes: number,
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
    if (this.socket.bufferedAmount > this.maxBufferedBytes) return 'slow';
    const raw = this.directSocket();
    if (raw) return this.writeDirect(raw, dataFrame(data, isBinary), undefined, nowMs, true);
    return this.send(data, isBinary, nowMs);
  }

  /**
   * Send a payload the way this connection's mode wants it; `seq` makes it reliable in protocol mode. The frame
   * comes from the payload, built once for all recipients; a reliable protocol frame only gets its own small
   * `{"t":"d","s":N,"p":` head.
   */
  writePayload(payload: Payload, seq: number | undefined, nowMs: number): WriteOutcome {
    if (!this.isOpen) return 'closed';
    if (this.socket.bufferedAmount > this.maxBufferedBytes) return 'slow';
    const raw = this.directSocket();
    if (!raw) {
      if (!this.protocol) return this.send(payload.plain, payload.isBinary, nowMs);
      if (payload.isBinary)
        return this.send(Buffer.from(encodeBinaryData(payload.plain as Buffer, seq)), true, nowMs);
      return this.send(seq === undefined ? payload.volatileText() : payload.reliableText(seq), false, nowMs);
    }
    if (!this.protocol) return this.writeDirect(raw, payload.plainFrame(), undefined, nowMs, true);
    if (seq === undefined) return this.writeDirect(raw, payload.volatileFrameBytes(), undefined, nowMs, true);
    const head = payload.reliableFrameHead(seq);
    return this.writeDirect(raw, head, payload.reliableFrameTail(), nowMs, true);
  }

  /**
   * Write a topic publication: the shared protocol frame (or, with `skip`, the shared `skip` frame for an excluded
   * member), or the bare payload frame in plain mode. Nothing is built per recipient.
   */
  writePublication(pub: Publication, skip: boolean, nowMs: number): WriteOutcome {
    if (this.state === 'closed' || this.socket.readyState !== OPEN) return 'closed';
    // The hot path of every publication: the same checks as `directSocket()` and `bufferedAmount`, without
    // re-reading per write what cannot change (on 1,000 clients those re-reads were half of the publish loop).
    const direct = this.direct === undefined ? this.findDirect() : this.direct;
    const sender = (this.socket as unknown as WsInternals)._sender;
    if (direct && sender && sender._state === SENDER_IDLE && sender._firstFragment !== false) {
      if (direct.writableLength + (sender._bufferedBytes ?? 0) > this.maxBufferedBytes) return 'slow';
      const frame = !this.protocol ? pub.payload.plainFrame() : skip ? pub.skipFrame() : pub.frame();
      return this.writeDirect(direct, frame, undefined, nowMs, true);
    }
    if (this.socket.bufferedAmount > this.maxBufferedBytes) return 'slow';
    const raw = this.directSocket();
    if (!raw) {
      if (!this.protocol) return this.send(pub.payload.plain, pub.payload.isBinary, nowMs);
      if (skip) return this.send(pub.skipMessage(), false, nowMs);
      return this.send(pub.message(), pub.payload.isBinary, nowMs);
    }
    const frame = !this.protocol ? pub.payload.plainFrame() : skip ? pub.skipFrame() : pub.frame();
    return this.writeDirect(raw, frame, undefined, nowMs, true);
  }

  /**
   * Heartbeat: a protocol-level ping (plain mode) or `{"t":"ping"}` (protocol mode), both framed once for all
   * connections. Not coalesced: a sweep writes one frame per socket, so corking would only add work.
   */
  ping(nowMs: number): WriteOutcome {
    if (!this.isOpen) return 'closed';
    if (this.protocol && this.socket.bufferedAmount > this.maxBufferedBytes) return 'slow';
    const raw = this.directSocket();
    if (raw)
      return this.writeDirect(raw, this.protocol ? PROTOCOL_PING_FRAME : PING_FRAME, undefined, nowMs, false);
    if (this.protocol) return this.send('{"t":"ping"}', false, nowMs);
    try {
      this.socket.ping();
    } catch {
      return 'failed';
    }
    this.lastOutboundMs = nowMs;
    return 'ok';
  }

  /**
   * The TCP socket, when a frame may be written to it directly: a server-side `ws` socket (frames unmasked) with
   * no permessage-deflate, whose sender is idle (nothing queued that the frame could overtake) and not in the
   * middle of a fragmented message. `undefined` means: go through `ws.send`.
   */
  private directSocket(): RawSocket | undefined {
    const ws = this.socket as unknown as WsInternals;
    const sender = ws._sender;
    if (
      ws._isServer !== true ||
      !sender ||
      sender._state !== SENDER_IDLE ||
      sender._firstFragment === false
    ) {
      return undefined;
    }
    const extensions = ws._extensions;
    if (!extensions || extensions['permessage-deflate'] !== undefined) return undefined;
    const raw = ws._socket;
    return raw && typeof raw.cork === 'function' ? raw : undefined;
  }

  /** The socket's settled direct-write facts (see `direct`); called once the socket is open. */
  private findDirect(): RawSocket | null {
    const ws = this.socket as unknown as WsInternals;
    const extensions = ws._extensions;
    const raw = ws._socket;
    this.direct =
      ws._isServer === true &&
      extensions !== undefined &&
      extensions['permessage-deflate'] === undefined &&
      raw &&
      typeof raw.cork === 'function'
        ? raw
        : null;
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

  /** Start the close handshake. Never throws. From here on, inbound frames are ignored. */
  close(code: number, reason: string, why: DisconnectReason): void {
    this.closeReason ??= why;
    this.sentCloseCode ??= code;
    this.state = 'closed';
    try {
      this.socket.close(code, clampCloseReason(reason));
    } catch {
      this.socket.terminate();
    }
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
