export { WebSocketConnectionManager } from './manager.js';
export type { ConnectOptions, ManagerHooks, ManagerStats } from './manager.js';
export type { SendOutcome } from './messaging.js';
export type { ClientInfo, ClientOpOptions } from './client-ops.js';
export type { RequestContext, RequestHandler } from './requests.js';
export {
  RequestErrorCode,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type AnyReplyOf,
  type AnyRequests,
  type AnyRequestTypes,
  type ReplyOf,
  type RequestOf,
  type RequestOptions,
  type RequestPair,
  type RequestsOf,
  type RequestTypes,
} from '../protocol/requests.js';
export { resolveConfig, presets } from './config.js';
export type * from './config-types.js';
export { StabilizerError, TokenError, ConfigError } from './errors.js';
export type { Logger } from './logger.js';
export type { ManagerEvents, DisconnectReason, Listener } from './events.js';
export type { InboundSchemas, InvalidMessageEvent, InvalidMessageIssue } from './validation.js';
export type {
  BroadcastOptions,
  BroadcastResult,
  ClusterBroadcastReport,
  DeliveryFailure,
} from './broadcast.js';
export type { ShutdownOptions, ShutdownStats } from './shutdown.js';
export type { RateLimiterLike } from './shared-limits.js';
export type { AttachOptions, Authenticate, AuthResult, HelloAuth, UpgradeHandler } from './upgrade.js';
export { handleFetchUpgrade, type FetchUpgrade, type FetchUpgradeOptions } from './fetch-upgrade.js';
export { checkOrigin, type AllowedOrigins, type OriginVerdict, type OwnOrigin } from './origin.js';
export type { TrustProxy } from './proxy-trust.js';
export { StandardSocketAdapter, type StandardWebSocket } from './standard-socket.js';
export type { AuthorizeResume, ResumeAuthorizationContext } from './resume.js';
export type { AuthorizeSubscribe, SubscribeAuthorizationContext } from './membership.js';
export type { VerifiedToken } from './tokens.js';
export type {
  OpenTelemetryApi,
  TraceAttributeValue,
  TraceSpan,
  TraceTracer,
  TracingOptions,
} from './tracing.js';
export { Payload, type BinaryPayload, type SendData } from '../frames/payload.js';
export { closeOnSignals, type SignalOptions } from './signals.js';
export { loadMsgpack } from '../frames/msgpack.js';
export { MemoryBackend, type MemoryBackendOptions } from '../backends/memory.js';
export type { SessionRecord, SessionLookup } from '../backends/types.js';
export type { StorageBackend, BackendHost } from './storage-backend.js';
export { ReplayBuffer, type ReplayEntry, type ReplayLimits } from '../backends/replay-buffer.js';
export {
  CloseCode,
  ErrorCode,
  SUBPROTOCOL,
  SUBPROTOCOL_MSGPACK,
  BROADCAST_TOPIC,
  isRetryableCloseCode,
  type FreshReason,
  type TopicFreshReason,
} from '../protocol/index.js';
export type { Connection, WriteOutcome } from './connection.js';
export {
  createHealthHandler,
  type HealthHandler,
  type HealthOptions,
  type NotReadyReason,
  type ReadinessReport,
} from './health.js';
