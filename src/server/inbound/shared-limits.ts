import { CloseCode } from '../../protocol/close-codes.js';
import type { Connection } from '../transport/connection.js';
import type { ServerCounters } from '../operations/counters.js';
import type { Logger } from '../operations/logger.js';

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
const admitted = Promise.resolve(allowed);

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

/** What {@link InboundAdmission} needs from the manager. */
export interface AdmissionHost {
  readonly counters: ServerCounters;
  readonly log: Logger;
  reportError(clientId: string | undefined, err: unknown): void;
}

/**
 * `rateLimiters.messagesPerPrincipal` on the inbound path, keeping each connection's messages in arrival order.
 * The checks of one connection run concurrently, and each message is delivered once its own check and every
 * earlier message of the connection are done. When the limiter refuses a message, the connection is closed with
 * 4002, and neither that message nor any later one of the connection is processed. A protocol client resends the
 * reliable ones after resuming (they were not acked), exactly as with the per-connection limit. An async
 * `schema.inbound` verdict rides the same chain (awaited next to the limiter's check). Without the limiter and
 * without async validators (the default) nothing here runs, and messages are delivered synchronously as before.
 */
export class InboundAdmission {
  constructor(
    private readonly limiter: RateLimiterLike | undefined,
    private readonly host: AdmissionHost,
  ) {}

  /** Must an inbound message of `conn` go through {@link admit}? (A shared limit applies, or others wait.) */
  mustWait(conn: Connection): boolean {
    return conn.inboundTail !== undefined || (this.limiter !== undefined && conn.principal !== undefined);
  }

  /**
   * Run `accept` once the limiter admits one message of `conn` (charged to its principal), in arrival order, with
   * `verdict` (an async validator's answer, awaited alongside the limiter).
   */
  admit<V>(conn: Connection, accept: (verdict: V | undefined) => void, verdict?: V | Promise<V>): void {
    const key = conn.principal;
    const check = this.limiter && key !== undefined ? consumePoint(this.limiter, key) : admitted;
    this.chain(conn, check, accept, verdict);
  }

  /** Run `accept` after the messages of `conn` that are waiting, without a charge. */
  afterPending(conn: Connection, accept: () => void): void {
    this.chain(conn, admitted, accept, undefined);
  }

  private chain<V>(
    conn: Connection,
    check: Promise<LimitOutcome>,
    accept: (verdict: V | undefined) => void,
    verdict: V | Promise<V> | undefined,
  ): void {
    if (++conn.pendingChecks === maxPendingChecks) conn.socket.pause();
    const all = Promise.all([conn.inboundTail, check, verdict]);
    const tail: Promise<void> = all.then(([, outcome, v]) => {
      if (--conn.pendingChecks === maxPendingChecks - 1) conn.socket.resume();
      if (conn.inboundTail === tail) {
        conn.inboundTail = undefined;
        conn.admittedClientSeq = undefined; // every admitted message is delivered (or the connection is closed)
      }
      if (conn.state === 'closed' || conn.socket.readyState !== 1) return; // not processed: resent after a resume
      if (outcome.refused) return this.refuse(conn, outcome.retryAfterMs);
      if ('error' in outcome) this.host.reportError(conn.id, outcome.error);
      try {
        accept(v);
      } catch (err) {
        this.host.reportError(conn.id, err);
      }
    });
    conn.inboundTail = tail;
  }

  private refuse(conn: Connection, retryAfterMs: number): void {
    this.host.counters.rateLimited.principal++;
    const { id: clientId, principal } = conn;
    const fields = { event: 'rate-limited', limit: 'principal', clientId, principal, retryAfterMs };
    this.host.log.warn(fields, 'rate limit exceeded');
    // A protocol client waits this long (plus its backoff) before it reconnects and resends.
    if (conn.protocol && retryAfterMs > 0) {
      conn.writeMessage(
        { t: 'reconnect', retryAfterMs: Math.ceil(retryAfterMs), reason: 'rate-limited' },
        Date.now(),
      );
    }
    conn.close(CloseCode.RateLimited, 'principal rate limit exceeded', 'rate-limited');
  }
}
