import type { Counter, Gauge, Registry } from 'prom-client';
import type { WebSocketConnectionManager } from '../server/manager.js';

/** The subset of `prom-client` this module uses; pass the module itself (`import * as prom from 'prom-client'`). */
export interface PromClientModule {
  Counter: typeof Counter;
  Gauge: typeof Gauge;
}

/** Options of {@link registerPrometheusMetrics}. */
export interface PrometheusMetricsOptions {
  /** `prom-client` (an optional peer dependency, so the library never imports it itself). */
  promClient: PromClientModule;
  /** Registry to register in. */
  registry: Registry;
  /**
   * Prefix of every metric name.
   * @default 'websocket_stabilizer_'
   */
  prefix?: string;
}

/**
 * Expose a manager's state and lifecycle as Prometheus metrics, through its public events and `getStats()`
 * (nothing is added to the send path). Returns a function that unsubscribes and unregisters.
 *
 * Gauges (read at scrape time): `connections`, `handshaking_connections`, `sessions`, `detached_sessions`,
 * `detached_session_bytes`. Counters: `connects_total{mode,resume}`, `disconnects_total{reason}`,
 * `session_ends_total{reason}`, `messages_received_total{reliable}`, `errors_total`.
 */
export function registerPrometheusMetrics(
  manager: WebSocketConnectionManager,
  options: PrometheusMetricsOptions,
): () => void {
  const { promClient: prom, registry } = options;
  const p = options.prefix ?? 'websocket_stabilizer_';
  const registers = [registry];
  const names: string[] = [];
  const gauge = (name: string, help: string, read: () => number) => {
    names.push(p + name);
    return new prom.Gauge({
      name: p + name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  };
  const counter = (name: string, help: string, labelNames: string[] = []) => {
    names.push(p + name);
    return new prom.Counter({ name: p + name, help, labelNames, registers });
  };

  gauge('connections', 'Open, registered connections', () => manager.getConnectionCount());
  gauge(
    'handshaking_connections',
    'Protocol sockets waiting for hello',
    () => manager.getStats().handshaking,
  );
  gauge('sessions', 'Protocol sessions held by this process', () => manager.getStats().sessions);
  gauge('detached_sessions', 'Sessions waiting for a resume', () => manager.getStats().detachedSessions);
  gauge(
    'detached_session_bytes',
    'Estimated bytes held by detached sessions (budget: maxDetachedSessionBytes)',
    () => manager.getStats().detachedSessionBytes,
  );
  const connects = counter('connects_total', 'Accepted connections', ['mode', 'resume']);
  const disconnects = counter('disconnects_total', 'Closed connections by reason', ['reason']);
  const sessionEnds = counter('session_ends_total', 'Sessions gone for good by reason', ['reason']);
  const received = counter('messages_received_total', 'Inbound messages', ['reliable']);
  const errors = counter('errors_total', 'Errors reported');

  const offs = [
    manager.on('connect', (e) => connects.inc({ mode: e.mode, resume: e.resume })),
    manager.on('disconnect', (e) => disconnects.inc({ reason: e.reason })),
    manager.on('session-end', (e) => sessionEnds.inc({ reason: e.reason })),
    manager.on('message', (e) => received.inc({ reliable: String(e.reliable) })),
    manager.on('error', () => errors.inc()),
  ];
  return () => {
    for (const off of offs) off();
    for (const name of names) registry.removeSingleMetric(name);
  };
}
