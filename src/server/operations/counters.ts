import type { WriteOutcome } from '../transport/write-outcome.js';

/** Why an upgrade was refused before a WebSocket existed. */
export type UpgradeRejectionReason =
  | 'shutting-down'
  | 'origin-not-allowed'
  | 'over-capacity'
  | 'unauthorized'
  | 'authenticate-failed'
  /** Over `rateLimiters.upgradesPerIp`: 429 with `Retry-After`. */
  | 'rate-limited'
  /** `authenticate` threw an error with its own `status` (400–599): counted by that status. */
  | 'refused-by-app';

/** HTTP status of each upgrade rejection reason. */
export const upgradeRejectionStatus: Readonly<Record<UpgradeRejectionReason, number>> = {
  'shutting-down': 503,
  'origin-not-allowed': 403,
  'over-capacity': 503,
  unauthorized: 401,
  'authenticate-failed': 401,
  'rate-limited': 429,
  'refused-by-app': 401, // the default; the application's own status is counted in `appRefusals`
};

/**
 * Monotonic counts since the manager was created, kept as plain integers: the hot paths only increment a field,
 * and `websocket-stabilizer/metrics` reads them at scrape time. One instance per manager (`manager.counters`).
 */
export class ServerCounters {
  /** Data messages written to a socket: reliable (sequenced, protocol mode), volatile, plain mode. */
  sentReliable = 0;
  sentVolatile = 0;
  sentPlain = 0;
  /**
   * Data messages lost for one recipient: volatile ones skipped for a slow consumer or a detached session, and
   * plain-mode writes that failed (slow consumer, socket error). Sockets already closing are not counted. Reliable
   * messages never are: one that cannot be written stays in the session's replay buffer.
   */
  droppedVolatile = 0;
  droppedPlain = 0;
  /** Upgrades refused, by reason (the HTTP status follows from it: {@link upgradeRejectionStatus}). */
  readonly upgradeRejections: Record<Exclude<UpgradeRejectionReason, 'refused-by-app'>, number> = {
    'shutting-down': 0,
    'origin-not-allowed': 0,
    'over-capacity': 0,
    unauthorized: 0,
    'authenticate-failed': 0,
    'rate-limited': 0,
  };
  /**
   * Inbound messages refused by a rate limit, by limit: `connection` (`rateLimit`, per connection or session) and
   * `principal` (`rateLimiters.messagesPerPrincipal`). Each refusal closes its connection with 4002.
   */
  readonly rateLimited = { connection: 0, principal: 0 };
  /** Inbound messages that failed `schema.inbound` validation (answered `INVALID_MESSAGE`, not delivered). */
  invalidMessages = 0;
  /** Upgrades refused by an `authenticate` error with its own status, by that status. */
  readonly appRefusals = new Map<number, number>();
  /**
   * Heartbeat round trips: answers to the sweep's pings (a `ws` pong from a plain client, a `pong` frame from a
   * protocol client) and their summed time since the ping (ms, wall clock). The mean over an interval is the
   * difference of `heartbeatRttMsTotal` over the difference of `heartbeatAnswers`.
   */
  heartbeatAnswers = 0;
  heartbeatRttMsTotal = 0;

  /** Count one answer to a heartbeat ping sent at `pingSentAtMs` (0: none was waiting, nothing is counted). */
  countHeartbeatAnswer(pingSentAtMs: number): void {
    if (pingSentAtMs === 0) return;
    this.heartbeatAnswers++;
    this.heartbeatRttMsTotal += Math.max(0, Date.now() - pingSentAtMs);
  }

  /** Count one refused upgrade. */
  countRejection(reason: UpgradeRejectionReason, status: number): void {
    if (reason === 'refused-by-app') this.appRefusals.set(status, (this.appRefusals.get(status) ?? 0) + 1);
    else this.upgradeRejections[reason]++;
  }

  /** Count one data-message write to a connection. */
  countWrite(protocol: boolean, reliable: boolean, outcome: WriteOutcome): void {
    if (outcome === 'ok') {
      if (!protocol) this.sentPlain++;
      else if (reliable) this.sentReliable++;
      else this.sentVolatile++;
    } else if (outcome === 'closed') {
      // A socket already closing is no recipient any more (its disconnect is counted instead).
    } else if (!protocol) this.droppedPlain++;
    else if (!reliable) this.droppedVolatile++;
  }
}

/** Counters of connections that belong to no manager; nobody reads them. */
export const unownedCounters = new ServerCounters();
