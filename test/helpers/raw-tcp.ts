import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/** One frame to craft by hand. Anything RFC 6455 forbids may be set, to see how the server answers it. */
export interface RawFrame {
  opcode: number;
  payload?: Buffer | string;
  /** @default true */
  fin?: boolean;
  /** RSV1..3 as bits 4, 2, 1. @default 0 */
  rsv?: number;
  /** Client frames must be masked; `false` sends one unmasked. @default true */
  mask?: boolean;
  /** Write this 64-bit length instead of the real one (with the 127 marker). */
  length64?: bigint;
}

/** Encode a client frame (masked unless told otherwise) with the shortest length encoding. */
export function encodeFrame(frame: RawFrame): Buffer {
  const payload =
    typeof frame.payload === 'string' ? Buffer.from(frame.payload) : (frame.payload ?? Buffer.alloc(0));
  const masked = frame.mask ?? true;
  const b0 = ((frame.fin ?? true) ? 0x80 : 0) | ((frame.rsv ?? 0) << 4) | frame.opcode;
  const maskBit = masked ? 0x80 : 0;
  let head: Buffer;
  if (frame.length64 !== undefined) {
    head = Buffer.alloc(10);
    head[1] = maskBit | 127;
    head.writeBigUInt64BE(frame.length64, 2);
  } else if (payload.length < 126) {
    head = Buffer.alloc(2);
    head[1] = maskBit | payload.length;
  } else if (payload.length < 65_536) {
    head = Buffer.alloc(4);
    head[1] = maskBit | 126;
    head.writeUInt16BE(payload.length, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = maskBit | 127;
    head.writeBigUInt64BE(BigInt(payload.length), 2);
  }
  head[0] = b0;
  if (!masked) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i % 4]!;
  return Buffer.concat([head, key, body]);
}

/** A close frame payload: the code, then the reason bytes. */
export function closePayload(code: number, reason: Buffer | string = ''): Buffer {
  const head = Buffer.alloc(2);
  head.writeUInt16BE(code);
  return Buffer.concat([head, typeof reason === 'string' ? Buffer.from(reason) : reason]);
}

/**
 * A WebSocket client on a bare TCP socket: it does the HTTP upgrade by hand, sends crafted frames and parses the
 * server's (unmasked) frames, so a test can see exactly which close code the server sent.
 */
export class RawTcpClient {
  /** Text frames received, in order. */
  readonly texts: string[] = [];
  /** Every data frame received, in order, as it was on the wire (header included). */
  readonly frames: Buffer[] = [];
  /** The upgrade response's header lines (lower-cased names). */
  responseHeaders: Record<string, string> = {};
  /** The code of the server's close frame (1005 if it had none), or `undefined` before one arrived. */
  closeCode: number | undefined;
  /** Set when the TCP connection has ended or closed. */
  ended = false;
  private pending = Buffer.alloc(0);

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('close', () => (this.ended = true));
    socket.on('error', () => (this.ended = true));
  }

  /**
   * Connect to `port` and upgrade at `path`. `headers` are added to the request (e.g. `Sec-WebSocket-Protocol`,
   * `Sec-WebSocket-Extensions`). Rejects unless the server answers 101.
   */
  static upgrade(port: number, path: string, headers: Record<string, string> = {}): Promise<RawTcpClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      const lines = [
        `GET ${path} HTTP/1.1`,
        'Host: 127.0.0.1',
        'Connection: Upgrade',
        'Upgrade: websocket',
        'Sec-WebSocket-Version: 13',
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
        ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      ];
      socket.once('error', reject);
      socket.once('connect', () => socket.write(`${lines.join('\r\n')}\r\n\r\n`));
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        socket.off('error', reject);
        const status = head.subarray(0, end).toString().split('\r\n')[0]!;
        if (!/^HTTP\/1\.1 101 /.test(status)) {
          socket.destroy();
          reject(new Error(`upgrade refused: ${status}`));
          return;
        }
        const client = new RawTcpClient(socket);
        for (const line of head.subarray(0, end).toString().split('\r\n').slice(1)) {
          const at = line.indexOf(':');
          if (at > 0)
            client.responseHeaders[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
        }
        const rest = head.subarray(end + 4);
        if (rest.length > 0) client.onData(rest);
        resolve(client);
      };
      socket.on('data', onData);
    });
  }

  send(frame: RawFrame): void {
    this.socket.write(encodeFrame(frame));
  }

  sendText(text: string): void {
    this.send({ opcode: 1, payload: text });
  }

  /** Wait for the server's close frame (and the end of the TCP connection); resolves with its code. */
  async waitClose(timeoutMs = 5000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.closeCode === undefined || !this.ended) {
      if (this.ended && this.closeCode === undefined) throw new Error('TCP closed without a close frame');
      if (Date.now() > deadline) throw new Error(`timed out waiting for close (code ${this.closeCode})`);
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.closeCode;
  }

  /** Wait for a text frame matching `pred` (including ones already received). */
  async waitText(pred: (text: string) => boolean, timeoutMs = 5000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.texts.find(pred);
      if (hit !== undefined) return hit;
      if (this.ended || Date.now() > deadline) throw new Error('no matching text frame');
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  destroy(): void {
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    for (;;) {
      const p = this.pending;
      if (p.length < 2) return;
      let length = p[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (p.length < 4) return;
        length = p.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (p.length < 10) return;
        length = Number(p.readBigUInt64BE(2));
        offset = 10;
      }
      if (p.length < offset + length) return;
      const opcode = p[0]! & 0x0f;
      const data = p.subarray(offset, offset + length);
      this.pending = p.subarray(offset + length);
      if (opcode <= 2) this.frames.push(p.subarray(0, offset + length));
      if (opcode === 1) this.texts.push(data.toString());
      else if (opcode === 8) this.onClose(data.length >= 2 ? data.readUInt16BE(0) : 1005);
    }
  }

  /** Answer the close frame as a well-behaved client does, then end the TCP connection. */
  private onClose(code: number): void {
    this.closeCode ??= code;
    if (this.socket.writable) this.socket.end(encodeFrame({ opcode: 8, payload: closePayload(code) }));
  }
}
