import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import * as otel from '@opentelemetry/api';
import otelDefault from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBackend, type OpenTelemetryApi } from '../../src/server/index.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, openClient, startServer } from '../helpers/server.js';

/** The context manager an OpenTelemetry Node SDK installs, reduced to what the API needs: AsyncLocalStorage. */
class AsyncLocalContextManager implements otel.ContextManager {
  private readonly store = new AsyncLocalStorage<otel.Context>();
  active(): otel.Context {
    return this.store.getStore() ?? otel.ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    context: otel.Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.store.run(context, () => fn.call(thisArg, ...args));
  }
  bind<T>(_context: otel.Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.store.disable();
    return this;
  }
}

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const tracer = provider.getTracer('test');
const tracing = { api: otel, tracer };

// The real module satisfies the structural interface the library declares (checked by tsc).
const api: OpenTelemetryApi = otel;
const defaultApi: OpenTelemetryApi = otelDefault; // its default export too

const CLIENT_TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const CLIENT_SPAN_ID = 'b7ad6b7169203331';
const TRACEPARENT = `00-${CLIENT_TRACE_ID}-${CLIENT_SPAN_ID}-01`;

beforeAll(() => {
  otel.context.setGlobalContextManager(new AsyncLocalContextManager());
  otel.propagation.setGlobalPropagator(new W3CTraceContextPropagator());
});
afterAll(() => {
  otel.context.disable();
  otel.propagation.disable();
  otel.trace.disable();
});
afterEach(async () => {
  await closeAllServers();
  exporter.reset();
});

async function spanNamed(name: string, count = 1): Promise<ReadableSpan[]> {
  for (let i = 0; i < 100; i++) {
    const spans = exporter.getFinishedSpans().filter((s) => s.name === name);
    if (spans.length >= count) return spans;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no ${count} finished span(s) named ${name}`);
}

describe('OpenTelemetry spans', () => {
  it('the real @opentelemetry/api module is accepted as is', () => {
    expect(typeof api.propagation.extract).toBe('function');
    expect(defaultApi.trace).toBe(otel.trace);
  });

  it('ws.upgrade and ws.handshake for a first connection (no traceparent: a root span)', async () => {
    const s = await startServer({}, {}, { tracing });
    const { welcome } = await RawProtocolClient.handshake(s.url);
    const [upgrade] = await spanNamed('ws.upgrade');
    expect(upgrade!.attributes).toMatchObject({
      'http.response.status_code': 101,
      'url.path': '/ws',
      'client.address': '127.0.0.1',
    });
    expect(upgrade!.status.code).toBe(otel.SpanStatusCode.UNSET);
    expect(upgrade!.kind).toBe(otel.SpanKind.SERVER);
    const [handshake] = await spanNamed('ws.handshake');
    expect(welcome.resume).toBe('fresh');
    expect(handshake!.attributes).toMatchObject({
      'ws.resume.outcome': 'fresh',
      'ws.resume.fresh_reason': 'new',
      'ws.resume.replayed': 0,
    });
    expect(handshake!.parentSpanContext).toBeUndefined();
  });

  it('the hello traceparent is the parent of the handshake span, and connect handlers run inside it', async () => {
    const s = await startServer({}, {}, { tracing });
    const seen: Array<string | undefined> = [];
    s.manager.on('connect', () => {
      seen.push(otel.trace.getActiveSpan()?.spanContext().traceId);
      tracer.startSpan('app.on-connect').end(); // the application's own span, with no explicit parent
    });
    await RawProtocolClient.handshake(s.url, { traceparent: TRACEPARENT, tracestate: 'vendor=1' });
    const [handshake] = await spanNamed('ws.handshake');
    const [app] = await spanNamed('app.on-connect');
    expect(handshake!.spanContext().traceId).toBe(CLIENT_TRACE_ID);
    expect(handshake!.parentSpanContext?.spanId).toBe(CLIENT_SPAN_ID);
    expect(handshake!.spanContext().traceState?.get('vendor')).toBe('1');
    expect(app!.spanContext().traceId).toBe(CLIENT_TRACE_ID);
    expect(app!.parentSpanContext?.spanId).toBe(handshake!.spanContext().spanId);
    expect(seen).toEqual([CLIENT_TRACE_ID]);
  });

  it('ws.resume records the outcome and the replayed count, under the client trace', async () => {
    const s = await startServer({}, {}, { tracing });
    const first = await RawProtocolClient.handshake(s.url);
    const id = first.welcome.sessionId;
    first.client.ws.terminate();
    await expect.poll(() => s.manager.getStats().detachedSessions).toBe(1);
    for (let i = 0; i < 3; i++) expect(s.manager.sendToClient(id, `m${i}`)).toBe('buffered');
    const again = await RawProtocolClient.handshake(s.url, {
      token: first.welcome.token,
      sessionId: id,
      lastSeq: 0,
      traceparent: TRACEPARENT,
    });
    expect(again.welcome.resume).toBe('resumed');
    const [resume] = await spanNamed('ws.resume');
    expect(resume!.attributes).toMatchObject({ 'ws.resume.outcome': 'resumed', 'ws.resume.replayed': 3 });
    expect(resume!.attributes['ws.resume.fresh_reason']).toBeUndefined();
    expect(resume!.parentSpanContext?.spanId).toBe(CLIENT_SPAN_ID);

    // A resume answered fresh says why.
    again.client.ws.terminate();
    await expect.poll(() => s.manager.getStats().detachedSessions).toBe(1);
    await RawProtocolClient.handshake(s.url, { token: 'forged.token', lastSeq: 0 });
    const resumes = await spanNamed('ws.resume', 2);
    expect(resumes[1]!.attributes).toMatchObject({
      'ws.resume.outcome': 'fresh',
      'ws.resume.fresh_reason': 'token-rejected',
    });
  });

  it('a refused resume ends its span with an error and the error code', async () => {
    const s = await startServer({}, {}, { tracing, authorizeResume: () => false });
    const first = await RawProtocolClient.handshake(s.url);
    first.client.ws.terminate();
    await expect.poll(() => s.manager.getStats().detachedSessions).toBe(1);
    const c = await RawProtocolClient.open(s.url);
    c.send({ t: 'hello', v: 1, token: first.welcome.token, lastSeq: 0 });
    await expect.poll(() => c.closeInfo?.code).toBe(4503);
    const [resume] = await spanNamed('ws.resume');
    expect(resume!.status.code).toBe(otel.SpanStatusCode.ERROR);
    expect(resume!.attributes['ws.error_code']).toBe('FORBIDDEN');
  });

  it('a socket closed during the handshake ends its span (NOT_OPEN)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const s = await startServer({}, {}, { tracing, authorizeResume: () => gate.then(() => true) });
    const first = await RawProtocolClient.handshake(s.url);
    first.client.ws.terminate();
    await expect.poll(() => s.manager.getStats().detachedSessions).toBe(1);
    const c = await RawProtocolClient.open(s.url);
    c.send({ t: 'hello', v: 1, token: first.welcome.token, lastSeq: 0 });
    await expect.poll(() => s.manager.getStats().handshaking).toBe(1);
    c.ws.terminate();
    const [resume] = await spanNamed('ws.resume');
    release();
    expect(resume!.status.code).toBe(otel.SpanStatusCode.ERROR);
    expect(resume!.attributes['ws.error_code']).toBe('NOT_OPEN');
  });

  it('a handshake that fails after its checks (the backend throws) ends its span', async () => {
    class FailingBackend extends MemoryBackend {
      override createSession(...args: Parameters<MemoryBackend['createSession']>) {
        if (args[0] !== 'ok') throw new Error('storage down');
        return super.createSession(...args);
      }
    }
    const s = await startServer({ backend: new FailingBackend() }, {}, { tracing });
    s.manager.on('error', () => {});
    const c = await RawProtocolClient.open(s.url);
    c.send({ t: 'hello', v: 1 });
    await expect.poll(() => c.closeInfo?.code).toBe(1011);
    const [handshake] = await spanNamed('ws.handshake');
    expect(handshake!.status.code).toBe(otel.SpanStatusCode.ERROR);
    expect(handshake!.attributes['ws.error_code']).toBe('BACKEND_UNAVAILABLE');
  });

  it('a refused upgrade records its status and reason', async () => {
    const s = await startServer({}, { authenticate: () => false }, { tracing });
    await expect(openClient(s.url)).rejects.toThrow(/401/);
    const [upgrade] = await spanNamed('ws.upgrade');
    expect(upgrade!.attributes).toMatchObject({
      'http.response.status_code': 401,
      'ws.upgrade.reason': 'unauthorized',
    });
    expect(upgrade!.status.code).toBe(otel.SpanStatusCode.ERROR);
  });

  it('an upgrade whose socket closes while authenticate runs ends its span', async () => {
    let release!: () => void;
    const gate = new Promise<boolean>((r) => (release = () => r(true)));
    let authenticating = false;
    const authenticate = () => ((authenticating = true), gate);
    const s = await startServer({}, { authenticate }, { tracing });
    const socket = connect(s.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(
      'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    await expect.poll(() => authenticating).toBe(true);
    socket.destroy();
    await new Promise((r) => setTimeout(r, 50));
    release(); // the server sees the socket is gone once authenticate answers
    const [upgrade] = await spanNamed('ws.upgrade');
    expect(upgrade!.attributes['ws.upgrade.reason']).toBe('socket-closed');
    expect(upgrade!.status.code).toBe(otel.SpanStatusCode.ERROR);
    expect(upgrade!.attributes['http.response.status_code']).toBeUndefined();
  });

  it('ws.publish and ws.broadcast record the fan-out, as children of the active span', async () => {
    const s = await startServer({}, {}, { tracing });
    const a = await RawProtocolClient.handshake(s.url);
    const b = await RawProtocolClient.handshake(s.url);
    s.manager.join(a.welcome.sessionId, 'room');
    b.client.ws.terminate();
    await expect.poll(() => s.manager.getStats().detachedSessions).toBe(1);
    s.manager.join(b.welcome.sessionId, 'room'); // detached: the topic's history keeps it
    const plain = await openClient(s.url);
    await expect.poll(() => s.manager.getConnectionCount()).toBe(2);

    tracer.startActiveSpan('app.request', (parent) => {
      const published = s.manager.publish('room', 'hi');
      expect(published).toMatchObject({ delivered: 1, buffered: 1 });
      const broadcast = s.manager.broadcast('all', { exclude: [a.welcome.sessionId] });
      expect(broadcast).toMatchObject({ delivered: 1, buffered: 1 });
      parent.end();
    });
    const [app] = await spanNamed('app.request');
    const [publish] = await spanNamed('ws.publish');
    expect(publish!.kind).toBe(otel.SpanKind.PRODUCER);
    expect(publish!.attributes).toMatchObject({
      'ws.topic': 'room',
      'ws.fanout.delivered': 1,
      'ws.fanout.buffered': 1,
      'ws.fanout.dropped': 0,
      'ws.fanout.failed': 0,
    });
    expect(publish!.parentSpanContext?.spanId).toBe(app!.spanContext().spanId);
    const [broadcast] = await spanNamed('ws.broadcast');
    expect(broadcast!.attributes).toMatchObject({ 'ws.fanout.delivered': 1, 'ws.fanout.buffered': 1 });
    expect(broadcast!.attributes['ws.topic']).toBeUndefined();
    expect(broadcast!.parentSpanContext?.spanId).toBe(app!.spanContext().spanId);
    plain.close();
  });

  it('without the tracing hook nothing is recorded, even with a global tracer provider', async () => {
    otel.trace.setGlobalTracerProvider(provider);
    try {
      const s = await startServer();
      const { client } = await RawProtocolClient.handshake(s.url, { traceparent: TRACEPARENT });
      s.manager.broadcast('x');
      await client.waitFor((f) => f.t === 'd');
      expect(exporter.getFinishedSpans()).toEqual([]);
    } finally {
      otel.trace.disable();
    }
  });

  it('a hello whose traceparent or tracestate is not a short string is a protocol violation (4502)', async () => {
    const s = await startServer({}, {}, { tracing });
    for (const bad of [{ traceparent: 42 }, { tracestate: 'x'.repeat(513) }]) {
      const c = await RawProtocolClient.open(s.url);
      c.send({ t: 'hello', v: 1, ...bad });
      await expect.poll(() => c.closeInfo?.code).toBe(4502);
    }
    // Well-formed strings that are not a valid trace context are ignored: a root span, and a welcome.
    await RawProtocolClient.handshake(s.url, { traceparent: 'not-a-trace' });
    const [handshake] = await spanNamed('ws.handshake');
    expect(handshake!.parentSpanContext).toBeUndefined();
  });
});
