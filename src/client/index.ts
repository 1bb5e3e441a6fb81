/**
 * `websocket-stabilizer/client`: the reconnecting, resuming client for browsers and Node.
 * No dependencies and no Node-only imports; on Node 20 pass `WebSocket` from `ws`.
 */
export { StabilizerClient, type ClientState } from './client.js';
export { ClientError } from './errors.js';
export type { ClientEvents, ClientOptions, CloseInfo } from './options.js';
export type { Listener } from './emitter.js';
export type { BinaryPayload } from './frames.js';
export type { WebSocketConstructor, WebSocketLike } from './socket.js';
export { CloseCode, ErrorCode, isRetryableCloseCode, type FreshReason } from '../protocol/index.js';
