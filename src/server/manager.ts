import { randomBytes, randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import { brand, hasBrandedInstance } from '../protocol/brand.js';
import { CloseCode } from '../protocol/close-codes.js';
import { ErrorCode } from '../protocol/error-codes.js';
import { SUBPROTOCOL, SUBPROTOCOL_MSGPACK } from '../protocol/messages.js';
import { loadedMsgpack } from '../frames/msgpack.js';
import { MemoryBackend } from '../backends/memory.js';
import { resolveConfig } from './config.js';
import type { WebSocketConfig } from './config-types.js';
import { Connection } from './transport/connection.js';
import type { UpgradeRejectionReason } from './operations/counters.js';
import { StabilizerError } from './errors.js';
import { sweepHeartbeats, sweepIntervalMs, type SweepTarget } from './transport/heartbeat.js';
import { silentLogger } from './operations/logger.js';
import { ProtocolHandler } from './session/protocol-handler.js';
import { newRateBucket, takeRateToken } from './inbound/rate-limit.js';
import { InboundAdmission } from './inbound/shared-limits.js';
import { InboundValidation } from './inbound/validation.js';
import { UpgradeRejectionLog } from './operations/rejection-log.js';
import { SocketListeners } from './transport/socket-listeners.js';
import { runGracefulShutdown, type ShutdownOptions, type ShutdownStats } from './operations/shutdown.js';
import { MessagingManager } from './messaging.js';
import type { SendData } from '../frames/payload.js';
import type { AnyRequestTypes, RequestTypes } from '../protocol/requests.js';
import { ReconnectTokenService, type VerifiedToken } from './session/tokens.js';
import { ServerTracing } from './operations/tracing.js';
import {
  attachToServer,
  createUpgradeHandler,
  type AttachOptions,
  type UpgradeHandler,
} from './upgrade/upgrade.js';
import type { Server } from 'node:http';

import type { ConnectOptions, ManagerHooks, ManagerStats } from './manager-options.js';

export type { ConnectOptions, ManagerHooks, ManagerStats } from './manager-options.js';

/**
 * Keeps WebSocket connections healthy: a registry with O(1) lookup, direct send and broadcast with a
 * partial-failure report, one heartbeat sweep for all sockets, signed single-use reconnect tokens, exactly-once
 * session resume for `stabilizer.v1` clients, limits, and graceful shutdown.
 *
 * Concurrency: everything runs on Node's single-threaded event loop. Registry changes are synchronous, so no two
 * of them interleave; the only suspension points are in the protocol handshake (token and session lookups), and
 * the handshake re-checks the registry and the session after each await before it changes anything.
 *
 * Type parameters (declarations, unchecked at run time; the defaults leave everything untyped): `In`, what clients
 * send (`message` data; add `| Buffer` if they send bytes); `Out`, what `sendToClient`, `broadcast` and `publish`
 * accept (or bytes, always); `Data`, the per-connection `data` of `authenticate` and `connect` (seen by listeners
 * and hooks as `Data | undefined`); `Rpc`, the request/reply shapes of both directions (`onRequest`, `request`).
 * A `StabilizerClient<Out, In>` mirrors a manager typed `<In, Out>`.
 */
export class WebSocketConnectionManager<
  In = unknown,
  Out extends SendData = SendData,
  Data = unknown,
  Rpc extends RequestTypes = AnyRequestTypes,
>
  extends MessagingManager<In, Out, Data, Rpc>
  implements SweepTarget
{
  private readonly rejectionLog = new UpgradeRejectionLog(this.log);
  /** @internal `rateLimiters.messagesPerPrincipal`, in arrival order per connection. */
  readonly admission = new InboundAdmission(this.config.rateLimiters.messagesPerPrincipal, this);
  /** @internal `schema.inbound`, in arrival order per connection. */
  readonly validation: InboundValidation;
  // `instanceof` across the ESM and CommonJS builds (see protocol/brand.ts).
  static {
    brand(this, 'WebSocketConnectionManager');
  }
  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasBrandedInstance(this, value);
  }
  private readonly tokens: ReconnectTokenService;
  private readonly protocol: ProtocolHandler;
  private sweepTimer: ReturnType<typeof setInterval> | undefined;
  private readonly socketListeners = new SocketListeners(this);

  constructor(config: WebSocketConfig<In> = {}, hooks: ManagerHooks<Data> = {}) {
    const untypedHooks = hooks as ManagerHooks; // the core passes `data` on untouched
    super(
      resolveConfig(config),
      config.backend ?? new MemoryBackend(),
      config.logger ?? silentLogger,
      untypedHooks.authorizeSubscribe,
    );
    this.validation = new InboundValidation(config.schema?.inbound, this);
    const claim = (nonce: string, exp: number) => this.backend.claimNonce(nonce, exp);
    this.tokens = new ReconnectTokenService(this.config.tokens, claim);
    // Protocol sessions always need tokens: without a configured secret, an ephemeral one serves this process.
    const sessionTokens = this.tokens.enabled
      ? this.tokens
      : new ReconnectTokenService({ ...this.config.tokens, secret: randomBytes(32) }, claim);
    this.protocol = new ProtocolHandler(this, sessionTokens, untypedHooks.authorizeResume);
    if (hooks.tracing) this.tracing = new ServerTracing(hooks.tracing);
    this.backend.bind?.(this);

    this.startSweep();
  }

  // ---------------------------------------------------------------- registry

  /**
   * Register an accepted `ws` socket. Plain sockets are registered at once under `clientId` (or a new UUID).
   * Sockets that negotiated `stabilizer.v1` resolve after the `hello`/`welcome` handshake with the session id
   * (a resumed session keeps its id). Over `maxConnections`, or while shutting down, the socket is closed with
   * 1013 / 1001 and the promise rejects with `CONNECTION_LIMIT` / `SHUTTING_DOWN`. A protocol handshake that fails
   * rejects with the code of its close: `HANDSHAKE_TIMEOUT` (4003), `PROTOCOL_VIOLATION` (4502), `FORBIDDEN` (4503),
   * `UNAUTHORIZED` (4504) and `CREDENTIALS_EXPIRED` (4505) from `authenticateHello`, and `NOT_OPEN` if the peer went
   * away first.
   */
  connect(socket: WebSocket, clientId?: string, options: ConnectOptions<Data> = {}): Promise<string> {
    const remote = options.remoteAddress;
    if (this.shuttingDown) {
      socket.close(CloseCode.GoingAway, 'server shutting down');
      return Promise.reject(new StabilizerError(ErrorCode.ShuttingDown, 'server is shutting down'));
    }
    // `stabilizer.v1.msgpack` is selected only once msgpackr is loaded (see upgrade.ts); a socket that another
    // WebSocketServer accepted with it before that is refused like a bad frame (call `loadMsgpack()` first).
    const msgpack = socket.protocol === SUBPROTOCOL_MSGPACK ? loadedMsgpack() : undefined;
    if (socket.protocol === SUBPROTOCOL_MSGPACK && !msgpack) {
      socket.close(CloseCode.ProtocolViolation, 'msgpack not available');
      return Promise.reject(new StabilizerError(ErrorCode.ProtocolViolation, 'msgpackr is not loaded'));
    }
    if (!this.hasCapacity(remote)) {
      const retryAfterMs = this.config.shutdownRetryAfterMs;
      const hint = { t: 'reconnect', retryAfterMs, reason: 'overloaded' } as const;
      if (msgpack && socket.readyState === 1) socket.send(msgpack.packMessage(hint));
      else if (socket.protocol === SUBPROTOCOL && socket.readyState === 1) socket.send(JSON.stringify(hint));
      socket.close(CloseCode.TryAgainLater, `server at connection limit; retry-after=${retryAfterMs}`);
      return Promise.reject(new StabilizerError(ErrorCode.ConnectionLimit, 'connection limit reached'));
    }
    const isProtocol = socket.protocol === SUBPROTOCOL || msgpack !== undefined;
    const conn = new Connection(
      clientId ?? randomUUID(),
      socket,
      isProtocol,
      remote,
      options.data,
      this.nowMs,
      this.config.maxBufferedBytes,
      this.config.closeTimeoutMs,
    );
    conn.principal = options.principal;
    conn.clientAddress = options.clientAddress ?? true;
    conn.msgpack = msgpack;

    conn.authenticateHello = options.authenticateHello;
    conn.counters = this.counters;
    conn.compressor = this.compressor;
    this.socketListeners.listen(socket, conn);
    // A CLOSED socket emits no more 'close', so counting it would leak a per-IP slot for good.
    if (remote !== undefined && socket.readyState !== 3) this.countIp(remote, 1);
    if (socket.readyState !== 1) {
      conn.state = 'closed';
      return Promise.reject(new StabilizerError(ErrorCode.NotOpen, 'socket is not open'));
    }
    if (isProtocol) {
      this.handshaking.add(conn);
      return this.protocol.awaitHello(conn);
    }
    if (!this.register(conn)) {
      return Promise.reject(
        new StabilizerError(ErrorCode.DuplicateClientId, `client id ${conn.id} is taken`),
      );
    }
    this.announceConnect(conn, 'fresh', undefined, 0);
    return Promise.resolve(conn.id);
  }

  /**
   * Close a client's connection with the close handshake. Resolves `true` once it has closed, `false` if the id
   * is unknown. A terminal code (1000, 45xx) also ends its protocol session; a retryable one keeps it for resume.
   */
  disconnect(clientId: string, code: number = CloseCode.Normal, reason = ''): Promise<boolean> {
    const conn = this.connections.get(clientId);
    if (!conn) return Promise.resolve(false);
    return new Promise((resolve) => {
      conn.socket.once('close', () => resolve(true));
      conn.close(code, reason, 'server-closed');
    });
  }

  /**
   * Serve WebSocket upgrades of an `http.Server` on `options.path`, with the limit, origin and auth checks.
   * Returns a function that detaches.
   */
  attach<Auth = unknown>(server: Server, options?: AttachOptions<Data, Auth>): () => void {
    return attachToServer(this, server, options);
  }

  /** An `upgrade` handler with the same checks, for servers that route upgrades themselves. */
  createUpgradeHandler<Auth = unknown>(options?: AttachOptions<Data, Auth>): UpgradeHandler {
    return createUpgradeHandler(this, options);
  }

  /** @internal An upgrade was refused before a WebSocket existed: count it and log it (rate-limited). */
  upgradeRejected(
    reason: UpgradeRejectionReason,
    remoteAddress: string | undefined,
    status: number,
    detail?: Record<string, string | undefined>,
  ): void {
    this.counters.countRejection(reason, status);
    this.rejectionLog.record(reason, remoteAddress, status, detail);
  }

  /** Application-level liveness: call when a plain-mode client sends its own pong (browsers can't see pings). */
  handlePong(clientId: string): boolean {
    const conn = this.connections.get(clientId);
    if (!conn) return false;
    conn.lastInboundMs = this.nowMs;
    return true;
  }

  // ---------------------------------------------------------------- tokens

  /** Issue a signed, single-use reconnect token. Throws `TOKENS_DISABLED` without `tokens.secret`. */
  generateReconnectToken(clientId: string, options: { ttlMs?: number } = {}): string {
    const token = this.tokens.generate(clientId, options.ttlMs);
    this.log.info({ event: 'token.issued', clientId }, 'reconnect token issued');
    return token;
  }

  /** Validate and consume a token; rejects with a `TokenError` (stable `code`) if it is not acceptable. */
  async validateReconnectToken(token: unknown, options: { clientId?: string } = {}): Promise<VerifiedToken> {
    try {
      return await this.tokens.validate(token, options.clientId);
    } catch (err) {
      const code = err instanceof StabilizerError ? err.code : undefined;
      this.log.warn({ event: 'token.rejected', code }, 'reconnect token rejected');
      throw err;
    }
  }

  // ---------------------------------------------------------------- inbound

  /** @internal A frame from `conn`'s socket (see socket-listeners.ts). */
  handleFrame(conn: Connection, data: Buffer, isBinary: boolean): void {
    conn.lastInboundMs = this.nowMs;
    if (conn.state === 'closed' || conn.inboundRefused) return;
    if (data.length > this.config.maxPayloadBytes) {
      conn.close(CloseCode.MessageTooBig, 'message too big', 'message-too-big');
      return;
    }
    if (conn.protocol) this.protocol.handleFrame(conn, data, isBinary);
    else if (this.withinRateLimit(conn))
      this.acceptPlain(conn, isBinary ? data : data.toString('utf8'), isBinary);
  }

  private acceptPlain(conn: Connection, data: string | Buffer, isBinary: boolean): void {
    const verdict = this.validation.check(conn, data);
    if (this.admission.mustWait(conn) || this.validation.isPending(verdict)) {
      this.admission.admit(conn, (v) => this.validation.settle(conn, data, isBinary, v, false), verdict);
    } else this.validation.settle(conn, data, isBinary, verdict, false);
  }

  /**
   * @internal Charge one application message to the rate limit (control frames are free); close 4002 if over. The
   * bucket is the session's in protocol mode, so reconnecting does not refill it.
   */
  withinRateLimit(conn: Connection): boolean {
    const limit = this.config.rateLimit;
    if (!limit) return true;
    const nowMs = Date.now();
    const owner = conn.session ?? conn;
    owner.rate ??= newRateBucket(limit, nowMs);
    if (takeRateToken(owner.rate, limit, nowMs)) return true;
    this.counters.rateLimited.connection++;
    this.log.warn({ event: 'rate-limited', limit: 'connection', clientId: conn.id }, 'rate limit exceeded');
    if (!conn.inboundTail) conn.close(CloseCode.RateLimited, 'rate limit exceeded', 'rate-limited');
    else {
      // Earlier messages still wait for a shared limiter: deliver them first, read nothing after this one.
      conn.inboundRefused = true;
      this.admission.afterPending(conn, () =>
        conn.close(CloseCode.RateLimited, 'rate limit exceeded', 'rate-limited'),
      );
    }
    return false;
  }

  protected releaseHandshake(conn: Connection): void {
    this.protocol.abandon(conn);
    if (conn.unconfirmedNonce !== undefined) this.protocol.settleNonce(conn, true);
  }

  // ---------------------------------------------------------------- background work

  /** `config.pingIntervalMs`: how long a connection may be idle before the sweep pings it (the sweep reads it). */
  get pingIntervalMs(): number {
    return this.config.pingIntervalMs;
  }

  /** `config.pongTimeoutMs`: how long after a ping without any inbound frame a connection is declared dead. */
  get pongTimeoutMs(): number {
    return this.config.pongTimeoutMs;
  }

  /** `config.hiddenPongTimeoutMs`: the same bound for a client whose page said it is hidden (a `vis` frame). */
  get hiddenPongTimeoutMs(): number {
    return this.config.hiddenPongTimeoutMs;
  }

  private startSweep(): void {
    const period = sweepIntervalMs(this.config.pingIntervalMs, this.config.pongTimeoutMs);
    this.sweepTimer = setInterval(() => this.sweep(Date.now()), period);
    this.sweepTimer.unref();
  }

  /** One heartbeat and expiry pass. Runs on the sweep timer; exposed for tests with fake clocks. */
  sweep(nowMs: number): void {
    this.nowMs = nowMs;
    sweepHeartbeats(this, nowMs);
    this.protocol.refreshTokens(nowMs);
    // Expiry has its own timer (see expireDetached); this full pass also catches sessions a cluster backend
    // loaded out of detach order.
    for (const session of this.detachedSessions) {
      if (nowMs - session.detachedAtMs! >= this.config.sessionTtlMs) this.endSession(session, 'expired');
    }
    for (const session of this.backend.sessions()) session.buffer.expire(nowMs);
    this.topics.table.expire(nowMs);
    this.backend.sweep(nowMs);
  }

  /** @internal */
  ping(conn: Connection, nowMs: number): void {
    // A protocol connection's resume token due soon is sent first: the token frame corks the socket for the turn,
    // so the ping joins it and both go out in one write instead of two a few sweeps apart.
    if (conn.session) this.protocol.refreshWithPing(conn, nowMs, this.tokenRefreshLeadMs);
    conn.ping(nowMs); // pre-framed; a socket closed meanwhile is cleaned up by its close event
  }

  /** How early a token refresh may ride with a heartbeat ping: one ping interval and one sweep period. */
  private get tokenRefreshLeadMs(): number {
    return (
      this.config.pingIntervalMs + sweepIntervalMs(this.config.pingIntervalMs, this.config.pongTimeoutMs)
    );
  }

  /** @internal */
  expire(conn: Connection): void {
    this.log.warn({ event: 'heartbeat.timeout', clientId: conn.id }, 'heartbeat timeout');
    // Terminate: a peer that answers nothing will not finish a close handshake either.
    conn.closeReason ??= 'heartbeat-timeout';
    conn.close(CloseCode.HeartbeatTimeout, 'heartbeat timeout', 'heartbeat-timeout');
    setImmediate(() => conn.socket.terminate());
  }

  // ---------------------------------------------------------------- shutdown and stats

  /** Whether `gracefulShutdown` has started: upgrades are refused with 503 from then on (and readiness is false). */
  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  private draining = false;

  /**
   * Mark this server as draining: readiness probes (`createHealthHandler`) answer 503 so the load balancer stops
   * sending new clients, while connections and upgrades carry on as usual. `gracefulShutdown` follows; see
   * `closeOnSignals` `drainDelayMs`. Idempotent.
   */
  drain(): void {
    if (this.draining) return;
    this.draining = true;
    this.log.info({ event: 'drain', connections: this.connections.size }, 'draining: readiness is false');
  }

  /**
   * Refuse new connections (HTTP 503), send every protocol client a reconnect hint, close every socket with 1001
   * (or 1012 with `restart: true`), terminate those that have not closed by `timeoutMs`, and stop all background
   * work. Idempotent: a second call resolves with the same statistics.
   */
  gracefulShutdown(options: ShutdownOptions = {}): Promise<ShutdownStats> {
    if (this.shutdownPromise) return this.shutdownPromise;
    this.shuttingDown = true;
    clearInterval(this.sweepTimer);
    this.stopExpiry();
    this.log.info({ event: 'shutdown', connections: this.connections.size }, 'graceful shutdown started');
    const all = [...this.connections.values(), ...this.handshaking];
    this.shutdownPromise = runGracefulShutdown(all, this.config.shutdownRetryAfterMs, options).then(
      (stats) => {
        this.protocol.stop();
        // In-memory sessions die with the process; shared ones stay resumable on other nodes.
        if (!this.backend.sessionsOutliveProcess) {
          for (const session of [...this.detachedSessions]) this.endSession(session, 'shutdown');
        }
        this.detachedSessions.clear();
        this.log.info({ event: 'shutdown.done', ...stats }, 'graceful shutdown finished');
        return stats;
      },
    );
    return this.shutdownPromise;
  }

  private shutdownPromise: Promise<ShutdownStats> | undefined;

  /** Counts for dashboards and `GET /stats`. */
  getStats(): ManagerStats {
    return {
      connections: this.connections.size,
      handshaking: this.handshaking.size,
      sessions: this.backend.sessionCount,
      detachedSessions: this.detachedSessions.size,
      detachedSessionBytes: this.detachedSessions.bytes,
      backend: this.backend.name,
      shuttingDown: this.shuttingDown,
      draining: this.draining,
    };
  }
}
