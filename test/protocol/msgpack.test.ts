import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { StabilizerClient } from '../../src/client/index.js';
import { msgpackCodec } from '../../src/client/msgpack.js';
import {
  CloseCode,
  decodeBinaryData,
  isDecodeFailure,
  SUBPROTOCOL,
  SUBPROTOCOL_MSGPACK,
} from '../../src/protocol/index.js';
import { loadMsgpack } from '../../src/frames/msgpack.js';
import { packr, RawProtocolClient, unpackr } from '../helpers/raw-protocol.js';
import { closeAllServers, collect, openClient, startServer, waitFor } from '../helpers/server.js';

// The MessagePack encoding (PROTOCOL.md §2.7) against a real server over real sockets: raw MessagePack clients for
// every frame kind in both directions, the bundled client with the msgpack codec, and mixed encodings in one topic.

const secret = 'msgpack-secret-0123456789abcdef0123456789abcdef';
const hooks = { authorizeSubscribe: () => true };
const clients: StabilizerClient[] = [];
const raws: RawProtocolClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const r of raws.splice(0)) r.ws.terminate();
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

const opened = (c: StabilizerClient): Promise<void> =>
  new Promise((resolve) => {
    const off = c.on('open', () => {
      off();
      resolve();
    });
  });

async function raw(url: string, hello: Parameters<typeof RawProtocolClient.handshake>[1] = {}) {
  const h = await RawProtocolClient.handshake(url, hello, true, 'msgpack');
  raws.push(h.client);
  return h;
}

/** Every frame the raw client got was binary MessagePack (no text frame slipped through). */
function allBinary(c: RawProtocolClient): void {
  expect(c.textFrames).toBe(0);
  expect(c.binary.length).toBeGreaterThanOrEqual(c.frames.length);
}

describe('stabilizer.v1.msgpack: negotiation', () => {
  it('is selected when offered, preferred over stabilizer.v1; stabilizer.v1 alone still gets JSON', async () => {
    const s = await startServer({ tokens: { secret } });
    const both = await openClient(s.url, {}, [SUBPROTOCOL_MSGPACK, SUBPROTOCOL]);
    expect(both.protocol).toBe(SUBPROTOCOL_MSGPACK);
    const json = await openClient(s.url, {}, SUBPROTOCOL);
    expect(json.protocol).toBe(SUBPROTOCOL);
    both.terminate();
    json.terminate();
  });

  it('`msgpack: false` never selects it: the bundled msgpack client falls back to JSON and works', async () => {
    const s = await startServer({ tokens: { secret }, msgpack: false });
    const ws = await openClient(s.url, {}, [SUBPROTOCOL_MSGPACK, SUBPROTOCOL]);
    expect(ws.protocol).toBe(SUBPROTOCOL);
    ws.terminate();
    const c = client(s.url, true);
    const got: unknown[] = [];
    c.on('message', (m) => got.push(m));
    await opened(c);
    expect(s.manager.connections.get(c.sessionId!)!.msgpack).toBeUndefined();
    await c.send({ ok: 1 });
    s.manager.sendToClient(c.sessionId!, { back: true });
    await waitFor(() => got.length === 1);
    expect(got).toEqual([{ back: true }]);
  });
});

describe('stabilizer.v1.msgpack: every frame kind, both directions (raw MessagePack client)', () => {
  it('hello/welcome, data (reliable, volatile, bytes), ack, ping/pong, sub/unsub, skip, errors', async () => {
    const s = await startServer({ tokens: { secret } }, {}, hooks);
    const inbound: Array<{ data: unknown; isBinary: boolean; reliable: boolean }> = [];
    s.manager.on('message', ({ data, isBinary, reliable }) => {
      inbound.push({ data, isBinary, reliable });
    });
    const { client: c, welcome } = await raw(s.url);
    expect(welcome).toMatchObject({ t: 'welcome', resume: 'fresh', reason: 'new', lastSeq: 0 });
    expect(typeof welcome.token).toBe('string');
    expect(welcome.topics).toEqual([{ c: '$all', o: 0, resume: 'fresh', reason: 'new' }]);
    const id = welcome.sessionId;

    // client → server: reliable data is acked; volatile is not; bytes arrive as a Buffer.
    c.send({ t: 'd', s: 1, p: { text: 'hi', list: [1, 'two', null] } });
    c.send({ t: 'd', p: 'volatile text' });
    c.send({ t: 'd', s: 2, p: new Uint8Array([1, 2, 3]) });
    await c.waitFor((f) => f.t === 'ack' && f.s === 2);
    expect(inbound.map((m) => [m.reliable, m.isBinary])).toEqual([
      [true, false],
      [false, false],
      [true, true],
    ]);
    expect(inbound[0]!.data).toEqual({ text: 'hi', list: [1, 'two', null] });
    expect(inbound[1]!.data).toBe('volatile text');
    expect(Buffer.isBuffer(inbound[2]!.data)).toBe(true);
    expect([...(inbound[2]!.data as Buffer)]).toEqual([1, 2, 3]);

    // server → client: reliable, volatile, bytes, big sequence-free numbers.
    s.manager.sendToClient(id, { n: 1, big: 2 ** 40, f: 1.5 });
    s.manager.sendToClient(id, 'v', { volatile: true });
    s.manager.sendToClient(id, new Uint8Array([7, 8]));
    await c.waitForData(3);
    expect(c.data[0]).toEqual({ s: 1, p: { n: 1, big: 2 ** 40, f: 1.5 } });
    expect(c.data[1]).toEqual({ p: 'v' });
    expect(c.data[2]!.s).toBe(2);
    expect([...(c.data[2]!.p as Uint8Array)]).toEqual([7, 8]);

    // ping both ways; pong and ack from the client trim the buffer.
    c.send({ t: 'ping' });
    await c.waitFor((f) => f.t === 'pong');
    c.send({ t: 'pong', s: 2 });
    c.send({ t: 'ack', s: 2 });

    // topics: client sub → sub with offset; publications with c/o; skip when excluded; unsub answered.
    c.send({ t: 'sub', c: 'room' });
    await c.waitFor((f) => f.t === 'sub' && f.c === 'room');
    expect(c.frames.find((f) => f.t === 'sub')).toEqual({ t: 'sub', c: 'room', o: 0 });
    s.manager.publish('room', { hello: 'room' });
    s.manager.publish('room', 'not for you', { exclude: [id] });
    s.manager.publish('room', 'volatile pub', { volatile: true });
    s.manager.broadcast(new Uint8Array([5]));
    await c.waitFor((f) => f.t === 'skip');
    await c.waitForData(6);
    expect(c.data[3]).toEqual({ c: 'room', o: 1, p: { hello: 'room' } });
    expect(c.frames.find((f) => f.t === 'skip')).toEqual({ t: 'skip', c: 'room', o: 2 });
    expect(c.data[4]).toEqual({ c: 'room', p: 'volatile pub' });
    expect(c.data[5]!.c).toBe('$all');
    expect(c.data[5]!.o).toBe(1);
    expect([...(c.data[5]!.p as Uint8Array)]).toEqual([5]);
    c.send({ t: 'unsub', c: 'room' });
    await c.waitFor((f) => f.t === 'unsub' && f.c === 'room');
    expect(c.frames.find((f) => f.t === 'unsub')).toEqual({ t: 'unsub', c: 'room' });
    // A refused subscribe: unsub with a code (the socket stays open).
    c.send({ t: 'sub', c: '$reserved' });
    const refused = await c.waitFor((f) => f.t === 'unsub' && f.c === '$reserved');
    expect(refused).toMatchObject({ code: 'INVALID_TOPIC' });
    // A server join and leave: sub / unsub frames.
    s.manager.join(id, 'lobby');
    await c.waitFor((f) => f.t === 'sub' && f.c === 'lobby');
    s.manager.leave(id, 'lobby');
    await c.waitFor((f) => f.t === 'unsub' && f.c === 'lobby');
    allBinary(c);
    expect(c.closeInfo).toBeUndefined();

    // An ack ahead of what was sent: error frame (MessagePack) and close 4502.
    c.send({ t: 'ack', s: 999 });
    const err = await c.waitFor((f) => f.t === 'error');
    expect(err).toMatchObject({ code: 'PROTOCOL_VIOLATION', message: 'ack ahead of sent' });
    expect((await c.waitClose()).code).toBe(CloseCode.ProtocolViolation);
    allBinary(c);
  });

  it('the server pings over MessagePack, and sends a token refresh, as MessagePack', async () => {
    const s = await startServer({
      tokens: { secret, ttlMs: 400 },
      sessionTtlMs: 400,
      pingIntervalMs: 100,
      pongTimeoutMs: 2000,
    });
    const { client: c, welcome } = await raw(s.url);
    const ping = await c.waitFor((f) => f.t === 'ping', 3000);
    expect(ping).toEqual({ t: 'ping' });
    c.send({ t: 'pong' });
    const token = await c.waitFor((f) => f.t === 'token', 3000);
    expect(typeof token.token).toBe('string');
    expect(token.token).not.toBe(welcome.token);
    allBinary(c);
  });

  it('a graceful shutdown sends the reconnect hint as MessagePack before 1001', async () => {
    const s = await startServer({ tokens: { secret }, shutdownRetryAfterMs: 1234 });
    const { client: c } = await raw(s.url);
    await s.manager.gracefulShutdown({ timeoutMs: 500 });
    const hint = await c.waitFor((f) => f.t === 'reconnect').catch(() => undefined);
    expect(hint ?? c.frames.find((f) => f.t === 'reconnect')).toEqual({
      t: 'reconnect',
      retryAfterMs: 1234,
      reason: 'shutdown',
    });
    expect((await c.waitClose()).code).toBe(CloseCode.GoingAway);
  });

  it('resumes with replay: inbox and topic messages missed while away arrive once, in order', async () => {
    const s = await startServer({ tokens: { secret } }, {}, hooks);
    const first = await raw(s.url);
    const id = first.welcome.sessionId;
    s.manager.join(id, 'room');
    await first.client.waitFor((f) => f.t === 'sub');
    s.manager.sendToClient(id, 'one');
    s.manager.publish('room', { r: 1 });
    await first.client.waitForData(2);
    first.client.ws.terminate();
    await waitFor(() => !s.manager.connections.has(id));
    s.manager.sendToClient(id, 'two');
    s.manager.sendToClient(id, new Uint8Array([2]));
    s.manager.publish('room', { r: 2 });
    s.manager.broadcast('all');
    const again = await raw(s.url, {
      token: first.welcome.token,
      sessionId: id,
      lastSeq: 1,
      topics: { room: 1, $all: 0 },
    });
    expect(again.welcome).toMatchObject({ resume: 'resumed', sessionId: id, lastSeq: 3 });
    await again.client.waitForData(4);
    const d = again.client.data;
    expect(d[0]).toEqual({ s: 2, p: 'two' });
    expect(d[1]!.s).toBe(3);
    expect([...(d[1]!.p as Uint8Array)]).toEqual([2]);
    expect(d.slice(2)).toEqual(
      expect.arrayContaining([
        { c: 'room', o: 2, p: { r: 2 } },
        { c: '$all', o: 1, p: 'all' },
      ]),
    );
    allBinary(again.client);
  });
});

describe('stabilizer.v1.msgpack: bad input closes 4502, like malformed JSON', () => {
  const cases: Array<[string, (ws: WebSocket) => void]> = [
    ['bytes that are not MessagePack', (ws) => ws.send(Buffer.from([0xc1]))],
    ['a truncated map', (ws) => ws.send(packr.pack({ t: 'hello', v: 1 }).subarray(0, 5))],
    [
      'trailing bytes after the map',
      (ws) => ws.send(Buffer.concat([packr.pack({ t: 'ping' }), Buffer.from([1])])),
    ],
    ['a value that is not a map', (ws) => ws.send(packr.pack([1, 2, 3]))],
    ['a bare bin', (ws) => ws.send(packr.pack(new Uint8Array([1, 9, 9])))],
    ['a text frame', (ws) => ws.send('{"t":"hello","v":1}')],
    ['a map with an unknown type', (ws) => ws.send(packr.pack({ t: 'nope' }))],
    ['a hello with an ill-typed field', (ws) => ws.send(packr.pack({ t: 'hello', v: 1, lastSeq: 'x' }))],
  ];
  for (const [what, send] of cases) {
    it(`${what} during the handshake`, async () => {
      const s = await startServer({ tokens: { secret } });
      const ws = await openClient(s.url, {}, SUBPROTOCOL_MSGPACK);
      const frames = collect(ws);
      const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
      send(ws);
      expect(await closed).toBe(CloseCode.ProtocolViolation);
      // The error frame before the close is MessagePack too.
      const error = unpackr.unpack(frames[0] as Buffer) as Record<string, unknown>;
      expect(error).toMatchObject({ t: 'error', code: 'PROTOCOL_VIOLATION' });
    });
  }

  it('garbage after the welcome closes only that socket; another client is unaffected', async () => {
    const s = await startServer({ tokens: { secret } });
    const bad = await raw(s.url);
    const good = await raw(s.url);
    bad.client.ws.send(Buffer.from([0x92, 0xc1, 0xff]));
    expect((await bad.client.waitClose()).code).toBe(CloseCode.ProtocolViolation);
    s.manager.sendToClient(good.welcome.sessionId, 'still here');
    await good.client.waitForData(1);
    expect(good.client.data[0]).toEqual({ s: 1, p: 'still here' });
  });
});

describe('stabilizer.v1.msgpack: mixed encodings in one topic', () => {
  it('JSON, MessagePack, bundled clients of both kinds and a plain ws socket all get the same values', async () => {
    const s = await startServer({ tokens: { secret } }, {}, hooks);
    const mp = await raw(s.url);
    const js = await RawProtocolClient.handshake(s.url);
    raws.push(js.client);
    const plain = await openClient(s.url);
    const plainFrames = collect(plain);
    const bundledMp = client(s.url, true);
    const bundledJs = client(s.url, false);
    const gotMp: unknown[] = [];
    const gotJs: unknown[] = [];
    bundledMp.on('message', (m, info) => info.topic === 'room' && gotMp.push(m));
    bundledJs.on('message', (m, info) => info.topic === 'room' && gotJs.push(m));
    await Promise.all([opened(bundledMp), opened(bundledJs)]);
    expect(s.manager.connections.get(bundledMp.sessionId!)!.msgpack).toBeDefined();
    expect(s.manager.connections.get(bundledJs.sessionId!)!.msgpack).toBeUndefined();
    await Promise.all([bundledMp.subscribe('room'), bundledJs.subscribe('room')]);
    const ids = [
      mp.welcome.sessionId,
      js.welcome.sessionId,
      [...s.manager.connections.keys()].find((k) => !s.manager.connections.get(k)!.protocol)!,
    ];
    for (const id of ids) s.manager.join(id, 'room');
    await mp.client.waitFor((f) => f.t === 'sub' && f.c === 'room');
    await js.client.waitFor((f) => f.t === 'sub' && f.c === 'room');

    const values = [{ a: 1, nested: { b: [true, null, 'é'] } }, 'text', 42];
    for (const v of values) s.manager.publish('room', v);
    s.manager.publish('room', new Uint8Array([1, 2, 3]));

    await mp.client.waitForData(4);
    await js.client.waitForData(3);
    // A JSON client gets bytes as a binary data frame (kind 3), decoded here as the bundled client does.
    await waitFor(() => js.client.binary.length === 1);
    const bin = decodeBinaryData(js.client.binary[0]!);
    if (isDecodeFailure(bin)) throw new Error(bin.error);
    js.client.data.push({ c: bin.c, o: bin.o, p: bin.p });
    await waitFor(() => gotMp.length === 4 && gotJs.length === 4 && plainFrames.length === 4);
    const norm = (p: unknown) => (p instanceof Uint8Array ? [...p] : p);
    const expected = [...values, [1, 2, 3]];
    expect(mp.client.data.map((d) => norm(d.p))).toEqual(expected);
    expect(js.client.data.map((d) => norm(d.p))).toEqual(expected);
    expect(gotMp.map(norm)).toEqual(expected);
    expect(gotJs.map(norm)).toEqual(expected);
    expect(mp.client.data.map((d) => d.o)).toEqual([1, 2, 3, 4]);
    // Plain mode: the bare payload (a string as it is, a value as JSON, bytes as a binary frame).
    expect(plainFrames.slice(0, 3).map(String)).toEqual([JSON.stringify(values[0]), 'text', '42']);
    expect([...(plainFrames[3] as Buffer)]).toEqual([1, 2, 3]);
    // The bundled msgpack client sends MessagePack, and the server delivers plain values.
    const inbound: unknown[] = [];
    s.manager.on('message', ({ data }) => {
      inbound.push(data);
    });
    await bundledMp.send({ from: 'mp' });
    await bundledJs.send({ from: 'json' });
    expect(inbound).toEqual([{ from: 'mp' }, { from: 'json' }]);
  });
});

describe('stabilizer.v1.msgpack: encoded once', () => {
  it('a publication is packed once for all MessagePack members and its replay; every member gets the same bytes', async () => {
    const s = await startServer({ tokens: { secret } }, {}, hooks);
    const codec = (await loadMsgpack())!;
    const members = await Promise.all([raw(s.url), raw(s.url), raw(s.url), raw(s.url)]);
    for (const m of members) s.manager.join(m.welcome.sessionId, 'room');
    await Promise.all(members.map((m) => m.client.waitFor((f) => f.t === 'sub')));
    // One member is away: it gets the publication from the topic's history when it resumes.
    const away = members[3]!;
    away.client.ws.terminate();
    await waitFor(() => !s.manager.connections.has(away.welcome.sessionId));
    for (const m of members) m.client.binary.length = 0;

    const pack = vi.spyOn(codec, 'pack');
    const packMessage = vi.spyOn(codec, 'packMessage');
    try {
      s.manager.publish('room', { big: 'x'.repeat(3000) });
      s.manager.publish('room', 'excluded', { exclude: [members[0]!.welcome.sessionId] });
      await Promise.all(members.slice(0, 3).map((m) => m.client.waitForData(m === members[0] ? 1 : 2)));
      // Per publication: the payload and the topic name (and one skip frame for the excluded member).
      expect(pack).toHaveBeenCalledTimes(4);
      expect(packMessage).toHaveBeenCalledTimes(1);
      const firstFrames = members.slice(0, 3).map((m) => m.client.binary[0]!);
      expect(firstFrames[1]!.equals(firstFrames[0]!)).toBe(true);
      expect(firstFrames[2]!.equals(firstFrames[0]!)).toBe(true);

      const back = await raw(s.url, {
        token: away.welcome.token,
        sessionId: away.welcome.sessionId,
        lastSeq: 0,
        topics: { room: 0, $all: 0 },
      });
      await back.client.waitForData(2);
      expect(back.client.data.map((d) => d.o)).toEqual([1, 2]);
      // The replay wrote the cached frames: nothing was packed again for it (only its welcome and control frames).
      expect(pack).toHaveBeenCalledTimes(4);
      const replayed = back.client.binary.find((b) => b.length > 3000)!;
      expect(replayed.equals(firstFrames[0]!)).toBe(true);
    } finally {
      pack.mockRestore();
      packMessage.mockRestore();
    }
  });
});
