import * as promClient from 'prom-client';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { StabilizerClient } from '../../src/client/index.js';
import { registerPrometheusMetrics } from '../../src/metrics/index.js';
import {
  CloseCode,
  ConfigError,
  WebSocketConnectionManager,
  type RateLimiterLike,
} from '../../src/server/index.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, closed, startServer, waitFor } from '../helpers/server.js';
import { cleanup, client, recordingLogger, sleep, upgradeResponse } from './support.js';

afterEach(async () => {
  await closeAllServers();
  await cleanup();
});

const secret = 'rate-limiters-test-secret-0123456789abcdef';

/** `?user=` is the principal; `?id=` the client id. */
function userFromQuery(request: { url?: string | undefined }): { clientId?: string; principal?: string } {
  const q = new URL(request.url ?? '/', 'http://x').searchParams;
  return { clientId: q.get('id') ?? undefined, principal: q.get('user') ?? undefined };
}

/** A limiter that answers each check after a random delay of up to `maxDelayMs`, so the answers come out of order. */
function jittered(inner: RateLimiterLike, maxDelayMs: number): RateLimiterLike {
  return {
    async consume(key, points) {
      const res = inner.consume(key, points); // charged in arrival order, answered in random order
      await sleep(Math.random() * maxDelayMs);
      return res;
    },
  };
}

/** The value of one series in a scrape. */
function series(text: string, nameAndLabels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`websocket_stabilizer_${nameAndLabels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('rateLimiters.upgradesPerIp', () => {
  it('answers 429 with Retry-After over the limit, counts and logs it, and lets the IP in again later', async () => {
    const log = recordingLogger();
    const limiter = new RateLimiterMemory({ points: 2, duration: 30 });
    const s = await startServer({ logger: log, rateLimiters: { upgradesPerIp: limiter } });
    const registry = new promClient.Registry();
    registerPrometheusMetrics(s.manager, { promClient, registry });

    expect((await upgradeResponse(s.port, '/ws')).status).toBe(101);
    expect((await upgradeResponse(s.port, '/ws')).status).toBe(101);
    const third = await upgradeResponse(s.port, '/ws');
    expect(third.status).toBe(429);
    const retryAfterS = Number(third.retryAfter);
    expect(Number.isInteger(retryAfterS)).toBe(true);
    expect(retryAfterS).toBeGreaterThanOrEqual(1);
    expect(retryAfterS).toBeLessThanOrEqual(30);

    expect(s.manager.counters.upgradeRejections['rate-limited']).toBe(1);
    const text = await registry.metrics();
    expect(series(text, 'upgrade_rejections_total{status="429",reason="rate-limited"}')).toBe(1);
    await waitFor(() => log.events('upgrade.rejected').length === 1, 'rejection logged');
    expect(log.events('upgrade.rejected')[0]!.obj).toMatchObject({
      status: 429,
      reason: 'rate-limited',
      remoteAddress: '127.0.0.1',
    });

    await limiter.delete('127.0.0.1'); // the window is over
    expect((await upgradeResponse(s.port, '/ws')).status).toBe(101);
  });

  it('counts every attempt by the forwarded IP with trustProxy, before authenticate runs', async () => {
    let authenticated = 0;
    const s = await startServer(
      { rateLimiters: { upgradesPerIp: new RateLimiterMemory({ points: 1, duration: 30 }) } },
      {
        trustProxy: true,
        authenticate: () => {
          authenticated++;
          return false; // every attempt fails: a password-guessing client
        },
      },
    );
    const from = (ip: string) => upgradeResponse(s.port, '/ws', { 'X-Forwarded-For': ip });
    expect((await from('203.0.113.1')).status).toBe(401);
    expect((await from('203.0.113.1')).status).toBe(429);
    expect((await from('203.0.113.1')).status).toBe(429);
    expect((await from('203.0.113.2')).status).toBe(401); // another IP has its own budget
    expect(authenticated).toBe(2);
  });

  it('a failing limiter store lets the upgrade through and reports the error', async () => {
    const broken: RateLimiterLike = { consume: () => Promise.reject(new Error('store down')) };
    const s = await startServer({ rateLimiters: { upgradesPerIp: broken } });
    const errors: unknown[] = [];
    s.manager.on('error', (e) => void errors.push(e.error));
    expect((await upgradeResponse(s.port, '/ws')).status).toBe(101);
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe('store down');
  });
});

describe('rateLimiters.messagesPerPrincipal (one process)', () => {
  it('limits a user over all their connections: 4002 for the one that goes over, other users unaffected', async () => {
    const limiter = new RateLimiterMemory({ points: 5, duration: 30 });
    const s = await startServer(
      { rateLimiters: { messagesPerPrincipal: limiter } },
      { authenticate: userFromQuery },
    );
    const registry = new promClient.Registry();
    registerPrometheusMetrics(s.manager, { promClient, registry });
    const got: string[] = [];
    const reasons: string[] = [];
    s.manager.on('message', (e) => void got.push(String(e.data)));
    s.manager.on('disconnect', (e) => void reasons.push(e.reason));
    const a = await client(`${s.url}?id=a&user=alice`);
    const b = await client(`${s.url}?id=b&user=alice`);
    const bob = await client(`${s.url}?id=c&user=bob`);
    await waitFor(() => s.manager.getConnectionCount() === 3, 'registered');

    for (const m of ['a1', 'a2', 'a3']) a.send(m);
    await waitFor(() => got.length === 3, 'a delivered');
    const bClosed = closed(b);
    for (const m of ['b1', 'b2', 'b3']) b.send(m); // the third is alice's sixth: over
    expect((await bClosed).code).toBe(CloseCode.RateLimited);
    for (const m of ['x1', 'x2']) bob.send(m);
    await waitFor(() => got.length === 7, 'bob delivered');
    expect(got).toEqual(['a1', 'a2', 'a3', 'b1', 'b2', 'x1', 'x2']);
    expect(a.readyState).toBe(WebSocket.OPEN);
    expect(reasons).toEqual(['rate-limited']);
    expect(s.manager.counters.rateLimited).toEqual({ connection: 0, principal: 1 });
    const text = await registry.metrics();
    expect(series(text, 'messages_rate_limited_total{limit="principal"}')).toBe(1);
    expect(series(text, 'messages_rate_limited_total{limit="connection"}')).toBe(0);
  });

  it('connections without a principal are not charged', async () => {
    const s = await startServer(
      { rateLimiters: { messagesPerPrincipal: new RateLimiterMemory({ points: 1, duration: 30 }) } },
      { authenticate: userFromQuery },
    );
    let got = 0;
    s.manager.on('message', () => void got++);
    const anon = await client(`${s.url}?id=anon`);
    for (let i = 0; i < 5; i++) anon.send('m');
    await waitFor(() => got === 5, 'all delivered');
    expect(anon.readyState).toBe(WebSocket.OPEN);
  });

  it('the per-connection rateLimit still applies first and is counted under limit="connection"', async () => {
    const s = await startServer(
      {
        rateLimit: { messagesPerSecond: 1, burst: 2 },
        rateLimiters: { messagesPerPrincipal: new RateLimiterMemory({ points: 100, duration: 30 }) },
      },
      { authenticate: userFromQuery },
    );
    const got: string[] = [];
    s.manager.on('message', (e) => void got.push(String(e.data)));
    const ws = await client(`${s.url}?id=a&user=alice`);
    const c = closed(ws);
    for (const m of ['m1', 'm2', 'm3']) ws.send(m);
    expect((await c).code).toBe(CloseCode.RateLimited);
    await waitFor(() => got.length === 2, 'burst delivered');
    expect(got).toEqual(['m1', 'm2']);
    expect(s.manager.counters.rateLimited).toEqual({ connection: 1, principal: 0 });
  });

  it('plain mode: answers that come back out of order still deliver in arrival order', async () => {
    const s = await startServer(
      {
        rateLimiters: {
          messagesPerPrincipal: jittered(new RateLimiterMemory({ points: 1000, duration: 30 }), 15),
        },
      },
      { authenticate: userFromQuery },
    );
    const got: string[] = [];
    s.manager.on('message', (e) => void got.push(String(e.data)));
    const ws = await client(`${s.url}?id=a&user=alice`);
    const sent = Array.from({ length: 200 }, (_, i) => `m${i}`);
    for (const m of sent) ws.send(m);
    await waitFor(() => got.length === sent.length, 'all delivered');
    expect(got).toEqual(sent);
  });

  it('a failing limiter store lets messages through and reports the error', async () => {
    const broken: RateLimiterLike = { consume: () => Promise.reject(new Error('store down')) };
    const s = await startServer(
      { rateLimiters: { messagesPerPrincipal: broken } },
      { authenticate: userFromQuery },
    );
    const got: string[] = [];
    const errors: unknown[] = [];
    s.manager.on('message', (e) => void got.push(String(e.data)));
    s.manager.on('error', (e) => void errors.push(e.error));
    const ws = await client(`${s.url}?id=a&user=alice`);
    ws.send('one');
    ws.send('two');
    await waitFor(() => got.length === 2, 'delivered');
    expect(got).toEqual(['one', 'two']);
    expect(errors.map((e) => (e as Error).message)).toEqual(['store down', 'store down']);
  });
});

describe('rateLimiters.messagesPerPrincipal (protocol mode, exactly once)', () => {
  it('an over-limit reliable message is neither delivered nor acked; after the resume it is, once, in order', async () => {
    const limiter = new RateLimiterMemory({ points: 3, duration: 30 });
    const s = await startServer(
      { tokens: { secret }, rateLimiters: { messagesPerPrincipal: limiter } },
      { authenticate: () => ({ principal: 'alice' }) },
    );
    const got: unknown[] = [];
    s.manager.on('message', (e) => void got.push(e.data));
    const first = await RawProtocolClient.handshake(s.url);
    for (let seq = 1; seq <= 6; seq++) first.client.send({ t: 'd', s: seq, p: `r${seq}` });
    expect((await first.client.waitClose()).code).toBe(CloseCode.RateLimited);
    // The limiter's wait is passed on as a reconnect hint (at most its 30 s window).
    const hint = first.client.frames.find((f) => f.t === 'reconnect');
    expect(hint).toMatchObject({ t: 'reconnect', reason: 'rate-limited' });
    expect(hint!.retryAfterMs).toBeGreaterThan(0);
    expect(hint!.retryAfterMs).toBeLessThanOrEqual(30_000);
    const acks = first.client.frames.filter((f) => f.t === 'ack').map((f) => f.s);
    expect(acks).toEqual([1, 2, 3]);
    expect(got).toEqual(['r1', 'r2', 'r3']);

    await limiter.delete('alice'); // the window is over
    const { client: second, welcome } = await RawProtocolClient.handshake(s.url, {
      token: first.welcome.token,
      sessionId: first.welcome.sessionId,
      lastSeq: 0,
    });
    expect(welcome.resume).toBe('resumed');
    // The client resends from its last ack (3): an already acked one again, then the unacked ones.
    for (let seq = 3; seq <= 6; seq++) second.send({ t: 'd', s: seq, p: `r${seq}` });
    await second.waitFor((f) => f.t === 'ack' && f.s === 6);
    expect(got).toEqual(['r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
  });

  it('a per-connection refusal behind waiting messages: those are delivered and acked first, then 4002', async () => {
    const s = await startServer(
      {
        tokens: { secret },
        rateLimit: { messagesPerSecond: 1, burst: 2 },
        rateLimiters: {
          messagesPerPrincipal: jittered(new RateLimiterMemory({ points: 1000, duration: 30 }), 15),
        },
      },
      { authenticate: () => ({ principal: 'alice' }) },
    );
    const got: unknown[] = [];
    s.manager.on('message', (e) => void got.push(e.data));
    const { client: c } = await RawProtocolClient.handshake(s.url);
    for (let seq = 1; seq <= 4; seq++) c.send({ t: 'd', s: seq, p: `r${seq}` });
    expect((await c.waitClose()).code).toBe(CloseCode.RateLimited);
    expect(got).toEqual(['r1', 'r2']);
    expect(c.frames.filter((f) => f.t === 'ack').map((f) => f.s)).toEqual([1, 2]);
    expect(s.manager.counters.rateLimited).toEqual({ connection: 1, principal: 0 });
  });

  it('reliable and volatile messages, answered out of order, are delivered and acked in arrival order', async () => {
    const s = await startServer(
      {
        tokens: { secret },
        rateLimiters: {
          messagesPerPrincipal: jittered(new RateLimiterMemory({ points: 1000, duration: 30 }), 15),
        },
      },
      { authenticate: () => ({ principal: 'alice' }) },
    );
    const got: unknown[] = [];
    s.manager.on('message', (e) => void got.push(e.data));
    const { client: c } = await RawProtocolClient.handshake(s.url);
    const sent: string[] = [];
    let seq = 0;
    for (let i = 0; i < 150; i++) {
      const p = `m${i}`;
      sent.push(p);
      if (i % 3 === 2) c.send({ t: 'd', p });
      else c.send({ t: 'd', s: ++seq, p });
    }
    await c.waitFor((f) => f.t === 'ack' && f.s === seq);
    await waitFor(() => got.length === sent.length, 'all delivered');
    expect(got).toEqual(sent);
    const acks = c.frames.filter((f) => f.t === 'ack').map((f) => f.s as number);
    expect(acks).toEqual(Array.from({ length: seq }, (_, i) => i + 1));
  });
});

describe('rateLimiters.messagesPerPrincipal and subscriptions', () => {
  it('a subscribe sent after messages still waiting for the limiter is handled after them', async () => {
    const order: string[] = [];
    const s = await startServer(
      {
        tokens: { secret },
        rateLimiters: {
          messagesPerPrincipal: jittered(new RateLimiterMemory({ points: 1000, duration: 30 }), 20),
        },
      },
      { authenticate: () => ({ principal: 'alice' }) },
      { authorizeSubscribe: ({ topic }) => (order.push(`sub:${topic}`), true) },
    );
    s.manager.on('message', (e) => void order.push(String(e.data)));
    const { client: c } = await RawProtocolClient.handshake(s.url);
    c.send({ t: 'd', s: 1, p: 'one' });
    c.send({ t: 'd', p: 'two' });
    c.send({ t: 'sub', c: 'room' });
    await c.waitFor((f) => f.t === 'sub');
    expect(order).toEqual(['one', 'two', 'sub:room']);
  });
});

describe('rateLimiters.messagesPerPrincipal with the bundled client', () => {
  it('the client resumes after each 4002 and resends: every reliable message arrives once, in order', async () => {
    const s = await startServer(
      {
        tokens: { secret },
        rateLimiters: { messagesPerPrincipal: new RateLimiterMemory({ points: 10, duration: 1 }) },
      },
      { authenticate: () => ({ principal: 'alice' }) },
    );
    const got: unknown[] = [];
    s.manager.on('message', (e) => void got.push(e.data));
    const c = new StabilizerClient(s.url, {
      WebSocket: WebSocket as never,
      minDelayMs: 100,
      maxDelayMs: 300,
    });
    try {
      const sent = Array.from({ length: 30 }, (_, i) => `m${i}`);
      await Promise.all(sent.map((m) => c.send(m)));
      expect(got).toEqual(sent);
      expect(s.manager.counters.rateLimited.principal).toBeGreaterThanOrEqual(1);
    } finally {
      c.close();
    }
  }, 20_000);
});

describe('rateLimiters config', () => {
  it('refuses a limiter without consume(), naming the field', () => {
    expect(
      () => new WebSocketConnectionManager({ rateLimiters: { messagesPerPrincipal: {} as RateLimiterLike } }),
    ).toThrow(ConfigError);
    expect(
      () => new WebSocketConnectionManager({ rateLimiters: { upgradesPerIp: {} as RateLimiterLike } }),
    ).toThrow(/rateLimiters\.upgradesPerIp/);
  });
});
