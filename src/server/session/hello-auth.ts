import { CloseCode } from '../../protocol/close-codes.js';
import { ErrorCode } from '../../protocol/error-codes.js';
import type { HelloMessage } from '../../protocol/messages.js';
import type { Connection } from '../transport/connection.js';
import type { DisconnectReason } from '../events.js';
import { refusalStatus, type AuthResult } from '../upgrade/upgrade.js';

/** How `authenticate` at the hello refused a client: the close it gets (PROTOCOL.md §2.1), and an error to report. */
export interface HelloAuthRefusal {
  readonly code: number;
  readonly why: DisconnectReason;
  readonly errorCode: ErrorCode;
  readonly message: string;
  /** Present (even as `undefined`) when the hook threw what is not a refusal (no status, or 5xx): report it. */
  readonly error?: unknown;
}

const FORBIDDEN: HelloAuthRefusal = {
  code: CloseCode.Forbidden,
  why: 'forbidden',
  errorCode: ErrorCode.Forbidden,
  message: 'forbidden',
};
const UNAUTHORIZED: HelloAuthRefusal = {
  code: CloseCode.Unauthorized,
  why: 'unauthorized',
  errorCode: ErrorCode.Unauthorized,
  message: 'unauthorized',
};
const EXPIRED: HelloAuthRefusal = {
  code: CloseCode.CredentialsExpired,
  why: 'unauthorized',
  errorCode: ErrorCode.CredentialsExpired,
  message: 'credentials expired',
};

/**
 * `authenticate` at the hello (`conn.authenticateHello`, cleared here: it holds the upgrade request), before any
 * token is read, so a refused client cannot burn a token. `waiting` says whether the handshake is still this
 * one's after the await. Returns `undefined` to go on (with the hook's `clientId`, `data` and `principal` applied),
 * `'gone'` if the handshake ended meanwhile, or the refusal to close with.
 */
export async function authenticateAtHello(
  conn: Connection,
  hello: HelloMessage,
  waiting: () => boolean,
): Promise<HelloAuthRefusal | 'gone' | undefined> {
  const check = conn.authenticateHello!;
  conn.authenticateHello = undefined; // drops the upgrade request
  let result: AuthResult;
  try {
    result = (await check(hello.auth)) as AuthResult;
  } catch (err) {
    if (!waiting()) return 'gone';
    const status = refusalStatus(err);
    if (status === 403) return FORBIDDEN;
    if (status !== undefined && status < 500) return UNAUTHORIZED;
    return {
      code: CloseCode.InternalError,
      why: 'handler-error',
      errorCode: ErrorCode.Unauthorized,
      message: 'authenticate failed',
      error: err,
    };
  }
  if (!waiting()) return 'gone';
  if (result === false) return UNAUTHORIZED;
  if (result === 'expired') return EXPIRED;
  if (typeof result === 'object') {
    if (result.clientId !== undefined) conn.id = result.clientId;
    if (result.data !== undefined) conn.data = result.data;
    if (result.principal !== undefined) conn.principal = result.principal;
  }
  return undefined;
}
