import type { Connection } from './connection.js';

/**
 * Token bucket per connection, refilled continuously: `burst` messages at once, `messagesPerSecond` sustained.
 * Returns `false` when the message is over the limit. State lives in two numbers on the connection.
 */
export function takeRateToken(
  conn: Connection,
  limit: { messagesPerSecond: number; burst: number },
  nowMs: number,
): boolean {
  if (conn.rateRefilledAtMs === 0) {
    conn.rateTokens = limit.burst;
    conn.rateRefilledAtMs = nowMs;
  } else if (nowMs > conn.rateRefilledAtMs) {
    const refill = ((nowMs - conn.rateRefilledAtMs) / 1000) * limit.messagesPerSecond;
    conn.rateTokens = Math.min(limit.burst, conn.rateTokens + refill);
    conn.rateRefilledAtMs = nowMs;
  }
  if (conn.rateTokens < 1) return false;
  conn.rateTokens -= 1;
  return true;
}
