import type { Server } from 'node:http';
import type { WebSocketConnectionManager } from '../manager.js';
import type { ShutdownOptions, ShutdownStats } from './shutdown.js';

/** Options of {@link closeOnSignals}. */
export interface SignalOptions extends ShutdownOptions {
  /**
   * Signals that start the shutdown.
   * @default ['SIGTERM', 'SIGINT']
   */
  signals?: NodeJS.Signals[];
  /**
   * Time between the signal and the start of the shutdown. Meanwhile the manager is draining: readiness probes
   * answer 503 (so Kubernetes takes the pod out of its Service) while the HTTP server and every connection keep
   * working, also for clients that still arrive. Keep it below the pod's `terminationGracePeriodSeconds` minus
   * `timeoutMs`. Another of `signals` arriving during the drain starts the shutdown at once.
   * @default 0
   */
  drainDelayMs?: number;
  /** Called with the statistics once everything is closed (e.g. to `process.exit(0)`). */
  onClosed?: (stats: ShutdownStats) => void;
}

/**
 * On SIGTERM/SIGINT: drain for `drainDelayMs` (readiness false, everything else as usual), then stop accepting
 * HTTP connections, shut the manager down gracefully (clients get 1001/1012 and a reconnect hint), then close the
 * HTTP server. Returns a function that removes the signal handlers (and cancels a drain still waiting).
 */
export function closeOnSignals(
  manager: WebSocketConnectionManager,
  server: Server | undefined,
  options: SignalOptions = {},
): () => void {
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const drainDelayMs = options.drainDelayMs ?? 0;
  let drainTimer: ReturnType<typeof setTimeout> | undefined;
  const shutdown = () => {
    drainTimer = undefined;
    server?.close();
    void manager.gracefulShutdown(options).then((stats) => {
      server?.closeAllConnections?.();
      options.onClosed?.(stats);
    });
  };
  let started = false;
  const handler = () => {
    if (started) {
      // Another of the signals (each is handled once) during the drain: skip the rest of the delay.
      if (drainTimer !== undefined) {
        clearTimeout(drainTimer);
        shutdown();
      }
      return;
    }
    started = true;
    if (drainDelayMs <= 0) return shutdown();
    manager.drain();
    drainTimer = setTimeout(shutdown, drainDelayMs);
  };
  for (const s of signals) process.once(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
    clearTimeout(drainTimer);
  };
}
