import { CloseCode } from '../../protocol/close-codes.js';
import { ErrorCode } from '../../protocol/error-codes.js';
import { isDecodeFailure, type HelloMessage } from '../../protocol/messages.js';
import type { SessionRecord } from '../../backends/types.js';
import type { Connection } from '../transport/connection.js';
import { StabilizerError } from '../errors.js';
import type { ManagerHost } from '../manager-host.js';
import { decideHello, planReplay, type AuthorizeResume, type HelloOutcome } from './resume.js';
import type { ReconnectTokenService } from './tokens.js';
import type { HelloTrace } from '../operations/tracing.js';
import { writeWelcome } from './welcome.js';
import { authenticateAtHello } from './hello-auth.js';
import { decodeInboundFrame } from './inbound-decode.js';
import { handleSessionMessage } from './session-inbound.js';
import { closeReplaced } from './replaced.js';

interface PendingHandshake {
  resolve: (id: string) => void;
  reject: (err: Error) => void;
  helloSeen: boolean;
  /** The hello's span, when tracing. */
  trace?: HelloTrace;
}

/**
 * The `stabilizer.v1` side of a connection: the hello/welcome handshake with resume, and inbound frames (data
 * with client sequence numbers, acks, pings). Outbound framing lives in `Connection.writePayload`.
 */
export class ProtocolHandler {
  private readonly pending = new Map<Connection, PendingHandshake>();
  /**
   * Token nonces consumed by a hello whose welcome the client has not confirmed yet (no frame since), by the
   * connection holding them. A retry with the same token takes the nonce over; a close gives it back.
   */
  private readonly unconfirmed = new Map<string, Connection>();
  /**
   * Fresh-with-gap welcomes not yet confirmed: the stale session they replace is dropped on confirmation. Kept as
   * the record itself, not its id: with a fixed client id the new session has the same id.
   */
  private readonly dropOnConfirm = new Map<Connection, SessionRecord>();
  /**
   * Connections whose hello's nonce was spent for good while they were still in the handshake (the token issued
   * for it is in use elsewhere): their client moved on, so they are refused as stale (4004), whatever their lookup.
   */
  private readonly overtaken = new WeakSet<Connection>();
  private readonly onViolation = (conn: Connection, why: string): void => this.violation(conn, why);

  constructor(
    private readonly manager: ManagerHost,
    private readonly tokens: ReconnectTokenService,
    private readonly authorizeResume: AuthorizeResume | undefined,
  ) {}

  /** Wait for the client's `hello`; resolves with the session id once `welcome` (and any replay) is sent. */
  awaitHello(conn: Connection): Promise<string> {
    return new Promise((resolve, reject) => {
      this.pending.set(conn, { resolve, reject, helloSeen: false });
      conn.handshakeTimer = setTimeout(() => {
        this.fail(
          conn,
          CloseCode.HandshakeTimeout,
          'handshake-timeout',
          ErrorCode.HandshakeTimeout,
          'no hello',
        );
      }, this.manager.config.handshakeTimeoutMs);
      conn.handshakeTimer.unref?.();
    });
  }

  /** The socket closed: settle a pending handshake. */
  abandon(conn: Connection): void {
    clearTimeout(conn.handshakeTimer);
    const p = this.pending.get(conn);
    if (!p) return;
    this.pending.delete(conn);
    p.trace?.failed(ErrorCode.NotOpen, 'socket closed during the handshake');
    p.reject(new StabilizerError(ErrorCode.NotOpen, 'socket closed during the handshake'));
  }

  stop(): void {
    for (const conn of [...this.pending.keys()]) this.abandon(conn);
  }

  handleFrame(conn: Connection, data: Buffer, isBinary: boolean): void {
    const msg = decodeInboundFrame(conn.msgpack, data, isBinary);
    if (isDecodeFailure(msg)) return this.violation(conn, msg.error);
    // Over MessagePack, bytes are a `bin` payload inside the frame (PROTOCOL.md §2.7).
    if (conn.msgpack) isBinary = msg.t === 'd' && msg.p instanceof Uint8Array;
    if (conn.state === 'handshaking') {
      const p = this.pending.get(conn);
      if (msg.t !== 'hello' || !p || p.helloSeen) return this.violation(conn, 'expected hello');
      p.helloSeen = true;
      if (this.manager.tracing) p.trace = this.manager.tracing.hello(msg);
      this.answerHello(conn, msg, p).catch((err: unknown) => {
        this.manager.reportError(conn.id, err);
        p.trace?.failed(ErrorCode.BackendUnavailable, 'resume failed'); // also after the welcome was written
        this.settleNonce(conn, true);
        this.fail(
          conn,
          CloseCode.InternalError,
          'handler-error',
          ErrorCode.BackendUnavailable,
          'resume failed',
        );
      });
      return;
    }
    if (!conn.confirmed) {
      conn.confirmed = true;
      if (conn.unconfirmedNonce !== undefined) this.settleNonce(conn, false); // it heard the welcome: token spent
    }
    handleSessionMessage(this.manager, conn, msg, isBinary, this.onViolation);
  }

  private async answerHello(conn: Connection, hello: HelloMessage, p: PendingHandshake): Promise<void> {
    const m = this.manager;
    if (conn.authenticateHello) {
      const refusal = await authenticateAtHello(
        conn,
        hello,
        () => this.pending.get(conn) === p && conn.isOpen,
      );
      if (refusal === 'gone') return;
      if (refusal) {
        if ('error' in refusal) m.reportError(conn.id, refusal.error);
        return this.fail(conn, refusal.code, refusal.why, refusal.errorCode, refusal.message);
      }
    }
    let outcome: HelloOutcome;
    try {
      outcome = await decideHello(
        hello,
        { clientId: conn.id, remoteAddress: conn.remoteAddress, data: conn.data, principal: conn.principal },
        {
          tokens: this.tokens,
          backend: m.backend,
          limits: m.config.replay,
          log: m.log,
          authorizeResume: this.authorizeResume,
          onClaimed: (nonce) => {
            this.unconfirmed.set(nonce, conn);
            conn.unconfirmedNonce = nonce;
          },
          onSpent: (nonce) => {
            const holder = this.unconfirmed.get(nonce);
            if (!holder) return;
            this.unconfirmed.delete(nonce); // its close will not give the nonce back, and nobody can reclaim it
            holder.unconfirmedNonce = undefined;
            if (holder.state === 'handshaking') this.overtaken.add(holder);
          },
          reclaim: (nonce) => {
            const holder = this.unconfirmed.get(nonce);
            if (!holder || holder === conn) return false;
            // The same client retried before it saw our welcome: the older attempt is dead to it.
            holder.terminate('replaced');
            return true;
          },
          overtaken: () => this.overtaken.has(conn),
        },
      );
    } catch (err) {
      m.reportError(conn.id, err);
      this.settleNonce(conn, true);
      return this.fail(
        conn,
        CloseCode.InternalError,
        'handler-error',
        ErrorCode.BackendUnavailable,
        'resume failed',
      );
    }
    if (this.pending.get(conn) !== p || !conn.isOpen) {
      this.settleNonce(conn, true); // closed while we waited: the client never saw a welcome
      return;
    }
    if (outcome.kind === 'forbidden') {
      return this.fail(conn, CloseCode.Forbidden, 'forbidden', ErrorCode.Forbidden, 'resume not authorized');
    }
    if (outcome.kind === 'stale' || this.overtaken.has(conn)) return this.refuseStale(conn);
    // Plan synchronously, after the last await: messages sent meanwhile are in the buffer and get replayed.
    const plan = outcome.kind === 'found' ? planReplay(outcome.session, outcome.lastSeq, m.backend) : outcome;
    const taken = plan.kind === 'fresh' ? m.backend.getSession(conn.id) : undefined;
    // A used token never replaces a session: the hello comes from an attempt its client has given up. Nor does a
    // token of an incarnation that a newer session under the same id replaced, while a client holds that one on an
    // open, confirmed connection: it comes from a client instance that is gone (e.g. a reloaded page's last attempt).
    if (
      taken &&
      plan.kind === 'fresh' &&
      (plan.replayed || (plan.reason === 'unknown-session' && this.held(taken)))
    )
      return this.refuseStale(conn);
    // The client's own session (its token resumed it, but the buffer has a gap) is not someone else's: replace it.
    const own = outcome.kind === 'found' && outcome.session === taken;
    if (taken && !own && m.config.duplicateIdPolicy === 'reject' && m.connections.has(taken.id)) {
      return this.fail(
        conn,
        CloseCode.Replaced,
        'replaced',
        ErrorCode.DuplicateClientId,
        'client id already connected',
      );
    }
    // A fresh session that replaces none must fit the session caps (which may evict detached sessions).
    const replacesOne = taken !== undefined || (plan.kind === 'fresh' && plan.reason === 'gap');
    const refused =
      plan.kind === 'fresh' && !replacesOne
        ? m.admitSession(conn.remoteAddress, conn.principal, conn.clientAddress)
        : undefined;
    if (refused !== undefined) {
      const retryAfterMs = m.config.shutdownRetryAfterMs;
      conn.writeMessage({ t: 'reconnect', retryAfterMs, reason: 'overloaded' }, m.nowMs);
      return this.fail(conn, CloseCode.TryAgainLater, 'server-closed', ErrorCode.SessionLimit, refused);
    }
    this.pending.delete(conn);
    clearTimeout(conn.handshakeTimer);
    conn.handshakeTimer = undefined;

    let session;
    if (plan.kind === 'resumed') {
      session = plan.session;
      session.buffer.ack(plan.lastSeq);
      m.detachedSessions.delete(session);
      session.detachedAtMs = undefined;
    } else {
      const stale = outcome.kind === 'found' ? outcome.session : undefined;
      if (stale && stale !== taken && plan.reason === 'gap') {
        // Until the client confirms this welcome its token may come back (released): it must hear `gap` again.
        if (conn.unconfirmedNonce !== undefined) this.dropOnConfirm.set(conn, stale);
        else this.dropSession(stale);
      }
      // Under the same id (a fixed client id) the stale session is replaced at once; a retry with its token then
      // hears `unknown-session`.
      if (taken) this.dropSession(taken);
      session = m.backend.createSession(conn.id, m.config.replay, {
        principal: conn.principal,
        data: conn.data,
      });
      session.remoteAddress = conn.remoteAddress;
      m.topics.onSessionCreated(session);
    }
    m.trackSession(session);
    conn.id = session.id;
    conn.session = session;
    m.register(conn);
    const replayed = writeWelcome(m, conn, plan, hello.topics, this.issueToken(conn));
    const freshReason = plan.kind === 'fresh' ? plan.reason : undefined;
    if (!p.trace) m.announceConnect(conn, plan.kind, freshReason, replayed);
    else
      p.trace.welcomed(plan.kind, freshReason, replayed, () =>
        m.announceConnect(conn, plan.kind, freshReason, replayed),
      );
    p.resolve(session.id);
  }

  /**
   * A resume token must outlive a detached session whenever the socket drops: it lives 1.5 × the longer of
   * `tokens.ttlMs` and `sessionTtlMs` and is replaced every half of that base, so at least the base remains.
   */
  private issueToken(conn: Connection): string {
    const baseMs = Math.max(this.manager.config.tokens.ttlMs, this.manager.config.sessionTtlMs);
    conn.tokenRefreshAtMs = this.manager.nowMs + Math.floor(baseMs / 2);
    return this.tokens.generate(
      conn.id,
      Math.ceil(baseMs * 1.5),
      conn.session?.incarnation,
      conn.unconfirmedNonce,
    );
  }

  /**
   * Sweep step: send a replacement token to protocol connections whose token is half-way to expiry. An idle
   * connection has usually had it earlier, with its heartbeat ping (`refreshWithPing`).
   */
  refreshTokens(nowMs: number): void {
    for (const conn of this.manager.connections.values()) {
      if (nowMs >= conn.tokenRefreshAtMs) this.refreshToken(conn, nowMs);
    }
  }

  /**
   * Before a heartbeat ping: a token due within `leadMs` (one ping interval and one sweep, so an idle connection
   * is pinged at least once in that span) is replaced now, and its frame goes out in the same write as the ping.
   * Earlier, never later, than the sweep would replace it: at least the base of its lifetime still remains.
   */
  refreshWithPing(conn: Connection, nowMs: number, leadMs: number): void {
    if (nowMs >= conn.tokenRefreshAtMs - leadMs) this.refreshToken(conn, nowMs);
  }

  private refreshToken(conn: Connection, nowMs: number): void {
    if (conn.session && conn.state === 'open') {
      conn.writeMessage({ t: 'token', token: this.issueToken(conn) }, nowMs);
    }
  }

  /**
   * Stop tracking the nonce `conn` consumed. `release`: the client never confirmed the welcome (the socket closed
   * first), so the token is given back to the backend, unless a retry already took the nonce over.
   */
  settleNonce(conn: Connection, release: boolean): void {
    const nonce = conn.unconfirmedNonce;
    conn.unconfirmedNonce = undefined;
    const stale = this.dropOnConfirm.get(conn);
    this.dropOnConfirm.delete(conn);
    if (stale !== undefined && !release) this.dropSession(stale);
    if (nonce === undefined || this.unconfirmed.get(nonce) !== conn) return;
    this.unconfirmed.delete(nonce);
    if (!release || this.movedOn(conn)) return;
    Promise.resolve()
      .then(() => this.manager.backend.releaseNonce(nonce))
      .catch((err: unknown) => this.manager.reportError(conn.id, err));
  }

  /**
   * Whether the session `conn` was welcomed into has moved on without it: another connection holds it (resumed with
   * a newer token), or it is no longer this node's. The token `conn` consumed is then obsolete and stays spent: given
   * back, a late hello with it could take the session from the connection that holds it.
   */
  private movedOn(conn: Connection): boolean {
    const session = conn.session;
    if (!session) return false; // no welcome was written
    const m = this.manager;
    if (m.backend.getSession(session.id) !== session) return true;
    const holder = m.connections.get(session.id);
    return holder !== undefined && holder !== conn && holder.session === session;
  }

  /**
   * Whether `session` is attached to an open connection whose client confirmed the welcome. An unconfirmed one may
   * be an abandoned socket that was welcomed: it must not lock the id's real client out.
   */
  private held(session: SessionRecord): boolean {
    const holder = this.manager.connections.get(session.id);
    return holder !== undefined && holder.session === session && holder.isOpen && holder.confirmed;
  }

  /** End `session` (this very record: a newer session under the same id is left alone) and close its socket. */
  private dropSession(session: SessionRecord): void {
    const m = this.manager;
    if (m.backend.getSession(session.id) !== session) return;
    const conn = m.connections.get(session.id);
    if (conn?.session === session) closeReplaced(conn, 'session replaced');
    m.endSession(session, 'replaced');
  }

  /** A stale hello (see `decideHello`): close this socket with 4004, change nothing else. */
  private refuseStale(conn: Connection): void {
    this.fail(
      conn,
      CloseCode.StaleHello,
      'replaced',
      ErrorCode.TokenReplayed,
      'stale hello: token already used',
    );
  }

  private violation(conn: Connection, why: string): void {
    this.fail(conn, CloseCode.ProtocolViolation, 'protocol-violation', ErrorCode.ProtocolViolation, why);
  }

  private fail(
    conn: Connection,
    code: number,
    why: Parameters<Connection['close']>[2],
    errorCode: ErrorCode,
    message: string,
  ): void {
    this.manager.log.warn({ event: 'protocol.error', clientId: conn.id, code: errorCode, message }, message);
    conn.writeMessage({ t: 'error', code: errorCode, message }, this.manager.nowMs);
    conn.close(code, message, why);
    conn.state = 'closed';
    // During the handshake, `connect()` rejects with the same code (not NOT_OPEN when the socket then closes).
    const p = this.pending.get(conn);
    if (p) {
      this.pending.delete(conn);
      clearTimeout(conn.handshakeTimer);
      p.trace?.failed(errorCode, message);
      p.reject(new StabilizerError(errorCode, message));
    }
  }
}
