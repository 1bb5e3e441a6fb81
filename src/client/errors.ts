import { brand, hasBrandedInstance } from '../protocol/brand.js';
import type { ErrorCode } from '../protocol/index.js';
import type { RequestErrorCode } from '../protocol/requests.js';

/**
 * Every error the client reports: rejected `send()` promises, `error` events and constructor failures.
 * `code` is one of the stable {@link ErrorCode} strings, e.g. `SESSION_LOST`, `QUEUE_FULL`, `CLIENT_CLOSED`, or
 * for requests a {@link RequestErrorCode} (`websocket-stabilizer/client/request`).
 * `instanceof` works across the ESM and CommonJS builds (a `Symbol.for` brand).
 */
export class ClientError extends Error {
  static {
    brand(this, 'ClientError');
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasBrandedInstance(this, value);
  }
  override readonly name = 'ClientError';

  constructor(
    readonly code: ErrorCode | RequestErrorCode,
    message: string,
  ) {
    super(message);
  }
}
