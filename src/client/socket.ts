import { ClientError } from './errors.js';
import { ErrorCode } from '../protocol/index.js';

/** An event-handler property. Bivariant, so that the DOM `WebSocket` and the `ws` package both fit. */
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'] | null;

/**
 * The part of a WebSocket the client uses. The browser's `WebSocket` and `ws`'s `WebSocket` both fit, and so
 * does any object with these members.
 */
export interface WebSocketLike {
  readonly readyState: number;
  /** The subprotocol the server selected (empty before `open`). */
  readonly protocol?: string;
  binaryType: string;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  /** `ws` only: destroys the socket at once, without a closing handshake. Used when the peer is dead. */
  terminate?(): void;
  onopen: Handler<unknown>;
  onmessage: Handler<{ data: unknown }>;
  onclose: Handler<{ code: number; reason: string }>;
  onerror: Handler<unknown>;
}

/**
 * A frame encoding plugged into the client (`ClientOptions.codec`), e.g. MessagePack. The client builds every frame
 * as JSON text (or a binary data frame, PROTOCOL.md §2) and hands it to `e` before writing; it hands every frame it
 * receives to `d` before decoding. A codec converts only on sockets that negotiated its subprotocol
 * (`ws.protocol`) and passes everything through on others, so a server without it still works.
 */
export interface ClientCodec {
  /** The subprotocols to offer, most preferred first; the last is `stabilizer.v1`. */
  p: string[];
  /** Encode an outgoing frame for `ws`. */
  e(frame: string | Uint8Array, ws: WebSocketLike): string | Uint8Array;
  /** Decode an incoming frame from `ws` into a message object (not checked yet), or `0` if it cannot. */
  d(data: unknown, ws: WebSocketLike): unknown;
}

/** A WebSocket class: `globalThis.WebSocket` in browsers, `WebSocket` from `ws` in Node. */
export type WebSocketConstructor = new (
  url: string,
  protocols?: string | string[],
  /** `ClientOptions.webSocketOptions` (e.g. `ws`'s `{ headers }`). */
  options?: object,
) => WebSocketLike;

/** The injected WebSocket class, else the global one. Throws `INVALID_CONFIG` when there is neither. */
export function resolveWebSocket(injected?: WebSocketConstructor): WebSocketConstructor {
  const WS = injected ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (!WS) {
    throw new ClientError(ErrorCode.InvalidConfig, 'no WebSocket: pass options.WebSocket (`ws` on Node 20)');
  }
  return WS;
}

/** Closes with `code` (0: none, terminate where possible). A code or reason the browser refuses: without. */
export function closeSocket(ws: WebSocketLike, code: number, reason: string): void {
  try {
    if (code) return ws.close(code, reason);
  } catch {
    // e.g. 1001 or a reason over 123 bytes in a browser
  }
  try {
    if (ws.terminate) ws.terminate();
    else ws.close();
  } catch {
    // closing already
  }
}
