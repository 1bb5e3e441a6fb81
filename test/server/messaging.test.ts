import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import {
  CloseCode,
  StabilizerError,
  WebSocketConnectionManager,
  type ManagerEvents,
  type WebSocketConfig,
} from '../../src/server/index.js';
import {
  closeAllServers,
  closed,
  collect,
  startServer,
  waitFor,
  type TestServer,
} from '../helpers/server.js';
import { breakWrites, cleanup, client, directPair, directServer, idFromQuery, rawSocket } from './support.js';

afterEach(async () => {
  vi.restoreAllMocks();
  await closeAllServers();
  await cleanup();
});

/** A server whose clients are named by `?id=`, plus helpers to connect them. */
async function named(config: WebSocketConfig = {}) {
  const s = await startServer(config, { authenticate: idFromQuery });
  const join = async (id: string, options: ConstructorParameters<typeof WebSocket>[2] = {}) => {
    const ws = await client(`${s.url}?id=${id}`, options);
    await waitFor(() => s.manager.isConnected(id), `${id} registered`);
    return ws;
  };
  return { s, join };
}

function binaryMessages(ws: WebSocket): Buffer[] {
  const out: Buffer[] = [];
  ws.on('message', (data, isBinary) => {
    if (isBinary) out.push(data as Buffer);
  });
  return out;
}

describe('sendToClient', () => {
  it('sends a string as a text frame', async () => {
    const { s, join } = await named();
    const ws = await join('a');
    const got = collect(ws);
    expect(s.manager.sendToClient('a', 'hello')).toBe('sent');
    await waitFor(() => got.length === 1, 'text');
    expect(got).toEqual(['hello']);
  });

  it('sends objects, arrays, numbers and null as JSON text', async () => {
    const { s, join } = await named();
    const ws = await join('a');
    const got = collect(ws);
    s.manager.sendToClient('a', { n: 1, nested: { ok: true } });
    s.manager.sendToClient('a', [1, 'two']);
    s.manager.sendToClient('a', 42);
    s.manager.sendToClient('a', null);
    await waitFor(() => got.length === 4, 'four messages');
    expect(got.map((m) => JSON.parse(m as string))).toEqual([
      { n: 1, nested: { ok: true } },
      [1, 'two'],
      42,
      null,
    ]);
  });

  it('sends Buffer, Uint8Array and ArrayBuffer as binary frames', async () => {
    const { s, join } = await named();
    const ws = await join('a');
    const got = binaryMessages(ws);
    s.manager.sendToClient('a', Buffer.from([1, 2, 3]));
    const big = new Uint8Array([9, 8, 7, 6, 5]);
    s.manager.sendToClient('a', big.subarray(1, 3));
    s.manager.sendToClient('a', new Uint8Array([4, 4]).buffer);
    await waitFor(() => got.length === 3, 'three binary frames');
    expect(got.map((b) => [...b])).toEqual([
      [1, 2, 3],
      [8, 7],
      [4, 4],
    ]);
  });

  it('throws StabilizerError UNKNOWN_CLIENT for an unknown id', async () => {
    const { s } = await named();
    let error: unknown;
    try {
      s.manager.sendToClient('ghost', 'x');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(StabilizerError);
    expect(error).toMatchObject({ code: 'UNKNOWN_CLIENT' });
  });

  it('throws a TypeError for a value that is not JSON-serializable, and the client stays connected', async () => {
    const { s, join } = await named();
    const ws = await join('a');
    expect(() => s.manager.sendToClient('a', { big: 1n })).toThrow(TypeError);
    expect(() => s.manager.sendToClient('a', (() => {}) as unknown as object)).toThrow(TypeError);
    expect(ws.readyState).toBe(WebSocket.OPEN);
    expect(s.manager.isConnected('a')).toBe(true);
  });
});

describe('inbound messages', () => {
  it('emits message with a string for text and a Buffer for binary', async () => {
    const { s, join } = await named();
    const events: Array<ManagerEvents['message']> = [];
    s.manager.on('message', (e) => void events.push(e));
    const ws = await join('a');
    ws.send('text in');
    ws.send(Buffer.from([0xde, 0xad]));
    await waitFor(() => events.length === 2, 'two messages');
    expect(events[0]).toEqual({ clientId: 'a', data: 'text in', isBinary: false, reliable: false });
    expect(events[1]).toMatchObject({ clientId: 'a', isBinary: true, reliable: false });
    expect([...(events[1]!.data as Buffer)]).toEqual([0xde, 0xad]);
  });
});

describe('broadcast', () => {
  async function three(): Promise<{ s: TestServer; got: Record<string, Array<string | Buffer>> }> {
    const { s, join } = await named();
    const got: Record<string, Array<string | Buffer>> = {};
    for (const id of ['a', 'b', 'c']) got[id] = collect(await join(id));
    return { s, got };
  }

  it('reaches every client and reports the count', async () => {
    const { s, got } = await three();
    const result = s.manager.broadcast({ hi: 'all' });
    expect(result).toEqual({ delivered: 3, buffered: 0, dropped: 0, failed: [] });
    await waitFor(() => Object.values(got).every((g) => g.length === 1), 'all received');
    for (const g of Object.values(got)) expect(JSON.parse(g[0] as string)).toEqual({ hi: 'all' });
  });

  it('skips the excluded ids', async () => {
    const { s, got } = await three();
    const result = s.manager.broadcast('news', { exclude: ['b', 'not-connected'] });
    expect(result.delivered).toBe(2);
    await waitFor(() => got.a!.length === 1 && got.c!.length === 1, 'a and c received');
    // b is still connected and reachable: a direct message arrives, and it is the first thing b sees.
    s.manager.sendToClient('b', 'direct');
    await waitFor(() => got.b!.length === 1, 'b received the direct message');
    expect(got.b).toEqual(['direct']);
  });

  it('with no clients reports zero and does not throw', async () => {
    const { s } = await named();
    expect(s.manager.broadcast('nobody')).toEqual({ delivered: 0, buffered: 0, dropped: 0, failed: [] });
  });

  it('serializes a JSON payload once for all recipients', async () => {
    const { s, join } = await named();
    const clients = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((id) => join(id)));
    const inboxes = clients.map((ws) => collect(ws));
    const stringify = vi.spyOn(JSON, 'stringify');
    const result = s.manager.broadcast({ price: 101.5, symbol: 'XYZ' });
    const calls = stringify.mock.calls.length;
    stringify.mockRestore();
    expect(result.delivered).toBe(5);
    expect(calls).toBe(1);
    await waitFor(() => inboxes.every((i) => i.length === 1), 'all received');
  });

  it('reports a socket whose write throws as send-failed, terminates it, and still delivers to the others', async () => {
    const m = new WebSocketConnectionManager();
    const disconnects: Array<ManagerEvents['disconnect']> = [];
    m.on('disconnect', (e) => void disconnects.push(e));
    const d = await directServer();
    const good = await directPair(d);
    const bad = await directPair(d);
    await m.connect(good.serverSide, 'good');
    await m.connect(bad.serverSide, 'bad');
    breakWrites(bad.serverSide);
    const goodGot = collect(good.ws);
    const badClosed = closed(bad.ws);

    const result = m.broadcast('tick');
    expect(result.delivered).toBe(1);
    expect(result.failed).toEqual([{ clientId: 'bad', reason: 'send-failed' }]);
    expect((await badClosed).code).toBe(1006); // terminated, no close handshake
    await waitFor(() => goodGot.length === 1, 'good received');
    expect(goodGot).toEqual(['tick']);
    await waitFor(() => disconnects.length === 1, 'disconnect event');
    expect(disconnects[0]).toMatchObject({ clientId: 'bad', reason: 'send-failed' });
    expect(m.getActiveConnections()).toEqual(['good']);
    await m.gracefulShutdown({ timeoutMs: 200 });
  });

  it('sendToClient on a broken socket throws SEND_FAILED and disconnects it', async () => {
    const m = new WebSocketConnectionManager();
    const d = await directServer();
    const bad = await directPair(d);
    await m.connect(bad.serverSide, 'bad');
    breakWrites(bad.serverSide);
    const badClosed = closed(bad.ws);
    expect(() => m.sendToClient('bad', 'x')).toThrow(expect.objectContaining({ code: 'SEND_FAILED' }));
    expect((await badClosed).code).toBe(1006);
    await waitFor(() => !m.isConnected('bad'), 'unregistered');
    await m.gracefulShutdown({ timeoutMs: 200 });
  });

  it('a stalled reader over maxBufferedBytes is reported as slow-consumer and closed with 4001; others keep receiving', async () => {
    const { s, join } = await named({ maxBufferedBytes: 64 * 1024 });
    const disconnects: Array<ManagerEvents['disconnect']> = [];
    s.manager.on('disconnect', (e) => void disconnects.push(e));
    const healthy = await join('healthy');
    const slow = await join('slow');
    let healthyCount = 0;
    healthy.on('message', () => healthyCount++);
    rawSocket(slow).pause(); // the slow client stops reading: the server's send buffer fills up
    const slowClosed = closed(slow);

    const chunk = 'x'.repeat(1024 * 1024);
    let failedAt = -1;
    let last = s.manager.broadcast(chunk);
    for (let i = 1; i <= 200 && last.failed.length === 0; i++) {
      await waitFor(() => healthyCount === i, `healthy got broadcast ${i}`);
      last = s.manager.broadcast(chunk);
      failedAt = i;
    }
    expect(failedAt).toBeGreaterThan(0);
    expect(last.failed).toEqual([{ clientId: 'slow', reason: 'slow-consumer' }]);
    expect(last.delivered).toBe(1); // the healthy client still got this very broadcast
    await waitFor(() => healthyCount === failedAt + 1, 'healthy got the failing broadcast too');

    // Traffic goes on while the slow client's close is pending: it is neither reported again nor cut off.
    const after = s.manager.broadcast('after');
    expect(after).toEqual({ delivered: 1, buffered: 0, dropped: 0, failed: [] });

    rawSocket(slow).resume(); // reads the backlog, then the close frame
    expect((await slowClosed).code).toBe(CloseCode.SlowConsumer);
    await waitFor(() => disconnects.length === 1, 'disconnect event');
    expect(disconnects[0]).toMatchObject({
      clientId: 'slow',
      code: CloseCode.SlowConsumer,
      reason: 'slow-consumer',
    });
    expect(s.manager.getActiveConnections()).toEqual(['healthy']);
    expect(healthy.readyState).toBe(WebSocket.OPEN);
  });

  it('a client the server is already closing is not counted as failed and still gets its close code', async () => {
    const { s, join } = await named();
    const leaving = await join('leaving');
    const staying = collect(await join('staying'));
    const leavingClosed = closed(leaving);
    const done = s.manager.disconnect('leaving', 1000, 'bye');
    // A broadcast in the same tick, while the close handshake is under way.
    const result = s.manager.broadcast('after-disconnect');
    expect(result.failed).toEqual([]);
    expect(result.delivered).toBe(1);
    expect(await done).toBe(true);
    expect(await leavingClosed).toEqual({ code: 1000, reason: 'bye' });
    await waitFor(() => staying.length === 1, 'staying received');
  });
});
