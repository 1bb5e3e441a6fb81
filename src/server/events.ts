import type { FreshReason } from '../protocol/messages.js';
import type { InvalidMessageEvent } from './inbound/invalid-message.js';

/** Why a connection ended, as reported to `disconnect` listeners and logs. */
export type DisconnectReason =
  | 'client-closed'
  | 'server-closed'
  | 'heartbeat-timeout'
  | 'send-failed'
  | 'slow-consumer'
  | 'rate-limited'
  | 'message-too-big'
  | 'handler-error'
  | 'protocol-violation'
  | 'handshake-timeout'
  | 'replaced'
  | 'forbidden'
  | 'unauthorized'
  | 'shutdown'
  | 'socket-error';

/**
 * The manager's typed events. Listeners may be async; a throw or rejection in `message` closes that one socket.
 * `In` is what clients send (the `message` event's `data`), `Data` what `authenticate` returned as `data` (the
 * type parameters of `WebSocketConnectionManager`).
 */
export interface ManagerEvents<In = unknown, Data = unknown> {
  connect: {
    clientId: string;
    mode: 'plain' | 'protocol';
    /** Protocol mode: `resumed` or `fresh` (with `freshReason`). Plain mode: always `fresh`. */
    resume: 'resumed' | 'fresh';
    freshReason?: FreshReason;
    /** Messages replayed on resume. */
    replayed: number;
    remoteAddress: string | undefined;
    /** What the `authenticate` hook returned as `data`; `undefined` if it returned none (or `true`). */
    data: Data | undefined;
  };
  disconnect: {
    clientId: string;
    code: number;
    reason: DisconnectReason;
    /**
     * Protocol mode: the session lives on: kept for `sessionTtlMs` (messages sent meanwhile are buffered), or held
     * by a newer connection, here or on another node. `false`: it ended (its `session-end` came just before).
     */
    sessionRetained: boolean;
  };
  message: {
    clientId: string;
    /**
     * Plain mode: `string` for text, `Buffer` for binary. Protocol mode: the decoded JSON value or a `Buffer`.
     * Typed as `In`, unchecked at run time: declare `In` as `T | Buffer` if clients send bytes.
     */
    data: In;
    isBinary: boolean;
    /** Protocol mode: `true` for sequenced messages (delivered exactly once), `false` for volatile ones. */
    reliable: boolean;
    /**
     * Protocol mode, reliable messages: the client sequence number (per session, from 1; it restarts at 1 in every
     * fresh session, also under a fixed client id). To recognise a message, use `messageId`.
     */
    seq?: number;
    /**
     * Protocol mode, reliable messages: `<session incarnation>:<seq>`, unique across sessions, client ids, nodes and
     * restarts, and the same when a message is delivered again. With a cluster backend a node crash can hand one
     * message to the application twice (see "Scaling out"); an application that must not see it twice drops a
     * repeated `messageId`.
     */
    messageId?: string;
  };
  /**
   * Protocol mode: a session is gone for good, cluster-wide, so per-client state can be dropped. `ended`: the
   * client closed with 1000, or the server closed it with a terminal code. `expired`: not resumed within
   * `sessionTtlMs`. `evicted`: a detached session dropped to stay within `maxDetachedSessionBytes` or
   * `maxSessions`. `replaced`: a fresh session replaced it (a `gap`, or a new connection under the same id).
   * `shutdown`: graceful shutdown with a backend whose sessions die with the process (the in-memory one). A
   * session that moves to another node (a resume there, or a shutdown with the Redis backend) does not end.
   */
  'session-end': {
    clientId: string;
    reason: 'expired' | 'ended' | 'replaced' | 'shutdown' | 'evicted';
  };
  error: { clientId: string | undefined; error: Error };
  /**
   * An inbound message failed `schema.inbound`: it was not delivered to `message` listeners, the client got an
   * `INVALID_MESSAGE` error answer, and a reliable one was acked. The connection stays open; a listener may close
   * it (e.g. `manager.disconnect(e.clientId, 1007, 'invalid message')`).
   */
  'invalid-message': InvalidMessageEvent;
  /** A client became a member of a topic: `join()` by the server, or a subscribe the client asked for. */
  join: { clientId: string; topic: string; by: 'server' | 'client' };
  /**
   * A client left a topic: `leave()` by the server, an unsubscribe by the client, its session ended
   * (`session-end`), or, for a plain socket, it disconnected. A detached session stays a member until it ends.
   */
  leave: { clientId: string; topic: string; reason: 'server' | 'client' | 'session-end' | 'disconnect' };
}

/**
 * An event listener. It may return anything (so `e => manager.broadcast(e.data)` is a listener); a returned
 * promise that rejects counts as a throw.
 */
export type Listener<T> = (event: T) => unknown;

/** A listener as stored: a method's parameter is checked bivariantly. */
interface StoredListener<T> {
  call(event: T): unknown;
}

/**
 * A minimal typed emitter. Unlike Node's EventEmitter it catches listener throws and rejections and hands them to
 * `onListenerError`, so one bad handler never escapes into the event loop.
 */
export class TypedEmitter<E extends { [K in keyof E]: object }> {
  // Stored with method (bivariant) parameter types, so that an emitter of narrower events (a manager typed
  // `<In, Out, Data>`) is still assignable to the untyped one that adapters and helpers accept.
  private readonly listeners: { [K in keyof E]?: Array<StoredListener<E[K]>['call']> } = {};

  /** Subscribe; returns a function that unsubscribes. */
  on<K extends keyof E>(name: K, listener: Listener<E[K]>): () => void {
    (this.listeners[name] ??= []).push(listener);
    return () => this.off(name, listener);
  }

  off<K extends keyof E>(name: K, listener: Listener<E[K]>): void {
    const list = this.listeners[name];
    if (list) this.listeners[name] = list.filter((l) => l !== listener);
  }

  listenerCount(name: keyof E): number {
    return this.listeners[name]?.length ?? 0;
  }

  protected emitSafely<K extends keyof E>(
    name: K,
    event: E[K],
    onListenerError: (err: unknown) => void,
  ): void {
    const list = this.listeners[name];
    if (!list) return;
    for (const listener of list) {
      try {
        const result = listener(event);
        if (result && typeof (result as PromiseLike<unknown>).then === 'function') {
          (result as PromiseLike<unknown>).then(undefined, onListenerError);
        }
      } catch (err) {
        onListenerError(err);
      }
    }
  }
}
