import type { Connection } from './connection.js';

/**
 * A rate limiter shared beyond one connection: by every connection of a user, or by every node of a cluster when
 * its store is shared. The limiters of `rate-limiter-flexible` satisfy it as they are (`RateLimiterMemory` for one
 * process, `RateLimiterRedis` for a cluster): `consume` resolves when the points fit, and rejects with a result
 * that carries `msBeforeNext` when they do not. A rejection with an `Error` is a failure of the store.
 */
export interface RateLimiterLike {
  consume(key: string, points?: number): Promise<unknown>;
}

/** What one `consume` said: allowed, refused (retry after `retryAfterMs`), or the store failed (`error`). */
export type LimitOutcome = { refused: false; error?: unknown } | { refused: true; retryAfterMs: number };

const allowed: LimitOutcome = { refused: false };

/**
 * Charge one point to `key`. Never rejects. A store failure is reported as `error` and lets the attempt through:
 * an outage of the limiter's Redis must not take every user down (`rate-limiter-flexible`'s `insuranceLimiter`
 * keeps a local limit meanwhile, and its `rejectIfRedisNotReady` answers at once instead of queueing).
 */
export function consumePoint(limiter: RateLimiterLike, key: string): Promise<LimitOutcome> {
  let pending: Promise<unknown>;
  try {
    pending = limiter.consume(key, 1);
  } catch (err) {
    return Promise.resolve({ refused: false, error: err });
  }
  return Promise.resolve(pending).then(
    () => allowed,
    (res: unknown): LimitOutcome => {
      if (res instanceof Error || typeof res !== 'object' || res === null)
        return { refused: false, error: res };
      const ms = (res as { msBeforeNext?: unknown }).msBeforeNext;
      return { refused: true, retryAfterMs: typeof ms === 'number' && ms > 0 ? ms : 0 };
    },
  );
}

/** Whole seconds for a `Retry-After` header or hint: at least 1. */
export function retryAfterSeconds(retryAfterMs: number): number {
  return Math.max(1, Math.ceil(retryAfterMs / 1000));
}

/**
 * Inbound checks awaiting the limiter, per connection, beyond which the socket is paused (read no further) until
 * they are answered: the queue of a connection stays bounded however fast its peer sends.
 */
export const maxPendingChecks = 64;

/** What {@link admitInOrder} needs from the manager. */
export interface AdmissionHost {
  /** The shared limit refused a message of `conn`: count it and close it with 4002. */
  refuseShared(conn: Connection, retryAfterMs: number): void;
  reportError(clientId: string | undefined, err: unknown): void;
}

/**
 * Run `accept` for one inbound message of `conn` once `limiter` has admitted it under `key`, and never before
 * `accept` of every earlier message of the same connection: the checks run concurrently, the messages are
 * delivered in arrival order. When the limiter refuses a message, the connection is closed (4002) and neither that
 * message nor any later one of this connection is processed: a protocol client resends the reliable ones after
 * resuming (they were not acked), exactly as with the per-connection limit. Without `limiter` (a connection with
 * no principal), `accept` only waits for the earlier messages.
 */
export function admitInOrder(
  conn: Connection,
  limiter: RateLimiterLike | undefined,
  key: string | undefined,
  host: AdmissionHost,
  accept: () => void,
): void {
  const check = limiter && key !== undefined ? consumePoint(limiter, key) : Promise.resolve(allowed);
  if (++conn.pendingChecks === maxPendingChecks) conn.socket.pause();
  const tail: Promise<void> = Promise.all([conn.inboundTail, check]).then(([, outcome]) => {
    if (--conn.pendingChecks === maxPendingChecks - 1) conn.socket.resume();
    if (conn.inboundTail === tail) {
      conn.inboundTail = undefined;
      conn.admittedClientSeq = undefined; // every admitted message is delivered (or the connection is closed)
    }
    if (conn.state === 'closed' || conn.socket.readyState !== 1) return; // not processed: resent after a resume
    if (outcome.refused) return host.refuseShared(conn, outcome.retryAfterMs);
    if ('error' in outcome) host.reportError(conn.id, outcome.error);
    try {
      accept();
    } catch (err) {
      host.reportError(conn.id, err);
    }
  });
  conn.inboundTail = tail;
}
