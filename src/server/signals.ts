import type { Server } from 'node:http';
import type { WebSocketConnectionManager } from './manager.js';
import type { ShutdownOptions, ShutdownStats } from './shutdown.js';

/** Options of {@link closeOnSignals}. */
export interface SignalOptions extends ShutdownOptions {
  /**
   * Signals that start the shutdown.
   * @default ['SIGTERM', 'SIGINT']
   */
  signals?: NodeJS.Signals[];
  /** Called with the statistics once everything is closed (e.g. to `process.exit(0)`). */
  onClosed?: (stats: ShutdownStats) => void;
}

/**
 * On SIGTERM/SIGINT: stop accepting HTTP connections, shut the manager down gracefully (clients get 1001/1012 and
 * a reconnect hint), then close the HTTP server. Returns a function that removes the signal handlers.
 */
export function closeOnSignals(
  manager: WebSocketConnectionManager,
  server: Server | undefined,
  options: SignalOptions = {},
): () => void {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const handler = () => {
    server?.close();
    void manager.gracefulShutdown(options).then((stats) => {
      server?.closeAllConnections?.();
      options.onClosed?.(stats);
    });
  };
  for (const s of signals) process.once(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
}
