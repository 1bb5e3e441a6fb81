import { ErrorCode } from '../protocol/error-codes.js';
import { StabilizerError } from '../server/errors.js';
import { isEpochError } from './link.js';

/** A Redis failure as a typed error: `HISTORY_LOST` when Redis lost its data, else `BACKEND_UNAVAILABLE`. */
export function typedRedisError(err: unknown, what: string): StabilizerError {
  if (err instanceof StabilizerError) return err;
  if (isEpochError(err)) return new StabilizerError(ErrorCode.HistoryLost, `${what}: redis lost its history`);
  const why = err instanceof Error ? err.message : String(err);
  return new StabilizerError(ErrorCode.BackendUnavailable, `${what} failed: ${why}`, { cause: err });
}
