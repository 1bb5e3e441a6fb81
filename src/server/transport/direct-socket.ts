import type { WebSocket } from 'ws';
import type { FrameCompressor } from './compression.js';

/** `Sender#_state` of ws when it is neither compressing nor reading a Blob, i.e. it writes synchronously. */
export const SENDER_IDLE = 0;

/** The TCP socket under a `ws` WebSocket (a `net.Socket`, or any Duplex with cork/uncork). */
export interface RawSocket {
  readonly writableCorked: number;
  readonly destroyed?: boolean;
  readonly writable?: boolean;
  readonly writableEnded?: boolean;
  /** Bytes queued in the stream (corked or not yet taken by the kernel). */
  readonly writableLength: number;
  write(chunk: Buffer): boolean;
  cork(): void;
  uncork(): void;
}

/** The `ws` internals the direct write path relies on. Feature-detected on every write, never assumed. */
export interface WsInternals {
  _isServer?: boolean;
  _socket?: RawSocket | null;
  _sender?: { _state?: number; _firstFragment?: boolean; _bufferedBytes?: number } | null;
  _extensions?: Record<string, { params?: Record<string, unknown> } | undefined>;
}

/**
 * Whether the TCP socket under `ws` can no longer take a write although `ws` may still say OPEN: destroyed (by a
 * reset, an error or `destroy()`), or its write side ended. A write to it does not throw; it is silently lost.
 */
export function deadSocket(socket: WebSocket): boolean {
  const raw = (socket as unknown as WsInternals)._socket;
  return !!raw && (raw.destroyed === true || raw.writable === false || raw.writableEnded === true);
}

/**
 * A socket's settled direct-write facts, found once the socket is open: the TCP socket if this is a server-side
 * `ws` socket that frames may be written to directly, else `null`. A socket with permessage-deflate is written to
 * directly only if it negotiated `server_no_context_takeover` and a server window the compressor's frames fit (our
 * upgrade handler only accepts such offers; a socket from another `WebSocketServer` may have other settings and
 * then keeps going through `ws.send`, which compresses it).
 */
export function findDirectSocket(
  socket: WebSocket,
  compressor: FrameCompressor | undefined,
): RawSocket | null {
  const ws = socket as unknown as WsInternals;
  const extensions = ws._extensions;
  const raw = ws._socket;
  const deflate = extensions?.['permessage-deflate'];
  const params = deflate?.params;
  const windowBits = params?.['server_max_window_bits'];
  const shared =
    deflate === undefined ||
    (compressor !== undefined &&
      params?.['server_no_context_takeover'] === true &&
      (typeof windowBits === 'number' ? windowBits : 15) >= compressor.windowBits);
  return ws._isServer === true && extensions !== undefined && shared && raw && typeof raw.cork === 'function'
    ? raw
    : null;
}

/** Whether the socket negotiated permessage-deflate (with a direct socket: it gets the shared compressed frames). */
export function negotiatedDeflate(socket: WebSocket): boolean {
  return (socket as unknown as WsInternals)._extensions?.['permessage-deflate'] !== undefined;
}
