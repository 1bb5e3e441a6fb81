import type { WebSocket } from 'ws';
import { clampCloseReason } from '../protocol/close-codes.js';
import { encodeBinaryData } from '../protocol/messages.js';
import type { SessionRecord } from '../backends/types.js';
import type { DisconnectReason } from './events.js';
import type { Payload } from './payload.js';

/** Result of one write: `ok`, `closed` (socket not open), `slow` (over the buffered-bytes cap), `failed`. */
export type WriteOutcome = 'ok' | 'closed' | 'slow' | 'failed';

const OPEN = 1;

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
  /** Rate limiter bucket. */
  rateTokens = 0;
  rateRefilledAtMs = 0;
  /** Protocol mode: when the sweep sends a replacement resume token (half its lifetime). */
  tokenRefreshAtMs = 0;
  /** Protocol mode: handshake deadline timer (cleared on welcome). */
  handshakeTimer: ReturnType<typeof setTimeout> | undefined = undefined;

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
    try {
      this.socket.send(data, { binary: isBinary });
    } catch {
      return 'failed';
    }
    this.lastOutboundMs = nowMs;
    return 'ok';
  }

  /** Send a payload the way this connection's mode wants it; `seq` makes it reliable in protocol mode. */
  writePayload(payload: Payload, seq: number | undefined, nowMs: number): WriteOutcome {
    if (!this.protocol) return this.write(payload.plain, payload.isBinary, nowMs);
    if (payload.isBinary) return this.write(Buffer.from(encodeBinaryData(payload.plain as Buffer, seq)), true, nowMs);
    return this.write(seq === undefined ? payload.volatileText() : payload.reliableText(seq), false, nowMs);
  }

  /** Start the close handshake. Never throws. */
  close(code: number, reason: string, why: DisconnectReason): void {
    this.closeReason ??= why;
    try {
      this.socket.close(code, clampCloseReason(reason));
    } catch {
      this.socket.terminate();
    }
  }

  /** Drop the TCP connection at once (no close handshake). */
  terminate(why: DisconnectReason): void {
    this.closeReason ??= why;
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
