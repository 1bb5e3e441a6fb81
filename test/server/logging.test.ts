import { afterEach, describe, expect, it, vi } from 'vitest';
import { closeAllServers, closed, startServer, waitFor } from '../helpers/server.js';
import {
  cleanup,
  client,
  directPair,
  directServer,
  idFromQuery,
  rawSocket,
  recordingLogger,
  upgradeResponse,
} from './support.js';
import { WebSocketConnectionManager } from '../../src/server/index.js';
import { UpgradeRejectionLog } from '../../src/server/operations/rejection-log.js';

const SECRET = 'logging-test-secret-of-at-least-32-bytes';

afterEach(async () => {
  await closeAllServers();
  await cleanup();
});

describe('structured logging', () => {
  it('logs connect and disconnect with the client id, mode, code and reason', async () => {
    const logger = recordingLogger();
    const s = await startServer({ logger }, { authenticate: idFromQuery });
    const ws = await client(`${s.url}?id=logged`);
    await waitFor(() => logger.events('connect').length === 1, 'connect log');
    expect(logger.events('connect')[0]).toMatchObject({
      level: 'info',
      obj: { event: 'connect', clientId: 'logged', mode: 'plain', resume: 'fresh', replayed: 0 },
    });
    ws.close(1000);
    await waitFor(() => logger.events('disconnect').length === 1, 'disconnect log');
    expect(logger.events('disconnect')[0]).toMatchObject({
      level: 'info',
      obj: { event: 'disconnect', clientId: 'logged', code: 1000, reason: 'client-closed' },
    });
  });

  it('logs heartbeat.timeout and a warn-level disconnect for a silent client', async () => {
    const logger = recordingLogger();
    const s = await startServer(
      { logger, pingIntervalMs: 100, pongTimeoutMs: 200 },
      { authenticate: idFromQuery },
    );
    await client(`${s.url}?id=mute`, { autoPong: false });
    await waitFor(() => logger.events('disconnect').length === 1, 'disconnect log');
    expect(logger.events('heartbeat.timeout')).toEqual([
      { level: 'warn', obj: { event: 'heartbeat.timeout', clientId: 'mute' }, msg: 'heartbeat timeout' },
    ]);
    expect(logger.events('disconnect')[0]).toMatchObject({
      level: 'warn',
      obj: { clientId: 'mute', reason: 'heartbeat-timeout' },
    });
  });

  it('logs token.issued without the token, and token.rejected with the error code', async () => {
    const logger = recordingLogger();
    const m = new WebSocketConnectionManager({ logger, tokens: { secret: SECRET } });
    const token = m.generateReconnectToken('tok-client');
    await m.validateReconnectToken(token);
    await m.validateReconnectToken(token).catch(() => {});
    await m.validateReconnectToken('garbage').catch(() => {});
    expect(logger.events('token.issued')).toEqual([
      {
        level: 'info',
        obj: { event: 'token.issued', clientId: 'tok-client' },
        msg: 'reconnect token issued',
      },
    ]);
    expect(logger.events('token.rejected').map((e) => [e.level, e.obj.code])).toEqual([
      ['warn', 'TOKEN_REPLAYED'],
      ['warn', 'TOKEN_MALFORMED'],
    ]);
    // Secrets never reach the logs.
    expect(JSON.stringify(logger.entries)).not.toContain(token.split('.')[3]);
    await m.gracefulShutdown({ timeoutMs: 100 });
  });

  it('logs send.failed with the client id and the reason', async () => {
    const logger = recordingLogger();
    const s = await startServer({ logger, maxBufferedBytes: 16 * 1024 }, { authenticate: idFromQuery });
    const slow = await client(`${s.url}?id=slow`);
    await waitFor(() => s.manager.isConnected('slow'), 'registered');
    rawSocket(slow).pause();
    const chunk = 'y'.repeat(1024 * 1024);
    for (let i = 0; i < 200 && logger.events('send.failed').length === 0; i++) {
      s.manager.broadcast(chunk);
      await new Promise((r) => setImmediate(r));
    }
    expect(logger.events('send.failed')).toEqual([
      {
        level: 'warn',
        obj: { event: 'send.failed', clientId: 'slow', reason: 'slow-consumer' },
        msg: 'slow consumer',
      },
    ]);
    rawSocket(slow).resume();
    expect((await closed(slow)).code).toBe(4001);
  });

  it('logs shutdown with the connection count, then shutdown.done with the statistics', async () => {
    const logger = recordingLogger();
    const s = await startServer({ logger });
    await client(s.url);
    await client(s.url);
    await waitFor(() => s.manager.getConnectionCount() === 2, 'registered');
    const stats = await s.manager.gracefulShutdown({ timeoutMs: 1_000 });
    expect(logger.events('shutdown')).toEqual([
      { level: 'info', obj: { event: 'shutdown', connections: 2 }, msg: 'graceful shutdown started' },
    ]);
    expect(logger.events('shutdown.done')[0]!.obj).toEqual({ event: 'shutdown.done', ...stats });
    expect(logger.events('disconnect').map((e) => e.obj.reason)).toEqual(['shutdown', 'shutdown']);
  });

  it('logs handler errors at error level with the Error object', async () => {
    const logger = recordingLogger();
    const s = await startServer({ logger }, { authenticate: idFromQuery });
    s.manager.on('message', () => {
      throw new Error('bad handler');
    });
    const ws = await client(`${s.url}?id=e`);
    await waitFor(() => s.manager.isConnected('e'), 'registered');
    ws.send('x');
    expect((await closed(ws)).code).toBe(1011);
    const errors = logger.events('error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.level).toBe('error');
    expect(errors[0]!.obj.clientId).toBe('e');
    expect((errors[0]!.obj.err as Error).message).toBe('bad handler');
  });

  it('without a logger, the same paths run silently and nothing throws', async () => {
    const m = new WebSocketConnectionManager({
      tokens: { secret: SECRET },
      pingIntervalMs: 100,
      pongTimeoutMs: 200,
    });
    const reasons: string[] = [];
    m.on('disconnect', (e) => void reasons.push(e.reason));
    const d = await directServer();
    const mute = await directPair(d, { autoPong: false });
    const ws2 = await directPair(d);
    await m.connect(mute.serverSide, 'mute');
    await m.connect(ws2.serverSide, 'x');
    const token = m.generateReconnectToken('x');
    await m.validateReconnectToken(token);
    await expect(m.validateReconnectToken(token)).rejects.toMatchObject({ code: 'TOKEN_REPLAYED' });
    await waitFor(() => reasons.includes('heartbeat-timeout'), 'heartbeat timeout');
    const stats = await m.gracefulShutdown({ timeoutMs: 500 });
    expect(stats.closed).toBe(1);
  });
});

describe('connection and upgrade logs for operators', () => {
  it('connect and disconnect carry the remote address (rightmost X-Forwarded-For with trustProxy), the principal when known, the duration and the close code', async () => {
    const logger = recordingLogger();
    const s = await startServer({ logger }, { authenticate: idFromQuery, trustProxy: true });
    const ws = await client(`${s.url}?id=alice-tab`, {
      headers: { 'X-Forwarded-For': '198.51.100.7, 203.0.113.9' },
    });
    await waitFor(() => logger.events('connect').length === 1, 'connect log');
    expect(logger.events('connect')[0]!.obj).toMatchObject({
      clientId: 'alice-tab',
      remoteAddress: '203.0.113.9',
    });
    expect(logger.events('connect')[0]!.obj).not.toHaveProperty('principal');
    s.manager.connections.get('alice-tab')!.principal = 'alice';
    await new Promise((r) => setTimeout(r, 30));
    const c = closed(ws);
    ws.close(4321);
    await c;
    await waitFor(() => logger.events('disconnect').length === 1, 'disconnect log');
    const off = logger.events('disconnect')[0]!.obj;
    expect(off).toMatchObject({
      event: 'disconnect',
      clientId: 'alice-tab',
      code: 4321,
      reason: 'client-closed',
      remoteAddress: '203.0.113.9',
      principal: 'alice',
    });
    expect(off.durationMs).toBeGreaterThanOrEqual(30);
    expect(off.durationMs).toBeLessThan(60_000);
  });

  it('without trustProxy the socket address is logged, not the header', async () => {
    const logger = recordingLogger();
    const s = await startServer({ logger });
    await client(s.url, { headers: { 'X-Forwarded-For': '198.51.100.7' } });
    await waitFor(() => logger.events('connect').length === 1, 'connect log');
    expect(logger.events('connect')[0]!.obj.remoteAddress).toBe('127.0.0.1');
  });

  it('logs a rejected upgrade with status, reason and remote address; a burst is rate-limited and summed up', async () => {
    const logger = recordingLogger();
    const s = await startServer(
      { logger, allowedOrigins: ['http://app.example'] },
      { authenticate: () => false, trustProxy: true },
    );
    const headers = { 'X-Forwarded-For': '192.0.2.1', Origin: 'https://evil.example' };
    expect((await upgradeResponse(s.port, '/ws', headers)).status).toBe(403);
    expect(logger.events('upgrade.rejected')).toEqual([
      {
        level: 'warn',
        obj: {
          event: 'upgrade.rejected',
          status: 403,
          reason: 'origin-not-allowed',
          remoteAddress: '192.0.2.1',
          origin: 'https://evil.example',
          expectedOrigin: `http://127.0.0.1:${s.port}`,
        },
        msg: 'upgrade rejected: Origin is not this server nor in allowedOrigins (behind a proxy: set trustProxy)',
      },
    ]);
    const burst = await Promise.all(
      Array.from({ length: 40 }, () => upgradeResponse(s.port, '/ws', { Origin: 'http://app.example' })),
    );
    expect(burst.every((r) => r.status === 401)).toBe(true);
    await waitFor(() => logger.events('upgrade.rejected.suppressed').length > 0, 'summary line', 3000);
    const logged401 = logger.events('upgrade.rejected').filter((e) => e.obj.status === 401);
    const suppressed = logger
      .events('upgrade.rejected.suppressed')
      .reduce((n, e) => n + (e.obj.suppressed as number), 0);
    expect(logged401[0]!.obj).toMatchObject({ reason: 'unauthorized', remoteAddress: '127.0.0.1' });
    expect(logged401.length + suppressed).toBe(40);
    expect(suppressed).toBeGreaterThan(0);
    expect(logger.events('upgrade.rejected.suppressed')[0]).toMatchObject({
      level: 'warn',
      obj: { status: 401, windowMs: 1000 },
    });
  });
});

describe('UpgradeRejectionLog', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('logs at most N a second per status, then one summary when the second ends; other statuses are separate', () => {
    vi.useFakeTimers();
    const logger = recordingLogger();
    const log = new UpgradeRejectionLog(logger, 3);
    for (let i = 0; i < 10; i++) log.record('unauthorized', '192.0.2.1');
    log.record('over-capacity', '192.0.2.2');
    log.record('shutting-down', undefined);
    expect(logger.events('upgrade.rejected').map((e) => [e.level, e.obj.status, e.obj.reason])).toEqual([
      ['warn', 401, 'unauthorized'],
      ['warn', 401, 'unauthorized'],
      ['warn', 401, 'unauthorized'],
      ['warn', 503, 'over-capacity'],
      ['info', 503, 'shutting-down'],
    ]);
    expect(logger.events('upgrade.rejected.suppressed')).toEqual([]);
    vi.advanceTimersByTime(999);
    expect(logger.events('upgrade.rejected.suppressed')).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(logger.events('upgrade.rejected.suppressed')).toEqual([
      {
        level: 'warn',
        obj: { event: 'upgrade.rejected.suppressed', status: 401, suppressed: 7, windowMs: 1000 },
        msg: '7 more upgrades rejected with 401',
      },
    ]);
    // A new second logs again from zero; a quiet second writes no summary.
    log.record('authenticate-failed', '192.0.2.1');
    expect(logger.events('upgrade.rejected')).toHaveLength(6);
    vi.advanceTimersByTime(5000);
    expect(logger.events('upgrade.rejected.suppressed')).toHaveLength(1);
  });

  it('a rejection in the next second first writes the previous second’s summary', () => {
    vi.useFakeTimers();
    const logger = recordingLogger();
    const log = new UpgradeRejectionLog(logger, 1);
    log.record('unauthorized', undefined);
    log.record('unauthorized', undefined);
    vi.setSystemTime(Date.now() + 1000); // the clock moves on, the summary timer has not run yet
    log.record('unauthorized', undefined);
    expect(logger.entries.map((e) => e.obj.event)).toEqual([
      'upgrade.rejected',
      'upgrade.rejected.suppressed',
      'upgrade.rejected',
    ]);
    vi.advanceTimersByTime(2000);
    expect(logger.events('upgrade.rejected.suppressed')).toHaveLength(1);
  });
});
