/**
 * Delay before reconnect attempt `attempt` (0 for the first retry after a welcome): exponential backoff with
 * full jitter above a floor, so that clients dropped together do not come back together.
 *
 * ```text
 * capMs   = min(maxDelayMs, minDelayMs · 2^(attempt + 1))
 * delayMs = minDelayMs + random() · (capMs − minDelayMs)
 * ```
 *
 * So every delay lies in `[minDelayMs, maxDelayMs]`; the first retry waits 1–2 × `minDelayMs`.
 */
export function backoffDelayMs(
  attempt: number,
  minDelayMs: number,
  maxDelayMs: number,
  random: () => number,
): number {
  const capMs = Math.max(minDelayMs, Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(attempt + 1, 31)));
  return Math.round(minDelayMs + random() * (capMs - minDelayMs));
}
