import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WebSocketConnectionManager } from '../server/manager.js';
import { DashboardRoutes } from './handler.js';
import { resolveDashboardOptions, type DashboardOptions } from './options.js';
import { DashboardSampler } from './sampler.js';

export type { DashboardOptions } from './options.js';
export type { DashboardPoint, DashboardSnapshot, TopicRow } from './snapshot.js';

/**
 * The dashboard as a request handler. Call it with any `node:http` request: for a path under `options.path` it
 * answers and returns `true`; for anything else it returns `false` (and calls `next()` if given, so it also works
 * as Express/Connect middleware).
 */
export interface DashboardHandler {
  (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void): boolean;
  /** Viewers connected to the update stream now. */
  readonly viewers: number;
  /** Whether the sampler runs; `false` whenever `viewers` is 0 (no timer, no monitor, no listener then). */
  readonly sampling: boolean;
  /** End every update stream and stop sampling. */
  close(): void;
}

/**
 * A live dashboard of a manager, served by your own HTTP server: connections by mode, detached sessions, topics
 * and their members, messages in and out per second, resumes and fresh sessions by reason, drops and slow
 * consumers, close codes, heartbeat round trip, event-loop delay, and with the Redis backend the connections of
 * every node; charts of the last minutes. Read-only unless `actions` is set; never open without `token`,
 * `authorize` or (development) `allowLoopback`; a cross-site request is answered 403. It samples only while
 * someone watches.
 *
 * ```ts
 * const dashboard = createDashboard(manager, { token: process.env.DASHBOARD_TOKEN });
 * createServer((req, res) => dashboard(req, res) || app(req, res));
 * ```
 */
export function createDashboard(
  manager: WebSocketConnectionManager,
  options: DashboardOptions,
): DashboardHandler {
  const resolved = resolveDashboardOptions(options);
  const sampler = new DashboardSampler(manager, resolved);
  const routes = new DashboardRoutes(manager, resolved, sampler);
  if (resolved.allowLoopback) {
    manager.log.warn(
      { event: 'dashboard.loopback', path: resolved.path },
      `dashboard: requests from this machine (loopback, no proxy headers) may open ${resolved.path} without credentials`,
    );
  }
  const handler = ((req, res, next) => {
    const pathname = (req.url ?? '/').split('?')[0]!;
    if (!routes.owns(pathname)) {
      next?.();
      return false;
    }
    routes.handle(req, res, pathname).catch((err: unknown) => {
      manager.log.error({ event: 'dashboard.error', err }, 'dashboard request failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end('internal error');
      else res.destroy();
    });
    return true;
  }) as DashboardHandler;
  Object.defineProperties(handler, {
    viewers: { get: () => sampler.viewerCount },
    sampling: { get: () => sampler.running },
  });
  handler.close = () => routes.close();
  return handler;
}
