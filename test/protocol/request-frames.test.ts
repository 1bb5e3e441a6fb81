/**
 * Black-box wire tests of request/reply frames (PROTOCOL.md §2.8) from a raw client: the exact frames, the
 * duplicate rule (a resent request is not handled twice), and 4502 for malformed request fields.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { decodeClientMessage } from '../../src/protocol/index.js';
import { RawProtocolClient } from '../helpers/raw-protocol.js';
import { closeAllServers, startServer } from '../helpers/server.js';

afterEach(closeAllServers);

describe('request frames on the wire', () => {
  it('answers a request with a reliable reply carrying r; a duplicate request is acked, not handled again', async () => {
    const s = await startServer();
    let runs = 0;
    s.manager.onRequest((req) => {
      runs++;
      return { got: req };
    });
    const { client } = await RawProtocolClient.handshake(s.url);
    client.send({ t: 'd', s: 1, q: 7, p: 'hello' });
    const reply = await client.waitFor((f) => f.t === 'd');
    expect(reply).toEqual({ t: 'd', s: 1, p: { got: 'hello' }, r: 7 });
    await client.waitFor((f) => f.t === 'ack' && f.s === 1);
    client.send({ t: 'd', s: 1, q: 7, p: 'hello' }); // resent after a (simulated) lost ack
    client.send({ t: 'ping' });
    await client.waitFor((f) => f.t === 'pong');
    expect(runs).toBe(1);
    expect(client.frames.filter((f) => f.t === 'd')).toHaveLength(1);
  });

  it('answers a throwing handler with an error reply (e, generic p)', async () => {
    const s = await startServer();
    s.manager.on('error', () => {});
    s.manager.onRequest(() => {
      throw new Error('internal detail');
    });
    const { client } = await RawProtocolClient.handshake(s.url);
    client.send({ t: 'd', s: 1, q: 1, p: null });
    expect(await client.waitFor((f) => f.t === 'd')).toEqual({
      t: 'd',
      s: 1,
      p: 'request handler failed',
      r: 1,
      e: 'HANDLER_ERROR',
    });
  });

  it('sends server requests with q and settles them with the client reply', async () => {
    const s = await startServer();
    const { client, welcome } = await RawProtocolClient.handshake(s.url);
    const asked = s.manager.request(welcome.sessionId, { n: 1 });
    const req = await client.waitFor((f) => f.t === 'd');
    expect(req).toEqual({ t: 'd', s: 1, p: { n: 1 }, q: 1 });
    client.send({ t: 'd', s: 1, r: 1, p: { n: 2 } });
    await expect(asked).resolves.toEqual({ n: 2 });
  });

  it.each([
    ['a request without a sequence', { t: 'd', q: 1, p: 1 }],
    ['a request id of 0', { t: 'd', s: 1, q: 0, p: 1 }],
    ['a fractional request id', { t: 'd', s: 1, q: 1.5, p: 1 }],
    ['a string request id', { t: 'd', s: 1, q: '1', p: 1 }],
    ['both q and r', { t: 'd', s: 1, q: 1, r: 1, p: 1 }],
    ['an error code without r', { t: 'd', s: 1, e: 'HANDLER_ERROR', p: 'x' }],
    ['an error reply whose p is not a message', { t: 'd', s: 1, r: 1, e: 'HANDLER_ERROR', p: {} }],
  ])('closes with 4502 on %s', async (_name, frame) => {
    expect('error' in decodeClientMessage(JSON.stringify(frame))).toBe(true);
    const s = await startServer();
    s.manager.onRequest(() => 'never');
    const { client } = await RawProtocolClient.handshake(s.url);
    client.send(frame);
    expect((await client.waitClose()).code).toBe(4502);
  });
});
