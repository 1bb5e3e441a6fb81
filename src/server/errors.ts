import { brand, hasBrandedInstance } from '../protocol/brand.js';
import { ErrorCode } from '../protocol/error-codes.js';
import type { RequestErrorCode } from '../protocol/requests.js';

/**
 * The one error class the server throws or reports. `code` is stable (see {@link ErrorCode}, and
 * {@link RequestErrorCode} for requests); tests and apps
 * switch on it, never on the message. `instanceof` works across the ESM and CommonJS builds (a `Symbol.for`
 * brand), for the subclasses too.
 */
export class StabilizerError extends Error {
  static {
    brand(this, 'StabilizerError');
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasBrandedInstance(this, value);
  }
  override readonly name: string = 'StabilizerError';
  constructor(
    readonly code: ErrorCode | RequestErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A reconnect token was refused. `code` says why: expired, bad signature, replayed, malformed, unknown key. */
export class TokenError extends StabilizerError {
  static {
    brand(this, 'TokenError');
  }
  override readonly name = 'TokenError';
}

/** `WebSocketConfig` failed validation; `issues` lists each wrong field with the reason. */
export class ConfigError extends StabilizerError {
  static {
    brand(this, 'ConfigError');
  }
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    readonly issues: ReadonlyArray<{ path: string; message: string }>,
  ) {
    super(ErrorCode.InvalidConfig, message);
  }
}
