import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer, type PerMessageDeflateOptions } from 'ws';
import { WebSocketConnectionManager, Payload } from '../../src/server/index.js';
import { dataFrame, PING_FRAME, PROTOCOL_PING_FRAME, PROTOCOL_PONG_FRAME } from '../../src/frames/payload.js';
import { closeAllServers, collect, startServer, waitFor } from '../helpers/server.js';
import { cleanup, client, protocolHello } from './support.js';

const servers: Server[] = [];

afterEach(async () => {
  await closeAllServers();
  await cleanup();
  for (const http of servers.splice(0)) {
    http.closeAllConnections();
    await new Promise((r) => http.close(r));
  }
});

/** A client and the server-side `ws` socket of its connection (not attached: the test calls `connect`). */
async function socketPair(
  perMessageDeflate: boolean | PerMessageDeflateOptions = false,
  protocols?: string,
): Promise<{ ws: WebSocket; serverSide: WebSocket }> {
  const http = createServer();
  servers.push(http);
  const wss = new WebSocketServer({ server: http, perMessageDeflate });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const serverSide = new Promise<WebSocket>((r) => wss.once('connection', r));
  const ws = await client(
    `ws://127.0.0.1:${(http.address() as AddressInfo).port}`,
    { perMessageDeflate: perMessageDeflate !== false },
    protocols,
  );
  return { ws, serverSide: await serverSide };
}

/**
 * Parse server frames (unmasked, unfragmented) by hand, as a client would, checking the RFC 6455 header rules:
 * FIN set, no mask, minimal length encoding. Returns [data, isBinary] per frame; a ping comes back as `ping:<data>`.
 */
function parseFrames(bytes: Buffer): Array<[Buffer, boolean]> {
  const out: Array<[Buffer, boolean]> = [];
  let at = 0;
  while (at < bytes.length) {
    const b0 = bytes[at]!;
    const b1 = bytes[at + 1]!;
    expect(b0 & 0xf0).toBe(0x80); // FIN, no RSV bits
    expect(b1 & 0x80).toBe(0); // server frames are not masked
    let length = b1 & 0x7f;
    let offset = at + 2;
    if (length === 126) {
      length = bytes.readUInt16BE(offset);
      expect(length).toBeGreaterThanOrEqual(126);
      offset += 2;
    } else if (length === 127) {
      length = Number(bytes.readBigUInt64BE(offset));
      expect(length).toBeGreaterThanOrEqual(65_536);
      offset += 8;
    }
    const opcode = b0 & 0x0f;
    const data = bytes.subarray(offset, offset + length);
    expect(data.length).toBe(length);
    out.push(opcode === 9 ? [Buffer.concat([Buffer.from('ping:'), data]), false] : [data, opcode === 2]);
    at = offset + length;
  }
  return out;
}

/** Payload sizes around every WebSocket length encoding boundary (7-bit, 16-bit, 64-bit). */
const SIZES = [0, 1, 125, 126, 127, 65_535, 65_536, 70_000];

describe('pre-built frames', () => {
  it('plain frames decode to the payload, text and binary, at every length boundary', () => {
    for (const n of SIZES) {
      const text = 'é'.repeat(Math.floor(n / 2)) + 'x'.repeat(n % 2); // multi-byte UTF-8
      const [[data, isBinary]] = parseFrames(new Payload(text).plainFrame()) as [[Buffer, boolean]];
      expect(isBinary).toBe(false);
      expect(data.toString('utf8')).toBe(text);
      const bytes = Buffer.alloc(n, 7);
      const [[bin, isBin]] = parseFrames(new Payload(bytes).plainFrame()) as [[Buffer, boolean]];
      expect(isBin).toBe(true);
      expect(bin.equals(bytes)).toBe(true);
    }
  });

  it('a reliable frame is the per-recipient head plus the shared tail, for any sequence number', () => {
    for (const n of SIZES) {
      const payload = new Payload({ pad: 'y'.repeat(n) });
      for (const seq of [0, 1, 9, 10, 99, 12345, 2 ** 31, Number.MAX_SAFE_INTEGER]) {
        const head = payload.reliableFrameHead(seq);
        const tail = payload.reliableFrameTail();
        const [[data]] = parseFrames(tail ? Buffer.concat([head, tail]) : head) as [[Buffer, boolean]];
        expect(data.toString()).toBe(payload.reliableText(seq));
      }
    }
  });

  it('binary reliable and volatile frames follow PROTOCOL.md §2 (kind byte, float64 sequence)', () => {
    const payload = new Payload(Buffer.from([1, 2, 3]));
    const head = payload.reliableFrameHead(42);
    const tail = payload.reliableFrameTail();
    const [[reliable, isBinary]] = parseFrames(tail ? Buffer.concat([head, tail]) : head) as [
      [Buffer, boolean],
    ];
    expect(isBinary).toBe(true);
    expect(reliable[0]).toBe(1);
    expect(reliable.readDoubleBE(1)).toBe(42);
    expect([...reliable.subarray(9)]).toEqual([1, 2, 3]);
    const [[volatile]] = parseFrames(payload.volatileFrameBytes()) as [[Buffer, boolean]];
    expect([...volatile]).toEqual([2, 1, 2, 3]);
    const [[text]] = parseFrames(new Payload({ a: 1 }).volatileFrameBytes()) as [[Buffer, boolean]];
    expect(text.toString()).toBe('{"t":"d","p":{"a":1}}');
  });

  it('control frames: dataFrame, the plain ping and the protocol ping', () => {
    const frames = parseFrames(
      Buffer.concat([
        dataFrame('{"t":"ack","s":1}', false),
        dataFrame(Buffer.from([9]), true),
        PING_FRAME,
        PROTOCOL_PING_FRAME,
        PROTOCOL_PONG_FRAME,
      ]),
    ).map(([data]) => data);
    expect(frames.map(String)).toEqual(['{"t":"ack","s":1}', '\t', 'ping:', '{"t":"ping"}', '{"t":"pong"}']);
  });
});

describe('direct writes over real sockets', () => {
  it('broadcasts of every size and kind arrive intact and in order (plain mode)', async () => {
    const s = await startServer();
    const ws = await client(s.url);
    const got = collect(ws);
    await waitFor(() => s.manager.getConnectionCount() === 1, 'register');
    const sent: Array<string | Buffer> = [];
    for (const n of SIZES) {
      const text = 'ü'.repeat(n);
      s.manager.broadcast(text);
      sent.push(text);
      const bytes = Buffer.alloc(n, n % 251);
      s.manager.broadcast(bytes);
      sent.push(bytes);
    }
    await waitFor(() => got.length === sent.length, 'all messages', 10_000);
    expect(got).toEqual(sent);
  });

  it('a reliable broadcast is one frame, byte for byte the same for every protocol client, with consecutive offsets', async () => {
    const s = await startServer();
    const a = await protocolHello(s.url);
    const b = await protocolHello(s.url);
    const gotA = collect(a.ws);
    const gotB = collect(b.ws);
    await waitFor(() => s.manager.getConnectionCount() === 2, 'register');
    for (let i = 1; i <= 12; i++) s.manager.broadcast({ i, pad: 'z'.repeat(i * 20) });
    s.manager.broadcast({ v: true }, { volatile: true });
    await waitFor(() => gotA.length === 13 && gotB.length === 13, 'messages');
    expect(gotB).toEqual(gotA); // the same bytes: no per-recipient header
    const parsed = gotA.map(
      (m) => JSON.parse(m as string) as { t: string; c?: string; o?: number; p: unknown },
    );
    expect(parsed.slice(0, 12).map((m) => m.o)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(parsed[11]).toEqual({ t: 'd', c: '$all', o: 12, p: { i: 12, pad: 'z'.repeat(240) } });
    expect(parsed[12]).toEqual({ t: 'd', c: '$all', p: { v: true } });
  });

  it('corks each socket for the rest of the turn; bufferedAmount counts the corked bytes', async () => {
    const s = await startServer();
    const ws = await client(s.url);
    const got = collect(ws);
    await waitFor(() => s.manager.getConnectionCount() === 1, 'register');
    const conn = [...s.manager.connections.values()][0]!;
    const raw = (conn.socket as unknown as { _socket: { writableCorked: number } })._socket;
    for (let i = 0; i < 10; i++) s.manager.broadcast(`m${i}`);
    expect(raw.writableCorked).toBe(1); // one cork for the whole turn, not one per message
    expect(conn.socket.bufferedAmount).toBeGreaterThan(0); // the slow-consumer cap sees corked bytes
    await new Promise((r) => setImmediate(r));
    expect(raw.writableCorked).toBe(0);
    await waitFor(() => got.length === 10, 'messages');
    expect(got).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`));
  });

  it('falls back to ws.send when permessage-deflate is negotiated', async () => {
    const { ws, serverSide } = await socketPair({ threshold: 0 });
    expect(serverSide.extensions).toContain('permessage-deflate');
    const manager = new WebSocketConnectionManager();
    try {
      await manager.connect(serverSide, 'a');
      const got = collect(ws);
      const raw = (serverSide as unknown as { _socket: { writableCorked: number } })._socket;
      manager.broadcast('x'.repeat(1000));
      manager.sendToClient('a', { n: 1 });
      expect(raw.writableCorked).toBe(0); // never corked across the turn with compression on
      await waitFor(() => got.length === 2, 'messages');
      expect(got).toEqual(['x'.repeat(1000), '{"n":1}']);
    } finally {
      await manager.gracefulShutdown({ timeoutMs: 200 });
    }
  });

  it('a fragmented message begun between two publications of one turn: the second goes through ws.send', async () => {
    const { ws, serverSide } = await socketPair();
    const manager = new WebSocketConnectionManager();
    try {
      await manager.connect(serverSide, 'a');
      manager.join('a', 'room');
      const got = collect(ws);
      let closeCode = 0;
      ws.on('close', (code) => (closeCode = code));
      // The first publication finds the socket writable directly and corks it for the turn; the application then
      // starts a fragmented message on the same socket, in the same turn. The next publication must notice.
      manager.broadcast('first');
      manager.publish('room', 'room-first');
      serverSide.send('part1-', { fin: false });
      manager.broadcast('other');
      manager.publish('room', 'room-other');
      serverSide.send('part2', { fin: true });
      await waitFor(() => got.length === 5, 'messages');
      // As ws itself does: the next send after a `fin: false` fragment continues and ends that message.
      expect(got).toEqual(['first', 'room-first', 'part1-other', 'room-other', 'part2']);
      expect(closeCode).toBe(0);
    } finally {
      await manager.gracefulShutdown({ timeoutMs: 200 });
    }
  });

  it('answers a protocol ping through ws.send when permessage-deflate is negotiated', async () => {
    const { ws, serverSide } = await socketPair({ threshold: 0 }, 'stabilizer.v1');
    expect(serverSide.extensions).toContain('permessage-deflate');
    const manager = new WebSocketConnectionManager();
    try {
      const connected = manager.connect(serverSide, 'a');
      const got = collect(ws);
      ws.send('{"t":"hello","v":1}');
      await connected;
      await waitFor(() => got.length === 1, 'welcome');
      ws.send('{"t":"ack","s":0}');
      ws.send('{"t":"ping"}');
      await waitFor(() => got.length === 2, 'pong');
      expect(got[1]).toBe('{"t":"pong"}');
    } finally {
      await manager.gracefulShutdown({ timeoutMs: 200 });
    }
  });

  it('in the middle of a fragmented message, writes go through ws.send (never a stray frame)', async () => {
    const { ws, serverSide } = await socketPair();
    const manager = new WebSocketConnectionManager();
    try {
      await manager.connect(serverSide, 'a');
      const got = collect(ws);
      let closeCode = 0;
      ws.on('close', (code) => (closeCode = code));
      serverSide.send('part1-', { fin: false });
      // A complete frame written to the socket here would be a protocol error for the peer (1002); through
      // ws.send it continues the fragmented message, exactly as ws itself behaves.
      manager.broadcast('other');
      serverSide.send('part2', { fin: true });
      await waitFor(() => got.length === 2, 'messages');
      expect(got).toEqual(['part1-other', 'part2']);
      expect(closeCode).toBe(0);
    } finally {
      await manager.gracefulShutdown({ timeoutMs: 200 });
    }
  });
});
