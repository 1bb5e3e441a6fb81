import { CloseCode } from '../protocol/index.js';
import type { CloseInfo } from './options.js';

/**
 * The client's liveness check on the wall clock (PROTOCOL.md §2.4): any frame from the server counts. Plain
 * functions over this state rather than a class, so that the minifier can shorten their names (the client has a
 * size budget).
 */
export interface Liveness {
  /** Wall-clock time of the last frame from the server (or of the connect). */
  r: number;
  /** Whether a ping was written since that frame. */
  g?: boolean;
  /** The welcome's `pingIntervalMs`. */
  i: number;
  /** The welcome's `pongTimeoutMs`. */
  p: number;
  t?: ReturnType<typeof setTimeout>;
  /** The client's `now` and `connectTimeoutMs` options. */
  o: { now(): number; connectTimeoutMs: number };
  /** Whether the client is welcomed. */
  a(): boolean;
  /** Writes a frame to the socket; false when it could not. */
  w(frame: string): boolean;
  /** Drops the silent socket (and reconnects if allowed). */
  d(info: CloseInfo): void;
}

/** How long the server may stay silent: the heartbeat window once welcomed, else the connect timeout. */
const limitMs = (l: Liveness, open: boolean): number => (open ? l.i + l.p : l.o.connectTimeoutMs);

/** A frame arrived from the server (or a socket is connecting). */
export function heard(l: Liveness): void {
  l.r = l.o.now();
  l.g = false;
}

/**
 * Drops a socket silent for longer than {@link limitMs}, pings the server after
 * `pingIntervalMs + pongTimeoutMs / 2` of silence (in case only the client is talking), and re-arms the timer.
 */
export function tick(l: Liveness): void {
  clearTimeout(l.t);
  const open = l.a();
  const idleMs = l.o.now() - l.r;
  const maxMs = limitMs(l, open);
  const probeMs = l.i + l.p / 2;
  if (idleMs >= maxMs) {
    return l.d(
      open
        ? { code: CloseCode.HeartbeatTimeout, reason: 'heartbeat timeout' }
        : { code: CloseCode.HandshakeTimeout, reason: 'connect timeout' },
    );
  }
  if (open && idleMs >= probeMs && !l.g) l.g = l.w('{"t":"ping"}');
  l.t = setTimeout(tick, (open && idleMs < probeMs ? probeMs : maxMs) - idleMs, l);
}

/** Wall-clock check for callers outside the timer (a throttled tab may not have run it). */
export function check(l: Liveness): void {
  if (l.o.now() - l.r >= limitMs(l, l.a())) tick(l);
}
