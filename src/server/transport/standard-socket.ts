import type { WebSocket } from 'ws';

/**
 * The standard (WHATWG) WebSocket that Fetch-style runtimes hand a server: `Deno.upgradeWebSocket`'s `socket`,
 * Cloudflare's `WebSocketPair` (after `accept()`), a browser-like object. Only these members are used.
 */
export interface StandardWebSocket {
  readonly readyState: number;
  readonly protocol: string;
  readonly bufferedAmount: number;
  binaryType: string;
  send(data: string | ArrayBuffer | ArrayBufferView): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (event: never) => void): void;
}

type Handler = (this: unknown, ...args: never[]) => void;

/**
 * Presents a {@link StandardWebSocket} as the part of a `ws` socket the core drives (`send`, `close`, `readyState`,
 * `bufferedAmount`, `on('message' | 'close' | 'error')`), so `manager.connect` takes it. What a standard socket
 * cannot do: `ping()` is a no-op (protocol clients are pinged with `{"t":"ping"}` frames anyway; a silent plain
 * client is dropped after `pingIntervalMs + pongTimeoutMs` unless it sends something or the app calls
 * `manager.handlePong`), `terminate()` starts a close without a code (no raw TCP socket to destroy), and
 * `pause()`/`resume()` do nothing (an async check backlog is bounded by closing instead: 64 pending checks are far
 * below any runtime's buffer). The direct write path and corking are ws internals, feature-detected and skipped.
 */
export class StandardSocketAdapter {
  private readonly handlers: Record<string, Array<{ fn: Handler; once: boolean }>> = {};

  constructor(private readonly socket: StandardWebSocket) {
    socket.binaryType = 'arraybuffer';
    socket.addEventListener('message', (event: MessageEvent) => {
      const data: unknown = event.data;
      if (typeof data === 'string') this.emit('message', Buffer.from(data, 'utf8'), false);
      else if (data instanceof ArrayBuffer) this.emit('message', Buffer.from(data), true);
      else if (ArrayBuffer.isView(data))
        this.emit('message', Buffer.from(data.buffer, data.byteOffset, data.byteLength), true);
    });
    socket.addEventListener('close', (event: CloseEvent) =>
      this.emit('close', event.code, Buffer.from(event.reason ?? '')),
    );
    socket.addEventListener('error', () => this.emit('error', new Error('websocket error')));
  }

  get readyState(): number {
    return this.socket.readyState;
  }

  get protocol(): string {
    return this.socket.protocol;
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  send(data: string | Buffer, options?: { binary?: boolean }): void {
    if (typeof data === 'string' && options?.binary !== true) return this.socket.send(data);
    this.socket.send(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  }

  close(code?: number, reason?: string): void {
    this.socket.close(code, reason);
  }

  terminate(): void {
    if (this.socket.readyState < 2) this.socket.close();
  }

  ping(): void {}
  pause(): void {}
  resume(): void {}

  on(name: string, fn: Handler): this {
    (this.handlers[name] ??= []).push({ fn, once: false });
    return this;
  }

  once(name: string, fn: Handler): this {
    (this.handlers[name] ??= []).push({ fn, once: true });
    return this;
  }

  removeListener(name: string, fn: Handler): this {
    const list = this.handlers[name];
    if (list) this.handlers[name] = list.filter((h) => h.fn !== fn);
    return this;
  }

  /** As the core's type: the members above are all of a `ws` socket it uses on an adapted socket. */
  asWs(): WebSocket {
    return this as unknown as WebSocket;
  }

  private emit(name: string, ...args: unknown[]): void {
    const list = this.handlers[name];
    if (!list) return;
    this.handlers[name] = list.filter((h) => !h.once);
    for (const h of list) (h.fn as (...a: unknown[]) => void).apply(this, args);
  }
}
