/**
 * `websocket-stabilizer/client`: the reconnecting, resuming client for browsers and Node.
 * No dependencies and no Node-only imports; on Node 20 pass `WebSocket` from `ws`.
 */
export { StabilizerClient, type ClientState } from './client.js';
export { ClientError } from './errors.js';
export type { ClientEventInfo, ClientEvents, ClientOptions, CloseInfo, MessageInfo } from './options.js';
export type { Listener } from './emitter.js';
export type { BinaryPayload } from './frames.js';
export type { ClientCodec, WebSocketConstructor, WebSocketLike } from './socket.js';
export {
  BROADCAST_TOPIC,
  CloseCode,
  ErrorCode,
  isRetryableCloseCode,
  type FreshReason,
  type TopicFreshReason,
} from '../protocol/index.js';
