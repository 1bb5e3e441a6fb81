import { msgId } from './routing.js';
import type { RedisLink } from './link.js';

/** Attempts of a release before it is given up, and the most it waits between two. */
const RELEASE_ATTEMPTS = 20;
const RELEASE_MAX_DELAY_MS = 2000;

/**
 * Single-use token nonces, cluster-wide: a resume token is accepted once on any node. A claim is a `SET NX` with
 * the token's remaining lifetime; a unique mark makes it idempotent (ioredis resends a SET whose reply a reconnect
 * lost, and the resend must not read as "already used").
 */
export class NonceStore {
  private closed = false;

  constructor(
    private readonly link: RedisLink,
    private readonly prefix: string,
  ) {}

  async claim(nonce: string, expiresAtMs: number): Promise<boolean> {
    const ttl = Math.max(1, Math.ceil(expiresAtMs - Date.now()));
    const key = `${this.prefix}nonce:${nonce}`;
    const mark = msgId();
    if ((await this.link.cmd.set(key, mark, 'PX', ttl, 'NX')) === 'OK') return true;
    return (await this.link.cmd.get(key)) === mark;
  }

  /**
   * Give a nonce back (its welcome was never confirmed). Retried while it fails (a Cluster failover rejects commands
   * until a replica is promoted): a release that is lost leaves the client's newest token refused with 4004.
   */
  async release(nonce: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.link.cmd.del(`${this.prefix}nonce:${nonce}`);
        return;
      } catch (err) {
        if (this.closed || attempt >= RELEASE_ATTEMPTS) throw err;
        const delayMs = Math.min(100 * 2 ** attempt, RELEASE_MAX_DELAY_MS);
        await new Promise((r) => setTimeout(r, delayMs).unref?.());
      }
    }
  }

  /** The backend is closing: releases in progress stop retrying. */
  close(): void {
    this.closed = true;
  }
}
