import type { WelcomeMessage } from '../../src/protocol/index.js';

type Handler<E> = ((event: E) => void) | null;

/**
 * A scripted WebSocket for unit tests. The test plays the server: `open()`, `receive()`, `welcome()`,
 * `serverClose()`. Every instance is recorded in `FakeWebSocket.instances`.
 */
export class FakeWebSocket {
  static instances: FakeWebSocket[] = [];

  /** The newest socket. */
  static get last(): FakeWebSocket {
    const ws = FakeWebSocket.instances.at(-1);
    if (!ws) throw new Error('no socket created');
    return ws;
  }

  readyState = 0;
  binaryType = 'blob';
  /** Frames the client wrote, in order. */
  sent: (string | Uint8Array)[] = [];
  /** Arguments of the client's `close()`, or `'terminate'`. */
  closedBy?: { code?: number; reason?: string } | 'terminate';
  onopen: Handler<unknown> = null;
  onmessage: Handler<{ data: unknown }> = null;
  onclose: Handler<{ code: number; reason: string }> = null;
  onerror: Handler<unknown> = null;

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
    /** The client's `webSocketOptions`. */
    readonly options?: object,
  ) {
    FakeWebSocket.instances.push(this);
  }

  send(data: string | Uint8Array): void {
    if (this.readyState !== 1) throw new Error('InvalidStateError');
    this.sent.push(data);
  }

  close(code?: number, reason?: string): void {
    this.closedBy = { code, reason };
    this.readyState = 3;
    // Like a browser, report the close; the client must ignore sockets it already dropped.
    this.onclose?.({ code: code ?? 1005, reason: reason ?? '' });
  }

  terminate(): void {
    this.closedBy = 'terminate';
    this.readyState = 3;
    this.onclose?.({ code: 1006, reason: '' });
  }

  // --- the test plays the server ---

  open(): this {
    this.readyState = 1;
    this.onopen?.({});
    return this;
  }

  receive(message: object | string | Uint8Array | ArrayBuffer): this {
    const data =
      typeof message === 'string' || message instanceof Uint8Array || message instanceof ArrayBuffer
        ? message
        : JSON.stringify(message);
    this.onmessage?.({ data });
    return this;
  }

  /** Opens (if needed) and sends a welcome; defaults describe a fresh session `s1`. */
  welcome(fields: Partial<WelcomeMessage> = {}): this {
    if (this.readyState === 0) this.open();
    const welcome = {
      t: 'welcome',
      sessionId: 's1',
      token: 'tok1',
      resume: 'fresh',
      reason: 'new',
      lastSeq: 0,
      lastClientSeq: 0,
      pingIntervalMs: 25_000,
      pongTimeoutMs: 10_000,
      ...fields,
    };
    const before = this.sent.length;
    this.receive(welcome);
    // The client confirms every welcome at once with an ack of its lastSeq (PROTOCOL.md §3, item 4). Check that
    // here for every welcome, then drop that frame so tests see only what follows.
    const confirm = this.sent.findIndex(
      (f, i) => i >= before && typeof f === 'string' && f.startsWith('{"t":"ack"'),
    );
    if (this.readyState === 1 && confirm < 0)
      throw new Error('the client did not confirm the welcome with an ack');
    if (confirm >= 0) this.sent.splice(confirm, 1);
    return this;
  }

  /** Sends reliable data messages with these sequence numbers; payload `m<seq>`. */
  data(...seqs: number[]): this {
    for (const s of seqs) this.receive({ t: 'd', s, p: `m${s}` });
    return this;
  }

  serverClose(code: number, reason = ''): this {
    this.readyState = 3;
    this.onclose?.({ code, reason });
    return this;
  }

  /** The text frames the client wrote, parsed. */
  get frames(): Record<string, unknown>[] {
    return this.sent
      .filter((f) => typeof f === 'string')
      .map((f) => JSON.parse(f) as Record<string, unknown>);
  }

  /** Text frames of one type. */
  framesOf(t: string): Record<string, unknown>[] {
    return this.frames.filter((f) => f.t === t);
  }
}
