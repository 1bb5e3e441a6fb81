import type { Logger } from './operations/logger.js';
import type { StorageBackend } from './storage-backend.js';
import type { RateLimiterLike } from './inbound/shared-limits.js';
import type { InboundSchemas } from './inbound/validation.js';
import type { CompressionConfig } from './transport/compression.js';

export type { CompressionConfig };

/** Named heartbeat settings. See README "Choosing a preset" for which fits behind which proxy. */
export type PresetName = 'conservative' | 'aggressive' | 'relaxed';

/** A signing key for reconnect tokens. */
export interface TokenKey {
  /** Key id written into each token, so a verifier knows which key signed it. Short, `[A-Za-z0-9_-]`. */
  keyId: string;
  /** HMAC-SHA256 secret, at least 32 bytes (a string is taken as UTF-8). */
  secret: string | Uint8Array;
}

/** Reconnect token settings. Without `secret`, `generateReconnectToken` throws `TOKENS_DISABLED`. */
export interface TokenConfig {
  /** Current signing key material. Required for tokens. */
  secret?: string | Uint8Array;
  /**
   * Key id of `secret`.
   * @default 'k1'
   */
  keyId?: string;
  /** The previous key, still accepted for validation until `acceptUntil` (a rotation window). */
  previous?: TokenKey & {
    /** Last moment (epoch ms or Date) tokens signed with this key are accepted. */
    acceptUntil: number | Date;
  };
  /**
   * Lifetime of a token.
   * @default 120000 (2 minutes)
   */
  ttlMs?: number;
  /**
   * Tokens longer than this are rejected as malformed before any decoding.
   * @default 512
   */
  maxTokenLength?: number;
}

/** Bounds of each session's replay buffer (protocol mode). The first bound reached evicts the oldest message. */
export interface ReplayConfig {
  /** @default 1000 */
  maxMessages?: number;
  /**
   * Bytes of payload kept per session. At most half of `maxBufferedBytes`, so a whole replay fits an empty socket.
   * @default min(1048576, maxBufferedBytes / 2)
   */
  maxBytes?: number;
  /** @default 300000 (5 minutes) */
  maxAgeMs?: number;
}

/** History bounds for the topics whose name starts with `prefix` (the first matching override wins). */
export interface TopicHistoryOverride {
  prefix: string;
  history: ReplayConfig;
}

/** Topics (rooms): limits and history bounds. */
export interface TopicsConfig {
  /**
   * Most topics one connection or session may be a member of (the built-in `$all` is not counted). Over it,
   * `join` throws `TOPIC_LIMIT` and a client subscribe is refused with that code.
   * @default 100
   */
  maxPerConnection?: number;
  /**
   * Longest topic name, in characters (and at most 255 UTF-8 bytes on the wire).
   * @default 128
   */
  maxNameLength?: number;
  /**
   * History bounds of every topic: a publication is kept once per topic, for all members, until the first bound
   * evicts it; a resume from before an evicted offset answers `gap` for that topic. `$all` (broadcasts) uses
   * `replay`.
   * @default the `replay` bounds
   */
  history?: ReplayConfig;
  /** Per-prefix history bounds, e.g. `[{ prefix: 'ticker:', history: { maxMessages: 10 } }]`. @default [] */
  overrides?: TopicHistoryOverride[];
}

/**
 * Token-bucket limit on inbound messages per connection (per session in protocol mode). Over it, the connection
 * is closed with 4002.
 */
export interface RateLimitConfig {
  /** Sustained rate. */
  messagesPerSecond: number;
  /**
   * Bucket size: how many messages may arrive at once.
   * @default messagesPerSecond
   */
  burst?: number;
}

/**
 * Rate limits beyond one connection, as limiter objects: `RateLimiterMemory` (this process) or `RateLimiterRedis`
 * (every node sharing the Redis) from `rate-limiter-flexible`, or anything with the same `consume`. Each charges
 * one point per message or attempt; its own options set the rate (`points` per `duration` seconds), and its
 * `keyPrefix` keeps its keys apart from other limiters in the same store. A limiter whose store fails lets the
 * traffic through and reports an `error` event.
 */
export interface RateLimitersConfig {
  /**
   * Application messages per principal (`authenticate`'s `principal`), counted over all its connections (with a
   * Redis store: over all nodes). Over it: close 4002, as for `rateLimit`. Connections without a principal are
   * not charged. Checked after `rateLimit`; a connection's messages are still delivered in arrival order.
   * @default undefined (no limit)
   */
  messagesPerPrincipal?: RateLimiterLike;
  /**
   * Upgrade attempts per client IP (see `trustProxy`), every attempt counted, checked before the origin, the
   * connection limits and `authenticate`. Over it: HTTP 429 with `Retry-After`. Only `attach` and
   * `createUpgradeHandler` check it.
   * @default undefined (no limit)
   */
  upgradesPerIp?: RateLimiterLike;
}

/** Configuration of a {@link WebSocketConnectionManager}. Every field is optional. */
/**
 * Options of `new WebSocketConnectionManager(config)`. `In` is what clients send, inferred from `schema.inbound`
 * when one is given.
 */
export interface WebSocketConfig<In = unknown> {
  /**
   * Heartbeat preset applied before the explicit fields below.
   * @default 'conservative'
   */
  preset?: PresetName;
  /**
   * A connection with no frame in either direction for this long gets a ping.
   * @default 30000 (conservative), 5000 (aggressive), 60000 (relaxed)
   */
  pingIntervalMs?: number;
  /**
   * After a ping, a connection that sends no frame at all for this long is terminated (`heartbeat-timeout`, 4000).
   * @default 10000 (conservative), 10000 (aggressive), 30000 (relaxed)
   */
  pongTimeoutMs?: number;
  /**
   * Protocol mode: the pong timeout while the client says its page is hidden (the bundled client sends a `vis`
   * frame; browsers throttle timers in background tabs and may freeze them). A value below `pongTimeoutMs` acts as
   * `pongTimeoutMs`. When it runs out the connection closes with 4000 as usual, and the session waits
   * `sessionTtlMs` for a resume.
   * @default 300000 (5 minutes)
   */
  hiddenPongTimeoutMs?: number;
  /**
   * Most simultaneous connections. Over it: HTTP 503 at upgrade, or close 1013 for a socket passed to `connect`.
   * @default undefined (no limit)
   */
  maxConnections?: number;
  /**
   * Most simultaneous connections per remote IP (checked at upgrade, HTTP 503).
   * @default undefined (no limit)
   */
  maxConnectionsPerIp?: number;
  /**
   * Largest inbound frame. Larger frames close the connection with 1009.
   * @default 1048576 (1 MiB)
   */
  maxPayloadBytes?: number;
  /**
   * Cap on bytes queued for one connection. Over it, reliable traffic closes the connection with 4001 (the client
   * resumes and gets the replay); volatile messages are dropped instead.
   * @default 4194304 (4 MiB)
   */
  maxBufferedBytes?: number;
  /**
   * Select the MessagePack encoding (`stabilizer.v1.msgpack`, PROTOCOL.md §2.7) for clients that offer it. It
   * needs the optional peer dependency `msgpackr`, loaded when the first client offers it; without it (or with
   * `false`) such clients get `stabilizer.v1` (JSON), which they also offer.
   * @default true
   */
  msgpack?: boolean;
  /**
   * How long a close handshake that the server started (4001 slow consumer, 4002 rate limit, 1009, a rejected
   * frame, `disconnect()`, ...) may take before the socket is terminated. A peer that does not read never answers
   * the close frame, and until it is gone it stays registered and holds its `maxConnections` and per-IP slots.
   * `disconnect` still reports the code the server sent. Graceful shutdown has its own `timeoutMs`.
   * @default 2000
   */
  closeTimeoutMs?: number;
  /**
   * Origins allowed to open a socket besides the request's own. A browser sends `Origin` with every upgrade; one
   * that is neither the request's own origin (scheme, host and port: the connection's TLS and `Host`, or
   * `X-Forwarded-Proto` / `X-Forwarded-Host` from a proxy `trustProxy` trusts) nor in this list gets HTTP 403 (Cross-Site
   * WebSocket Hijacking). An upgrade without `Origin` (a non-browser client) passes. Entries are origins as
   * browsers send them (`'https://app.example'`, `'http://localhost:5173'`; compared normalised). `'*'` turns the
   * check off: safe only when no cookie or other ambient credential authenticates the upgrade (tokens only).
   * @default undefined (same origin only)
   */
  allowedOrigins?: '*' | string[];
  /**
   * What `connect` does when the id is already connected: `replace` closes the old socket with 4501,
   * `reject` closes the new one with 4501.
   * @default 'replace'
   */
  duplicateIdPolicy?: 'replace' | 'reject';
  /**
   * Protocol mode: time allowed between the upgrade and the client's `hello`. Then close 4003.
   * @default 10000
   */
  handshakeTimeoutMs?: number;
  /**
   * Protocol mode: how long a disconnected session (and its replay buffer) is kept for a resume.
   * @default 120000 (2 minutes)
   */
  sessionTtlMs?: number;
  /**
   * Protocol mode: most sessions (attached or detached) this process holds. A new session over it evicts the
   * oldest detached session (`session-end` reason `evicted`); if every session is live, the new one is refused
   * (`error` `SESSION_LIMIT`, a `reconnect` hint, close 1013). Resumes are never refused by it.
   * @default 100000
   */
  maxSessions?: number;
  /**
   * Protocol mode: most sessions created from one remote IP that this process holds. A new session over it is
   * refused (`SESSION_LIMIT`, close 1013); resumes are not. Unset, 1000 sessions per client address, counted
   * only for addresses that are known to be a client's: one a trusted proxy forwarded (`trustProxy`), or a peer
   * that is not loopback, private, link-local or shared (100.64.0.0/10), i.e. not likely a proxy. Behind a proxy
   * without `trustProxy`, the default thus caps nothing. A number set here counts every address, the proxy's too:
   * set `trustProxy` with it.
   * @default 1000, counted only for client addresses (see above)
   */
  maxSessionsPerIp?: number;
  /**
   * Protocol mode: most sessions of one `principal` (returned by `authenticate`, or `connect`'s `principal`) that
   * this process holds. A new session over it is refused (`SESSION_LIMIT`, close 1013); resumes are not.
   * @default 100
   */
  maxSessionsPerPrincipal?: number;
  /**
   * Protocol mode: memory budget of all detached sessions together, estimated as the bytes of their replay buffers
   * plus a fixed overhead per entry and per session (see README "Session limits"). Over it, the oldest detached
   * sessions are evicted first (`session-end` reason `evicted`; their resume answers `fresh` / `evicted`). A live
   * session is never evicted.
   * @default 268435456 (256 MiB)
   */
  maxDetachedSessionBytes?: number;
  /** Protocol mode: bounds of each session's inbox (direct messages) and of the `$all` topic's history. */
  replay?: ReplayConfig;
  /** Topics (rooms): limits and history bounds. */
  topics?: TopicsConfig;
  /** Reconnect tokens. */
  tokens?: TokenConfig;
  /**
   * Inbound rate limit per connection; in protocol mode per session, so a resume continues with the bucket as
   * the previous connection left it.
   * @default undefined (no limit)
   */
  rateLimit?: RateLimitConfig;
  /** Rate limits per principal (cluster-wide with a Redis store) and per IP at the upgrade. */
  rateLimiters?: RateLimitersConfig;
  /**
   * permessage-deflate, deflated once per broadcast, topic publication and replay for all recipients.
   * @default { enabled: false }
   */
  compression?: CompressionConfig;
  /**
   * Default `retryAfterMs` of the reconnect hint sent on graceful shutdown.
   * @default 1000
   */
  shutdownRetryAfterMs?: number;
  /**
   * Structured logger (pino-compatible). The library is silent without one.
   * @default undefined (silent)
   */
  logger?: Logger;
  /**
   * Storage for sessions, replay buffers and token nonces.
   * @default new MemoryBackend()
   */
  backend?: StorageBackend;
  /**
   * Run-time validation of inbound messages with any Standard Schema validator (zod, valibot, arktype):
   * `{ inbound: schema }`. See {@link InboundSchemas}.
   * @default undefined (no validation)
   */
  schema?: InboundSchemas<In>;
}

/** The validated configuration with every default filled in. */
export interface ResolvedConfig {
  preset: PresetName;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  hiddenPongTimeoutMs: number;
  maxConnections: number | undefined;
  maxConnectionsPerIp: number | undefined;
  maxPayloadBytes: number;
  maxBufferedBytes: number;
  msgpack: boolean;
  closeTimeoutMs: number;
  allowedOrigins: '*' | string[] | undefined;
  duplicateIdPolicy: 'replace' | 'reject';
  handshakeTimeoutMs: number;
  sessionTtlMs: number;
  maxSessions: number;
  maxSessionsPerIp: number;
  /** Whether `maxSessionsPerIp` was set, and so counts every address (unset, only client addresses). */
  maxSessionsPerIpEveryAddress: boolean;
  maxSessionsPerPrincipal: number;
  maxDetachedSessionBytes: number;
  replay: Required<ReplayConfig>;
  topics: {
    maxPerConnection: number;
    maxNameLength: number;
    history: Required<ReplayConfig>;
    overrides: Array<{ prefix: string; history: Required<ReplayConfig> }>;
  };
  tokens: {
    secret: Uint8Array | undefined;
    keyId: string;
    previous: { keyId: string; secret: Uint8Array; acceptUntilMs: number } | undefined;
    ttlMs: number;
    maxTokenLength: number;
  };
  rateLimit: { messagesPerSecond: number; burst: number } | undefined;
  rateLimiters: {
    messagesPerPrincipal: RateLimiterLike | undefined;
    upgradesPerIp: RateLimiterLike | undefined;
  };
  shutdownRetryAfterMs: number;
  compression: Required<CompressionConfig>;
}
