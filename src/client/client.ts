import {
  CloseCode,
  decodeBinaryData,
  decodeServerMessage,
  ErrorCode,
  isDecodeFailure,
  isRetryableCloseCode,
  type DataMessage,
  type WelcomeMessage,
} from '../protocol/index.js';
import { backoffDelayMs } from './backoff.js';
import { Emitter } from './emitter.js';
import { watchEnvironment } from './environment.js';
import { ClientError } from './errors.js';
import { dataFrame, helloFrame, toBytes, type BinaryPayload } from './frames.js';
import * as liveness from './liveness.js';
import {
  DEFAULTS,
  type ClientEventInfo,
  type ClientEvents,
  type ClientOptions,
  type CloseInfo,
} from './options.js';
import { Outbox, type OutboxEntry } from './outbox.js';
import { closeSocket, resolveWebSocket, type WebSocketConstructor, type WebSocketLike } from './socket.js';
import * as topics from './topics.js';

/** `connecting` until the welcome, `open` after it, `reconnecting` while waiting to retry, `closed` for good. */
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed';

type Timer = ReturnType<typeof setTimeout> | undefined;

const noop = (): void => {};

/**
 * A WebSocket client that speaks `stabilizer.v1` (PROTOCOL.md): it reconnects with jittered backoff, resumes its
 * session, delivers reliable messages exactly once in both directions, queues while offline and notices dead
 * connections on the wall clock. It connects at once.
 *
 * `In` is the type of server payloads, `Out` of client payloads (declarations, not checked at run time). Bytes
 * can always be sent; declare `In` as `T | Uint8Array` if the server sends them. A client typed `<In, Out>`
 * mirrors a server's `WebSocketConnectionManager<Out, In>`.
 *
 * ```ts
 * const client = new StabilizerClient<ChatEvent, ChatCommand>('wss://example.com/ws');
 * client.on('message', (event, { topic }) => render(topic, event));
 * await client.subscribe('room:1'); // resolves when the server confirmed it
 * await client.send({ type: 'say', text: 'hi' }); // resolves when the server acked it
 * ```
 */
export class StabilizerClient<In = unknown, Out = unknown> extends Emitter<
  ClientEvents<In>,
  ClientEventInfo
> {
  private readonly o = { ...DEFAULTS };
  private readonly WS: WebSocketConstructor;
  private readonly outbox: Outbox;
  private ws?: WebSocketLike;
  private st: ClientState = 'connecting';
  private sid?: string;
  private token?: string;
  /** Highest server sequence received in order. */
  private lastSeq = 0;
  /** Reliable server messages received since the last ack. */
  private unacked = 0;
  /** Reconnects scheduled since the last welcome. */
  private attempt = 0;
  /** The server's `retryAfterMs` hint, added to the next delay. */
  private hintMs = 0;
  private readonly lv: liveness.Liveness = {
    r: 0,
    i: 0,
    p: 0,
    o: this.o,
    a: () => this.st === 'open',
    w: (f) => this.write(f),
    d: (info) => this.lost(info, true, 0),
  };
  private ackTimer: Timer;
  private retryTimer: Timer;
  private unwatch?: () => void;
  private readonly tp: topics.Topics = {
    p: new Map(),
    n: new Set(),
    s: new Map(),
    u: new Set(),
    w: (f) => this.write(f),
    e: (k, a) => this.emit(k, a as never),
    v: (r) => this.violation(r),
  };

  /**
   * @param url `ws:` or `wss:` URL of the server endpoint.
   * @throws ClientError `INVALID_CONFIG` when there is no WebSocket implementation.
   */
  constructor(
    readonly url: string,
    options: ClientOptions = {},
  ) {
    super();
    this.WS = resolveWebSocket(options.WebSocket);
    for (const k in options) {
      const v = options[k as keyof ClientOptions];
      if (v !== undefined) Object.assign(this.o, { [k]: v });
    }
    this.outbox = new Outbox(this.o.maxQueuedMessages, this.o.maxQueuedBytes);
    this.connect();
  }

  get state(): ClientState {
    return this.st;
  }

  /** Id of the current (or last) session, once welcomed. */
  get sessionId(): string | undefined {
    return this.sid;
  }

  /** Reliable messages waiting for an ack; see `maxQueuedMessages`. */
  get queuedMessages(): number {
    return this.outbox.q.length;
  }

  /** Bytes waiting for an ack; see `maxQueuedBytes`. */
  get queuedBytes(): number {
    return this.outbox.bytes;
  }

  /** The topics the client is in now (`$all` included once welcomed), in the order it joined them. */
  get topics(): string[] {
    return [...this.tp.p.keys()];
  }

  /**
   * Subscribes to `topic` (PROTOCOL.md §2.6). Resolves with the offset the client starts from, when the server
   * confirms (at once if the client is already in it); sent after the next welcome while not open. The
   * subscription lasts until `unsubscribe()` or a leave by the server: a resume keeps it and a fresh session
   * subscribes again by itself. Rejects with a {@link ClientError}:
   * - `INVALID_TOPIC` at once for a name that is empty, over 255 UTF-8 bytes, has control characters or starts
   *   with `$` (reserved);
   * - the server's refusal: `TOPIC_FORBIDDEN`, `INVALID_TOPIC`, `TOPIC_LIMIT` or `TOPICS_UNSUPPORTED`;
   * - `CLIENT_CLOSED` when the client is or becomes closed first.
   *
   * Ignoring the promise is safe: a rejection is never reported as unhandled.
   */
  subscribe(topic: string): Promise<number> {
    return topics.subscribe(this.tp, topic, this.st);
  }

  /**
   * Leaves `topic` (sent after the next welcome while not open). Its messages stop at once; `unsubscribed`
   * follows when the server confirms. A pending `subscribe()` still resolves, and the leave follows it. Does
   * nothing for a topic the client is not in or subscribing to, nor for the server's `$` topics.
   */
  unsubscribe(topic: string): void {
    topics.unsubscribe(this.tp, topic, this.st === 'open');
  }

  /**
   * Sends a reliable message: numbered, kept until the server acks it, resent after a resume, queued while
   * disconnected. Resolves when the server acked it. Rejects with a {@link ClientError}:
   * - `QUEUE_FULL` at once when the queue bounds are reached (the new message is refused, nothing else dropped);
   * - `MESSAGE_TOO_BIG` when the frame is over the server's `maxPayloadBytes` (at once once welcomed, else at the
   *   welcome): it would only get the connection closed with 1009, again after every reconnect;
   * - `SESSION_LOST` when the session was replaced before the ack and the message had been written;
   * - `CLIENT_CLOSED` when the client is or becomes closed before the ack;
   *
   * or with a `TypeError` when the payload is not JSON-serialisable. Ignoring the promise is safe: a rejection is
   * never reported as unhandled. Uint8Array / ArrayBuffer payloads go as binary frames.
   */
  send(payload: Out | BinaryPayload): Promise<void> {
    const p = new Promise<void>((ok, no) => {
      this.alive();
      if (this.st === 'closed') throw new ClientError(ErrorCode.ClientClosed, 'client is closed');
      const e = this.outbox.add(payload, ok, no);
      if (this.st === 'open') this.put(e);
    });
    p.catch(noop);
    return p;
  }

  /**
   * Sends a volatile message: now or never, no sequence, no ack, no queue. Returns whether it was written to an
   * open, welcomed socket. @throws TypeError when the payload is not JSON-serialisable.
   */
  sendVolatile(payload: Out | BinaryPayload): boolean {
    this.alive();
    return this.st === 'open' && this.write(dataFrame(payload));
  }

  /**
   * Drops the current socket (if any) and connects again at once, resuming the session. Also revives a client
   * that is `closed`.
   */
  reconnect(): void {
    // 1005, "no status": 1000 would say the session ended (PROTOCOL.md §5)
    if (this.ws) this.end({ code: 1005, reason: 'reconnect' }, true, 0);
    this.attempt = 0;
    this.connect();
  }

  /**
   * Closes for good: no more reconnects; unacked messages reject with `CLIENT_CLOSED`. Emits a last `close`.
   * @param code sent in the close frame; browsers accept 1000 and 3000–4999.
   */
  close(code: number = CloseCode.Normal, reason = ''): void {
    this.unwatch?.();
    this.unwatch = undefined;
    clearTimeout(this.retryTimer);
    if (this.st === 'closed') return;
    if (this.ackTimer) this.ack('ack');
    this.end({ code, reason }, false, code);
  }

  private connect(): void {
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.unwatch ??= watchEnvironment((now) => this.wake(now));
    this.st = 'connecting';
    liveness.heard(this.lv);
    const ws = (this.ws = new this.WS(this.url, this.o.codec.p));
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => {
      if (ws === this.ws) this.write(helloFrame(this.token, this.sid, this.lastSeq, this.tp.p));
    };
    ws.onmessage = (e) => {
      if (ws === this.ws) this.rx(e.data);
    };
    ws.onclose = (e) => {
      if (ws === this.ws) this.lost({ code: e.code, reason: e.reason }, isRetryableCloseCode(e.code));
    };
    // A close event always follows. (`ws` also throws on an 'error' event without a listener.)
    ws.onerror = noop;
    liveness.tick(this.lv);
  }

  private rx(data: unknown): void {
    liveness.heard(this.lv);
    data = this.o.codec.d(data, this.ws!);
    const bytes = toBytes(data);
    // Text is JSON; an object is a message a codec decoded; anything else fails as 'bad JSON'.
    const m = bytes ? decodeBinaryData(bytes) : decodeServerMessage(data);
    if (isDecodeFailure(m)) return this.violation(m.error);
    const open = this.st === 'open';
    if (m.t === 'welcome') return open ? this.violation('second welcome') : this.welcome(m);
    if (!open && m.t !== 'error' && m.t !== 'reconnect') return this.violation('frame before welcome');
    switch (m.t) {
      case 'd':
        return this.data(m);
      case 'skip':
        topics.step(this.tp, m.c, m.o);
        return;
      case 'sub':
        return m.o === undefined ? this.violation('sub without offset') : topics.joined(this.tp, m.c, m.o);
      case 'unsub':
        return topics.left(this.tp, m);
      case 'ack':
        return this.outbox.ack(m.s);
      case 'ping':
        return this.ack('pong');
      case 'pong':
        return;
      case 'reconnect':
        this.hintMs = m.retryAfterMs;
        return;
      case 'token':
        this.token = m.token;
        return;
      case 'error':
        return this.emit('error', new ClientError(m.code as ErrorCode, m.message));
      default:
        return this.violation(`unexpected ${(m as { t: string }).t}`);
    }
  }

  private welcome(m: WelcomeMessage): void {
    // decodeServerMessage checked that every number is a safe integer ≥ 0; a zero ping interval is still bad.
    if (!(m.pingIntervalMs > 0)) return this.violation('bad welcome');
    const resumed = m.resume === 'resumed';
    const sessionId = (this.sid = m.sessionId);
    this.st = 'open';
    this.token = m.token;
    this.lv.i = m.pingIntervalMs;
    this.lv.p = m.pongTimeoutMs;
    this.attempt = this.hintMs = 0;
    if (!resumed) this.lastSeq = 0;
    this.outbox.maxFrame = m.maxPayloadBytes ?? Infinity;
    this.outbox.welcome(m.lastClientSeq, !resumed);
    for (const e of this.outbox.q) this.put(e);
    // Confirms the welcome at once: until then the server may give the spent token back (PROTOCOL.md §3).
    this.ack('ack');
    liveness.tick(this.lv);
    const topicEvents = topics.welcome(this.tp, m.topics, resumed, m.reason);
    if (resumed) this.emit('resumed', { sessionId });
    else this.emit('fresh', { sessionId, reason: m.reason ?? 'new' });
    for (const f of topicEvents) f();
    this.emit('open', { sessionId, resumed });
  }

  private data(m: DataMessage): void {
    const { s, c, o } = m;
    if (c !== undefined) {
      if (!topics.step(this.tp, c, o)) return;
    } else if (s !== undefined) {
      if (s > this.lastSeq + 1) return this.violation(`sequence gap: ${s} after ${this.lastSeq}`);
      // A duplicate (s ≤ lastSeq) is acked again but not delivered.
      const fresh = s > this.lastSeq;
      if (fresh) this.lastSeq = s;
      if (++this.unacked >= this.o.ackEveryMessages) this.ack('ack');
      else this.ackTimer ??= setTimeout(() => this.ack('ack'), this.o.ackDelayMs);
      if (!fresh) return;
    }
    this.emit('message', m.p as In, { topic: c, offset: o, seq: s, reliable: (c ? o : s) !== undefined });
  }

  /** Sends a cumulative `ack`, or a `pong` (which acks too). */
  private ack(t: 'ack' | 'pong'): void {
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    this.unacked = 0;
    this.write(`{"t":"${t}","s":${this.lastSeq}}`);
  }

  private put(e: OutboxEntry): void {
    if (this.write(e.f)) e.w = true;
  }

  private write(data: string | Uint8Array): boolean {
    const ws = this.ws;
    if (ws?.readyState !== 1) return false;
    try {
      ws.send(this.o.codec.e(data, ws));
      return true;
    } catch {
      return false;
    }
  }

  /** Wall-clock liveness check for callers outside the timer (a throttled tab may not have run it). */
  private alive(): void {
    if (this.ws) liveness.check(this.lv);
  }

  /** The environment says timers may have slept (`reconnectNow` false) or the network is back (true). */
  private wake(reconnectNow: boolean): void {
    if (reconnectNow && this.st === 'reconnecting') this.reconnect();
    else if (this.ws) liveness.tick(this.lv);
  }

  private violation(reason: string): void {
    this.emit('error', new ClientError(ErrorCode.ProtocolViolation, reason));
    this.lost({ code: CloseCode.ProtocolViolation, reason }, true, CloseCode.ProtocolViolation);
  }

  /** The socket is gone or useless: end it, then schedule a reconnect if allowed. */
  private lost(info: CloseInfo, retryable: boolean, kill?: number): void {
    if (this.st === 'closed') return;
    this.end(info, retryable && this.attempt < this.o.maxAttempts && this.o.shouldReconnect(info), kill);
    // A `close` listener may have called close() or reconnect().
    if (this.st !== 'reconnecting' || this.ws || this.retryTimer) return;
    const { minDelayMs, maxDelayMs, random } = this.o;
    const delayMs = this.hintMs + backoffDelayMs(this.attempt++, minDelayMs, maxDelayMs, random);
    this.hintMs = 0;
    this.retryTimer = setTimeout(() => this.connect(), delayMs);
    this.emit('reconnecting', { attempt: this.attempt, delayMs });
  }

  /**
   * Detaches the socket and stops its timers; closes it with `kill` (a code, or 0 to terminate) unless the peer
   * did. Without `willReconnect` the client is closed for good. Emits `close`.
   */
  private end(info: CloseInfo, willReconnect: boolean, kill?: number): void {
    const ws = this.ws;
    this.ws = undefined;
    clearTimeout(this.lv.t);
    clearTimeout(this.ackTimer);
    this.ackTimer = undefined;
    this.unacked = 0;
    if (ws && kill !== undefined) closeSocket(ws, kill, info.reason);
    this.st = willReconnect ? 'reconnecting' : 'closed';
    if (!willReconnect) {
      const err = new ClientError(ErrorCode.ClientClosed, `client closed (${info.code})`);
      this.outbox.fail(err);
      topics.fail(this.tp, err);
    }
    this.emit('close', { ...info, willReconnect });
  }
}
