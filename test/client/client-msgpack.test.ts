import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { StabilizerClient, type ClientError } from '../../src/client/index.js';
import { msgpackCodec } from '../../src/client/msgpack.js';
import { SUBPROTOCOL_MSGPACK } from '../../src/protocol/index.js';
import { packr, unpackr } from '../helpers/raw-protocol.js';
import { waitFor } from '../helpers/server.js';

// The bundled client with the MessagePack codec against a hand-driven `ws` server that selects
// stabilizer.v1.msgpack: what the client writes, and what it does with good and bad server frames.

const cleanup: Array<() => void> = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

async function fakeServer(): Promise<{
  url: string;
  sockets: WebSocket[];
  frames: Array<{ binary: boolean; m: unknown }>;
}> {
  const wss = new WebSocketServer({
    port: 0,
    host: '127.0.0.1',
    handleProtocols: (p) => (p.has(SUBPROTOCOL_MSGPACK) ? SUBPROTOCOL_MSGPACK : false),
  });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const sockets: WebSocket[] = [];
  const frames: Array<{ binary: boolean; m: unknown }> = [];
  wss.on('connection', (ws) => {
    sockets.push(ws);
    ws.on('message', (data, binary) =>
      frames.push({ binary, m: binary ? unpackr.unpack(data as Buffer) : data.toString() }),
    );
  });
  cleanup.push(() => wss.close());
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, sockets, frames };
}

const welcome = {
  t: 'welcome',
  sessionId: 's1',
  token: 'tok',
  resume: 'fresh',
  reason: 'new',
  lastSeq: 0,
  lastClientSeq: 0,
  pingIntervalMs: 10_000,
  pongTimeoutMs: 10_000,
  topics: [{ c: '$all', o: 0, resume: 'fresh', reason: 'new' }],
};

describe('client with the MessagePack codec', () => {
  it('writes MessagePack frames and reads the server’s, bytes included; bad MessagePack is a violation (4502)', async () => {
    const s = await fakeServer();
    const client = new StabilizerClient(s.url, {
      WebSocket: WebSocket as never,
      codec: msgpackCodec(),
      minDelayMs: 5000,
    });
    cleanup.push(() => client.close());
    const got: unknown[] = [];
    const errors: ClientError[] = [];
    const closes: number[] = [];
    client.on('message', (m) => got.push(m));
    client.on('error', (e) => errors.push(e));
    client.on('close', ({ code }) => closes.push(code));
    await waitFor(() => s.frames.length === 1);
    expect(s.frames[0]).toEqual({ binary: true, m: { t: 'hello', v: 1, lastSeq: 0 } });
    const ws = s.sockets[0]!;
    ws.send(packr.pack(welcome));
    await waitFor(() => client.state === 'open');
    // The welcome is confirmed with an ack, as MessagePack.
    await waitFor(() => s.frames.length === 2);
    expect(s.frames[1]).toEqual({ binary: true, m: { t: 'ack', s: 0 } });
    ws.send(packr.pack({ t: 'd', s: 1, p: { a: [1, 'b'] } }));
    ws.send(packr.pack({ t: 'd', c: '$all', o: 1, p: new Uint8Array([4, 5]) }));
    await waitFor(() => got.length === 2);
    expect(got[0]).toEqual({ a: [1, 'b'] });
    expect([...(got[1] as Uint8Array)]).toEqual([4, 5]);
    // Client → server: a value, and bytes as a bin.
    void client.send({ hi: true });
    void client.send(new Uint8Array([9]));
    await waitFor(() => s.frames.length === 4);
    expect(s.frames[2]).toEqual({ binary: true, m: { t: 'd', s: 1, p: { hi: true } } });
    const bin = s.frames[3]!.m as { t: string; s: number; p: Uint8Array };
    expect([bin.t, bin.s, [...bin.p]]).toEqual(['d', 2, [9]]);
    // Garbage: the client reports a protocol violation and closes with 4502 (then reconnects).
    ws.send(Buffer.from([0x82, 0xa1]));
    await waitFor(() => closes.length === 1);
    expect(closes[0]).toBe(4502);
    expect(errors.map((e) => e.code)).toEqual(['PROTOCOL_VIOLATION']);
  });

  it('a text frame on a MessagePack socket is a violation too', async () => {
    const s = await fakeServer();
    const client = new StabilizerClient(s.url, {
      WebSocket: WebSocket as never,
      codec: msgpackCodec(),
      minDelayMs: 5000,
    });
    cleanup.push(() => client.close());
    const closes: number[] = [];
    client.on('close', ({ code }) => closes.push(code));
    client.on('error', () => {});
    await waitFor(() => s.sockets.length === 1);
    s.sockets[0]!.send(JSON.stringify(welcome));
    await waitFor(() => closes.length === 1);
    expect(closes[0]).toBe(4502);
  });
});
