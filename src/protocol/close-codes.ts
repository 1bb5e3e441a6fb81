/**
 * Every close code websocket-stabilizer sends, in one table.
 *
 * - 1000–1015: standard codes from RFC 6455.
 * - 4000–4499: **retryable**. The client should reconnect (with backoff) and resume its session.
 * - 4500–4999: **terminal**. The client must not reconnect on its own; a new login or a fix is needed.
 *
 * A client can act on the range alone; see {@link isRetryableCloseCode}.
 */
export const CloseCode = {
  /** Normal closure, initiated by the application. */
  Normal: 1000,
  /** Server shutting down for good (or for an unknown time). Reconnect later, honour the hint. */
  GoingAway: 1001,
  /** Sent by `ws` for a frame that breaks RFC 6455 (unmasked, reserved opcode or RSV bits, bad control frame). */
  ProtocolError: 1002,
  /** Sent by `ws` for invalid UTF-8 in a text frame or close reason (or compressed data that does not inflate). */
  InvalidPayload: 1007,
  /** Sent by `ws` for a message in more fragments than it allows (16384). */
  PolicyViolation: 1008,
  /** A frame (or a fragmented message) was larger than `maxPayloadBytes`. */
  MessageTooBig: 1009,
  /** A user handler threw, or the storage backend failed during a resume; only that connection is closed. */
  InternalError: 1011,
  /** Server restarting (graceful shutdown with `restart: true`). Reconnect after the hint. */
  ServiceRestart: 1012,
  /**
   * Over capacity (`maxConnections` or per-IP limit) for a socket accepted outside `attach`. Protocol clients get
   * a `reconnect` hint first. Try again later.
   */
  TryAgainLater: 1013,

  /** No frame from the peer within the ping interval plus the pong timeout. */
  HeartbeatTimeout: 4000,
  /** Buffered outbound bytes over `maxBufferedBytes`; resume replays what the client missed. */
  SlowConsumer: 4001,
  /** Inbound message rate over the configured limit. Reconnect after a delay. */
  RateLimited: 4002,
  /** The `hello` did not arrive within `handshakeTimeoutMs`. */
  HandshakeTimeout: 4003,
  /**
   * A stale connection attempt: its `hello` carried a token that was already used, while the session it was issued
   * for (or the session under this client id) lives on. Sent to a socket its client has most likely abandoned;
   * nothing else is touched. A client that does get it retries later with its newest token.
   */
  StaleHello: 4004,

  /**
   * The reconnect token was forged, expired, replayed or malformed. For plain-mode token flows written by the
   * application (see examples/reconnect); protocol clients get `fresh`/`token-rejected` instead.
   */
  TokenRejected: 4500,
  /** A newer connection with the same client id replaced this one. Reconnecting would fight it. */
  Replaced: 4501,
  /** The peer broke the wire protocol (bad frame, unknown type, sequence gap). */
  ProtocolViolation: 4502,
  /**
   * The application's authorization hook refused the connection or the resume (at the `hello`: `authenticate`
   * threw an error with status 403).
   */
  Forbidden: 4503,
  /**
   * `authenticate` refused the credentials of the `hello`'s `auth` (returned `false`, or threw a 4xx other than
   * 403). The bundled client emits `unauthorized` and stops.
   */
  Unauthorized: 4504,
  /**
   * `authenticate` found the `hello`'s credentials expired (returned `'expired'`). Terminal for a client that
   * cannot refresh; the bundled client calls `auth()` again once and reconnects, resuming its session.
   */
  CredentialsExpired: 4505,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** First and last code of the retryable custom range. */
export const RETRYABLE_CLOSE_RANGE = [4000, 4499] as const;
/** First and last code of the terminal custom range. */
export const TERMINAL_CLOSE_RANGE = [4500, 4999] as const;

/**
 * Whether a client should reconnect after a close with this code.
 * Standard codes: 1000 (the server ended the session on purpose), 1002, 1003, 1007, 1008 and 1010 are terminal;
 * everything else below 4000 (abnormal 1006, 1001, 1011, 1012, 1013, ...) is retryable.
 */
export function isRetryableCloseCode(code: number): boolean {
  if (code >= TERMINAL_CLOSE_RANGE[0] && code <= TERMINAL_CLOSE_RANGE[1]) return false;
  if (code >= RETRYABLE_CLOSE_RANGE[0] && code <= RETRYABLE_CLOSE_RANGE[1]) return true;
  return !(
    code === 1000 ||
    code === 1002 ||
    code === 1003 ||
    code === 1007 ||
    code === 1008 ||
    code === 1010
  );
}

/** Close reasons are at most 123 bytes on the wire (RFC 6455 §5.5). Truncate safely. */
export function clampCloseReason(reason: string): string {
  if (reason.length <= 40) return reason;
  let out = reason.slice(0, 123);
  while (new TextEncoder().encode(out).length > 123) out = out.slice(0, -1);
  return out;
}
