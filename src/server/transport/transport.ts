import type { ServerMessage } from '../../protocol/messages.js';
import type { Payload } from '../../frames/payload.js';
import type { DisconnectReason } from '../events.js';
import type { Publication } from '../topics/publication.js';
import type { WriteOutcome } from './write-outcome.js';

/**
 * What the layers above the socket need of one connection's transport: write a frame or a pre-framed shared
 * buffer, close with a code, and the liveness facts the heartbeat reads. `Connection` implements it over a `ws`
 * socket (a standard `WebSocket` reaches it through `StandardSocketAdapter`), and owns the `ws` fast paths (direct
 * writes to the TCP socket, corking, the dead-socket check). The heartbeat sweep talks to this interface only; the
 * session and topic code still takes a `Connection` (ARCHITECTURE.md "Floors" says what is left).
 */
export interface Transport {
  /** Open and not closed by the server: writes may go out. */
  readonly isOpen: boolean;
  /** The socket itself is open (its close handshake has not started, whoever started it). */
  readonly socketOpen: boolean;
  /** Bytes queued on the socket and not yet written. */
  readonly bufferedBytes: number;
  /** A frame as it is (plain frames, protocol control messages). */
  write(data: string | Buffer, isBinary: boolean, nowMs: number): WriteOutcome;
  /** A protocol control message, in this connection's encoding. */
  writeMessage(message: ServerMessage, nowMs: number, json?: string): WriteOutcome;
  /** A shared payload, pre-framed once for every recipient; `seq` makes it reliable in protocol mode. */
  writePayload(payload: Payload, seq: number | undefined, nowMs: number): WriteOutcome;
  /** A topic publication's shared frame (or its `skip`). */
  writePublication(pub: Publication, skip: boolean, nowMs: number): WriteOutcome;
  /** The heartbeat ping of this connection's mode. */
  ping(nowMs: number): WriteOutcome;
  /** Start the close handshake with `code`; `why` is the reported disconnect reason. */
  close(code: number, reason: string, why: DisconnectReason): void;
  /** Drop the connection without a close handshake. */
  terminate(why: DisconnectReason): void;
  /** Bound the wait for a close handshake under way (a peer-started one included). */
  limitCloseWait(): void;
  /** Liveness: when a frame last came in and went out (the sweep's coarse clock), when the unanswered ping left. */
  readonly lastInboundMs: number;
  readonly lastOutboundMs: number;
  pingSentAtMs: number;
  /** The client said its page is hidden: the heartbeat waits `hiddenPongTimeoutMs`. */
  readonly hidden: boolean;
}
