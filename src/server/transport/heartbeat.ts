import type { Transport } from './transport.js';

/** What one sweep needs from the manager. */
export interface SweepTarget {
  readonly connections: ReadonlyMap<string, Transport>;
  readonly pingIntervalMs: number;
  readonly pongTimeoutMs: number;
  /** The pong timeout of a protocol connection whose client said its page is hidden (never below `pongTimeoutMs`). */
  readonly hiddenPongTimeoutMs: number;
  /** Send a heartbeat ping (protocol ping frame in plain mode, `{"t":"ping"}` in protocol mode). */
  ping(conn: Transport, nowMs: number): void;
  /** Drop a connection that did not answer. */
  expire(conn: Transport): void;
}

/** Sweep period: often enough to honour both deadlines within half of the shorter one. */
export function sweepIntervalMs(pingIntervalMs: number, pongTimeoutMs: number): number {
  return Math.max(10, Math.floor(Math.min(pingIntervalMs, pongTimeoutMs) / 2));
}

/**
 * One pass over every connection; one timer drives it for all of them (no per-connection timer).
 * - Only idle connections are pinged: no frame received, or none sent, for `pingIntervalMs`. Sending keeps
 *   proxies (nginx, ALB) from cutting a connection whose client never talks.
 * - Any inbound frame after the ping counts as the answer. With none for `pongTimeoutMs`, the connection expires;
 *   for `hiddenPongTimeoutMs` if its client said its page is hidden (browsers throttle and freeze such tabs).
 * - A socket whose close handshake is under way is not pinged; it is terminated if the handshake has not
 *   finished `closeTimeoutMs` after the sweep that first sees it (a close the server started is bounded already).
 * Times are the sweep's coarse clock: an inbound frame stamps the time of the latest sweep, so `>=` means
 * "after the ping was sent".
 */
export function sweepHeartbeats(target: SweepTarget, nowMs: number): void {
  for (const conn of target.connections.values()) {
    if (!conn.socketOpen) {
      // Closing, perhaps started by the peer, which ws then waits 30 s for: not pinged, and bounded from here.
      conn.limitCloseWait();
      continue;
    }
    if (conn.pingSentAtMs !== 0) {
      if (conn.lastInboundMs >= conn.pingSentAtMs) conn.pingSentAtMs = 0;
      else if (
        nowMs - conn.pingSentAtMs >=
        (conn.hidden ? target.hiddenPongTimeoutMs : target.pongTimeoutMs)
      ) {
        target.expire(conn);
        continue;
      } else continue;
    }
    if (
      nowMs - conn.lastInboundMs >= target.pingIntervalMs ||
      nowMs - conn.lastOutboundMs >= target.pingIntervalMs
    ) {
      conn.pingSentAtMs = nowMs;
      target.ping(conn, nowMs);
    }
  }
}
