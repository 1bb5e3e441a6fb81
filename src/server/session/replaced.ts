import { CloseCode } from '../../protocol/close-codes.js';
import type { Connection } from '../transport/connection.js';

/**
 * Close a connection whose session (or client id) another connection took over. 4501 is terminal for the client, so
 * it goes only to a connection whose client confirmed its welcome: one that has not (PROTOCOL.md §3, item 4) may be
 * the client's own newest attempt, racing a copy of it (a late hello with the same token), and is dropped without a
 * close code instead; its client, if it is still there, resumes with the token of that welcome.
 */
export function closeReplaced(conn: Connection, reason: string): void {
  if (conn.protocol && !conn.confirmed) conn.terminate('replaced');
  else conn.close(CloseCode.Replaced, reason, 'replaced');
}
