import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { StabilizerClient } from '../../src/client/index.js';
import { msgpackCodec } from '../../src/client/msgpack.js';
import { SUBPROTOCOL_MSGPACK } from '../../src/protocol/index.js';
import { packr, RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, startServer, waitFor } from '../helpers/server.js';

const secret = 'msgpack-secret-0123456789abcdef0123456789abcdef';
const clients: StabilizerClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await closeAllServers();
});

function client<In = unknown>(url: string, msgpack: boolean): StabilizerClient<In> {
  const c = new StabilizerClient<In>(url, {
    WebSocket: WebSocket as never,
    minDelayMs: 10,
    maxDelayMs: 50,
    codec: msgpack ? msgpackCodec() : undefined,
  });
  clients.push(c as StabilizerClient);
  return c;
}

const opened = (c: StabilizerClient<never> | StabilizerClient): Promise<void> =>
  new Promise((resolve) => {
    const off = (c as StabilizerClient).on('open', () => {
      off();
      resolve();
    });
  });

describe('stabilizer.v1.msgpack', () => {
  it('the bundled client negotiates it and every frame is binary MessagePack', async () => {
    const s = await startServer({ tokens: { secret } });
    const got: Array<{ data: unknown; isBinary: boolean }> = [];
    s.manager.on('message', ({ data, isBinary }) => {
      got.push({ data, isBinary });
    });
    const c = client<unknown>(s.url, true);
    const received: unknown[] = [];
    c.on('message', (m) => received.push(m));
    await opened(c);
    const conn = s.manager.connections.get(c.sessionId!)!;
    expect(conn.socket.protocol).toBe(SUBPROTOCOL_MSGPACK);
    await c.send({ text: 'hello', n: [1, 2.5, null, true] });
    await c.send(new Uint8Array([1, 2, 3]));
    expect(got[0]).toEqual({ data: { text: 'hello', n: [1, 2.5, null, true] }, isBinary: false });
    expect(got[1]!.isBinary).toBe(true);
    expect([...(got[1]!.data as Uint8Array)]).toEqual([1, 2, 3]);
    s.manager.sendToClient(c.sessionId!, { a: 'é', big: 2 ** 40 });
    s.manager.sendToClient(c.sessionId!, 'text');
    s.manager.sendToClient(c.sessionId!, Buffer.from([9, 8]));
    s.manager.broadcast({ all: 1 });
    await waitFor(() => received.length === 4);
    expect(received.slice(0, 2)).toEqual([{ a: 'é', big: 2 ** 40 }, 'text']);
    expect([...(received[2] as Uint8Array)]).toEqual([9, 8]);
    expect(received[3]).toEqual({ all: 1 });
  });
});
