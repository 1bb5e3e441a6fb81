import type { Connection } from '../transport/connection.js';

/** Who is on the other end, for connection logs: the remote address and the principal, each only when known. */
export function peerLogFields(conn: Connection): { remoteAddress?: string; principal?: string } {
  const fields: { remoteAddress?: string; principal?: string } = {};
  if (conn.remoteAddress !== undefined) fields.remoteAddress = conn.remoteAddress;
  if (conn.principal !== undefined) fields.principal = conn.principal;
  return fields;
}
