/**
 * Wire messages of the `stabilizer.v1` subprotocol. Text frames carry one JSON object whose `t` field names the
 * type; binary frames carry data messages with a binary payload (see {@link encodeBinaryData}).
 * This file has no Node or DOM dependency: client and server share it. PROTOCOL.md is the normative text.
 */

/** The `Sec-WebSocket-Protocol` value that turns on the protocol. Without it a socket runs in plain mode. */
export const SUBPROTOCOL = 'stabilizer.v1';

/**
 * The same protocol with every frame a MessagePack map in a binary WebSocket frame (PROTOCOL.md §2.7). A client
 * that offers it also offers {@link SUBPROTOCOL}, which a server without MessagePack selects instead.
 */
export const SUBPROTOCOL_MSGPACK = 'stabilizer.v1.msgpack';

/**
 * Offered next to {@link SUBPROTOCOL} (never selected) by a client that sends its credentials in the `hello`'s
 * `auth` field: the server then runs its `authenticate` hook at the `hello` instead of at the upgrade, and refuses
 * with a close code a browser can see (4503, 4504, 4505) rather than an HTTP status it cannot.
 */
export const AUTH_SUBPROTOCOL = 'stabilizer.auth';

import type { FreshReason } from './fresh-reason.js';
import { isSeq, isTopicName, isTopicPositions, isTopicStates, type TopicState } from './topics.js';

export {
  BROADCAST_TOPIC,
  MAX_TOPIC_NAME_BYTES,
  isSeq,
  isTopicName,
  type TopicFreshReason,
  type TopicState,
} from './topics.js';

export type { FreshReason };

/** Client → server, first frame on every connection. */
export interface HelloMessage {
  t: 'hello';
  /** Protocol revision the client speaks. Currently 1. */
  v: 1;
  /** Resume token from the previous `welcome`; absent on a first connection. */
  token?: string;
  /** Session the client believes it resumes; if present it must match the token's session. */
  sessionId?: string;
  /** Highest server sequence number received in order (0 if none). */
  lastSeq?: number;
  /** The client's position in each topic it is a member of: topic → highest offset received in order. */
  topics?: Record<string, number>;
  /**
   * W3C Trace Context of the client's trace (at most {@link MAX_TRACE_HEADER_CHARS} characters each): a server
   * with tracing starts its handshake span, and runs its `connect` handlers, as a child of it.
   */
  traceparent?: string;
  tracestate?: string;
  /**
   * Credentials (any JSON value, e.g. an access token), evaluated by the client on every connect. Read by the
   * server's `authenticate` hook when the client offered {@link AUTH_SUBPROTOCOL}; ignored otherwise.
   */
  auth?: unknown;
}

/**
 * Client → server, after the welcome: the page was hidden (`hidden: true`) or shown again. While hidden, the
 * server waits `hiddenPongTimeoutMs` instead of `pongTimeoutMs` for an answer to its ping (browsers throttle and
 * freeze background tabs). Sent on every change, and once after each welcome while the page is hidden.
 */
export interface VisibilityMessage {
  t: 'vis';
  hidden: boolean;
}

/** Longest `traceparent` / `tracestate` a `hello` may carry (the W3C limit of a `tracestate` is 512). */
export const MAX_TRACE_HEADER_CHARS = 512;

/** Server → client, answer to `hello`. */
export interface WelcomeMessage {
  t: 'welcome';
  /** Session id, which is also the client id on the server. */
  sessionId: string;
  /** Fresh single-use resume token for the next reconnect. */
  token: string;
  /** `resumed`: missed messages follow, in order, exactly once. `fresh`: a new session, see `reason`. */
  resume: 'resumed' | 'fresh';
  /** Why the session is fresh. Absent when resumed. */
  reason?: FreshReason;
  /** Highest server sequence assigned on this session (0 on a fresh session); a replay ends at it. */
  lastSeq: number;
  /** Highest client sequence the server has processed; the client resends everything after it. */
  lastClientSeq: number;
  /** The server sends a ping when a connection is idle this long. */
  pingIntervalMs: number;
  /** How long the server waits for any frame after its ping before it drops the connection. */
  pongTimeoutMs: number;
  /** Largest frame the server accepts; a client refuses to send larger ones (the server would close with 1009). */
  maxPayloadBytes?: number;
  /**
   * Every topic the session is a member of, with its outcome (exactly one per topic, never partial). Topics the
   * client named in its `hello` and that are missing here are no longer subscribed.
   */
  topics?: TopicState[];
}

/**
 * Either direction. Without `c`: a direct message, reliable when `s` is present (acked, replayed on resume),
 * volatile when absent. With `c` (server → client only): a publication on topic `c`, reliable when the topic
 * offset `o` is present (replayed on resume from the topic's history, never acked), volatile when absent.
 */
export interface DataMessage<P = unknown> {
  t: 'd';
  s?: number;
  /** Topic (server → client). */
  c?: string;
  /** Offset in the topic (server → client, reliable publications). */
  o?: number;
  /** A request with this id (reliable direct messages only): the peer answers with `r` (§2.8). */
  q?: number;
  /** The reply to request `r` (reliable direct messages only); with `e`, an error reply whose `p` is a message. */
  r?: number;
  /** Error reply: a stable code (`HANDLER_ERROR`, `NO_HANDLER`, `INVALID_REQUEST`); only with `r`. */
  e?: string;
  p: P;
}

/**
 * Server → client. Offset `o` of topic `c` is not for this client (it was excluded from that publication). It
 * keeps the client's position contiguous, so that an exclusion never looks like a gap.
 */
export interface SkipMessage {
  t: 'skip';
  c: string;
  o: number;
}

/**
 * Client → server: subscribe to topic `c`. Server → client: the client is a member of `c` from offset `o` on
 * (the next publication has `o + 1`): the answer to a subscribe, or a join made by the server.
 */
export interface SubMessage {
  t: 'sub';
  c: string;
  o?: number;
}

/**
 * Client → server: leave topic `c`. Server → client: the client is no longer a member of `c` (answer to an
 * unsubscribe, or a leave made by the server), or, with `code`, its subscribe was refused (`TOPIC_FORBIDDEN`,
 * `INVALID_TOPIC`, `TOPIC_LIMIT`, `TOPICS_UNSUPPORTED`). Never closes the socket.
 */
export interface UnsubMessage {
  t: 'unsub';
  c: string;
  code?: string;
  message?: string;
}

/** Either direction. Cumulative: every reliable message with sequence ≤ `s` has been received. */
export interface AckMessage {
  t: 'ack';
  s: number;
}

/** Either direction. Application-level ping (browsers cannot see protocol pings). */
export interface PingMessage {
  t: 'ping';
}

/** Answer to `ping`. From the client it carries the highest server sequence received, so the server can trim. */
export interface PongMessage {
  t: 'pong';
  s?: number;
}

/** Server → client. Come back after `retryAfterMs` (shutdown, or over capacity). */
export interface ReconnectHintMessage {
  t: 'reconnect';
  retryAfterMs: number;
  reason: string;
}

/**
 * Server → client. A replacement resume token, sent before the current one expires on a long-lived connection.
 * The client keeps only the newest token.
 */
export interface TokenMessage {
  t: 'token';
  token: string;
}

/**
 * Server → client, usually followed by a close. `INVALID_MESSAGE` is not: it answers one data message that failed the
 * server's inbound schema, with that message's client sequence `s` (reliable ones) and up to 5 `issues`.
 */
export interface ErrorMessage {
  t: 'error';
  code: string;
  message: string;
  s?: number;
  issues?: Array<{ message: string; path?: Array<string | number> }>;
}

export type ClientMessage =
  | HelloMessage
  | DataMessage
  | AckMessage
  | PingMessage
  | PongMessage
  | SubMessage
  | UnsubMessage
  | VisibilityMessage;
export type ServerMessage =
  | WelcomeMessage
  | DataMessage
  | SkipMessage
  | SubMessage
  | UnsubMessage
  | AckMessage
  | PingMessage
  | PongMessage
  | ReconnectHintMessage
  | TokenMessage
  | ErrorMessage;
export type ProtocolMessage = ClientMessage | ServerMessage;

/** A frame that does not follow the protocol. `reason` is safe to put in a close frame. */
export interface DecodeFailure {
  error: string;
}

/** `frame` parsed as JSON when it is text; anything else (a decoded MessagePack map) is checked as it is. */
function parseObject(frame: unknown): Record<string, unknown> | DecodeFailure {
  let m = frame;
  try {
    if (typeof frame == 'string') m = JSON.parse(frame);
  } catch {
    return { error: 'bad JSON' };
  }
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return { error: 'bad JSON' };
  return m as Record<string, unknown>;
}

/** The messages both sides send; `undefined` for any other type. */
function decodeShared(o: Record<string, unknown>): ProtocolMessage | DecodeFailure | undefined {
  switch (o.t) {
    case 'd':
      if (!('p' in o)) return { error: 'bad data' };
      if (o.s !== undefined && !isSeq(o.s)) return { error: 'bad sequence' };
      if (o.c !== undefined && (!isTopicName(o.c) || o.s !== undefined)) return { error: 'bad topic' };
      if (o.o !== undefined && (o.c === undefined || !isSeq(o.o))) return { error: 'bad offset' };
      return o as unknown as DataMessage;
    case 'sub':
      if (!isTopicName(o.c)) return { error: 'bad topic' };
      return o.o === undefined || isSeq(o.o) ? (o as unknown as SubMessage) : { error: 'bad offset' };
    case 'unsub':
      if (!isTopicName(o.c)) return { error: 'bad topic' };
      return o.code === undefined || typeof o.code === 'string'
        ? (o as unknown as UnsubMessage)
        : { error: 'bad unsub' };
    case 'ack':
      return isSeq(o.s) ? (o as unknown as AckMessage) : { error: 'bad ack' };
    case 'ping':
      return { t: 'ping' };
    case 'pong':
      return o.s === undefined || isSeq(o.s) ? (o as unknown as PongMessage) : { error: 'bad pong' };
    default:
      return undefined;
  }
}

/**
 * Decode a text frame a client received (a {@link ServerMessage}), checking every field the client relies on.
 * `frame` is JSON text, or a message object already decoded from MessagePack (checked the same way).
 * Returns a {@link DecodeFailure} instead of throwing, so a bad frame never escapes as an exception. Split from
 * {@link decodeClientMessage} so that the browser bundle carries only what a client reads.
 */
export function decodeServerMessage(frame: unknown): ServerMessage | DecodeFailure {
  const o = parseObject(frame);
  if (isDecodeFailure(o)) return o;
  const shared = decodeShared(o);
  if (shared) return shared as ServerMessage | DecodeFailure;
  switch (o.t) {
    case 'skip':
      return isTopicName(o.c) && isSeq(o.o) ? (o as unknown as SkipMessage) : { error: 'bad skip' };
    case 'welcome':
      return typeof o.sessionId === 'string' &&
        typeof o.token === 'string' &&
        (o.resume === 'resumed' || o.resume === 'fresh') &&
        isSeq(o.lastSeq) &&
        isSeq(o.lastClientSeq) &&
        isSeq(o.pingIntervalMs) &&
        isSeq(o.pongTimeoutMs) &&
        (o.topics === undefined || isTopicStates(o.topics))
        ? (o as unknown as WelcomeMessage)
        : { error: 'bad welcome' };
    case 'reconnect':
      return isSeq(o.retryAfterMs) ? (o as unknown as ReconnectHintMessage) : { error: 'bad hint' };
    case 'token':
      return typeof o.token === 'string' ? (o as unknown as TokenMessage) : { error: 'bad token' };
    case 'error':
      return typeof o.code === 'string' ? (o as unknown as ErrorMessage) : { error: 'bad error' };
    default:
      return { error: 'unknown message type' };
  }
}

function isTraceHeader(v: unknown): boolean {
  return v === undefined || (typeof v === 'string' && v.length <= MAX_TRACE_HEADER_CHARS);
}

/** Decode a text frame a server received (a {@link ClientMessage}); see {@link decodeServerMessage}. */
export function decodeClientMessage(frame: unknown): ClientMessage | DecodeFailure {
  const o = parseObject(frame);
  if (isDecodeFailure(o)) return o;
  const shared = decodeShared(o);
  if (shared) return o.t === 'd' ? checkRequestFields(o, shared) : (shared as ClientMessage | DecodeFailure);
  if (o.t === 'vis') {
    return typeof o.hidden === 'boolean' ? (o as unknown as VisibilityMessage) : { error: 'bad vis' };
  }
  if (o.t !== 'hello') return { error: 'unknown message type' };
  if (o.v !== 1) return { error: 'unsupported protocol revision' };
  if (o.token !== undefined && typeof o.token !== 'string') return { error: 'bad token' };
  if (o.sessionId !== undefined && typeof o.sessionId !== 'string') return { error: 'bad sessionId' };
  if (o.lastSeq !== undefined && !isSeq(o.lastSeq)) return { error: 'bad lastSeq' };
  if (o.topics !== undefined && !isTopicPositions(o.topics)) return { error: 'bad topics' };
  if (!isTraceHeader(o.traceparent)) return { error: 'bad traceparent' };
  if (!isTraceHeader(o.tracestate)) return { error: 'bad tracestate' };
  return o as unknown as HelloMessage;
}

/**
 * The request fields of a data message (§2.8): `q` or `r` only on a reliable direct message, never both; `e` only
 * with `r`, and then `p` is a message. Checked by the server; the client's request module checks what it reads.
 */
function checkRequestFields(
  o: Record<string, unknown>,
  m: ProtocolMessage | DecodeFailure,
): ClientMessage | DecodeFailure {
  if (o.q === undefined && o.r === undefined && o.e === undefined) return m as ClientMessage | DecodeFailure;
  const id = o.q ?? o.r;
  if (o.s === undefined || (o.q !== undefined && o.r !== undefined) || !isSeq(id) || id === 0) {
    return { error: 'bad request id' };
  }
  if (o.e !== undefined && (o.r === undefined || typeof o.e !== 'string' || typeof o.p !== 'string')) {
    return { error: 'bad error reply' };
  }
  return m as ClientMessage | DecodeFailure;
}

/** Decode a text frame of either direction (tools and tests; each side uses its own decoder). */
export function decodeTextMessage(text: string): ProtocolMessage | DecodeFailure {
  const m = decodeServerMessage(text);
  return isDecodeFailure(m) && m.error === 'unknown message type' ? decodeClientMessage(text) : m;
}

export function isDecodeFailure(v: unknown): v is DecodeFailure {
  return typeof v === 'object' && v !== null && 'error' in v && !('t' in v);
}
