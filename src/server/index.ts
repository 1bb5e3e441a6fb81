export { WebSocketConnectionManager } from './manager.js';
export type { ConnectOptions, ManagerHooks, ManagerStats } from './manager.js';
export type { SendOutcome } from './messaging.js';
export type { ClientInfo, ClientOpOptions } from './topics/client-ops.js';
export type { RequestContext, RequestHandler } from './session/requests.js';
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
export type { Logger } from './operations/logger.js';
export type { ManagerEvents, DisconnectReason, Listener } from './events.js';
export type { InboundSchemas, InvalidMessageEvent, InvalidMessageIssue } from './inbound/validation.js';
export type {
  BroadcastOptions,
  BroadcastResult,
  ClusterBroadcastReport,
  DeliveryFailure,
} from './topics/broadcast.js';
export type { ShutdownOptions, ShutdownStats } from './operations/shutdown.js';
export type { RateLimiterLike } from './inbound/shared-limits.js';
export type {
  AttachOptions,
  Authenticate,
  AuthResult,
  HelloAuth,
  UpgradeHandler,
} from './upgrade/upgrade.js';
export { handleFetchUpgrade, type FetchUpgrade, type FetchUpgradeOptions } from './upgrade/fetch-upgrade.js';
export { checkOrigin, type AllowedOrigins, type OriginVerdict, type OwnOrigin } from './upgrade/origin.js';
export type { TrustProxy } from './upgrade/proxy-trust.js';
export { StandardSocketAdapter, type StandardWebSocket } from './transport/standard-socket.js';
export type { AuthorizeResume, ResumeAuthorizationContext } from './session/resume.js';
export type { AuthorizeSubscribe, SubscribeAuthorizationContext } from './topics/membership.js';
export type { VerifiedToken } from './session/tokens.js';
export type {
  OpenTelemetryApi,
  TraceAttributeValue,
  TraceSpan,
  TraceTracer,
  TracingOptions,
} from './operations/tracing.js';
export { Payload, type BinaryPayload, type SendData } from '../frames/payload.js';
export { closeOnSignals, type SignalOptions } from './operations/signals.js';
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
export type { Connection, WriteOutcome } from './transport/connection.js';
export {
  createHealthHandler,
  type HealthHandler,
  type HealthOptions,
  type NotReadyReason,
  type ReadinessReport,
} from './operations/health.js';
