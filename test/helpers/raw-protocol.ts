import { Packr, Unpackr } from 'msgpackr';
import { WebSocket } from 'ws';
import { SUBPROTOCOL, SUBPROTOCOL_MSGPACK, type WelcomeMessage } from '../../src/protocol/index.js';

/** Plain MessagePack, as the bundled codecs write it. */
const MSGPACK = { useRecords: false, variableMapSize: true, int64AsType: 'number' } as const;
export const packr = new Packr(MSGPACK);
export const unpackr = new Unpackr(MSGPACK);

/** The frame encoding a raw client speaks: `stabilizer.v1` (JSON text) or `stabilizer.v1.msgpack`. */
export type Encoding = 'json' | 'msgpack';

/**
 * A hand-driven stabilizer.v1 client on a raw ws socket, for black-box protocol tests; with `msgpack` it offers
 * `stabilizer.v1.msgpack` only and speaks MessagePack (binary frames it cannot decode are recorded as `raw`).
 */
export class RawProtocolClient {
  readonly frames: Array<Record<string, unknown>> = [];
  readonly data: Array<{ s?: number; c?: string; o?: number; p: unknown }> = [];
  closeInfo: { code: number; reason: string } | undefined;
  private waiters: Array<() => void> = [];

  /** Binary frames received: the raw bytes (JSON mode: binary data frames; MessagePack: every frame). */
  readonly binary: Buffer[] = [];
  /** Text frames received. */
  textFrames = 0;

  private constructor(
    readonly ws: WebSocket,
    readonly encoding: Encoding = 'json',
  ) {
    ws.on('message', (raw, isBinary) => {
      if (isBinary) this.binary.push(raw as Buffer);
      else this.textFrames++;
      if (isBinary !== (encoding === 'msgpack')) return;
      const msg = (isBinary ? unpackr.unpack(raw as Buffer) : JSON.parse(raw.toString())) as Record<
        string,
        unknown
      >;
      this.frames.push(msg);
      if (msg.t === 'd') {
        const d: { s?: number; c?: string; o?: number; p: unknown } = { p: msg.p };
        if (msg.s !== undefined) d.s = msg.s as number;
        if (msg.c !== undefined) d.c = msg.c as string;
        if (msg.o !== undefined) d.o = msg.o as number;
        this.data.push(d);
      }
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closeInfo = { code, reason: reason.toString() };
      this.wake();
    });
    ws.on('error', () => {});
  }

  static open(url: string, encoding: Encoding = 'json'): Promise<RawProtocolClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, encoding === 'msgpack' ? SUBPROTOCOL_MSGPACK : SUBPROTOCOL);
      ws.once('open', () => resolve(new RawProtocolClient(ws, encoding)));
      ws.once('error', reject);
    });
  }

  /** Open, send hello, wait for the welcome and (unless `confirm` is false) confirm it as the real client does. */
  static async handshake(
    url: string,
    hello: {
      token?: string;
      lastSeq?: number;
      sessionId?: string;
      topics?: Record<string, number>;
      traceparent?: string;
      tracestate?: string;
    } = {},
    confirm = true,
    encoding: Encoding = 'json',
  ): Promise<{ client: RawProtocolClient; welcome: WelcomeMessage }> {
    const client = await RawProtocolClient.open(url, encoding);
    client.send({ t: 'hello', v: 1, ...hello });
    const welcome = (await client.waitFor((f) => f.t === 'welcome')) as unknown as WelcomeMessage;
    if (confirm) {
      // Confirm the welcome like the real client does, and wait for a round trip so the server has processed it.
      client.send({ t: 'ack', s: welcome.resume === 'resumed' ? (hello.lastSeq ?? 0) : 0 });
      client.send({ t: 'ping' });
      await client.waitFor((f) => f.t === 'pong');
      client.frames.splice(
        client.frames.findIndex((f) => f.t === 'pong'),
        1,
      );
    }
    return { client, welcome };
  }

  send(msg: object): void {
    this.ws.send(this.encoding === 'msgpack' ? packr.pack(msg) : JSON.stringify(msg));
  }

  /** Wait for the first frame matching `pred` (including ones already received). */
  async waitFor(
    pred: (f: Record<string, unknown>) => boolean,
    timeoutMs = 5000,
  ): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.frames.find(pred);
      if (hit) return hit;
      if (this.closeInfo) throw new Error(`closed ${this.closeInfo.code} while waiting`);
      if (Date.now() > deadline) throw new Error('timed out waiting for a frame');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }

  async waitForData(count: number, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.data.length < count) {
      if (Date.now() > deadline) throw new Error(`timed out: ${this.data.length}/${count} data messages`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  async waitClose(timeoutMs = 5000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closeInfo) {
      if (Date.now() > deadline) throw new Error('timed out waiting for close');
      await new Promise((r) => setTimeout(r, 5));
    }
    return this.closeInfo;
  }

  /** Highest in-order data sequence received. */
  get lastSeq(): number {
    let last = 0;
    for (const d of this.data) if (d.s === last + 1) last = d.s;
    return last;
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
