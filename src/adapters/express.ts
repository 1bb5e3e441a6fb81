import type { Server } from 'node:http';
import type { Application, Request, RequestHandler } from 'express';
import type { WebSocketConnectionManager } from '../server/manager.js';
import { runMiddleware } from '../server/upgrade/middleware.js';
import type { SendData } from '../frames/payload.js';
import type { AttachOptions, AuthResult, HelloAuth } from '../server/upgrade/upgrade.js';

/**
 * Options of {@link attachExpress}: those of `manager.attach`, plus middleware for the upgrade request. `Data` is
 * the manager's (what `authenticate` may return as `data`).
 */
export interface ExpressAttachOptions<Data = unknown> extends Omit<AttachOptions<Data>, 'authenticate'> {
  /**
   * Middleware run, in order, on each upgrade request to `path` before `authenticate` (express-session,
   * passport, cookie-parser, ...), like Socket.IO's `io.engine.use()`. A middleware that answers (e.g. 401, 429)
   * refuses the upgrade with that status; `next(err)` refuses with `err.status` (400-599) or 401.
   * @default []
   */
  middleware?: ReadonlyArray<RequestHandler>;
  /**
   * The Express app: the upgrade request and the stand-in response get its prototypes, so middleware can use
   * `req.get()`, `req.ip`, `res.status()`. Without it, middleware sees Node's plain objects.
   * @default undefined
   */
  app?: Application;
  /**
   * Runs after the middleware, with `req.session` (and whatever else it set). Return `false` for 401. For a
   * client that sends `auth` in its hello it runs at the hello, with `{ auth }` as second argument (see
   * `AttachOptions.authenticate`).
   */
  authenticate?: (req: Request, hello?: HelloAuth) => AuthResult<Data> | Promise<AuthResult<Data>>;
}

/**
 * Serve WebSocket upgrades of an Express app's server (`app.listen()` or `http.createServer(app)`) on
 * `options.path`, running `middleware` on each upgrade request before `authenticate`. Every check of
 * `manager.attach` stays: 404, 503 with Retry-After, 403, 401. Returns a function that detaches.
 */
export function attachExpress<In, Out extends SendData, Data>(
  manager: WebSocketConnectionManager<In, Out, Data>,
  server: Server,
  options: ExpressAttachOptions<Data> = {},
): () => void {
  const { middleware = [], app, authenticate, ...attach } = options;
  // Express keeps its request and response prototypes on the app (untyped in @types/express).
  const prototypes = app as { request: object; response: object } | undefined;
  return manager.attach(server, {
    ...attach,
    authenticate: async (req, hello) => {
      const request = req as Request;
      await runMiddleware(request, middleware, prototypes);
      return authenticate ? authenticate(request, hello) : true;
    },
  });
}
