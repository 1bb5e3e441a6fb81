import type { IncomingMessage, ServerResponse } from 'node:http';
import { EventLoopDelayWindow } from './event-loop-delay.js';
import type { WebSocketConnectionManager } from '../manager.js';

/** Why readiness is false. Several can hold at once; the body lists them all. */
export type NotReadyReason =
  'shutting-down' | 'draining' | 'backend-degraded' | 'too-many-connections' | 'event-loop-delay';

/** Options of {@link createHealthHandler}. */
export interface HealthOptions {
  /**
   * Path of the liveness probe: 200 for as long as the process answers HTTP.
   * @default '/livez'
   */
  livenessPath?: string;
  /**
   * Path of the readiness probe: 200 when this process should get new clients, 503 with the reasons otherwise.
   * @default '/readyz'
   */
  readinessPath?: string;
  /**
   * Readiness is false at this many connections (registered plus handshaking), so a load balancer sends new
   * clients elsewhere before the manager's own `maxConnections` refuses them. Unset: no connection threshold.
   * @default undefined
   */
  maxConnections?: number;
  /**
   * Readiness is false when the event loop's delay (p99 since the previous readiness check) is above this.
   * Sampled with `perf_hooks.monitorEventLoopDelay`; unset: not sampled at all.
   * @default undefined
   */
  maxEventLoopDelayMs?: number;
  /**
   * Sampling period of the event-loop delay monitor (only with `maxEventLoopDelayMs`).
   * @default 20
   */
  eventLoopResolutionMs?: number;
}

/** The readiness verdict, also the JSON body of the readiness probe. */
export interface ReadinessReport {
  status: 'ready' | 'not-ready';
  /** Empty when ready. */
  reasons: NotReadyReason[];
  /** Registered plus handshaking connections. */
  connections: number;
  /** p99 event-loop delay since the previous check; only with `maxEventLoopDelayMs`. */
  eventLoopDelayMs?: number;
}

/**
 * A request handler for liveness and readiness probes. Call it with any `node:http` request: it answers `GET` and
 * `HEAD` on the two paths and returns `true`; for anything else it returns `false` (and calls `next()` if given, so
 * it also works as Express/Connect middleware).
 */
export interface HealthHandler {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): boolean;
  /** The readiness verdict, for frameworks that answer themselves (status 200 when `ready`, else 503). */
  readiness(): ReadinessReport;
  /** Stop the event-loop delay monitor (if any). */
  close(): void;
}

/**
 * Liveness and readiness for Kubernetes probes and load balancers. Readiness is false while the manager is
 * draining (see `closeOnSignals` `drainDelayMs`) or shutting down, while its backend reports itself degraded (the
 * Redis backend when Redis is unreachable), and above the configured load.
 *
 * ```ts
 * const health = createHealthHandler(manager, { maxConnections: 10_000 });
 * createServer((req, res) => health(req, res) || app(req, res));
 * ```
 */
export function createHealthHandler(
  manager: WebSocketConnectionManager,
  options: HealthOptions = {},
): HealthHandler {
  const livenessPath = options.livenessPath ?? '/livez';
  const readinessPath = options.readinessPath ?? '/readyz';
  const { maxConnections, maxEventLoopDelayMs } = options;
  const loop =
    maxEventLoopDelayMs === undefined
      ? undefined
      : new EventLoopDelayWindow(options.eventLoopResolutionMs ?? 20);

  const readiness = (): ReadinessReport => {
    const stats = manager.getStats();
    const reasons: NotReadyReason[] = [];
    if (stats.shuttingDown) reasons.push('shutting-down');
    if (stats.draining) reasons.push('draining');
    if (manager.backend.degraded === true) reasons.push('backend-degraded');
    const connections = stats.connections + stats.handshaking;
    if (maxConnections !== undefined && connections >= maxConnections) reasons.push('too-many-connections');
    const report: ReadinessReport = { status: 'ready', reasons, connections };
    if (loop) {
      const delayMs = Math.round(loop.readP99Ms() * 10) / 10;
      report.eventLoopDelayMs = delayMs;
      if (delayMs > maxEventLoopDelayMs!) reasons.push('event-loop-delay');
    }
    if (reasons.length > 0) report.status = 'not-ready';
    return report;
  };

  const handler = ((req, res, next) => {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    if ((path !== livenessPath && path !== readinessPath) || (method !== 'GET' && method !== 'HEAD')) {
      next?.();
      return false;
    }
    const body = path === livenessPath ? { status: 'alive' } : readiness();
    const status = 'reasons' in body && body.reasons.length > 0 ? 503 : 200;
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'cache-control': 'no-store',
      'content-length': Buffer.byteLength(text),
    });
    res.end(method === 'HEAD' ? undefined : text);
    return true;
  }) as HealthHandler;
  handler.readiness = readiness;
  handler.close = () => loop?.stop();
  return handler;
}
