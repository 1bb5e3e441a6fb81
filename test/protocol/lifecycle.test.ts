import { afterEach, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { CloseCode, SUBPROTOCOL } from '../../src/protocol/index.js';
import { WebSocketConnectionManager, type ManagerEvents } from '../../src/server/index.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, startServer, waitFor } from '../helpers/server.js';

afterEach(closeAllServers);
const secret = 'lifecycle-secret-0123456789abcdef0123456789';

describe('session lifecycle', () => {
  it('a terminal close by the server ends the session, whatever the peer answers', async () => {
    const s = await startServer({ tokens: { secret } });
    const ends: Array<ManagerEvents['session-end']> = [];
    s.manager.on('session-end', (e) => {
      ends.push(e);
    });
    const disconnects: Array<ManagerEvents['disconnect']> = [];
    s.manager.on('disconnect', (e) => {
      disconnects.push(e);
    });
    const a = await RawProtocolClient.handshake(s.url);
    // The peer drops the TCP connection instead of echoing the close frame.
    a.client.ws.on('close', () => {});
    (a.client.ws as unknown as { _receiver: { on: (e: string, f: () => void) => void } })._receiver.on(
      'conclude',
      () => a.client.ws.terminate(),
    );
    await s.manager.disconnect(a.welcome.sessionId, CloseCode.Forbidden, 'banned');
    await waitFor(() => ends.length === 1);
    expect(ends[0]).toEqual({ clientId: a.welcome.sessionId, reason: 'ended' });
    expect(disconnects[0]).toMatchObject({ code: CloseCode.Forbidden, sessionRetained: false });
    const again = await RawProtocolClient.handshake(s.url, { token: a.welcome.token });
    expect(again.welcome).toMatchObject({ resume: 'fresh', reason: 'unknown-session' });
  });

  it('reports session-end when a detached session expires', async () => {
    const s = await startServer({ tokens: { secret }, sessionTtlMs: 1 });
    const ends: string[] = [];
    s.manager.on('session-end', ({ reason }) => {
      ends.push(reason);
    });
    const a = await RawProtocolClient.handshake(s.url);
    a.client.ws.terminate();
    // No sweep needed: the expiry timer ends it (1 ms after the disconnect).
    await waitFor(() => ends.length > 0);
    expect(ends).toEqual(['expired']);
    expect(s.manager.getStats().sessions).toBe(0);
  });

  it('emits disconnect with reason replaced for the connection a newer one replaced', async () => {
    const s = await startServer({ tokens: { secret } });
    const disconnects: Array<ManagerEvents['disconnect']> = [];
    s.manager.on('disconnect', (e) => {
      disconnects.push(e);
    });
    const a = await RawProtocolClient.handshake(s.url);
    await RawProtocolClient.handshake(s.url, { token: a.welcome.token });
    expect((await a.client.waitClose()).code).toBe(CloseCode.Replaced);
    await waitFor(() => disconnects.length === 1);
    expect(disconnects[0]).toMatchObject({
      clientId: a.welcome.sessionId,
      reason: 'replaced',
      code: CloseCode.Replaced,
      sessionRetained: true,
    });
    expect(s.manager.isConnected(a.welcome.sessionId)).toBe(true);
  });

  it("applies duplicateIdPolicy 'reject' to protocol sessions too", async () => {
    const s = await startServer(
      { tokens: { secret }, duplicateIdPolicy: 'reject' },
      {
        authenticate: () => ({ clientId: 'user-1' }),
      },
    );
    const first = await RawProtocolClient.handshake(s.url);
    expect(first.welcome.sessionId).toBe('user-1');
    const second = await RawProtocolClient.open(s.url);
    second.send({ t: 'hello', v: 1 });
    expect((await second.waitClose()).code).toBe(CloseCode.Replaced);
    expect(first.client.closeInfo).toBeUndefined();
  });
});

describe('misbehaving peers and limits in protocol mode', () => {
  it('a client id too long for a token closes that connection with 1011, and the process carries on', async () => {
    const s = await startServer({}, { authenticate: () => ({ clientId: 'x'.repeat(2000) }) });
    const errors: Error[] = [];
    s.manager.on('error', ({ error }) => {
      errors.push(error);
    });
    const c = await RawProtocolClient.open(s.url);
    c.send({ t: 'hello', v: 1 });
    expect((await c.waitClose()).code).toBe(CloseCode.InternalError);
    expect(errors.length).toBeGreaterThan(0);
    const ok = await startServer();
    expect((await RawProtocolClient.handshake(ok.url)).welcome.resume).toBe('fresh');
  });

  it('charges only application messages to the rate limit (hello, acks and pings are free)', async () => {
    const s = await startServer({ rateLimit: { messagesPerSecond: 2, burst: 2 } });
    const got: unknown[] = [];
    s.manager.on('message', ({ data }) => {
      got.push(data);
    });
    const a = await RawProtocolClient.handshake(s.url); // hello + confirming ack + ping
    for (let i = 0; i < 5; i++) a.client.send({ t: 'ping' });
    a.client.send({ t: 'd', s: 1, p: 'one' });
    a.client.send({ t: 'd', s: 2, p: 'two' });
    await a.client.waitFor((f) => f.t === 'ack' && f.s === 2);
    expect(got).toEqual(['one', 'two']);
    a.client.send({ t: 'd', s: 3, p: 'three' }); // the third in the same second is over the limit
    expect((await a.client.waitClose()).code).toBe(CloseCode.RateLimited);
  });

  it('over capacity, a protocol socket passed to connect() gets a reconnect hint, then 1013', async () => {
    const manager = new WebSocketConnectionManager({ maxConnections: 1, shutdownRetryAfterMs: 1500 });
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => SUBPROTOCOL });
    wss.on('connection', (ws) => {
      manager.connect(ws).catch(() => {});
    });
    await new Promise((r) => wss.once('listening', r));
    const url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
    try {
      await RawProtocolClient.handshake(url);
      const second = await RawProtocolClient.open(url);
      const close = await second.waitClose();
      expect(close.code).toBe(CloseCode.TryAgainLater);
      expect(close.reason).toContain('retry-after=1500');
      expect(second.frames).toEqual([{ t: 'reconnect', retryAfterMs: 1500, reason: 'overloaded' }]);
    } finally {
      await manager.gracefulShutdown({ timeoutMs: 200 });
      await new Promise((r) => wss.close(r));
    }
  });
});
