import { SUBPROTOCOL } from '../protocol/messages.js';
import { upgradeRejectionStatus, type UpgradeRejectionReason } from './counters.js';
import type { WebSocketConnectionManager } from './manager.js';
import type { SendData } from './payload.js';
import { StandardSocketAdapter, type StandardWebSocket } from './standard-socket.js';
import { consumePoint, retryAfterSeconds } from './shared-limits.js';
import { refusalStatus, type AuthResult } from './upgrade.js';

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
  /** The client's IP, from the runtime (`info.remoteAddr.hostname` on Deno). @default undefined */
  remoteAddress?: string;
}

/**
 * Serve a WebSocket upgrade that arrives as a Fetch `Request` (Deno, Bun's fetch handler, Workers), with the checks
 * of `attach`: 426 (not an upgrade), 503 with `Retry-After` (shutting down, over capacity), 429 with `Retry-After`
 * (`rateLimiters.upgradesPerIp`, keyed by `remoteAddress`), 403 (origin), 401 or the `authenticate` error's status.
 * An accepted socket negotiates `stabilizer.v1` if offered and goes to `manager.connect` once it opens. Not yet
 * here: tracing spans.
 */
export async function handleFetchUpgrade<In, Out extends SendData, Data>(
  manager: WebSocketConnectionManager<In, Out, Data>,
  request: Request,
  upgrade: FetchUpgrade,
  options: FetchUpgradeOptions<Data> = {},
): Promise<Response> {
  const ip = options.remoteAddress;
  const refuse = (
    reason: UpgradeRejectionReason,
    status = upgradeRejectionStatus[reason],
    retryAfterMs = manager.config.shutdownRetryAfterMs,
  ): Response => {
    manager.upgradeRejected(reason, ip, status);
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
  const origins = manager.config.allowedOrigins;
  const origin = request.headers.get('origin');
  if (origins && (origin === null || !origins.includes(origin))) return refuse('origin-not-allowed');
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
    manager.connect(adapted.asWs(), clientId, { remoteAddress: ip, data, principal }).catch(() => {});
  };
  if (socket.readyState === 1) connect();
  else socket.addEventListener('open', connect);
  return response;
}
