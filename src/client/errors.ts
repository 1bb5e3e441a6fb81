import type { ErrorCode } from '../protocol/index.js';

/**
 * Every error the client reports: rejected `send()` promises, `error` events and constructor failures.
 * `code` is one of the stable {@link ErrorCode} strings, e.g. `SESSION_LOST`, `QUEUE_FULL`, `CLIENT_CLOSED`.
 */
export class ClientError extends Error {
  override readonly name = 'ClientError';

  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}
