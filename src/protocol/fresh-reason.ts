/** Why a session started fresh instead of resuming. */
export type FreshReason =
  /** The client presented no token: a first connection. */
  | 'new'
  /** The token or the session it names has outlived its TTL. */
  | 'expired'
  /** The server does not know the session (restarted with in-memory storage, or another cluster). */
  | 'unknown-session'
  /** Messages the client missed were evicted from the replay buffer (count, bytes or age). */
  | 'gap'
  /** The token was forged, tampered, replayed or malformed. */
  | 'token-rejected'
  /** The server evicted the detached session to stay within its memory budget or session cap. */
  | 'evicted'
  /**
   * Reported by the client, never sent by a server: its newest token was refused as already used (4004) twice in
   * a row (the welcome of its last resume was lost and the token's nonce stayed spent), so it started a new session.
   */
  | 'token-replayed';
