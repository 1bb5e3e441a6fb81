import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { StabilizerClient } from '../../src/client/index.js';
import { encodeBinaryData, SUBPROTOCOL } from '../../src/protocol/index.js';

/**
 * The client on Node with the `ws` package (property handlers, ArrayBuffer frames, terminate), against a tiny
 * scripted server. Not an end-to-end test of the real server.
 */
describe('with ws on Node', () => {
  let wss: WebSocketServer | undefined;
  afterEach(() => new Promise<void>((r) => (wss ? wss.close(() => r()) : r())));

  it('handshakes, exchanges text and binary data, and resumes after a server close', async () => {
    const hellos: unknown[] = [];
    const fromClient: unknown[] = [];
    wss = new WebSocketServer({
      port: 0,
      handleProtocols: (p) => (p.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
    wss.on('connection', (sock) => {
      sock.on('message', (raw, isBinary) => {
        if (isBinary) return;
        const m = JSON.parse(String(raw)) as { t: string; s?: number; p?: unknown };
        if (m.t === 'hello') {
          hellos.push(m);
          const resumed = hellos.length > 1;
          sock.send(
            JSON.stringify({
              t: 'welcome',
              sessionId: 'sess',
              token: `tok${hellos.length}`,
              resume: resumed ? 'resumed' : 'fresh',
              reason: resumed ? undefined : 'new',
              lastSeq: resumed ? 1 : 0,
              lastClientSeq: 0,
              pingIntervalMs: 5000,
              pongTimeoutMs: 5000,
            }),
          );
          if (!resumed) {
            sock.send(encodeBinaryData(new Uint8Array([1, 2, 3]), 1));
            sock.send(JSON.stringify({ t: 'd', p: 'volatile' }));
          }
        } else if (m.t === 'd') {
          fromClient.push(m);
          sock.send(JSON.stringify({ t: 'ack', s: m.s }));
          sock.send(JSON.stringify({ t: 'reconnect', retryAfterMs: 10, reason: 'restart' }));
          sock.close(1012, 'restart');
        }
      });
    });
    const { port } = wss.address() as { port: number };

    const client = new StabilizerClient<unknown, { hi: string }>(`ws://127.0.0.1:${port}`, {
      WebSocket,
      minDelayMs: 10,
      maxDelayMs: 20,
    });
    const messages: unknown[] = [];
    client.on('message', (p) => messages.push(p));
    const resumed = new Promise<void>((r) => client.on('resumed', () => r()));

    await client.send({ hi: 'there' });
    await resumed;
    client.close();

    expect(messages).toEqual([new Uint8Array([1, 2, 3]), 'volatile']);
    expect(fromClient).toEqual([{ t: 'd', s: 1, p: { hi: 'there' } }]);
    expect(hellos).toEqual([
      { t: 'hello', v: 1, lastSeq: 0 },
      { t: 'hello', v: 1, token: 'tok1', sessionId: 'sess', lastSeq: 1 },
    ]);
    expect(client.state).toBe('closed');
  });
});
