import { ErrorCode } from '../protocol/error-codes.js';

/**
 * The one error class the server throws or reports. `code` is stable (see {@link ErrorCode}); tests and apps
 * switch on it, never on the message.
 */
export class StabilizerError extends Error {
  override readonly name: string = 'StabilizerError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A reconnect token was refused. `code` says why: expired, bad signature, replayed, malformed, unknown key. */
export class TokenError extends StabilizerError {
  override readonly name = 'TokenError';
}

/** `WebSocketConfig` failed validation; `issues` lists each wrong field with the reason. */
export class ConfigError extends StabilizerError {
  override readonly name = 'ConfigError';
  constructor(
    message: string,
    readonly issues: ReadonlyArray<{ path: string; message: string }>,
  ) {
    super(ErrorCode.InvalidConfig, message);
  }
}
