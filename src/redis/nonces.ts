import { msgId } from './routing.js';
import type { RedisLink } from './link.js';

/**
 * Single-use token nonces, cluster-wide: a resume token is accepted once on any node. A claim is a `SET NX` with
 * the token's remaining lifetime; a unique mark makes it idempotent (ioredis resends a SET whose reply a reconnect
 * lost, and the resend must not read as "already used").
 */
export class NonceStore {
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

  async release(nonce: string): Promise<void> {
    await this.link.cmd.del(`${this.prefix}nonce:${nonce}`);
  }
}
