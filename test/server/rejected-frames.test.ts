/**
 * Frames that `ws` rejects, sent from a bare TCP socket: the close code the client receives, and the code and
 * reason of the server's `disconnect` event, its log line and its Prometheus counter, must all agree.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as promClient from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { registerPrometheusMetrics } from '../../src/metrics/index.js';
import { SUBPROTOCOL } from '../../src/protocol/index.js';
import {
  WebSocketConnectionManager,
  type ManagerEvents,
  type WebSocketConfig,
} from '../../src/server/index.js';
import { closeAllServers, startServer, waitFor, type TestServer } from '../helpers/server.js';
import { closePayload, RawTcpClient, type RawFrame } from '../helpers/raw-tcp.js';
import { cleanup, idFromQuery, recordingLogger } from './support.js';

const raws: RawTcpClient[] = [];
const httpServers: Server[] = [];

afterEach(async () => {
  for (const r of raws.splice(0)) r.destroy();
  await closeAllServers();
  await cleanup();
  for (const http of httpServers.splice(0)) {
    http.closeAllConnections();
    await new Promise((r) => http.close(r));
  }
});

const TEXT = 0x1;
const CONTINUATION = 0x0;
const CLOSE = 0x8;
const PING = 0x9;

interface Case {
  name: string;
  frames: RawFrame[];
  code: number;
  reason: 'protocol-violation' | 'message-too-big';
}

/** Every kind of frame ws rejects, with the code RFC 6455 gives it. The servers here use maxPayloadBytes 1024. */
const CASES: Case[] = [
  {
    name: 'an unmasked frame',
    frames: [{ opcode: TEXT, payload: 'hi', mask: false }],
    code: 1002,
    reason: 'protocol-violation',
  },
  {
    name: 'a reserved data opcode (3)',
    frames: [{ opcode: 0x3, payload: 'x' }],
    code: 1002,
    reason: 'protocol-violation',
  },
  {
    name: 'a reserved control opcode (0xB)',
    frames: [{ opcode: 0xb }],
    code: 1002,
    reason: 'protocol-violation',
  },
  {
    name: 'RSV1 without an extension',
    frames: [{ opcode: TEXT, payload: 'x', rsv: 0b100 }],
    code: 1002,
    reason: 'protocol-violation',
  },
  {
    name: 'RSV2 and RSV3 set',
    frames: [{ opcode: TEXT, payload: 'x', rsv: 0b011 }],
    code: 1002,
    reason: 'protocol-violation',
  },
  {
    name: 'a control frame over 125 bytes',
    frames: [{ opcode: PING, payload: Buffer.alloc(126) }],
    code: 1002,
    reason: 'protocol-violation',
  },
  {
    name: 'a fragmented control frame',
    frames: [{ opcode: PING, fin: false }],
    code: 1002,
    reason: 'protocol-violation',
  },
  {
    name: 'a continuation with no message to continue',
    frames: [{ opcode: CONTINUATION, payload: 'x' }],
    code: 1002,
    reason: 'protocol-violation',
  },
  {
    name: 'a new message inside a fragmented one',
    frames: [
      { opcode: TEXT, payload: 'a', fin: false },
      { opcode: TEXT, payload: 'b' },
    ],
    code: 1002,
    reason: 'protocol-violation',
  },
  {
    name: 'a close frame with an invalid code (1004)',
    frames: [{ opcode: CLOSE, payload: closePayload(1004) }],
    code: 1002,
    reason: 'protocol-violation',
  },
  {
    name: 'a close frame of 1 byte',
    frames: [{ opcode: CLOSE, payload: Buffer.from([3]) }],
    code: 1002,
    reason: 'protocol-violation',
  },
  {
    name: 'invalid UTF-8 in a text frame',
    frames: [{ opcode: TEXT, payload: Buffer.from([0x61, 0xff, 0xfe]) }],
    code: 1007,
    reason: 'protocol-violation',
  },
  {
    name: 'invalid UTF-8 across fragments',
    frames: [
      { opcode: TEXT, payload: Buffer.from([0xe2, 0x82]), fin: false },
      { opcode: CONTINUATION, payload: Buffer.from([0x41]) },
    ],
    code: 1007,
    reason: 'protocol-violation',
  },
  {
    name: 'invalid UTF-8 in a close reason',
    frames: [{ opcode: CLOSE, payload: closePayload(1000, Buffer.from([0xc3, 0x28])) }],
    code: 1007,
    reason: 'protocol-violation',
  },
  {
    name: 'more fragments than ws allows (16384)',
    frames: [
      { opcode: TEXT, fin: false },
      ...Array.from({ length: 16_384 }, () => ({ opcode: CONTINUATION, fin: false })),
    ],
    code: 1008,
    reason: 'protocol-violation',
  },
  {
    name: 'a frame over maxPayloadBytes',
    frames: [{ opcode: TEXT, payload: 'x'.repeat(1025) }],
    code: 1009,
    reason: 'message-too-big',
  },
  {
    name: 'a fragmented message over maxPayloadBytes',
    frames: [
      { opcode: TEXT, payload: 'x'.repeat(600), fin: false },
      { opcode: CONTINUATION, payload: 'y'.repeat(600) },
    ],
    code: 1009,
    reason: 'message-too-big',
  },
  {
    name: 'a 64-bit length over 2^53 - 1',
    frames: [{ opcode: TEXT, length64: 2n ** 63n }],
    code: 1009,
    reason: 'message-too-big',
  },
];

/** A server (plain clients named by `?id=`) that records `disconnect` events and logs. */
async function server(config: WebSocketConfig = {}) {
  const logger = recordingLogger();
  const s = await startServer({ maxPayloadBytes: 1024, logger, ...config }, { authenticate: idFromQuery });
  const disconnects: Array<ManagerEvents['disconnect']> = [];
  s.manager.on('disconnect', (e) => void disconnects.push(e));
  return { s, logger, disconnects };
}

async function rawClient(
  s: TestServer,
  id: string,
  headers: Record<string, string> = {},
): Promise<RawTcpClient> {
  const raw = await RawTcpClient.upgrade(s.port, `/ws?id=${id}`, headers);
  raws.push(raw);
  return raw;
}

describe('a frame ws rejects: disconnect reports the code the server sent', () => {
  it.each(CASES)('$name → $code ($reason)', async ({ frames, code, reason }) => {
    const { s, logger, disconnects } = await server();
    const raw = await rawClient(s, 'raw');
    await waitFor(() => s.manager.isConnected('raw'), 'registered');
    for (const frame of frames) raw.send(frame);

    expect(await raw.waitClose()).toBe(code);
    await waitFor(() => disconnects.length === 1, 'disconnect event');
    expect(disconnects[0]).toEqual({ clientId: 'raw', code, reason, sessionRetained: false });
    expect(logger.events('disconnect').map((e) => e.obj)).toMatchObject([
      { event: 'disconnect', clientId: 'raw', code, reason },
    ]);
    expect(s.manager.getConnectionCount()).toBe(0);
  });

  it('another connection is not affected', async () => {
    const { s, disconnects } = await server();
    const bad = await rawClient(s, 'bad');
    const good = await rawClient(s, 'good');
    await waitFor(() => s.manager.getConnectionCount() === 2, 'registered');
    bad.send({ opcode: TEXT, payload: 'x', mask: false });
    expect(await bad.waitClose()).toBe(1002);
    await waitFor(() => disconnects.length === 1, 'disconnect event');
    s.manager.sendToClient('good', 'still here');
    expect(await good.waitText((t) => t === 'still here')).toBe('still here');
    expect(s.manager.getActiveConnections()).toEqual(['good']);
  });

  it('the Prometheus counters count the same reasons (a real prom-client registry scrape)', async () => {
    const { s, disconnects } = await server();
    const registry = new promClient.Registry();
    registerPrometheusMetrics(s.manager, { promClient, registry });
    const picked = [CASES[0]!, CASES[3]!, CASES[11]!, CASES[15]!, CASES[17]!]; // 1002, 1002, 1007, 1009, 1009
    for (const [i, { frames, code }] of picked.entries()) {
      const raw = await rawClient(s, `c${i}`);
      await waitFor(() => s.manager.isConnected(`c${i}`), 'registered');
      for (const frame of frames) raw.send(frame);
      expect(await raw.waitClose()).toBe(code);
    }
    await waitFor(() => disconnects.length === picked.length, 'disconnect events');
    const text = await registry.metrics();
    // Summed over the close codes (the counter is labelled by reason and code).
    const total = (reason: string) =>
      [
        ...text.matchAll(
          new RegExp(
            `websocket_stabilizer_disconnects_total\\{reason="${reason}",code="\\d+"\\} (\\d+)`,
            'g',
          ),
        ),
      ]
        .map((m) => Number(m[1]))
        .reduce((a, b) => a + b, 0);
    expect(total('protocol-violation')).toBe(3);
    expect(total('message-too-big')).toBe(2);
    expect(text).not.toContain('reason="socket-error"');
  });
});

describe('a frame ws rejects on a protocol session', () => {
  async function protocolRaw(s: TestServer): Promise<{ raw: RawTcpClient; sessionId: string }> {
    const raw = await rawClient(s, 'p', { 'Sec-WebSocket-Protocol': SUBPROTOCOL });
    raw.sendText(JSON.stringify({ t: 'hello', v: 1 }));
    const welcome = JSON.parse(await raw.waitText((t) => t.includes('"welcome"'))) as { sessionId: string };
    raw.sendText(JSON.stringify({ t: 'ack', s: 0 }));
    await waitFor(() => s.manager.isConnected(welcome.sessionId), 'registered');
    return { raw, sessionId: welcome.sessionId };
  }

  it('1002 is terminal: the session ends', async () => {
    const { s, disconnects } = await server();
    const ended: Array<ManagerEvents['session-end']> = [];
    s.manager.on('session-end', (e) => void ended.push(e));
    const { raw, sessionId } = await protocolRaw(s);
    raw.send({ opcode: 0x3 });
    expect(await raw.waitClose()).toBe(1002);
    await waitFor(() => disconnects.length === 1, 'disconnect event');
    expect(disconnects[0]).toEqual({
      clientId: sessionId,
      code: 1002,
      reason: 'protocol-violation',
      sessionRetained: false,
    });
    expect(ended).toEqual([{ clientId: sessionId, reason: 'ended' }]);
  });

  it('1009 is retryable: the session waits for a resume', async () => {
    const { s, disconnects } = await server();
    const { raw, sessionId } = await protocolRaw(s);
    raw.sendText('x'.repeat(2000));
    expect(await raw.waitClose()).toBe(1009);
    await waitFor(() => disconnects.length === 1, 'disconnect event');
    expect(disconnects[0]).toEqual({
      clientId: sessionId,
      code: 1009,
      reason: 'message-too-big',
      sessionRetained: true,
    });
    expect(s.manager.getStats().detachedSessions).toBe(1);
  });
});

describe('a frame ws rejects after permessage-deflate was negotiated', () => {
  /** A manager fed by a `ws` server of the application's own, with compression on. */
  async function deflateServer(manager: WebSocketConnectionManager): Promise<number> {
    const http = createServer();
    httpServers.push(http);
    const wss = new WebSocketServer({ server: http, perMessageDeflate: true, maxPayload: 1024 });
    wss.on('connection', (ws) => void manager.connect(ws, 'z').catch(() => {}));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    return (http.address() as AddressInfo).port;
  }

  it.each([
    {
      what: 'data that does not inflate',
      payload: Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00]),
      code: 1007,
      reason: 'protocol-violation',
    },
    { what: 'data that inflates past maxPayload', payload: null, code: 1009, reason: 'message-too-big' },
  ])('$what → $code', async ({ payload, code, reason }) => {
    const manager = new WebSocketConnectionManager();
    const disconnects: Array<ManagerEvents['disconnect']> = [];
    manager.on('disconnect', (e) => void disconnects.push(e));
    try {
      const port = await deflateServer(manager);
      const raw = await RawTcpClient.upgrade(port, '/', { 'Sec-WebSocket-Extensions': 'permessage-deflate' });
      raws.push(raw);
      await waitFor(() => manager.isConnected('z'), 'registered');
      const { deflateRawSync } = await import('node:zlib');
      const body = payload ?? deflateRawSync(Buffer.alloc(100_000, 0x61)).subarray(0, -4);
      raw.send({ opcode: TEXT, payload: body, rsv: 0b100 });
      expect(await raw.waitClose()).toBe(code);
      await waitFor(() => disconnects.length === 1, 'disconnect event');
      expect(disconnects[0]).toEqual({ clientId: 'z', code, reason, sessionRetained: false });
    } finally {
      await manager.gracefulShutdown({ timeoutMs: 200 });
    }
  });
});
