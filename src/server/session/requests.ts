import { ErrorCode } from '../../protocol/error-codes.js';
import {
  DEFAULT_REQUEST_TIMEOUT_MS,
  RequestErrorCode,
  type RequestOptions,
} from '../../protocol/requests.js';
import type { SessionRecord } from '../../backends/types.js';
import type { Connection } from '../transport/connection.js';
import { StabilizerError } from '../errors.js';
import { Payload, type SendData } from '../../frames/payload.js';

/** What a request handler learns about the request besides its payload. */
export interface RequestContext<Data = unknown> {
  /** The client that asked. */
  clientId: string;
  /**
   * `<incarnation>:<seq>`: unique across sessions and nodes, and the same `messageId` a `message` event would
   * carry for that client message. A handler runs at most once per id.
   */
  requestId: string;
  /** The per-connection data of `authenticate` / `connect`. */
  data: Data | undefined;
}

/**
 * Answers a client's request: its return value (or the value its promise resolves to) is the reply, sent back
 * reliably on the session. Throwing (or rejecting) sends the error reply `HANDLER_ERROR` with a generic message
 * and reports the error as an `error` event; the connection stays open. Return domain errors as values of the
 * reply type instead.
 */
export type RequestHandler<Q = unknown, R = unknown, Data = unknown> = (
  request: Q,
  context: RequestContext<Data>,
) => R | Promise<R>;

/** The manager as the broker sees it. */
export interface RequestHost {
  readonly connections: ReadonlyMap<string, Connection>;
  readonly backend: { getSession(id: string): SessionRecord | undefined };
  sendToClient(clientId: string, data: Payload): unknown;
  reportError(clientId: string | undefined, err: unknown): void;
}

interface Pending {
  incarnation: string;
  resolve(reply: unknown): void;
  reject(err: Error): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * Request/reply on the server (PROTOCOL.md §2.8). Requests and replies are reliable direct messages with a request
 * id, so they share the inbox's guarantees: sequenced, replayed on resume, processed once. The broker runs the
 * handler for client requests and keeps the server's own requests until their reply, timeout or session end.
 */
export class RequestBroker {
  handler: RequestHandler | undefined = undefined;
  /** Server → client requests waiting for their reply: client id → request id → pending. */
  private readonly pending = new Map<string, Map<number, Pending>>();
  /** Last request id this manager used (ids are per manager; the reply comes back to the same node). */
  private lastId = 0;

  constructor(private readonly host: RequestHost) {}

  /** Requests sent by this server and not yet answered. */
  get inFlight(): number {
    let n = 0;
    for (const m of this.pending.values()) n += m.size;
    return n;
  }

  /** `manager.request`: send a request to a client's session and wait for its reply. */
  request(clientId: string, data: SendData, options: RequestOptions): Promise<unknown> {
    const conn = this.host.connections.get(clientId);
    const session = conn ? conn.session : this.host.backend.getSession(clientId);
    if (!session) {
      return Promise.reject(
        conn
          ? new StabilizerError(RequestErrorCode.RequestsUnsupported, `${clientId} is a plain-mode socket`)
          : new StabilizerError(ErrorCode.UnknownClient, `no session with id ${clientId} on this node`),
      );
    }
    const id = ++this.lastId;
    let payload: Payload;
    try {
      payload = new Payload(data, { q: id });
    } catch (err) {
      return Promise.reject(err as Error); // TypeError: bytes, or a value that is not JSON
    }
    return new Promise((resolve, reject) => {
      const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
      const p: Pending = { incarnation: session.incarnation, resolve, reject, timer: undefined };
      if (timeoutMs > 0) {
        p.timer = setTimeout(() => {
          this.settle(clientId, id)?.reject(
            new StabilizerError(
              RequestErrorCode.RequestTimeout,
              `no reply from ${clientId} within ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs);
        p.timer.unref?.();
      }
      let forClient = this.pending.get(clientId);
      if (!forClient) this.pending.set(clientId, (forClient = new Map()));
      forClient.set(id, p);
      try {
        this.host.sendToClient(clientId, payload);
      } catch (err) {
        this.settle(clientId, id);
        reject(err as Error);
      }
    });
  }

  /** A client request arrived (once: its sequence is new). Runs the handler and sends the reply. */
  handleRequest(conn: Connection, session: SessionRecord, id: number, data: unknown, seq: number): void {
    const { handler } = this;
    const requestId = `${session.incarnation}:${seq}`;
    if (!handler) {
      this.reply(session, id, 'no request handler', RequestErrorCode.NoHandler);
      return;
    }
    const context: RequestContext = { clientId: conn.id, requestId, data: conn.data };
    let result: unknown;
    try {
      result = handler(data, context);
    } catch (err) {
      return this.failed(session, id, err);
    }
    // Any thenable, or a plain value (then the reply follows in a microtask).
    Promise.resolve(result).then(
      (reply: unknown) => this.reply(session, id, reply),
      (err: unknown) => this.failed(session, id, err),
    );
  }

  /** A client reply arrived: settle the request it answers (a late or unknown one is dropped). */
  handleReply(conn: Connection, session: SessionRecord, id: number, data: unknown, code?: string): void {
    const p = this.pending.get(conn.id)?.get(id);
    if (!p || p.incarnation !== session.incarnation) return;
    this.settle(conn.id, id);
    if (code === undefined) p.resolve(data);
    else {
      // Only the documented codes come through; anything else a client says counts as its handler failing.
      const known = code === RequestErrorCode.NoHandler ? code : RequestErrorCode.HandlerError;
      p.reject(new StabilizerError(known, `${conn.id} answered ${code}: ${String(data)}`));
    }
  }

  /** The session ended (expired, evicted, closed with 1000, replaced by a fresh one): its requests are lost. */
  sessionEnded(session: SessionRecord): void {
    const forClient = this.pending.get(session.id);
    if (!forClient) return;
    for (const [id, p] of forClient) {
      if (p.incarnation !== session.incarnation) continue;
      this.settle(session.id, id);
      p.reject(new StabilizerError(ErrorCode.SessionLost, `session of ${session.id} ended before its reply`));
    }
  }

  private settle(clientId: string, id: number): Pending | undefined {
    const forClient = this.pending.get(clientId);
    const p = forClient?.get(id);
    if (!p) return undefined;
    clearTimeout(p.timer);
    forClient!.delete(id);
    if (forClient!.size === 0) this.pending.delete(clientId);
    return p;
  }

  private failed(session: SessionRecord, id: number, err: unknown): void {
    this.host.reportError(session.id, err);
    this.reply(session, id, 'request handler failed', RequestErrorCode.HandlerError);
  }

  /**
   * Send the reply on the session that asked. If that session is gone (ended, or the id now holds a fresh one)
   * the reply is dropped: its client has already rejected the request with `SESSION_LOST`.
   */
  private reply(session: SessionRecord, id: number, data: unknown, code?: string): void {
    const current =
      this.host.connections.get(session.id)?.session ?? this.host.backend.getSession(session.id);
    if (current && current.incarnation !== session.incarnation) return;
    let payload: Payload;
    try {
      payload = new Payload((data ?? null) as SendData, { r: id, e: code });
    } catch (err) {
      // Not JSON (a BigInt, a cycle, bytes): an error reply instead.
      this.host.reportError(session.id, err);
      payload = new Payload('request handler failed', { r: id, e: RequestErrorCode.HandlerError });
    }
    try {
      this.host.sendToClient(session.id, payload);
    } catch {
      // UNKNOWN_CLIENT: the session ended meanwhile. SEND_FAILED: the reply is in the replay buffer.
    }
  }
}
