import { CloseCode, isRetryableCloseCode } from '../protocol/close-codes.js';
import type { SessionRecord } from '../backends/types.js';
import type { StorageBackend } from './storage-backend.js';
import type { ResolvedConfig } from './config-types.js';
import type { Connection } from './transport/connection.js';
import { DetachedSessions } from './session/detached-sessions.js';
import { TypedEmitter, type DisconnectReason, type ManagerEvents } from './events.js';
import { peerLogFields } from './operations/log-fields.js';
import type { Logger } from './operations/logger.js';
import { SessionCounts } from './session/session-counts.js';
import type { InvalidMessageEvent } from './inbound/validation.js';
import { closeReplaced } from './session/replaced.js';

/**
 * The registry half of the manager: who is connected (by id, O(1)), who is handshaking, per-IP counts, the
 * duplicate-id policy, detached protocol sessions, and the lifecycle events (`connect`, `disconnect`,
 * `session-end`, `message`, `error`). Every method is synchronous; see ARCHITECTURE.md, "Concurrency model".
 * Members without a description in the README are internal to the library.
 */
export abstract class ConnectionRegistry<In = unknown, Data = unknown> extends TypedEmitter<
  ManagerEvents<In, Data>
> {
  /** Registry of open (and handshaken) connections by client id. @internal */
  readonly connections = new Map<string, Connection>();
  /** Bumped on every change to `connections`, so that the publish path can reuse its member lookups. @internal */
  connectionsVersion = 0;
  /**
   * Protocol sessions without a socket, kept for resume; broadcasts buffer into them. In detach order, with the
   * estimated bytes they hold. @internal
   */
  readonly detachedSessions = new DetachedSessions();
  /** Coarse clock (epoch ms), advanced by the sweep; hot paths stamp it instead of calling `Date.now()`. @internal */
  nowMs = Date.now();
  /** Sockets accepted but not yet in the registry (protocol handshake), counted against the limits. */
  protected readonly handshaking = new Set<Connection>();
  protected shuttingDown = false;
  private readonly perIp = new Map<string, number>();
  /** Registered connections that a newer one with the same id replaced; their close reports `replaced`. */
  private readonly replaced = new WeakSet<Connection>();
  /** Sessions this process ended (`session-end` emitted): a late close of their socket must not end them again. */
  private readonly ended = new WeakSet<SessionRecord>();
  /** Sessions held per IP and per principal (`maxSessionsPerIp`, `maxSessionsPerPrincipal`). */
  private readonly sessionCounts = new SessionCounts();
  /** One timer for session expiry, armed for the session detached longest ago. */
  private expiryTimer: ReturnType<typeof setTimeout> | undefined = undefined;
  private budgetCheckQueued = false;

  constructor(
    /** The validated configuration. */
    readonly config: ResolvedConfig,
    /** @internal */
    readonly backend: StorageBackend,
    /** @internal */
    readonly log: Logger,
  ) {
    super();
    const detached = this.detachedSessions;
    detached.budgetBytes = config.maxDetachedSessionBytes;
    detached.onAdd = () => this.armExpiry();
    detached.onOverBudget = () => {
      if (this.budgetCheckQueued) return;
      this.budgetCheckQueued = true;
      queueMicrotask(() => {
        this.budgetCheckQueued = false;
        this.enforceDetachedBudget();
      });
    };
  }

  /** A closed socket may still hold handshake state (a pending hello, a token nonce); release it. */
  protected abstract releaseHandshake(conn: Connection): void;
  /** A registered socket closed (its topics, for a plain socket, or its session, which may live on). */
  protected abstract connectionClosed(conn: Connection): void;
  /** A protocol session is gone for good (before `session-end` is emitted). */
  protected abstract sessionEnded(session: SessionRecord): void;

  protected countIp(remoteAddress: string, delta: 1 | -1): void {
    const n = (this.perIp.get(remoteAddress) ?? 0) + delta;
    if (n <= 0) this.perIp.delete(remoteAddress);
    else this.perIp.set(remoteAddress, n);
  }

  /** @internal Whether one more connection (from `remoteAddress`) fits the limits, counting upgrades still `pending`. */
  hasCapacity(remoteAddress?: string, pending = 0, pendingFromIp = 0): boolean {
    const { maxConnections, maxConnectionsPerIp } = this.config;
    if (
      maxConnections !== undefined &&
      this.connections.size + this.handshaking.size + pending >= maxConnections
    ) {
      return false;
    }
    if (maxConnectionsPerIp !== undefined && remoteAddress !== undefined) {
      if ((this.perIp.get(remoteAddress) ?? 0) + pendingFromIp >= maxConnectionsPerIp) return false;
    }
    return true;
  }

  /** @internal Put a connection in the registry, applying `duplicateIdPolicy`. Returns false if the new one was refused. */
  register(conn: Connection): boolean {
    this.handshaking.delete(conn);
    const existing = this.connections.get(conn.id);
    if (existing && existing !== conn) {
      if (this.config.duplicateIdPolicy === 'reject' && !conn.session) {
        conn.close(CloseCode.Replaced, 'client id already connected', 'replaced');
        return false;
      }
      this.connections.delete(conn.id);
      this.connectionsVersion++;
      this.replaced.add(existing);
      closeReplaced(existing, 'replaced by a newer connection');
    }
    this.connections.set(conn.id, conn);
    this.connectionsVersion++;
    conn.state = 'open';
    this.backend.onAttach?.(conn.id, conn.session);
    return true;
  }

  /** @internal */
  announceConnect(
    conn: Connection,
    resume: 'resumed' | 'fresh',
    freshReason: ManagerEvents['connect']['freshReason'],
    replayed: number,
  ): void {
    const mode = conn.protocol ? 'protocol' : 'plain';
    this.log.info(
      { event: 'connect', clientId: conn.id, mode, resume, freshReason, replayed, ...peerLogFields(conn) },
      'client connected',
    );
    this.emitFor(conn, 'connect', {
      clientId: conn.id,
      mode,
      resume,
      freshReason,
      replayed,
      remoteAddress: conn.remoteAddress,
      data: conn.data as Data | undefined, // what `connect`'s options (or `authenticate`) gave, typed there
    });
  }

  /** Ids of the connected clients. */
  getActiveConnections(): string[] {
    return [...this.connections.keys()];
  }

  getConnectionCount(): number {
    return this.connections.size;
  }

  isConnected(clientId: string): boolean {
    return this.connections.has(clientId);
  }

  /** @internal Hand an inbound message to `message` listeners; a throw closes this connection with 1011. */
  deliver(
    conn: Connection,
    data: unknown,
    isBinary: boolean,
    reliable: boolean,
    seq?: number,
    messageId?: string,
  ): void {
    // `In` is the application's declaration of what its clients send; it is not checked here.
    this.emitFor(conn, 'message', {
      clientId: conn.id,
      data: data as In,
      isBinary,
      reliable,
      seq,
      messageId,
    });
  }

  /** @internal Emit `invalid-message` (a throwing listener closes the connection, as for `message`). */
  announceInvalid(conn: Connection, event: InvalidMessageEvent): void {
    this.emitFor(conn, 'invalid-message', event);
  }

  protected emitFor<K extends keyof ManagerEvents>(
    conn: Connection,
    name: K,
    event: ManagerEvents<In, Data>[K],
  ): void {
    this.emitSafely(name, event, (err) => {
      this.reportError(conn.id, err);
      conn.close(CloseCode.InternalError, 'internal error', 'handler-error');
    });
  }

  /** @internal Log an error and emit `error`. */
  reportError(clientId: string | undefined, err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    this.log.error({ event: 'error', clientId, err: error }, error.message);
    this.emitSafely('error', { clientId, error }, (e) =>
      this.log.error({ event: 'error.listener', err: e }, 'error listener threw'),
    );
  }

  /** @internal The socket closed: unregister it, keep or end its session, report `disconnect`. */
  handleClosed(conn: Connection, code: number): void {
    conn.state = 'closed';
    conn.released();
    this.handshaking.delete(conn);
    this.releaseHandshake(conn);
    if (conn.remoteAddress !== undefined) this.countIp(conn.remoteAddress, -1);
    // The code the server sent decides (a peer may echo another, or just drop the TCP connection).
    const sentCode = conn.sentCloseCode;
    const reportedCode = sentCode ?? code;
    if (this.replaced.delete(conn)) {
      // Its id lives on in a newer connection (and session, in protocol mode).
      return this.announceDisconnect(conn, reportedCode, 'replaced', conn.session !== undefined);
    }
    if (this.connections.get(conn.id) !== conn) return; // never registered
    this.connections.delete(conn.id);
    this.connectionsVersion++;
    this.connectionClosed(conn);
    let sessionRetained = false;
    const session = conn.session;
    if (session && !this.ended.has(session)) {
      if (this.backend.getSession(session.id) !== session) {
        // The backend let it go without ending it: it lives on elsewhere (another node resumed it).
        sessionRetained = true;
      } else if (this.shuttingDown && !this.backend.sessionsOutliveProcess) {
        this.endSession(session, 'shutdown');
      } else if (!this.shuttingDown && endsSession(sentCode, code)) {
        this.endSession(session, 'ended');
      } else {
        // Kept for a resume here, or (shutting down, shared storage) on another node.
        session.detachedAtMs = Date.now();
        this.detachedSessions.add(session);
        sessionRetained = true;
      }
    }
    this.backend.onDetach?.(conn.id, session, sessionRetained);
    this.announceDisconnect(conn, reportedCode, conn.closeReason ?? 'client-closed', sessionRetained);
  }

  private announceDisconnect(
    conn: Connection,
    code: number,
    reason: DisconnectReason,
    sessionRetained: boolean,
  ) {
    const level =
      reason === 'client-closed' || reason === 'server-closed' || reason === 'replaced' ? 'info' : 'warn';
    const durationMs = Date.now() - conn.openedAtMs;
    this.log[level](
      { event: 'disconnect', clientId: conn.id, code, reason, durationMs, ...peerLogFields(conn) },
      'client disconnected',
    );
    this.emitSafely('disconnect', { clientId: conn.id, code, reason, sessionRetained }, (err) =>
      this.reportError(conn.id, err),
    );
  }

  /** @internal Forget a protocol session for good and say so (`session-end`). */
  endSession(session: SessionRecord, reason: ManagerEvents['session-end']['reason']): void {
    this.ended.add(session);
    this.detachedSessions.delete(session);
    this.sessionEnded(session);
    this.sessionCounts.untrack(session);
    // By identity: a newer session under the same client id (a fixed id) is not this one.
    if (this.backend.getSession(session.id) === session)
      this.backend.deleteSession(session.id, reason === 'evicted' ? 'evicted' : reason === 'expired');
    this.log.info({ event: 'session.end', clientId: session.id, reason }, 'session ended');
    this.emitSafely('session-end', { clientId: session.id, reason }, (err) =>
      this.reportError(session.id, err),
    );
  }

  /** @internal The backend forgot a session by itself (moved to another node, history lost). */
  releaseSession(session: SessionRecord): void {
    this.detachedSessions.delete(session);
    this.sessionCounts.untrack(session);
  }

  /** @internal Count a session (created or resumed here) against the per-IP and per-principal caps. */
  trackSession(session: SessionRecord): void {
    this.sessionCounts.track(session);
  }

  /**
   * @internal Whether a new session from `remoteAddress` / `principal` fits the caps; returns why not, or
   * `undefined`. Over `maxSessions` it first evicts the oldest detached sessions; live ones are never evicted.
   */
  admitSession(
    remoteAddress: string | undefined,
    principal: string | undefined,
    clientAddress = true,
  ): string | undefined {
    const c = this.config;
    // Unset, the cap counts only client addresses: a proxy's address would cap the whole deployment.
    const capped = clientAddress || c.maxSessionsPerIpEveryAddress;
    if (
      remoteAddress !== undefined &&
      capped &&
      this.sessionCounts.ofIp(remoteAddress) >= c.maxSessionsPerIp
    ) {
      // Name the setting; an address that may be a proxy's also names the fix.
      return clientAddress
        ? 'too many sessions from this address (maxSessionsPerIp)'
        : 'too many sessions from this address (maxSessionsPerIp; behind a proxy, set trustProxy)';
    }
    if (principal !== undefined && this.sessionCounts.ofPrincipal(principal) >= c.maxSessionsPerPrincipal)
      return 'too many sessions for this principal';
    while (this.backend.sessionCount >= c.maxSessions) {
      const oldest = this.detachedSessions.oldest();
      if (!oldest) return 'server at session limit';
      this.evict(oldest);
    }
    return undefined;
  }

  /** @internal Over `maxDetachedSessionBytes`: evict detached sessions, oldest first, until within it. */
  enforceDetachedBudget(): void {
    const detached = this.detachedSessions;
    while (detached.bytes > detached.budgetBytes) {
      const oldest = detached.oldest();
      if (!oldest) return;
      this.evict(oldest);
    }
  }

  private evict(session: SessionRecord): void {
    this.log.warn(
      { event: 'session.evicted', clientId: session.id, detachedBytes: this.detachedSessions.bytes },
      'detached session evicted',
    );
    this.endSession(session, 'evicted');
  }

  /** @internal End the detached sessions whose TTL has passed, oldest first. */
  expireDetached(nowMs: number): void {
    const ttlMs = this.config.sessionTtlMs;
    for (const session of this.detachedSessions) {
      if (nowMs - session.detachedAtMs! < ttlMs) break; // detach order is expiry order (one TTL for all)
      this.endSession(session, 'expired');
    }
  }

  /** Arm the expiry timer for the session detached longest ago, unless it is armed already. */
  private armExpiry(): void {
    if (this.expiryTimer !== undefined || this.shuttingDown) return;
    const oldest = this.detachedSessions.oldest();
    if (!oldest) return;
    const delayMs = Math.max(0, oldest.detachedAtMs! + this.config.sessionTtlMs - Date.now());
    this.expiryTimer = setTimeout(this.onExpiryTimer, delayMs);
    this.expiryTimer.unref?.();
  }

  private readonly onExpiryTimer = (): void => {
    this.expiryTimer = undefined;
    this.expireDetached(Date.now());
    this.armExpiry();
  };

  /** Stop the expiry timer (shutdown). */
  protected stopExpiry(): void {
    clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
  }
}

/**
 * Whether a close ends its session: a terminal code the server sent, or, if the peer closed first, 1000 (the
 * client closes for good, PROTOCOL.md §5). Every other peer code keeps the session for a resume.
 */
function endsSession(sentCode: number | undefined, peerCode: number): boolean {
  if (sentCode !== undefined) return !isRetryableCloseCode(sentCode);
  return peerCode === CloseCode.Normal;
}
