import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { AUTH_SUBPROTOCOL, SUBPROTOCOL, SUBPROTOCOL_MSGPACK } from '../../protocol/messages.js';
import { loadedMsgpack, loadMsgpack, msgpackSettled, offersMsgpack } from '../../frames/msgpack.js';
import { upgradeRejectionStatus, type UpgradeRejectionReason } from '../operations/counters.js';
import type { ManagerHost } from '../manager-host.js';
import { servableDeflateOffer, wsDeflateOptions } from '../transport/compression.js';
import { consumePoint, retryAfterSeconds } from '../inbound/shared-limits.js';
import type { SendData } from '../../frames/payload.js';
import type { AuthResult } from './auth-result.js';
import { checkOrigin } from './origin.js';
import { clientResolver, type ClientView, type RequestFacts, type TrustProxy } from './proxy-trust.js';

export type { AuthResult };

/** The second argument of `authenticate` when it runs at the `hello` (see {@link AttachOptions.authenticate}). */
export interface HelloAuth<Auth = unknown> {
  /** The `hello`'s `auth` field: whatever the client's `auth` option gave (unchecked JSON; `undefined` if none). */
  auth: Auth | undefined;
}

/** The `authenticate` hook; `Data` is the manager's, `Auth` the type of the client's `auth` (unchecked). */
export type Authenticate<Data = unknown, Auth = unknown, Req = IncomingMessage> = (
  request: Req,
  hello?: HelloAuth<Auth>,
) => AuthResult<Data> | Promise<AuthResult<Data>>;

/**
 * Options of `attach` / `createUpgradeHandler` (which does not check the path: route to it yourself). `Data` is
 * the manager's: what `authenticate` may return as `data`; `Auth` what clients send as `auth` (a declaration, not
 * checked at run time).
 */
export interface AttachOptions<Data = unknown, Auth = unknown> {
  /**
   * Only upgrades to this path are handled; others get 404 (unless another `upgrade` listener exists).
   * @default '/'
   */
  path?: string;
  /**
   * Runs before the upgrade is accepted. Return `false` (or throw) to answer HTTP 401. To answer another status,
   * throw an error whose `status` or `statusCode` is 400-599 (as http-errors, Hono's `HTTPException` and Fastify's
   * errors carry): the framework adapters use this to pass on a middleware's or route's refusal.
   *
   * **At the `hello`.** A protocol client that sends credentials in its `hello` (the bundled client's `auth`
   * option; browsers cannot set headers) offers the `stabilizer.auth` subprotocol. For such a request the hook
   * does not run at the upgrade: it runs when the `hello` arrives (within `handshakeTimeoutMs`), with the same
   * request and `{ auth }` as second argument, before any token is read or session touched. Its refusal is then a
   * close code the client can see: `false` → 4504, `'expired'` → 4505, a thrown status 403 → 4503, another 4xx →
   * 4504, a throw without a usable status or a 5xx → 1011 (reported). The request is kept only until then.
   */
  authenticate?: Authenticate<Data, Auth>;
  /**
   * Which proxies in front of this server to believe (see {@link TrustProxy}): `true` (one hop, the rightmost
   * `X-Forwarded-For` entry), a hop count, or a list of proxy addresses / CIDR ranges. The client address it yields
   * is the one logs, `rateLimiters.upgradesPerIp`, `maxConnectionsPerIp` and `maxSessionsPerIp` use, and a trusted
   * proxy's `X-Forwarded-Proto` / `X-Forwarded-Host` give the origin the `allowedOrigins` check compares with.
   * Forwarding headers from a peer that is not trusted change nothing.
   * @default false
   */
  trustProxy?: TrustProxy;
}

export type UpgradeHandler = (request: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** Shared by every upgrading socket: a listener per socket would be a closure over its request. */
function destroyOnError(this: Duplex): void {
  this.destroy();
}

function reject(socket: Duplex, status: number, text: string, headers: Record<string, string> = {}): void {
  const lines = [`HTTP/1.1 ${status} ${text}`, 'Connection: close', 'Content-Length: 0'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  socket.end(`${lines.join('\r\n')}\r\n\r\n`);
}

/** The HTTP status an `authenticate` error asks for (`status`/`statusCode` in 400-599), else undefined. */
export function refusalStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const { status, statusCode } = err as { status?: unknown; statusCode?: unknown };
  const s = typeof status === 'number' ? status : statusCode;
  return typeof s === 'number' && Number.isInteger(s) && s >= 400 && s <= 599 ? s : undefined;
}

/** The facts of a Node upgrade request that the proxy rules read. */
export function nodeRequestFacts(request: IncomingMessage): RequestFacts {
  return {
    peer: request.socket.remoteAddress,
    encrypted: (request.socket as { encrypted?: boolean }).encrypted === true,
    header: (name) => {
      const value = request.headers[name];
      return Array.isArray(value) ? value.join(', ') : value;
    },
  };
}

/**
 * Build an `upgrade` handler that runs every check before a WebSocket exists: path (404), shutdown (503 with
 * Retry-After), upgrade attempts per IP (429 with Retry-After), origin (403: another site's page, see
 * `allowedOrigins`), connection limits (503), `authenticate` (401). Accepted sockets negotiate `stabilizer.v1` if the client offers it, and go to
 * `manager.connect`. The request is not retained.
 */
export function createUpgradeHandler<In, Out extends SendData, Data, Auth = unknown>(
  manager: ManagerHost<In, Out, Data>,
  options: AttachOptions<Data, Auth> = {},
): UpgradeHandler {
  const { config } = manager;
  const { compression } = config;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.maxPayloadBytes,
    perMessageDeflate: compression.enabled ? wsDeflateOptions(compression) : false,
    clientTracking: false,
    // MessagePack when the client offers it and msgpackr is installed (loaded before the upgrade completes).
    handleProtocols: (protocols) =>
      config.msgpack && protocols.has(SUBPROTOCOL_MSGPACK) && loadedMsgpack()
        ? SUBPROTOCOL_MSGPACK
        : protocols.has(SUBPROTOCOL)
          ? SUBPROTOCOL
          : false,
  });
  let pending = 0;
  const pendingByIp = new Map<string, number>();
  /**
   * Refuse with the reason's status (503 and 429 with Retry-After: `retryAfterMs`, by default
   * `shutdownRetryAfterMs`), counted and logged by the manager.
   */
  const refuse = (
    socket: Duplex,
    reason: UpgradeRejectionReason,
    ip: string | undefined,
    status = upgradeRejectionStatus[reason],
    retryAfterMs = config.shutdownRetryAfterMs,
  ): void => {
    manager.upgradeRejected(reason, ip, status);
    manager.tracing?.upgradeEnded(socket, status, reason);
    const headers: Record<string, string> =
      status === 503 || status === 429 ? { 'Retry-After': String(Math.ceil(retryAfterMs / 1000)) } : {};
    reject(socket, status, STATUS_CODES[status] ?? 'Error', headers);
  };
  const attemptsPerIp = config.rateLimiters.upgradesPerIp;
  const resolveClient = clientResolver(options.trustProxy);

  return (request, socket, head) => {
    socket.on('error', destroyOnError);
    const client = resolveClient(nodeRequestFacts(request));
    const ip = client.ip;
    manager.tracing?.upgradeStarted(request, socket, ip);
    if (manager.isShuttingDown) return refuse(socket, 'shutting-down', ip);
    if (!attemptsPerIp || ip === undefined) return admitted(request, socket, head, client);
    consumePoint(attemptsPerIp, ip)
      .then((outcome) => {
        if (socket.destroyed) return; // the client gave up meanwhile
        if (outcome.refused) {
          return refuse(socket, 'rate-limited', ip, 429, retryAfterSeconds(outcome.retryAfterMs) * 1000);
        }
        if ('error' in outcome) manager.reportError(undefined, outcome.error);
        if (manager.isShuttingDown) return refuse(socket, 'shutting-down', ip);
        admitted(request, socket, head, client);
      })
      .catch((err: unknown) => {
        manager.reportError(undefined, err);
        socket.destroy();
      });
  };

  /** The checks after the per-IP attempt limit. */
  function admitted(request: IncomingMessage, socket: Duplex, head: Buffer, client: ClientView): void {
    const { ip } = client;
    const origin = request.headers.origin;
    const verdict = checkOrigin(origin, client, config.allowedOrigins);
    if (!verdict.allowed) {
      const status = upgradeRejectionStatus['origin-not-allowed'];
      manager.upgradeRejected('origin-not-allowed', ip, status, originLogFields(origin, verdict.expected));
      manager.tracing?.upgradeEnded(socket, status, 'origin-not-allowed');
      return reject(socket, status, STATUS_CODES[status] ?? 'Error');
    }
    if (!manager.hasCapacity(ip, pending, ip === undefined ? 0 : (pendingByIp.get(ip) ?? 0))) {
      return refuse(socket, 'over-capacity', ip);
    }
    // Reserve a slot (global and per IP) until the socket is handed over or gone, so concurrent upgrades cannot
    // overshoot a limit.
    pending++;
    if (ip !== undefined) pendingByIp.set(ip, (pendingByIp.get(ip) ?? 0) + 1);
    let reserved = true;
    const release = () => {
      if (!reserved) return;
      reserved = false;
      // Drop the listener: its closure shares a scope with `request` and `head`, which must not outlive the upgrade.
      socket.removeListener('close', release);
      pending--;
      if (ip === undefined) return;
      const n = (pendingByIp.get(ip) ?? 1) - 1;
      if (n > 0) pendingByIp.set(ip, n);
      else pendingByIp.delete(ip);
    };
    socket.once('close', release);
    const authenticate = options.authenticate;
    // Credentials in the hello: authenticate then (the request is kept until the hello, not beyond).
    const atHello = authenticate !== undefined && offersHelloAuth(request);
    const proceed = (auth: AuthResult<Data>) => {
      if (auth === false || auth === 'expired') {
        release();
        return refuse(socket, 'unauthorized', ip);
      }
      if (manager.isShuttingDown) {
        release();
        return refuse(socket, 'shutting-down', ip);
      }
      const { clientId, data, principal } = typeof auth === 'object' ? auth : {};
      if (compression.enabled) {
        // Hand ws only an offer the shared compressor can serve; without one the client gets plain frames.
        const offer = servableDeflateOffer(
          request.headers['sec-websocket-extensions'],
          compression.serverMaxWindowBits,
        );
        if (offer === undefined) delete request.headers['sec-websocket-extensions'];
        else request.headers['sec-websocket-extensions'] = offer;
      }
      const upgrade = (): void =>
        wss.handleUpgrade(request, socket, head, (ws) => {
          release();
          manager.tracing?.upgradeEnded(socket, 101);
          socket.removeListener('error', destroyOnError); // ws has its own error handling on the socket from here on
          const authenticateHello = atHello
            ? (auth: unknown) => authenticate(request, { auth: auth as Auth })
            : undefined;
          manager
            .connect(ws, clientId, {
              remoteAddress: ip,
              clientAddress: client.isClient,
              data,
              principal,
              authenticateHello,
            })
            .catch(() => {
              // The socket was closed with a documented code; the error is already logged/emitted.
            });
        });
      // The first client that offers MessagePack loads msgpackr (once); until then nothing else needs it.
      const offered = request.headers['sec-websocket-protocol'];
      if (config.msgpack && !msgpackSettled() && offersMsgpack(offered)) void loadMsgpack().then(upgrade);
      else upgrade();
    };
    const fail = (err: unknown) => {
      release();
      const status = refusalStatus(err);
      // A deliberate 4xx refusal is not an error; a 5xx, or a throw without a usable status, is reported.
      if (status === undefined || status >= 500) manager.reportError(undefined, err);
      if (status === undefined) return refuse(socket, 'authenticate-failed', ip);
      refuse(socket, 'refused-by-app', ip, status);
    };
    if (!authenticate || atHello) return proceed(true);
    try {
      Promise.resolve(authenticate(request)).then(proceed, fail);
    } catch (err) {
      fail(err);
    }
  }
}

/** The log fields of an origin refusal: what came and what was expected (bounded: the header is the client's). */
export function originLogFields(
  origin: string | undefined,
  expected: string | undefined,
): Record<string, string | undefined> {
  return { origin: origin?.slice(0, 200), expectedOrigin: expected };
}

/** Whether a protocol client offers {@link AUTH_SUBPROTOCOL}: its credentials come in the `hello`. */
function offersHelloAuth(request: IncomingMessage): boolean {
  const offered = request.headers['sec-websocket-protocol']?.split(',').map((p) => p.trim()) ?? [];
  return offered.includes(SUBPROTOCOL) && offered.includes(AUTH_SUBPROTOCOL);
}

/** Attach to an `http.Server`: handles upgrades on `options.path`. Returns a function that detaches. */
/** Per server: one `upgrade` listener routing by path to every `attach` on it. */
const routers = new WeakMap<Server, Map<string, UpgradeHandler>>();

export function attachToServer<In, Out extends SendData, Data, Auth = unknown>(
  manager: ManagerHost<In, Out, Data>,
  server: Server,
  options: AttachOptions<Data, Auth> = {},
): () => void {
  const path = options.path ?? '/';
  let routes = routers.get(server);
  let listener: UpgradeHandler | undefined;
  if (!routes) {
    const table = (routes = new Map());
    routers.set(server, table);
    listener = (request, socket, head) => {
      const handle = table.get((request.url ?? '/').split('?')[0]!);
      if (handle) return handle(request, socket, head);
      // Another path: leave it to other upgrade listeners, or answer 404 if there are none.
      if (server.listenerCount('upgrade') === 1) reject(socket, 404, 'Not Found');
    };
    server.on('upgrade', listener);
  }
  if (routes.has(path)) throw new Error(`a WebSocketConnectionManager is already attached at ${path}`);
  routes.set(path, createUpgradeHandler(manager, options));
  return () => {
    routes.delete(path);
    if (routes.size === 0 && listener) {
      server.off('upgrade', listener);
      routers.delete(server);
    }
  };
}
