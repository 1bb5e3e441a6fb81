import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { HelloMessage } from '../../protocol/messages.js';
import type { BroadcastResult } from '../topics/broadcast.js';

// The library never imports `@opentelemetry/api` (an optional peer): the application passes the module in, and
// these interfaces are the small part of it the server uses, written out so the type declarations need no
// `@opentelemetry/api` either. The real module satisfies them.

/** An attribute value as OpenTelemetry takes it. */
export type TraceAttributeValue = string | number | boolean;

/** The part of an OpenTelemetry `Span` the server uses. */
export interface TraceSpan {
  setAttribute(key: string, value: TraceAttributeValue): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  isRecording(): boolean;
  end(): void;
}

/** The part of an OpenTelemetry `Tracer` the server uses. */
export interface TraceTracer {
  startSpan(
    name: string,
    options?: { kind?: number; attributes?: Record<string, TraceAttributeValue | undefined> },
    context?: unknown,
  ): TraceSpan;
}

/** The part of `@opentelemetry/api` the server uses: pass the module itself (`import * as otel from ...`). */
export interface OpenTelemetryApi {
  trace: {
    getTracer(name: string): TraceTracer;
    setSpan(context: unknown, span: TraceSpan): unknown;
  };
  context: {
    active(): unknown;
    with<T>(context: unknown, fn: () => T): T;
  };
  propagation: {
    extract(context: unknown, carrier: Record<string, string>): unknown;
  };
}

/** The `tracing` hook of the manager. */
export interface TracingOptions {
  /** `@opentelemetry/api` (an optional peer dependency, so the library never imports it itself). */
  api: OpenTelemetryApi;
  /**
   * The tracer to record spans with.
   * @default api.trace.getTracer('websocket-stabilizer') (the global tracer provider)
   */
  tracer?: TraceTracer;
}

// Stable values of the OpenTelemetry API enums, so that its default export (which lacks them) works too.
const SPAN_KIND_SERVER = 1;
const SPAN_KIND_PRODUCER = 3;
const STATUS_ERROR = 2;

/** An upgrade span per upgrading socket, until it is accepted or refused. */
const upgrades = new WeakMap<Duplex, TraceSpan>();

/** Shared `close` listener of upgrading sockets: the socket went away before an answer. */
function upgradeAborted(this: Duplex): void {
  const span = upgrades.get(this);
  if (!span) return;
  upgrades.delete(this);
  span.setAttribute('ws.upgrade.reason', 'socket-closed');
  span.setStatus({ code: STATUS_ERROR, message: 'socket closed during the upgrade' });
  span.end();
}

/** Record what a broadcast or publish reached, and end its span. Returns `result`. */
export function fanOutEnded(span: TraceSpan, result: BroadcastResult): BroadcastResult {
  if (span.isRecording()) {
    span.setAttribute('ws.fanout.delivered', result.delivered);
    span.setAttribute('ws.fanout.buffered', result.buffered);
    span.setAttribute('ws.fanout.dropped', result.dropped);
    span.setAttribute('ws.fanout.failed', result.failed.length);
    if (result.cluster) span.setAttribute('ws.fanout.cluster', true);
  }
  span.end();
  return result;
}

/** The span of one hello: `ws.handshake` (no token) or `ws.resume`, ended by the welcome or by the failure. */
export class HelloTrace {
  private ended = false;

  constructor(
    private readonly api: OpenTelemetryApi,
    private readonly span: TraceSpan,
    private readonly context: unknown,
  ) {}

  /**
   * The welcome was written: record the outcome, then run `announce` (which emits `connect`) with this span
   * active, so spans the application starts in its handlers are its children. Ends the span.
   */
  welcomed(
    resume: 'resumed' | 'fresh',
    freshReason: string | undefined,
    replayed: number,
    announce: () => void,
  ): void {
    const span = this.span;
    this.ended = true;
    span.setAttribute('ws.resume.outcome', resume);
    if (freshReason !== undefined) span.setAttribute('ws.resume.fresh_reason', freshReason);
    span.setAttribute('ws.resume.replayed', replayed);
    try {
      this.api.context.with(this.api.trace.setSpan(this.context, span), announce);
    } finally {
      span.end();
    }
  }

  /** The handshake failed with `code` (an `ErrorCode`): the socket is closed. Ends the span, unless it has ended. */
  failed(code: string, message: string): void {
    if (this.ended) return;
    this.ended = true;
    this.span.setAttribute('ws.error_code', code);
    this.span.setStatus({ code: STATUS_ERROR, message });
    this.span.end();
  }
}

/**
 * The manager's OpenTelemetry spans: `ws.upgrade`, `ws.handshake` / `ws.resume`, `ws.publish` / `ws.broadcast`.
 * Only built when the `tracing` hook is set: without it the hot paths check one `undefined` field and nothing else.
 */
export class ServerTracing {
  private readonly api: OpenTelemetryApi;
  private readonly tracer: TraceTracer;

  constructor(options: TracingOptions) {
    this.api = options.api;
    this.tracer = options.tracer ?? options.api.trace.getTracer('websocket-stabilizer');
  }

  /** An upgrade request arrived: start its span (a child of the active context, e.g. an HTTP server span). */
  upgradeStarted(request: IncomingMessage, socket: Duplex, remoteAddress: string | undefined): void {
    const span = this.tracer.startSpan('ws.upgrade', {
      kind: SPAN_KIND_SERVER,
      attributes: { 'url.path': (request.url ?? '/').split('?')[0], 'client.address': remoteAddress },
    });
    upgrades.set(socket, span);
    socket.once('close', upgradeAborted);
  }

  /** The upgrade was answered: 101 (accepted) or a refusal status with its reason. Ends the span. */
  upgradeEnded(socket: Duplex, status: number, reason?: string): void {
    const span = upgrades.get(socket);
    if (!span) return;
    upgrades.delete(socket);
    socket.removeListener('close', upgradeAborted);
    span.setAttribute('http.response.status_code', status);
    if (reason !== undefined) {
      span.setAttribute('ws.upgrade.reason', reason);
      span.setStatus({ code: STATUS_ERROR, message: reason });
    }
    span.end();
  }

  /**
   * A hello arrived: start its span, a child of the client's trace when the hello carries a W3C `traceparent`
   * (extracted with the application's configured propagator), else of the active context.
   */
  hello(hello: HelloMessage): HelloTrace {
    const api = this.api;
    let context = api.context.active();
    if (hello.traceparent !== undefined) {
      const carrier: Record<string, string> = { traceparent: hello.traceparent };
      if (hello.tracestate !== undefined) carrier.tracestate = hello.tracestate;
      context = api.propagation.extract(context, carrier);
    }
    const span = this.tracer.startSpan(
      hello.token === undefined ? 'ws.handshake' : 'ws.resume',
      { kind: SPAN_KIND_SERVER },
      context,
    );
    return new HelloTrace(api, span, context);
  }

  /** Start the span of a `broadcast` (no topic) or a `publish`. */
  fanOutStarted(topic: string | undefined): TraceSpan {
    return this.tracer.startSpan(topic === undefined ? 'ws.broadcast' : 'ws.publish', {
      kind: SPAN_KIND_PRODUCER,
      attributes: { 'ws.topic': topic },
    });
  }
}
