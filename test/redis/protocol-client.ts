import { WebSocket } from 'ws';

/** One `welcome` the client got, with what it had before it. */
export interface WelcomeRecord {
  url: string;
  resume: 'resumed' | 'fresh';
  reason?: string;
  sessionId: string;
  lastSeq: number;
  lastClientSeq: number;
}

export interface ProtocolClientOptions {
  /** Picks the URL of the next (re)connection. */
  nextUrl: (attempt: number) => string;
  /** Send an ack every this many reliable messages (and on every ping). @default 8 */
  ackEvery?: number;
  /** Reconnect on retryable closes and failed connects. @default true */
  reconnect?: boolean;
}

/**
 * A raw `stabilizer.v1` client for cluster tests (the reconnecting client library is tested on its own): it speaks
 * hello/welcome/d/ack/ping per PROTOCOL.md, resumes with its token and `lastSeq`, and records every anomaly: a
 * duplicate or gap in server sequences, a fresh session, a close code.
 */
export class ProtocolClient {
  sessionId: string | undefined;
  token: string | undefined;
  lastSeq = 0;
  /** Per topic: the highest offset received in order (a broadcast is topic `$all`). Sent in every `hello`. */
  readonly topics: Record<string, number> = {};
  /** Every topic outcome of every welcome, in order. */
  readonly topicOutcomes: Array<{ c: string; o: number; resume: string; reason?: string }> = [];
  /** Reliable payloads in sequence order, per session (a fresh session starts a new array). */
  readonly received: unknown[][] = [[]];
  readonly volatile: unknown[] = [];
  readonly welcomes: WelcomeRecord[] = [];
  readonly closes: number[] = [];
  /** Protocol anomalies seen by the client: must stay empty. */
  readonly anomalies: string[] = [];
  /** Client → server reliable messages not yet acked. */
  readonly outbox = new Map<number, unknown>();
  clientSeq = 0;
  lastAckedClientSeq = 0;
  ws: WebSocket | undefined;
  private unacked = 0;
  private stopped = false;
  private attempts = 0;
  private readonly ackEvery: number;

  constructor(private readonly options: ProtocolClientOptions) {
    this.ackEvery = options.ackEvery ?? 8;
  }

  /** Every reliable payload received across sessions. */
  get all(): unknown[] {
    return this.received.flat();
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN && this.welcomes.length > 0;
  }

  /** Connect (or resume) and resolve on the welcome. */
  connect(): Promise<WelcomeRecord> {
    const url = this.options.nextUrl(this.attempts++);
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, 'stabilizer.v1');
      this.ws = ws;
      let welcomed = false;
      ws.on('open', () => {
        const hello: Record<string, unknown> = { t: 'hello', v: 1, lastSeq: this.lastSeq };
        if (Object.keys(this.topics).length > 0) hello.topics = { ...this.topics };
        if (this.token) Object.assign(hello, { token: this.token, sessionId: this.sessionId });
        ws.send(JSON.stringify(hello));
      });
      ws.on('message', (data, isBinary) => {
        if (isBinary) return void this.anomalies.push('unexpected binary frame');
        const msg = JSON.parse(data.toString()) as Record<string, unknown>;
        if (msg.t === 'welcome') {
          welcomed = true;
          resolve(this.onWelcome(url, msg));
          return;
        }
        this.onFrame(ws, msg);
      });
      ws.on('error', () => {});
      ws.on('close', (code) => {
        this.closes.push(code);
        if (this.ws === ws) this.ws = undefined;
        if (!welcomed) reject(new Error(`closed before welcome: ${code}`));
        if (welcomed) this.scheduleReconnect(code);
      });
    });
  }

  /** Keep trying until a welcome arrives (nodes may be dead or restarting). */
  async connectWithRetry(deadlineMs = 15_000): Promise<WelcomeRecord> {
    const until = Date.now() + deadlineMs;
    for (;;) {
      try {
        return await this.connect();
      } catch (err) {
        if (Date.now() > until || this.stopped) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /** Send a reliable message to the server. */
  send(p: unknown): number {
    const s = ++this.clientSeq;
    this.outbox.set(s, p);
    if (this.connected) this.ws!.send(JSON.stringify({ t: 'd', s, p }));
    return s;
  }

  /** Close without reconnecting. */
  stop(): void {
    this.stopped = true;
    this.ws?.terminate();
  }

  /** Drop the TCP connection (a network failure); reconnects if enabled. */
  drop(): void {
    this.ws?.terminate();
  }

  private onWelcome(url: string, msg: Record<string, unknown>): WelcomeRecord {
    const w: WelcomeRecord = {
      url,
      resume: msg.resume as 'resumed' | 'fresh',
      reason: msg.reason as string | undefined,
      sessionId: msg.sessionId as string,
      lastSeq: msg.lastSeq as number,
      lastClientSeq: msg.lastClientSeq as number,
    };
    const hadSession = this.sessionId !== undefined;
    this.welcomes.push(w);
    const states = (msg.topics ?? []) as Array<{ c: string; o: number; resume: string; reason?: string }>;
    if (w.resume === 'fresh') for (const k of Object.keys(this.topics)) delete this.topics[k];
    // A topic the session left while the client was away is missing from the list (PROTOCOL.md §3).
    else
      for (const k of Object.keys(this.topics)) if (!states.some((st) => st.c === k)) delete this.topics[k];
    for (const st of states) {
      this.topicOutcomes.push(st);
      if (st.resume === 'fresh') this.topics[st.c] = st.o;
      else if (st.o !== (this.topics[st.c] ?? st.o))
        this.anomalies.push(`topic ${st.c} resumed from ${st.o}, client at ${this.topics[st.c]}`);
      else this.topics[st.c] = st.o;
    }
    this.token = msg.token as string;
    this.sessionId = w.sessionId;
    if (w.resume === 'fresh') {
      if (hadSession) this.received.push([]);
      this.lastSeq = 0;
      // Messages of the old session are lost (SESSION_LOST for the app); the rest is renumbered from 1.
      const pending = [...this.outbox.values()];
      this.outbox.clear();
      this.clientSeq = 0;
      this.lastAckedClientSeq = 0;
      for (const p of pending) this.send(p);
    } else {
      if (w.lastSeq < this.lastSeq)
        this.anomalies.push(`welcome lastSeq ${w.lastSeq} < client ${this.lastSeq}`);
      for (const s of [...this.outbox.keys()]) if (s <= w.lastClientSeq) this.outbox.delete(s);
      this.lastAckedClientSeq = Math.max(this.lastAckedClientSeq, w.lastClientSeq);
      for (const [s, p] of this.outbox) this.ws!.send(JSON.stringify({ t: 'd', s, p }));
    }
    return w;
  }

  private onFrame(ws: WebSocket, msg: Record<string, unknown>): void {
    switch (msg.t) {
      case 'd': {
        if (typeof msg.c === 'string') return this.onTopicData(msg.c, msg.o as number | undefined, msg.p);
        if (msg.s === undefined) return void this.volatile.push(msg.p);
        const s = msg.s as number;
        if (s <= this.lastSeq) return void this.anomalies.push(`duplicate seq ${s} (have ${this.lastSeq})`);
        if (s !== this.lastSeq + 1) {
          this.anomalies.push(`gap: seq ${s} after ${this.lastSeq}`);
          return void ws.terminate();
        }
        this.lastSeq = s;
        this.received[this.received.length - 1]!.push(msg.p);
        if (++this.unacked >= this.ackEvery) this.ack(ws);
        return;
      }
      case 'ping':
        this.unacked = 0;
        return void ws.send(JSON.stringify({ t: 'pong', s: this.lastSeq }));
      case 'ack': {
        const s = msg.s as number;
        for (const k of [...this.outbox.keys()]) if (k <= s) this.outbox.delete(k);
        this.lastAckedClientSeq = Math.max(this.lastAckedClientSeq, s);
        return;
      }
      case 'token':
        this.token = msg.token as string;
        return;
      case 'skip':
        return this.onTopicData(msg.c as string, msg.o as number, undefined, true);
      case 'sub':
        if (typeof msg.o === 'number' && this.topics[msg.c as string] === undefined)
          this.topics[msg.c as string] = msg.o;
        return;
      case 'unsub':
        delete this.topics[msg.c as string];
        return;
      case 'reconnect':
      case 'error':
        return;
      default:
        this.anomalies.push(`unexpected frame ${String(msg.t)}`);
    }
  }

  /** A topic publication (or `skip`): applied only as position + 1 of its topic. */
  private onTopicData(topic: string, o: number | undefined, p: unknown, skip = false): void {
    if (o === undefined) return void this.volatile.push(p);
    const at = this.topics[topic];
    if (at === undefined) return void this.anomalies.push(`data for unknown topic ${topic}`);
    if (o <= at) return void this.anomalies.push(`duplicate ${topic} offset ${o} (have ${at})`);
    if (o !== at + 1) {
      this.anomalies.push(`gap: ${topic} offset ${o} after ${at}`);
      return void this.ws?.terminate();
    }
    this.topics[topic] = o;
    if (!skip) this.received[this.received.length - 1]!.push(p);
  }

  private ack(ws: WebSocket): void {
    this.unacked = 0;
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ t: 'ack', s: this.lastSeq }));
  }

  private scheduleReconnect(code: number): void {
    if (this.stopped || this.options.reconnect === false) return;
    if (code >= 4500 && code <= 4999) return;
    setTimeout(() => {
      if (!this.stopped) this.connectWithRetry().catch(() => this.anomalies.push('could not reconnect'));
    }, 20);
  }
}
