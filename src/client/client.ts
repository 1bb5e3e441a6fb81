import {
  AUTH_SUBPROTOCOL,
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
import type { ClientState } from './options.js';

export type { ClientState };

type Timer = ReturnType<typeof setTimeout> | undefined;

const noop = (): void => {};
/** 4004 refusals in a row of the same token after which the client gives the session up (PROTOCOL.md §3). */
const STALE_REFUSALS = 2;

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
  private readonly _o = { ...DEFAULTS };
  private readonly _WS: WebSocketConstructor;
  private readonly _outbox: Outbox;
  private _ws?: WebSocketLike;
  private _st: ClientState = 'connecting';
  private _sid?: string;
  private _token?: string;
  /** Highest server sequence received in order. */
  private _lastSeq = 0;
  /** Reliable server messages received since the last ack. */
  private _unacked = 0;
  /** Reconnects scheduled since the last welcome. */
  private _attempt = 0;
  /** The server's `retryAfterMs` hint, added to the next delay. */
  private _hintMs = 0;
  /** Closes with 4505 (credentials expired) since the last welcome: the first makes `auth()` refresh. */
  private _expired = 0;
  /**
   * Closes with 4004 (stale hello) since the last welcome. The second means the server holds our newest token as
   * used (its welcome was lost, and the nonce was never given back): the token is dropped and the next welcome is a
   * fresh session, reported with reason `token-replayed` (PROTOCOL.md §3). Never a loop of refusals.
   */
  private _stale = 0;
  /** The page is hidden (browsers): the server is told, so that it waits longer for a throttled tab. */
  private _hidden = false;
  private readonly _lv: liveness.Liveness = {
    r: 0,
    i: 0,
    p: 0,
    o: this._o,
    a: () => this._st === 'open',
    w: (f) => this._write(f),
    d: (info) => this._lost(info, true, 0),
  };
  private _ackTimer: Timer;
  private _retryTimer: Timer;
  private _unwatch?: () => void;
  private readonly _tp: topics.Topics = {
    p: new Map(),
    n: new Set(),
    s: new Map(),
    u: new Set(),
    w: (f) => this._write(f),
    e: (k, a) => this._emit(k, a as never),
    v: (r) => this._violation(r),
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
    this._WS = resolveWebSocket(options.WebSocket);
    for (const k in options) {
      const v = options[k as keyof ClientOptions];
      if (v !== undefined) Object.assign(this._o, { [k]: v });
    }
    this._outbox = new Outbox(this._o.maxQueuedMessages, this._o.maxQueuedBytes);
    this._connect();
  }

  get state(): ClientState {
    return this._st;
  }

  /** Id of the current (or last) session, once welcomed. */
  get sessionId(): string | undefined {
    return this._sid;
  }

  /** Reliable messages waiting for an ack; see `maxQueuedMessages`. */
  get queuedMessages(): number {
    return this._outbox._q.length;
  }

  /** Bytes waiting for an ack; see `maxQueuedBytes`. */
  get queuedBytes(): number {
    return this._outbox._bytes;
  }

  /** The topics the client is in now (`$all` included once welcomed), in the order it joined them. */
  get topics(): string[] {
    return [...this._tp.p.keys()];
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
    return topics.subscribe(this._tp, topic, this._st);
  }

  /**
   * Leaves `topic` (sent after the next welcome while not open). Its messages stop at once; `unsubscribed`
   * follows when the server confirms. A pending `subscribe()` still resolves, and the leave follows it. Does
   * nothing for a topic the client is not in or subscribing to, nor for the server's `$` topics.
   */
  unsubscribe(topic: string): void {
    topics.unsubscribe(this._tp, topic, this._st === 'open');
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
  send(payload: Out | BinaryPayload): Promise<void>;
  // Not in the public signature: `fields` are the request fields of `websocket-stabilizer/client/request`.
  send(payload: Out | BinaryPayload, fields?: string): Promise<void> {
    const p = new Promise<void>((ok, no) => {
      this._alive();
      if (this._st === 'closed') throw new ClientError(ErrorCode.ClientClosed, 'client is closed');
      const e = this._outbox._add(payload, ok, no, fields);
      if (this._st === 'open') this._put(e);
    });
    p.catch(noop);
    return p;
  }

  /**
   * Sends a volatile message: now or never, no sequence, no ack, no queue. Returns whether it was written to an
   * open, welcomed socket. @throws TypeError when the payload is not JSON-serialisable.
   */
  sendVolatile(payload: Out | BinaryPayload): boolean {
    this._alive();
    return this._st === 'open' && this._write(dataFrame(payload));
  }

  /**
   * Drops the current socket (if any) and connects again at once, resuming the session. Also revives a client
   * that is `closed`.
   */
  reconnect(): void {
    // 1005, "no status": 1000 would say the session ended (PROTOCOL.md §5)
    if (this._ws) this._end({ code: 1005, reason: 'reconnect' }, true, 0);
    this._attempt = 0;
    this._connect();
  }

  /**
   * Closes for good: no more reconnects; unacked messages reject with `CLIENT_CLOSED`. Emits a last `close`.
   * @param code sent in the close frame; browsers accept 1000 and 3000–4999.
   */
  close(code: number = CloseCode.Normal, reason = ''): void {
    this._unwatch?.();
    this._unwatch = undefined;
    clearTimeout(this._retryTimer);
    if (this._st === 'closed') return;
    if (this._ackTimer) this._ack('ack');
    this._end({ code, reason }, false, code);
  }

  private _connect(): void {
    clearTimeout(this._retryTimer);
    this._retryTimer = undefined;
    if (!this._unwatch) {
      this._unwatch = watchEnvironment(
        (now) => this._wake(now),
        (hidden) => this._visibility(hidden),
      );
    }
    this._st = 'connecting';
    liveness.heard(this._lv);
    const { auth, webSocketOptions, codec } = this._o;
    const ws = (this._ws = new this._WS(
      this.url,
      auth === undefined ? codec.p : codec.p.concat(AUTH_SUBPROTOCOL),
      webSocketOptions,
    ));
    ws.binaryType = 'arraybuffer';
    const hello = (credentials?: unknown) => {
      if (ws === this._ws)
        this._write(
          helloFrame(this._token, this._token && this._sid, this._lastSeq, this._tp.p, credentials),
        );
    };
    ws.onopen = () => {
      if (ws !== this._ws) return;
      if (typeof auth !== 'function') return hello(auth);
      // Called on every connect. A throw or rejection fails this attempt: the socket is closed (1005), and retried.
      new Promise((ok) => ok(auth({ expired: !!this._expired }))).then(hello, () => ws.close());
    };
    ws.onmessage = (e) => {
      if (ws === this._ws) this._rx(e.data);
    };
    ws.onclose = ({ code, reason }) => {
      if (ws !== this._ws) return;
      const info = { code, reason };
      // Credentials expired: the first time since the last welcome, reconnect and let auth() refresh them.
      if (code === CloseCode.CredentialsExpired && !this._expired++) return this._lost(info, true);
      if (code === CloseCode.StaleHello && ++this._stale >= STALE_REFUSALS) this._token = undefined;
      // 4503 Forbidden, 4504 Unauthorized, 4505 CredentialsExpired (again): terminal, reported.
      if (code > 4502 && code < 4506) this._emit('unauthorized', info);
      this._lost(info, isRetryableCloseCode(code));
    };
    // A close event always follows. (`ws` also throws on an 'error' event without a listener.)
    ws.onerror = noop;
    liveness.tick(this._lv);
  }

  private _rx(data: unknown): void {
    liveness.heard(this._lv);
    data = this._o.codec.d(data, this._ws!);
    const bytes = toBytes(data);
    // Text is JSON; an object is a message a codec decoded; anything else fails as 'bad JSON'.
    const m = bytes ? decodeBinaryData(bytes) : decodeServerMessage(data);
    if (isDecodeFailure(m)) return this._violation(m.error);
    const open = this._st === 'open';
    if (m.t === 'welcome') return open ? this._violation('second welcome') : this._welcome(m);
    if (!open && m.t !== 'error' && m.t !== 'reconnect') return this._violation('frame before welcome');
    switch (m.t) {
      case 'd':
        return this._data(m);
      case 'skip':
        topics.step(this._tp, m.c, m.o);
        return;
      case 'sub':
        return m.o === undefined ? this._violation('sub without offset') : topics.joined(this._tp, m.c, m.o);
      case 'unsub':
        return topics.left(this._tp, m);
      case 'ack':
        return this._outbox._ack(m.s);
      case 'ping':
        return this._ack('pong');
      case 'pong':
        return;
      case 'reconnect':
        this._hintMs = m.retryAfterMs;
        return;
      case 'token':
        this._token = m.token;
        return;
      case 'error':
        return this._emit('error', new ClientError(m.code as ErrorCode, m.message));
      default:
        return this._violation(`unexpected ${(m as { t: string }).t}`);
    }
  }

  private _welcome(m: WelcomeMessage): void {
    // The decoder checked every number is a safe integer ≥ 0; a heartbeat needs an interval above 0.
    if (!m.pingIntervalMs) return this._violation('bad welcome');
    const resumed = m.resume === 'resumed';
    // Our token was dropped after refusals (see `_stale`): the server saw a first hello, the app hears why.
    const reason = !resumed && this._stale >= STALE_REFUSALS ? 'token-replayed' : m.reason;
    const sessionId = (this._sid = m.sessionId);
    this._st = 'open';
    this._token = m.token;
    this._lv.i = m.pingIntervalMs;
    this._lv.p = m.pongTimeoutMs;
    this._attempt = this._hintMs = this._expired = this._stale = 0;
    if (!resumed) this._lastSeq = 0;
    this._outbox._maxFrame = m.maxPayloadBytes ?? Infinity;
    this._outbox._welcome(m.lastClientSeq, !resumed);
    for (const e of this._outbox._q) this._put(e);
    // Confirms the welcome at once: until then the server may give the spent token back (PROTOCOL.md §3).
    this._ack('ack');
    if (this._hidden) this._visibility(true);
    liveness.tick(this._lv);
    const topicEvents = topics.welcome(this._tp, m.topics, resumed, reason);
    if (resumed) this._emit('resumed', { sessionId });
    else this._emit('fresh', { sessionId, reason: reason ?? 'new' });
    for (const f of topicEvents) f();
    this._emit('open', { sessionId, resumed });
  }

  private _data(m: DataMessage): void {
    const { s, c, o } = m;
    if (c !== undefined) {
      if (!topics.step(this._tp, c, o)) return;
    } else if (s !== undefined) {
      if (s > this._lastSeq + 1) return this._violation(`sequence gap: ${s} after ${this._lastSeq}`);
      // A duplicate (s ≤ lastSeq) is acked again but not delivered.
      const fresh = s > this._lastSeq;
      if (fresh) this._lastSeq = s;
      if (++this._unacked >= this._o.ackEveryMessages) this._ack('ack');
      else if (!this._ackTimer) this._ackTimer = setTimeout(() => this._ack('ack'), this._o.ackDelayMs);
      if (!fresh) return;
    }
    // Requests and replies (PROTOCOL.md §2.8) go to `websocket-stabilizer/client/request`, not to `message`.
    if (m.q || m.r) return this._emit('rpc' as never, m as never);
    this._emit('message', m.p as In, { topic: c, offset: o, seq: s, reliable: (c ? o : s) !== undefined });
  }

  /** Sends a cumulative `ack`, or a `pong` (which acks too). */
  private _ack(t: 'ack' | 'pong'): void {
    clearTimeout(this._ackTimer);
    this._ackTimer = undefined;
    this._unacked = 0;
    this._write(`{"t":"${t}","s":${this._lastSeq}}`);
  }

  private _put(e: OutboxEntry): void {
    if (this._write(e.f)) e.w = true;
  }

  private _write(data: string | Uint8Array): boolean {
    const ws = this._ws;
    if (ws?.readyState !== 1) return false;
    try {
      ws.send(this._o.codec.e(data, ws));
      return true;
    } catch {
      return false;
    }
  }

  /** Wall-clock liveness check for callers outside the timer (a throttled tab may not have run it). */
  private _alive(): void {
    if (this._ws) liveness.check(this._lv);
  }

  /** The environment says timers may have slept (`reconnectNow` false) or the network is back (true). */
  private _wake(reconnectNow: boolean): void {
    if (reconnectNow && this._st === 'reconnecting') this.reconnect();
    else if (this._ws) liveness.tick(this._lv);
  }

  /** The page was hidden or shown: tell the server (PROTOCOL.md §2.5.1); shown again, check liveness at once. */
  private _visibility(hidden: boolean): void {
    this._hidden = hidden;
    if (this._st === 'open') this._write(`{"t":"vis","hidden":${hidden}}`);
    if (!hidden) this._wake(false);
  }

  private _violation(reason: string): void {
    this._emit('error', new ClientError(ErrorCode.ProtocolViolation, reason));
    this._lost({ code: CloseCode.ProtocolViolation, reason }, true, CloseCode.ProtocolViolation);
  }

  /** The socket is gone or useless: end it, then schedule a reconnect if allowed. */
  private _lost(info: CloseInfo, retryable: boolean, kill?: number): void {
    if (this._st === 'closed') return;
    this._end(info, retryable && this._attempt < this._o.maxAttempts && this._o.shouldReconnect(info), kill);
    // A `close` listener may have called close() or reconnect().
    if (this._st !== 'reconnecting' || this._ws || this._retryTimer) return;
    const { minDelayMs, maxDelayMs, random } = this._o;
    const delayMs = this._hintMs + backoffDelayMs(this._attempt++, minDelayMs, maxDelayMs, random);
    this._hintMs = 0;
    this._retryTimer = setTimeout(() => this._connect(), delayMs);
    this._emit('reconnecting', { attempt: this._attempt, delayMs });
  }

  /**
   * Detaches the socket and stops its timers; closes it with `kill` (a code, or 0 to terminate) unless the peer
   * did. Without `willReconnect` the client is closed for good. Emits `close`.
   */
  private _end(info: CloseInfo, willReconnect: boolean, kill?: number): void {
    const ws = this._ws;
    this._ws = undefined;
    clearTimeout(this._lv.t);
    clearTimeout(this._ackTimer);
    this._ackTimer = undefined;
    this._unacked = 0;
    if (ws && kill !== undefined) closeSocket(ws, kill, info.reason);
    this._st = willReconnect ? 'reconnecting' : 'closed';
    if (!willReconnect) {
      const err = new ClientError(ErrorCode.ClientClosed, `client closed (${info.code})`);
      this._outbox._fail(err);
      topics.fail(this._tp, err);
    }
    this._emit('close', { ...info, willReconnect });
  }
}
