/**
 * Stable string codes carried by every typed error (`err.code`) and by `error` frames on the wire.
 * They never change meaning once shipped.
 */
export const ErrorCode = {
  InvalidConfig: 'INVALID_CONFIG',
  UnknownClient: 'UNKNOWN_CLIENT',
  NotOpen: 'NOT_OPEN',
  SendFailed: 'SEND_FAILED',
  ShuttingDown: 'SHUTTING_DOWN',
  ConnectionLimit: 'CONNECTION_LIMIT',
  /** Protocol mode: a new session would exceed `maxSessions`, `maxSessionsPerIp` or `maxSessionsPerPrincipal`. */
  SessionLimit: 'SESSION_LIMIT',
  /** `duplicateIdPolicy: 'reject'` refused a connection whose client id is already connected. */
  DuplicateClientId: 'DUPLICATE_CLIENT_ID',

  TokenExpired: 'TOKEN_EXPIRED',
  TokenBadSignature: 'TOKEN_BAD_SIGNATURE',
  TokenReplayed: 'TOKEN_REPLAYED',
  TokenMalformed: 'TOKEN_MALFORMED',
  TokenUnknownKey: 'TOKEN_UNKNOWN_KEY',
  TokenWrongSession: 'TOKEN_WRONG_SESSION',
  TokensDisabled: 'TOKENS_DISABLED',

  HandshakeTimeout: 'HANDSHAKE_TIMEOUT',
  ProtocolViolation: 'PROTOCOL_VIOLATION',
  Forbidden: 'FORBIDDEN',
  /** `authenticate` refused the credentials of the `hello` (close 4504). */
  Unauthorized: 'UNAUTHORIZED',
  /** `authenticate` found the credentials of the `hello` expired (close 4505). */
  CredentialsExpired: 'CREDENTIALS_EXPIRED',
  BackendUnavailable: 'BACKEND_UNAVAILABLE',
  /** Cluster backend: shared storage lost its history (e.g. Redis restarted empty); the operation was dropped. */
  HistoryLost: 'HISTORY_LOST',
  /**
   * A cluster-wide operation on a client (`clusterJoin`, `clusterLeave`, `clusterDisconnect`, `fetchClient`) did not
   * take effect within its `timeoutMs` (e.g. its node died and Redis was unreachable): its outcome is unknown, and
   * it may be repeated (every one is idempotent).
   */
  OperationTimeout: 'OPERATION_TIMEOUT',

  /** Client: a reliable message was sent on a session the server no longer has; delivery is unknown. */
  SessionLost: 'SESSION_LOST',
  /** A subscribe was refused by the application's `authorizeSubscribe` hook (or no hook allows client subscribes). */
  TopicForbidden: 'TOPIC_FORBIDDEN',
  /** A topic name is empty, too long, has control characters, or is reserved (starts with `$`). */
  InvalidTopic: 'INVALID_TOPIC',
  /** The connection is already in `topics.maxPerConnection` topics. */
  TopicLimit: 'TOPIC_LIMIT',
  /** Reserved for a storage backend without topics; neither built-in backend sends it (both have topics). */
  TopicsUnsupported: 'TOPICS_UNSUPPORTED',
  /**
   * An inbound message failed the manager's `schema.inbound` validation: it was not delivered (a reliable one is
   * acked all the same). Sent in an `error` frame with the message's `s` (PROTOCOL.md §2.5); the connection stays.
   */
  InvalidMessage: 'INVALID_MESSAGE',

  /** Client: the message is larger than the server's `maxPayloadBytes` (from the welcome); it is never sent. */
  MessageTooBig: 'MESSAGE_TOO_BIG',
  /** Client: the offline queue is full and the drop policy rejected this message. */
  QueueFull: 'QUEUE_FULL',
  /** Client: `close()` was called, or a terminal close code ended the client, before the message was acked. */
  ClientClosed: 'CLIENT_CLOSED',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];
