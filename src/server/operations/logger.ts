/**
 * The logging surface the library needs: a subset of pino's API, so a pino logger (or any compatible one) fits.
 * Each call gets a structured object first and a message second.
 */
export interface Logger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const noop = (): void => {};

/** The default: the library is silent unless a logger is configured. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
