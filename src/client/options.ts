import { SUBPROTOCOL, type ErrorCode, type FreshReason, type TopicFreshReason } from '../protocol/index.js';
import type { ClientError } from './errors.js';
import type { ClientCodec, WebSocketConstructor } from './socket.js';

/** `connecting` until the welcome, `open` after it, `reconnecting` while waiting to retry, `closed` for good. */
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

/** Why a socket closed. For closes the client decides itself, see {@link ClientEvents.close}. */
export interface CloseInfo {
  code: number;
  reason: string;
}

/** Options of {@link StabilizerClient}. Every one is optional. */
export interface ClientOptions {
  /**
   * The WebSocket class. Browsers (and Node ≥ 22) have one; on Node 20 pass `WebSocket` from `ws`.
   * @default globalThis.WebSocket
   */
  WebSocket?: WebSocketConstructor;
  /**
   * Another encoding of the frames, e.g. `msgpackCodec()` from `websocket-stabilizer/client/msgpack`. Without
   * it (or when the server does not select the codec's subprotocol) frames are JSON text.
   * @default JSON text (`stabilizer.v1`)
   */
  codec?: ClientCodec;
  /**
   * Credentials sent in every `hello` (PROTOCOL.md §2.1), for the server's `authenticate` hook: a JSON value, or
   * a function (sync or async) called on every connect and reconnect, so an expired token can be replaced. After
   * the server closes with 4505 (credentials expired) the next call gets `{ expired: true }` and should fetch new
   * ones; a second 4505 in a row ends the client with `unauthorized`. The session and the queue survive all this.
   * A throw or rejection fails that attempt: the client closes the socket without a code (its `close` event says
   * 1005, as after `reconnect()`) and retries with backoff.
   * Browsers cannot set headers: this is how they authenticate. Setting it offers the `stabilizer.auth`
   * subprotocol, which tells the server to run `authenticate` at the `hello` rather than at the upgrade.
   * @default undefined (no `auth`: the server authenticates the upgrade request alone)
   */
  auth?: unknown | ((info: { expired: boolean }) => unknown);
  /**
   * Passed as the third argument to the WebSocket constructor, e.g. `{ headers: { authorization, cookie } }` for
   * `ws` in Node. Browsers ignore it.
   * @default undefined
   */
  webSocketOptions?: object;
  /**
   * Shortest reconnect delay, and the base of the exponential backoff. The delay before retry `attempt`
   * (0 first) is `minDelayMs + random() · (min(maxDelayMs, minDelayMs · 2^(attempt+1)) − minDelayMs)`.
   * @default 500
   */
  minDelayMs?: number;
  /**
   * Longest reconnect delay (a server `reconnect` hint comes on top of it).
   * @default 30000
   */
  maxDelayMs?: number;
  /**
   * Reconnect attempts in a row without a welcome before the client gives up and closes for good.
   * @default Infinity
   */
  maxAttempts?: number;
  /**
   * Asked after every close that would be retried (a retryable code, or a dead or misbehaving connection the client
   * dropped itself). Return `false` to close for good instead. Terminal codes (4500–4999, 1000, 1002, 1003, 1007,
   * 1008, 1010) never reconnect, whatever this returns; call `reconnect()` for that.
   * @default () => true
   */
  shouldReconnect?: (close: CloseInfo) => boolean;
  /**
   * Ack received reliable messages after this many, at the latest.
   * @default 32
   */
  ackEveryMessages?: number;
  /**
   * Ack received reliable messages this long after the first unacked one, at the latest.
   * @default 200
   */
  ackDelayMs?: number;
  /**
   * Most reliable messages waiting for an ack (queued offline or in flight). A `send` over the bound rejects at
   * once with `QUEUE_FULL`; messages already accepted are never dropped.
   * @default 1000
   */
  maxQueuedMessages?: number;
  /**
   * Most bytes (encoded frames) waiting for an ack; same policy as {@link maxQueuedMessages}.
   * @default 1048576 (1 MiB)
   */
  maxQueuedBytes?: number;
  /**
   * How long a connection attempt may take from creating the socket to the server's `welcome`.
   * @default 10000
   */
  connectTimeoutMs?: number;
  /**
   * Wall clock in milliseconds, for liveness checks. Inject for tests.
   * @default () => Date.now()
   */
  now?: () => number;
  /**
   * Random number in [0, 1), for backoff jitter. Inject for tests.
   * @default Math.random
   */
  random?: () => number;
}

/** The defaults of {@link ClientOptions}, documented there. */
export const DEFAULTS: Required<Omit<ClientOptions, 'WebSocket' | 'auth' | 'webSocketOptions'>> &
  Pick<ClientOptions, 'auth' | 'webSocketOptions'> = {
  minDelayMs: 500,
  maxDelayMs: 30_000,
  maxAttempts: Infinity,
  shouldReconnect: () => true,
  ackEveryMessages: 32,
  ackDelayMs: 200,
  maxQueuedMessages: 1000,
  maxQueuedBytes: 1 << 20,
  connectTimeoutMs: 10_000,
  now: () => Date.now(),
  random: () => Math.random(),
  codec: { p: [SUBPROTOCOL], e: (f) => f, d: (f) => f },
};

/** Events of {@link StabilizerClient}, each with its argument. */
export interface ClientEvents<In> {
  /** The server welcomed the connection (after `resumed` or `fresh`); queued messages are on their way. */
  open: { sessionId: string; resumed: boolean };
  /**
   * A data message from the server, reliable ones exactly once and in order within their stream (the inbox, or one
   * topic). Binary frames arrive as `Uint8Array` (declare `In` as `T | Uint8Array` if the server sends them). The
   * listener's second argument, a {@link MessageInfo}, says which stream it came from.
   */
  message: In;
  /** The session resumed: missed server messages follow, unacked client messages are resent. */
  resumed: { sessionId: string };
  /**
   * A new session started. Client messages written to the old one and not acked were rejected with
   * `SESSION_LOST`; server messages not received are gone.
   */
  fresh: { sessionId: string; reason: FreshReason };
  /** A reconnect is scheduled: `attempt` counts from 1 since the last welcome. */
  reconnecting: { attempt: number; delayMs: number };
  /**
   * A socket closed, or the client closed it. Closes the client decides itself use: `4000` (no frame from the
   * server in time), `4003` (no welcome within `connectTimeoutMs`), `4502` (the server broke the protocol),
   * the code given to `close()`, `1005` (`reconnect()`, or an `auth()` that threw). When `willReconnect` is false the
   * client is closed for good.
   */
  close: CloseInfo & { willReconnect: boolean };
  /**
   * The server refused the credentials: 4504 (`authenticate` said no), 4503 (forbidden) or 4505 (expired, and
   * expired again after `auth()` was asked to refresh). The client is closed for good (`close` follows, and
   * unacked messages reject with `CLIENT_CLOSED`). It keeps its session token: after a new login,
   * `reconnect()` resumes the session.
   */
  unauthorized: CloseInfo;
  /** An `error` frame from the server (its `code`), or a protocol violation by the server (`PROTOCOL_VIOLATION`). */
  error: ClientError;
  /**
   * One topic's outcome after a welcome (after `resumed` or `fresh`, before `open`), for every topic the session is
   * in, and for each topic the app had subscribed that a fresh session lost (the client subscribes again by
   * itself; `subscribed` follows). On `fresh` the messages up to the topic's new position are not delivered:
   * resync that topic.
   */
  stream: { topic: string; resume: 'resumed' | 'fresh'; reason?: TopicFreshReason | FreshReason };
  /**
   * The client is now in `topic`, and its next publication has `offset + 1`: a `subscribe()` was confirmed, the
   * server joined the client to it (live, or while it was away: then before the topic's `stream` event), or a
   * fresh session's subscribe was repeated. Always before any publication of that topic.
   */
  subscribed: { topic: string; offset: number };
  /**
   * The client is no longer in `topic`: `client` after `unsubscribe()`; `server` when the server made it leave;
   * `refused` when the server refused a subscribe (`code`: `TOPIC_FORBIDDEN`, `INVALID_TOPIC`, `TOPIC_LIMIT`,
   * `TOPICS_UNSUPPORTED`). After `server` or `refused` the client does not subscribe to it again by itself.
   */
  unsubscribed: { topic: string; reason: 'client' | 'server' | 'refused'; code?: ErrorCode };
}

/** Where a `message` comes from: the second argument of `message` listeners. */
export interface MessageInfo {
  /** The topic of a publication (`'$all'` for a broadcast); absent for a direct message. */
  topic?: string;
  /** The offset of a reliable publication in its topic. */
  offset?: number;
  /** The inbox sequence of a reliable direct message. */
  seq?: number;
  /** Exactly once and in order (replayed after a resume), rather than volatile (at most once). */
  reliable: boolean;
}

/** The second argument of {@link ClientEvents} listeners, for the events that have one. */
export interface ClientEventInfo {
  message: MessageInfo;
}
