import type { RateBucket } from '../../backends/types.js';

/**
 * Token bucket, refilled continuously: `burst` messages at once, `messagesPerSecond` sustained. Returns `false`
 * when the message is over the limit. The bucket is the connection's (plain mode) or the session's (protocol
 * mode, so that a resume does not refill it); `undefined` starts a full one.
 */
export function takeRateToken(
  bucket: RateBucket,
  limit: { messagesPerSecond: number; burst: number },
  nowMs: number,
): boolean {
  if (nowMs > bucket.refilledAtMs) {
    const refill = ((nowMs - bucket.refilledAtMs) / 1000) * limit.messagesPerSecond;
    bucket.tokens = Math.min(limit.burst, bucket.tokens + refill);
    bucket.refilledAtMs = nowMs;
  }
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

/** A full bucket. */
export function newRateBucket(limit: { burst: number }, nowMs: number): RateBucket {
  return { tokens: limit.burst, refilledAtMs: nowMs };
}
