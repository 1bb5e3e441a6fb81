import { describe, expect, expectTypeOf, it, vi } from 'vitest';
import type { WebSocket as WsWebSocket } from 'ws';
import { ClientError, StabilizerClient, type WebSocketConstructor } from '../../src/client/index.js';
import { FakeWebSocket } from './fake-socket.js';
import { makeClient, openClient, useFakes } from './setup.js';

useFakes();

describe('connecting', () => {
  it('fits the WebSocket classes of browsers and of ws', () => {
    expectTypeOf<typeof WsWebSocket>().toExtend<WebSocketConstructor>();
    expectTypeOf<typeof globalThis.WebSocket>().toExtend<WebSocketConstructor>();
    expectTypeOf<typeof FakeWebSocket>().toExtend<WebSocketConstructor>();
  });

  it('throws INVALID_CONFIG when there is no WebSocket at all', () => {
    vi.stubGlobal('WebSocket', undefined);
    const make = () => new StabilizerClient('ws://x');
    expect(make).toThrow(ClientError);
    expect(make).toThrow(expect.objectContaining({ code: 'INVALID_CONFIG' }));
  });

  it('uses globalThis.WebSocket by default', () => {
    vi.stubGlobal('WebSocket', FakeWebSocket);
    const client = new StabilizerClient('ws://global/ws');
    expect(FakeWebSocket.last.url).toBe('ws://global/ws');
    client.close();
  });

  it('offers stabilizer.v1, asks for ArrayBuffers and says hello first', () => {
    const { ws, client } = makeClient();
    expect(ws().protocols).toEqual(['stabilizer.v1']); // the default codec's list: JSON only
    expect(ws().binaryType).toBe('arraybuffer');
    expect(client.state).toBe('connecting');
    ws().open();
    expect(ws().frames).toEqual([{ t: 'hello', v: 1, lastSeq: 0 }]);
  });

  it('reports a fresh welcome and becomes open', () => {
    const { client, events } = openClient();
    expect(client.state).toBe('open');
    expect(client.sessionId).toBe('s1');
    expect(events.fresh).toEqual([{ sessionId: 's1', reason: 'new' }]);
    expect(events.open).toEqual([{ sessionId: 's1', resumed: false }]);
    expect(events.resumed).toEqual([]);
  });

  it('resumes with the token of the last welcome and its lastSeq', () => {
    const { ws, events } = openClient();
    ws().data(1, 2).serverClose(1006);
    vi.advanceTimersByTime(750);
    ws().open();
    expect(ws().frames[0]).toEqual({ t: 'hello', v: 1, token: 'tok1', sessionId: 's1', lastSeq: 2 });
    ws().welcome({ resume: 'resumed', token: 'tok2', lastSeq: 2 });
    expect(events.resumed).toEqual([{ sessionId: 's1' }]);
    expect(events.open.at(-1)).toEqual({ sessionId: 's1', resumed: true });
  });

  it('keeps the newest token of a token refresh for the next resume', () => {
    const { ws, client } = openClient();
    ws().receive({ t: 'token', token: 'tok-refreshed' });
    client.reconnect();
    ws().open();
    expect(ws().frames[0]).toMatchObject({ t: 'hello', token: 'tok-refreshed', sessionId: 's1' });
  });

  it('treats data before the welcome as a protocol violation', () => {
    const { ws, events } = makeClient();
    const first = ws().open();
    first.data(1);
    expect(events.error[0]?.code).toBe('PROTOCOL_VIOLATION');
    expect(first.closedBy).toEqual({ code: 4502, reason: 'frame before welcome' });
    expect(events.close).toEqual([{ code: 4502, reason: 'frame before welcome', willReconnect: true }]);
    vi.advanceTimersByTime(750);
    expect(FakeWebSocket.instances).toHaveLength(2);
  });

  it('rejects a welcome without heartbeat fields', () => {
    const { ws, events, client } = makeClient();
    ws().open().receive({ t: 'welcome', sessionId: 'x', token: 't', resume: 'fresh', lastSeq: 0 });
    expect(client.state).toBe('reconnecting');
    expect(events.error[0]?.message).toBe('bad welcome');
    expect(events.open).toEqual([]);
  });

  it('accepts an error frame before the welcome, then stops on the terminal close that follows', () => {
    const { ws, events, client } = makeClient();
    ws().open().receive({ t: 'error', code: 'FORBIDDEN', message: 'no' });
    expect(events.error).toHaveLength(1);
    expect(events.error[0]).toMatchObject({ code: 'FORBIDDEN', message: 'no' });
    expect(ws().closedBy).toBeUndefined();
    ws().serverClose(4503, 'forbidden');
    expect(client.state).toBe('closed');
    expect(events.close).toEqual([{ code: 4503, reason: 'forbidden', willReconnect: false }]);
  });

  it('gives up on a connection attempt that gets no welcome within connectTimeoutMs', () => {
    const { ws, events } = makeClient({ connectTimeoutMs: 2000 });
    const first = ws().open();
    vi.advanceTimersByTime(1999);
    expect(events.close).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(first.closedBy).toBe('terminate');
    expect(events.close).toEqual([{ code: 4003, reason: 'connect timeout', willReconnect: true }]);
  });

  it('ignores events of a socket it already dropped', () => {
    const { ws, client, events } = openClient();
    const old = ws();
    client.reconnect();
    expect(FakeWebSocket.instances).toHaveLength(2);
    old.data(1).serverClose(1006);
    expect(events.message).toEqual([]);
    expect(events.close).toHaveLength(1);
    expect(client.state).toBe('connecting');
  });
});
