/** Result of one write: `ok`, `closed` (socket not open), `slow` (over the buffered-bytes cap), `failed`. */
export type WriteOutcome = 'ok' | 'closed' | 'slow' | 'failed';
