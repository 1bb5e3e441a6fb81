import { afterEach, describe, expect, it, vi } from 'vitest';
import { CloseCode } from '../../src/protocol/index.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, startServer, type TestServer } from '../helpers/server.js';

afterEach(() => {
  vi.restoreAllMocks();
  return closeAllServers();
});

/** Send `{"t":"ping"}` and wait for the pong: every frame sent before it has been processed. */
async function roundTrip(client: RawProtocolClient): Promise<void> {
  client.frames.length = 0;
  client.ws.send('{"t":"ping"}');
  await client.waitFor((f) => f.t === 'pong');
}

/** A welcomed client holding `count` unacked reliable messages. */
async function withUnacked(s: TestServer, count: number) {
  const { client, welcome } = await RawProtocolClient.handshake(s.url);
  for (let i = 1; i <= count; i++) s.manager.sendToClient(welcome.sessionId, `m${i}`);
  await client.waitForData(count);
  const session = s.manager.backend.getSession(welcome.sessionId)!;
  expect(session.buffer.size).toBe(count);
  return { client, session };
}

describe('heartbeat frames of the bundled client', () => {
  it('are processed without JSON.parse and still trim the replay buffer', async () => {
    const s = await startServer({ pingIntervalMs: 60_000 });
    const { client, session } = await withUnacked(s, 3);
    const parse = vi.spyOn(JSON, 'parse');
    client.ws.send('{"t":"pong","s":2}'); // byte for byte what src/client writes
    await roundTrip(client);
    expect(session.buffer.size).toBe(1);
    client.ws.send('{"t":"ack","s":3}');
    await roundTrip(client);
    expect(session.buffer.size).toBe(0);
    const parsed = parse.mock.calls.map((c) => c[0]);
    // The client side of this test parses the server's `{"t":"pong"}` answers; the server parsed nothing.
    expect(parsed.filter((text) => text !== '{"t":"pong"}')).toEqual([]);
    expect(s.manager.isConnected(session.id)).toBe(true);
  });

  it('other spellings still go through the decoder with the same effect', async () => {
    const s = await startServer({ pingIntervalMs: 60_000 });
    const { client, session } = await withUnacked(s, 3);
    client.ws.send('{ "t": "pong", "s": 1 }');
    await roundTrip(client);
    expect(session.buffer.size).toBe(2);
    client.ws.send('{"s":3,"t":"ack"}');
    await roundTrip(client);
    expect(session.buffer.size).toBe(0);
  });

  it('an ack or pong ahead of what was sent still closes with 4502', async () => {
    const s = await startServer({ pingIntervalMs: 60_000 });
    for (const frame of ['{"t":"ack","s":3}', '{"t":"pong","s":9007199254740991}']) {
      const { client } = await withUnacked(s, 2);
      client.ws.send(frame);
      expect((await client.waitClose()).code, frame).toBe(CloseCode.ProtocolViolation);
      expect(client.frames.at(-1), frame).toMatchObject({ t: 'error', message: 'ack ahead of sent' });
    }
  });

  it('a malformed near miss still closes with 4502 and touches nothing', async () => {
    const s = await startServer({ pingIntervalMs: 60_000 });
    const nearMisses = [
      '{"t":"ack","s":01}',
      '{"t":"pong","s":-1}',
      '{"t":"ack","s":1.5}',
      '{"t":"ack","s":9007199254740992}',
      '{"t":"pong","s":}',
      ' {"t":"ping"}x',
    ];
    for (const frame of nearMisses) {
      const { client, session } = await withUnacked(s, 2);
      client.ws.send(frame);
      expect((await client.waitClose()).code, frame).toBe(CloseCode.ProtocolViolation);
      expect(session.buffer.size, frame).toBe(2);
    }
  });

  it('a heartbeat frame before the hello is a violation, as before', async () => {
    const s = await startServer();
    const c = await RawProtocolClient.open(s.url);
    c.ws.send('{"t":"pong","s":0}');
    expect((await c.waitClose()).code).toBe(CloseCode.ProtocolViolation);
  });
});
