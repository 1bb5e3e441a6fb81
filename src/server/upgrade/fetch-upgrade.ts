import { SUBPROTOCOL } from '../../protocol/messages.js';
import { upgradeRejectionStatus, type UpgradeRejectionReason } from '../operations/counters.js';
import type { WebSocketConnectionManager } from '../manager.js';
import type { SendData } from '../../frames/payload.js';
import { StandardSocketAdapter, type StandardWebSocket } from '../transport/standard-socket.js';
import { consumePoint, retryAfterSeconds } from '../inbound/shared-limits.js';
import { originLogFields, refusalStatus, type AuthResult } from './upgrade.js';
import { checkOrigin } from './origin.js';
import { clientResolver, type ClientView, type TrustProxy } from './proxy-trust.js';

/**
 * The runtime's upgrade: accept `request` with the subprotocol given (or none) and return the server side of the
 * socket, not yet open, and the response to answer with. `(req, protocol) => Deno.upgradeWebSocket(req, { protocol })`
 * on Deno; on Workers, a `WebSocketPair` whose server end is `accept()`ed and a 101 response with the client end.
 */
export type FetchUpgrade = (
  request: Request,
  protocol: string | undefined,
) => { socket: StandardWebSocket; response: Response };

/** Options of {@link handleFetchUpgrade}; `Data` is the manager's. */
export interface FetchUpgradeOptions<Data = unknown> {
  /** As `attach`'s: `false` (or a throw) answers 401, an error with `status` 400–599 that status. @default accept all */
  authenticate?: (request: Request) => AuthResult<Data> | Promise<AuthResult<Data>>;
  /**
   * The TCP peer's IP, from the runtime (`info.remoteAddr.hostname` on Deno). With `trustProxy`, the client's
   * address is read from `X-Forwarded-For` when this peer is a trusted proxy.
   * @default undefined
   */
  remoteAddress?: string;
  /**
   * Which proxies to believe, as `attach`'s (see {@link TrustProxy}); the peer is `remoteAddress`. A trusted
   * proxy's `X-Forwarded-Proto` / `X-Forwarded-Host` also give the origin the `allowedOrigins` check compares with
   * (else the request URL's scheme and host).
   * @default false
   */
  trustProxy?: TrustProxy;
}

/**
 * Serve a WebSocket upgrade that arrives as a Fetch `Request` (Deno, Bun's fetch handler, Workers), with the checks
 * of `attach`: 426 (not an upgrade), 503 with `Retry-After` (shutting down, over capacity), 429 with `Retry-After`
 * (`rateLimiters.upgradesPerIp`, keyed by the client address), 403 (another site's `Origin`, see `allowedOrigins`), 401 or the `authenticate` error's status.
 * An accepted socket negotiates `stabilizer.v1` if offered and goes to `manager.connect` once it opens. Not yet
 * here: tracing spans.
 */
export async function handleFetchUpgrade<In, Out extends SendData, Data>(
  manager: WebSocketConnectionManager<In, Out, Data>,
  request: Request,
  upgrade: FetchUpgrade,
  options: FetchUpgradeOptions<Data> = {},
): Promise<Response> {
  const client = fetchClientView(request, options);
  const ip = client.ip;
  const refuse = (
    reason: UpgradeRejectionReason,
    status = upgradeRejectionStatus[reason],
    retryAfterMs = manager.config.shutdownRetryAfterMs,
    detail?: Record<string, string | undefined>,
  ): Response => {
    manager.upgradeRejected(reason, ip, status, detail);
    const headers: Record<string, string> = {};
    if (status === 503 || status === 429) headers['retry-after'] = String(retryAfterSeconds(retryAfterMs));
    return new Response(null, { status, headers });
  };
  if (request.method !== 'GET' || request.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
    return new Response('Upgrade Required', { status: 426, headers: { upgrade: 'websocket' } });
  }
  if (manager.isShuttingDown) return refuse('shutting-down');
  const attemptsPerIp = manager.config.rateLimiters.upgradesPerIp;
  if (attemptsPerIp && ip !== undefined) {
    const outcome = await consumePoint(attemptsPerIp, ip);
    if (outcome.refused) return refuse('rate-limited', 429, outcome.retryAfterMs);
    if ('error' in outcome) manager.reportError(undefined, outcome.error);
    if (manager.isShuttingDown) return refuse('shutting-down');
  }
  const origin = request.headers.get('origin') ?? undefined;
  const verdict = checkOrigin(origin, client, manager.config.allowedOrigins);
  if (!verdict.allowed) {
    const detail = originLogFields(origin, verdict.expected);
    return refuse('origin-not-allowed', undefined, undefined, detail);
  }
  if (!manager.hasCapacity(ip)) return refuse('over-capacity');
  let auth: AuthResult<Data>;
  try {
    auth = options.authenticate ? await options.authenticate(request) : true;
  } catch (err) {
    const status = refusalStatus(err);
    if (status === undefined || status >= 500) manager.reportError(undefined, err);
    return status === undefined ? refuse('authenticate-failed') : refuse('refused-by-app', status);
  }
  if (auth === false) return refuse('unauthorized');
  if (manager.isShuttingDown) return refuse('shutting-down');
  const offered = (request.headers.get('sec-websocket-protocol') ?? '').split(',').map((p) => p.trim());
  const { socket, response } = upgrade(request, offered.includes(SUBPROTOCOL) ? SUBPROTOCOL : undefined);
  const { clientId, data, principal } = typeof auth === 'object' ? auth : {};
  const adapted = new StandardSocketAdapter(socket);
  const connect = () => {
    // connect() re-checks the limits; a refusal closes the socket with its documented code and is logged.
    const connectOptions = { remoteAddress: ip, clientAddress: client.isClient, data, principal };
    manager.connect(adapted.asWs(), clientId, connectOptions).catch(() => {});
  };
  if (socket.readyState === 1) connect();
  else socket.addEventListener('open', connect);
  return response;
}

/** The client as {@link handleFetchUpgrade} sees it: the peer is `remoteAddress`, TLS and host from the URL. */
function fetchClientView(request: Request, options: FetchUpgradeOptions<unknown>): ClientView {
  let url: URL | undefined;
  try {
    url = new URL(request.url);
  } catch {
    url = undefined;
  }
  const trust = options.trustProxy;
  let resolve = Array.isArray(trust) ? listResolvers.get(trust) : undefined;
  if (!resolve) {
    resolve = clientResolver(trust);
    if (Array.isArray(trust)) listResolvers.set(trust, resolve);
  }
  return resolve({
    peer: options.remoteAddress,
    encrypted: url?.protocol === 'https:' || url?.protocol === 'wss:',
    header: (name) => (name === 'host' ? url?.host : (request.headers.get(name) ?? undefined)),
  });
}

/** Resolvers of `trustProxy` lists, compiled once per array rather than per request. */
const listResolvers = new WeakMap<readonly string[], ReturnType<typeof clientResolver>>();
