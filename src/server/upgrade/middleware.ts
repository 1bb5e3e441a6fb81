import { ServerResponse, type IncomingMessage } from 'node:http';

/**
 * A connect-style middleware (Express, connect, polka): `(req, res, next)`. Declared as a method so that Express's
 * `RequestHandler` (whose `req`/`res` are Express's subtypes) is accepted as is.
 */
export type ConnectMiddleware<Req extends IncomingMessage = IncomingMessage> = {
  handle(req: Req, res: ServerResponse, next: (err?: unknown) => void): unknown;
}['handle'];

/** Thrown by {@link runMiddleware} when a middleware answered instead of calling `next()`. */
class MiddlewareRefusal extends Error {
  override readonly name = 'MiddlewareRefusal';
  constructor(readonly status: number) {
    super(`upgrade refused by middleware with HTTP ${status}`);
  }
}

/**
 * Run connect-style middleware, in order, on an upgrade request, as Express would run it on an HTTP request, so
 * that express-session, passport or cookie-parser decorate `req` before `authenticate` reads it. The response the
 * middleware sees is a stand-in that is never written to the socket: nothing it sets reaches the client, so
 * middleware that saves state on `res.end()` (e.g. a session touch) does not run that step.
 *
 * Resolves once every middleware called `next()`. Rejects when one calls `next(err)` (with `err`) or ends the
 * response itself (with an error whose `status` is the response's status code, which the upgrade answers if it is
 * 400-599, else 401). `prototypes` lets Express give `req` and `res` its helpers (`req.get`, `res.status`).
 */
export function runMiddleware<Req extends IncomingMessage>(
  req: Req,
  middleware: ReadonlyArray<ConnectMiddleware<Req>>,
  prototypes?: { request: object; response: object },
): Promise<void> {
  const res: ServerResponse = new ServerResponse(req);
  if (prototypes) {
    Object.setPrototypeOf(req, prototypes.request);
    Object.setPrototypeOf(res, prototypes.response);
    Object.assign(req, { res });
    Object.assign(res, { req });
  }
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (err?: unknown) => {
      if (settled) return;
      settled = true;
      if (err === undefined) resolve();
      else reject(err);
    };
    // A middleware that answers ends the response: refuse the upgrade with its status.
    res.end = function end(this: ServerResponse) {
      settle(new MiddlewareRefusal(this.statusCode));
      return this;
    } as ServerResponse['end'];
    let index = 0;
    const next = (err?: unknown): void => {
      if (settled) return;
      if (err !== undefined && err !== null && err !== 'route' && err !== 'router') return settle(err);
      const mw = middleware[index++];
      if (!mw) return settle();
      try {
        const result = mw(req, res, next);
        if (result && typeof (result as Promise<unknown>).then === 'function') {
          (result as Promise<unknown>).then(undefined, (e: unknown) =>
            next(e ?? new Error('middleware rejected')),
          );
        }
      } catch (e) {
        settle(e);
      }
    };
    next();
  });
}
