import { CloseCode, isRetryableCloseCode } from '../protocol/close-codes.js';
import type { SessionRecord, StorageBackend } from '../backends/types.js';
import type { ResolvedConfig } from './config-types.js';
import type { Connection } from './connection.js';
import { TypedEmitter, type DisconnectReason, type ManagerEvents } from './events.js';
import type { Logger } from './logger.js';

/**
 * The registry half of the manager: who is connected (by id, O(1)), who is handshaking, per-IP counts, the
 * duplicate-id policy, detached protocol sessions, and the lifecycle events (`connect`, `disconnect`,
 * `session-end`, `message`, `error`). Every method is synchronous; see ARCHITECTURE.md, "Concurrency model".
 * Members without a description in the README are internal to the library.
 */
export abstract class ConnectionRegistry extends TypedEmitter<ManagerEvents> {
  /** Registry of open (and handshaken) connections by client id. @internal */
  readonly connections = new Map<string, Connection>();
  /** Bumped on every change to `connections`, so that the publish path can reuse its member lookups. @internal */
  connectionsVersion = 0;
  /** Protocol sessions without a socket, kept for resume; broadcasts buffer into them. @internal */
  readonly detachedSessions = new Set<SessionRecord>();
  /** Coarse clock (epoch ms), advanced by the sweep; hot paths stamp it instead of calling `Date.now()`. @internal */
  nowMs = Date.now();
  /** Sockets accepted but not yet in the registry (protocol handshake), counted against the limits. */
  protected readonly handshaking = new Set<Connection>();
  protected shuttingDown = false;
  private readonly perIp = new Map<string, number>();
  /** Registered connections that a newer one with the same id replaced; their close reports `replaced`. */
  private readonly replaced = new WeakSet<Connection>();

  constructor(
    /** The validated configuration. */
    readonly config: ResolvedConfig,
    /** @internal */
    readonly backend: StorageBackend,
    /** @internal */
    readonly log: Logger,
  ) {
    super();
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
      existing.close(CloseCode.Replaced, 'replaced by a newer connection', 'replaced');
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
      { event: 'connect', clientId: conn.id, mode, resume, freshReason, replayed },
      'client connected',
    );
    this.emitFor(conn, 'connect', {
      clientId: conn.id,
      mode,
      resume,
      freshReason,
      replayed,
      remoteAddress: conn.remoteAddress,
      data: conn.data,
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
  deliver(conn: Connection, data: unknown, isBinary: boolean, reliable: boolean, seq?: number): void {
    this.emitFor(conn, 'message', { clientId: conn.id, data, isBinary, reliable, seq });
  }

  protected emitFor<K extends keyof ManagerEvents>(conn: Connection, name: K, event: ManagerEvents[K]): void {
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

  /** The socket closed: unregister it, keep or end its session, report `disconnect`. */
  protected handleClosed(conn: Connection, code: number): void {
    conn.state = 'closed';
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
    if (session) {
      if (this.shuttingDown) this.endSession(session, 'shutdown');
      else if (sentCode !== undefined && !isRetryableCloseCode(sentCode)) this.endSession(session, 'ended');
      else {
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
    this.log[level]({ event: 'disconnect', clientId: conn.id, code, reason }, 'client disconnected');
    this.emitSafely('disconnect', { clientId: conn.id, code, reason, sessionRetained }, (err) =>
      this.reportError(conn.id, err),
    );
  }

  /** @internal Forget a protocol session for good and say so (`session-end`). */
  endSession(session: SessionRecord, reason: ManagerEvents['session-end']['reason']): void {
    this.detachedSessions.delete(session);
    this.sessionEnded(session);
    this.backend.deleteSession(session.id, reason === 'expired');
    this.log.info({ event: 'session.end', clientId: session.id, reason }, 'session ended');
    this.emitSafely('session-end', { clientId: session.id, reason }, (err) =>
      this.reportError(session.id, err),
    );
  }
}
