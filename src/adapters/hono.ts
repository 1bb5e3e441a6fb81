import type { IncomingMessage } from 'node:http';
import type { Context, Env, MiddlewareHandler } from 'hono';
import type { WebSocketConnectionManager } from '../server/manager.js';
import type { SendData } from '../frames/payload.js';
import type { AttachOptions, AuthResult, HelloAuth, UpgradeHandler } from '../server/upgrade/upgrade.js';

/** What {@link createHonoStabilizer} needs of a Hono app: its `fetch`. */
export interface FetchApp {
  fetch: (
    request: Request,
    env: { incoming: IncomingMessage; outgoing: undefined },
  ) => Response | Promise<Response>;
}

/** A server that emits `upgrade`: what `serve()` of `@hono/node-server` returns, or any `http.Server`. */
export interface UpgradeEmitter {
  on(event: 'upgrade', listener: UpgradeHandler): unknown;
  off(event: 'upgrade', listener: UpgradeHandler): unknown;
}

/** Options of {@link createHonoStabilizer}. */
export interface HonoStabilizerOptions {
  /** The Hono app: each upgrade request goes through `app.fetch`, so its routes and middleware decide. */
  app: FetchApp;
  /**
   * Which proxies to believe, as `attach`'s (`true`: one hop; a hop count; a list of proxy addresses / CIDR
   * ranges): for the client address and, from a trusted proxy, the forwarded scheme and host of the origin check.
   * @default false
   */
  trustProxy?: AttachOptions['trustProxy'];
}

/** What {@link createHonoStabilizer} returns; `Data` is the manager's (what `authenticate` may return as `data`). */
export interface HonoStabilizer<Data = unknown> {
  /**
   * A route handler that accepts the WebSocket upgrade with what `authenticate(c)` returns (`false` → 401;
   * `{ clientId, data }` as for `attach`). Middleware before it can refuse with any response (its status is the
   * answer). A plain HTTP request to the route gets 426. For a client that sends `auth` in its hello, the request
   * goes through the app at the hello and `authenticate` gets `{ auth }` as its second argument; a refusal is then a
   * close code (4504 for `false` or a 401, 4503 for a 403: see `AttachOptions.authenticate`).
   */
  upgrade<E extends Env = Env>(
    authenticate?: (c: Context<E>, hello?: HelloAuth) => AuthResult<Data> | Promise<AuthResult<Data>>,
  ): MiddlewareHandler<E>;
  /**
   * Serve the upgrades of `server` (the one `serve()` returns): every check of `manager.attach` (503 with
   * Retry-After, 403, and the limits) runs first, then the request goes through `app.fetch`. A path without an
   * `upgrade()` route gets Hono's answer (404). Returns a function that detaches.
   */
  attach(server: UpgradeEmitter): () => void;
}

/** Upgrade requests being routed, and what `upgrade()` accepted them with. */
const upgrading = new WeakSet<Request>();
const accepted = new WeakMap<Request, AuthResult<unknown>>();
/** The hello's credentials of an upgrade authenticated at the hello (a client with the `auth` option). */
const hellos = new WeakMap<Request, HelloAuth>();

/** A Fetch `Request` for an upgrade request: URL and headers, no body. */
function toRequest(req: IncomingMessage): Request {
  const scheme = (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http';
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  return new Request(new URL(req.url ?? '/', `${scheme}://${req.headers.host ?? 'localhost'}`), { headers });
}

/** WebSocket upgrades for a Hono app on Node (`@hono/node-server`), routed and authenticated by the app itself. */
export function createHonoStabilizer<In, Out extends SendData, Data>(
  manager: WebSocketConnectionManager<In, Out, Data>,
  options: HonoStabilizerOptions,
): HonoStabilizer<Data> {
  const { app, trustProxy } = options;
  const handle = manager.createUpgradeHandler({
    trustProxy,
    authenticate: async (req, hello) => {
      const request = toRequest(req);
      upgrading.add(request);
      // A client that sends credentials in its hello: the route runs at the hello and gets them.
      if (hello) hellos.set(request, hello);
      const response = await app.fetch(request, { incoming: req, outgoing: undefined });
      const auth = accepted.get(request);
      if (auth !== undefined) return auth as AuthResult<Data>; // what this app's `upgrade()` accepted
      // Refused by a middleware or the route (its status), or answered by a route that is not upgrade(): 404.
      const status = response.status >= 400 ? response.status : 404;
      throw Object.assign(new Error(`upgrade refused by the Hono app with ${status}`), { status });
    },
  });
  return {
    upgrade(authenticate) {
      return async (c) => {
        if (!upgrading.has(c.req.raw)) return c.text('Upgrade Required', 426);
        const auth = authenticate ? await authenticate(c, hellos.get(c.req.raw)) : true;
        if (auth === false) return c.text('Unauthorized', 401);
        accepted.set(c.req.raw, auth);
        return c.body(null, 204);
      };
    },
    attach(server) {
      server.on('upgrade', handle);
      return () => void server.off('upgrade', handle);
    },
  };
}
