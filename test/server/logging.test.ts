import { afterEach, describe, expect, it } from 'vitest';
import { closeAllServers, closed, startServer, waitFor } from '../helpers/server.js';
import {
  cleanup,
  client,
  directPair,
  directServer,
  idFromQuery,
  rawSocket,
  recordingLogger,
} from './support.js';
import { WebSocketConnectionManager } from '../../src/server/index.js';

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
