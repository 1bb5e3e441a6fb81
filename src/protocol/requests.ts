/**
 * Request/reply over the reliable channel (PROTOCOL.md §2.8): the types shared by the server, the client's
 * request module and the applications that declare their request shapes.
 */

/**
 * Stable codes of the errors a request can end with, besides the shared `SESSION_LOST`, `CLIENT_CLOSED` and
 * `UNKNOWN_CLIENT` (see `ErrorCode`). Kept apart from `ErrorCode` so that the core browser client does not carry
 * them.
 */
export const RequestErrorCode = {
  /** No reply within `timeoutMs`. The request may still be handled (once); its late reply is dropped. */
  RequestTimeout: 'REQUEST_TIMEOUT',
  /** The peer's handler threw (or returned a reply that is not JSON). The message is generic on purpose. */
  HandlerError: 'HANDLER_ERROR',
  /** The peer has no request handler. */
  NoHandler: 'NO_HANDLER',
  /** The target cannot answer requests: a plain-mode socket, or a session on another cluster node. */
  RequestsUnsupported: 'REQUESTS_UNSUPPORTED',
} as const;

export type RequestErrorCode = (typeof RequestErrorCode)[keyof typeof RequestErrorCode];

/** How long a request waits for its reply by default. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** Options of `client.request` / `manager.request`. */
export interface RequestOptions {
  /**
   * Reject with `REQUEST_TIMEOUT` when no reply arrived within this time (the clock runs while the request waits
   * in the offline queue too). `0` waits for ever: only the session ending or the client closing ends it.
   * @default 30000
   */
  timeoutMs?: number;
}

/**
 * One direction's requests: a label for each kind of request, with its request and reply shapes. The labels
 * are documentation only (they are not sent): the request's own shape, e.g. a `type` field, tells the kinds
 * apart, and the reply type of a call is the reply of every entry whose request shape the data matches.
 *
 * ```ts
 * interface ChatRequests {
 *   history: { request: { type: 'history'; room: string }; reply: { texts: string[] } };
 *   whoami: { request: { type: 'whoami' }; reply: { userId: string } };
 * }
 * ```
 */
export interface RequestPair {
  request: unknown;
  reply: unknown;
}

/** Any request map: requests and replies untyped (the default). */
export interface AnyRequests {
  [label: string]: RequestPair;
}

/**
 * Request types of both directions: `client` are the requests the client sends and the server answers
 * (`client.request` → `manager.onRequest`); `server` the ones the server sends and the client answers
 * (`manager.request` → the client's `onRequest`). `{}` for a direction means none may be sent.
 */
export interface RequestTypes {
  client: object;
  server: object;
}

/**
 * The default of the `Rpc` type parameters: requests and replies of any shape (`unknown`) in both directions.
 * It is `any` so that a manager typed with its own request types still passes where an untyped manager is
 * expected (adapters, helpers); {@link RequestsOf} turns it into {@link AnyRequests}.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRequestTypes = any;

/** One direction's request map of `Rpc` (`'client'` or `'server'`); {@link AnyRequests} for the default. */
export type RequestsOf<Rpc, K extends 'client' | 'server'> = 0 extends 1 & Rpc
  ? AnyRequests
  : Rpc extends Record<K, infer M>
    ? M
    : never;

type RequestIn<P> = P extends { request: infer Q } ? Q : never;
type ReplyIn<P> = P extends { reply: infer R } ? R : never;

/** The request payloads of a request map (the union of every entry's `request`). */
export type RequestOf<M> = RequestIn<M[keyof M]>;

/** The reply payloads of a request map (the union of every entry's `reply`): what a handler may return. */
export type AnyReplyOf<M> = ReplyIn<M[keyof M]>;

/** The reply to request `Q`: the `reply` of every entry of `M` whose `request` shape `Q` matches. */
export type ReplyOf<M, Q> = { [K in keyof M]: Q extends RequestIn<M[K]> ? ReplyIn<M[K]> : never }[keyof M];
