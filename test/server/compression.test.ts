import { constants, deflateRawSync } from 'node:zlib';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { StabilizerClient } from '../../src/client/index.js';
import { SUBPROTOCOL } from '../../src/protocol/messages.js';
import { RawTcpClient } from '../helpers/raw-tcp.js';
import { closeAllServers, closed, collect, openClient, startServer, waitFor } from '../helpers/server.js';
import { framePayload, inflateFrame, realisticJson, RSV1 } from '../helpers/deflate-frames.js';

afterEach(closeAllServers);

const compression = { enabled: true } as const;

const DEFLATE_OFFER = { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' };

describe('permessage-deflate negotiation', () => {
  it('is off by default: an offer is ignored and frames are plain', async () => {
    const s = await startServer();
    const ws = await openClient(s.url, { perMessageDeflate: true });
    expect(ws.extensions).toBe('');
    expect(s.manager.compressor).toBeUndefined();
  });

  it('accepts an offer with server_no_context_takeover and the fixed server window', async () => {
    const s = await startServer({ compression: { enabled: true, serverMaxWindowBits: 12 } });
    const ws = await openClient(s.url, { perMessageDeflate: true });
    expect(ws.extensions).toBe('permessage-deflate');
    const conn = [...s.manager.connections.values()][0]!;
    const params = (conn.socket as unknown as { _extensions: Record<string, { params: object }> })
      ._extensions['permessage-deflate']!.params;
    expect(params).toEqual({ server_no_context_takeover: true, server_max_window_bits: 12 });
    const got = collect(ws);
    const message = realisticJson(4000);
    s.manager.broadcast(message);
    await waitFor(() => got.length === 1, 'broadcast');
    expect(JSON.parse(got[0] as string)).toEqual(message);
  });

  it('declines an offer it cannot serve from the shared compressor, without refusing the upgrade', async () => {
    const s = await startServer({ compression });
    // A smaller server window than ours: our frames would not inflate there.
    const small = await RawTcpClient.upgrade(s.port, '/ws', {
      'Sec-WebSocket-Extensions': 'permessage-deflate; server_max_window_bits=10',
    });
    expect(small.responseHeaders['sec-websocket-extensions']).toBeUndefined();
    // Malformed, or unknown parameters: ws would answer 400; we connect without compression.
    const garbage = await RawTcpClient.upgrade(s.port, '/ws', {
      'Sec-WebSocket-Extensions': 'permessage-deflate; foo=1, x-other;;==',
    });
    expect(garbage.responseHeaders['sec-websocket-extensions']).toBeUndefined();
    // The first servable offer of a list is the one accepted.
    const list = await RawTcpClient.upgrade(s.port, '/ws', {
      'Sec-WebSocket-Extensions':
        'permessage-deflate; server_max_window_bits=9, permessage-deflate; client_max_window_bits=11',
    });
    expect(list.responseHeaders['sec-websocket-extensions']).toBe(
      'permessage-deflate; client_max_window_bits=11; server_no_context_takeover; server_max_window_bits=15',
    );
    s.manager.broadcast(realisticJson(3000));
    await waitFor(() => small.frames.length === 1 && list.frames.length === 1, 'broadcast');
    expect(small.frames[0]![0]! & RSV1).toBe(0);
    expect(garbage.frames[0]![0]! & RSV1).toBe(0);
    expect(list.frames[0]![0]! & RSV1).toBe(RSV1);
    for (const c of [small, garbage, list]) c.destroy();
  });

  it('mixed clients: deflate and plain, protocol and plain mode, all get the same message', async () => {
    const s = await startServer({ compression, tokens: { secret: 's'.repeat(32) } });
    const deflating = await openClient(s.url, { perMessageDeflate: true });
    const plain = await openClient(s.url, { perMessageDeflate: false });
    const protocolDeflating = new StabilizerClient<unknown, unknown>(s.url, {
      WebSocket: WebSocket as never,
    });
    const protocolPlain = new StabilizerClient<unknown, unknown>(s.url, {
      WebSocket: class extends WebSocket {
        constructor(url: string, protocols?: string | string[]) {
          super(url, protocols, { perMessageDeflate: false });
        }
      } as never,
    });
    const got: unknown[][] = [[], [], [], []];
    deflating.on('message', (d) => got[0]!.push(JSON.parse(String(d))));
    plain.on('message', (d) => got[1]!.push(JSON.parse(String(d))));
    protocolDeflating.on('message', (p) => got[2]!.push(p));
    protocolPlain.on('message', (p) => got[3]!.push(p));
    await waitFor(() => s.manager.connections.size === 4, 'four connections');
    const extensions = [...s.manager.connections.values()].map((c) => c.socket.extensions !== '');
    expect(extensions.filter(Boolean)).toHaveLength(2);
    const big = realisticJson(5000);
    const small = { hello: 'world' };
    s.manager.broadcast(big);
    s.manager.broadcast(small);
    await waitFor(() => got.every((g) => g.length === 2), 'both broadcasts everywhere');
    for (const g of got) expect(g).toEqual([big, small]);
    protocolDeflating.close();
    protocolPlain.close();
  });
});

describe('compress once', () => {
  it('the same compressed bytes reach every deflate client, and one deflate per broadcast', async () => {
    const s = await startServer({ compression });
    const deflate = vi.spyOn(s.manager.compressor!, 'deflate');
    const raws = await Promise.all([1, 2, 3].map(() => RawTcpClient.upgrade(s.port, '/ws', DEFLATE_OFFER)));
    const protocolRaws = await Promise.all(
      [1, 2].map(() =>
        RawTcpClient.upgrade(s.port, '/ws', { ...DEFLATE_OFFER, 'Sec-WebSocket-Protocol': SUBPROTOCOL }),
      ),
    );
    const plain = await RawTcpClient.upgrade(s.port, '/ws');
    for (const p of protocolRaws) p.sendText(JSON.stringify({ t: 'hello', v: 1 }));
    await waitFor(() => protocolRaws.every((p) => p.texts.some((t) => t.includes('"welcome"'))), 'welcomes');
    const message = realisticJson(2048);
    const text = JSON.stringify(message);
    s.manager.broadcast(message);
    await waitFor(
      () =>
        [...raws, plain].every((r) => r.frames.length === 1) &&
        protocolRaws.every((p) => p.frames.length === 2),
      'one broadcast each',
    );
    // Plain mode: one deflate of the bare payload, the same bytes on every socket, RSV1 set.
    const first = raws[0]!.frames[0]!;
    expect(first[0]).toBe(0x80 | RSV1 | 1);
    for (const r of raws) expect(r.frames[0]!.equals(first)).toBe(true);
    expect(inflateFrame(first)).toBe(text);
    expect(first.length).toBeLessThan(text.length / 2);
    // Protocol mode: one deflate of the topic frame, the same bytes on both.
    const pf = protocolRaws[0]!.frames[1]!;
    expect(protocolRaws[1]!.frames[1]!.equals(pf)).toBe(true);
    expect(JSON.parse(inflateFrame(pf))).toEqual({ t: 'd', c: '$all', o: 1, p: message });
    // A client without the extension got the uncompressed frame.
    expect(plain.frames[0]![0]).toBe(0x81);
    expect(framePayload(plain.frames[0]!).toString()).toBe(text);
    expect(deflate).toHaveBeenCalledTimes(2); // one per variant (plain, protocol), not per socket

    // Below the threshold: plain frames for everyone, no deflate.
    s.manager.broadcast({ tiny: true });
    await waitFor(() => raws.every((r) => r.frames.length === 2), 'small broadcast');
    expect(raws[0]!.frames[1]![0]).toBe(0x81);
    expect(deflate).toHaveBeenCalledTimes(2);
    for (const r of [...raws, ...protocolRaws, plain]) r.destroy();
  });

  it('a topic publish deflates once for all members', async () => {
    const s = await startServer({ compression });
    const deflate = vi.spyOn(s.manager.compressor!, 'deflate');
    const raws = await Promise.all(
      [1, 2, 3, 4].map(() => RawTcpClient.upgrade(s.port, '/ws', DEFLATE_OFFER)),
    );
    await waitFor(() => s.manager.connections.size === 4, 'connected');
    for (const id of s.manager.connections.keys()) s.manager.join(id, 'room');
    const message = realisticJson(3000);
    for (let i = 0; i < 3; i++) s.manager.publish('room', message);
    await waitFor(() => raws.every((r) => r.frames.length === 3), 'publications');
    for (const r of raws) expect(r.frames[2]!.equals(raws[0]!.frames[2]!)).toBe(true);
    // Plain mode: the bare payload's frame is the same for every publication of the same Payload... here three
    // payloads, so three deflates: one per publication, whatever the number of members.
    expect(deflate).toHaveBeenCalledTimes(3);
    for (const r of raws) r.destroy();
  });

  it('a replay reuses the frame deflated for the live members', async () => {
    const s = await startServer({ compression, tokens: { secret: 'r'.repeat(32) } });
    const deflate = vi.spyOn(s.manager.compressor!, 'deflate');
    const live = new StabilizerClient<unknown, unknown>(s.url, { WebSocket: WebSocket as never });
    const away = new StabilizerClient<unknown, unknown>(s.url, {
      WebSocket: WebSocket as never,
      minDelayMs: 200,
      maxDelayMs: 300,
    });
    const gotLive: unknown[] = [];
    const gotAway: unknown[] = [];
    live.on('message', (p) => gotLive.push(p));
    away.on('message', (p) => gotAway.push(p));
    await waitFor(() => live.state === 'open' && away.state === 'open', 'open');
    const awayId = away.sessionId!;
    // Drop `away`'s socket; it resumes after the broadcasts, and the replay must reuse their frames.
    const awayConn = s.manager.connections.get(awayId)!;
    const reconnected = new Promise<void>((r) => away.on('resumed', () => r()));
    // The disconnect event, not a poll: the client comes back (after ≥ 200 ms) with the same id.
    const detached = new Promise<void>((r) =>
      s.manager.on('disconnect', (e) => void (e.clientId === awayId && r())),
    );
    awayConn.socket.terminate();
    await detached;
    const messages = [realisticJson(2000, 1), realisticJson(2000, 2), realisticJson(2000, 3)];
    for (const m of messages) s.manager.broadcast(m);
    await waitFor(() => gotLive.length === 3, 'live');
    expect(deflate).toHaveBeenCalledTimes(3);
    await reconnected;
    await waitFor(() => gotAway.length === 3, 'replayed');
    expect(gotAway).toEqual(messages);
    expect(s.manager.connections.get(awayId)!.socket.extensions).toContain('permessage-deflate');
    expect(deflate).toHaveBeenCalledTimes(3); // no deflate for the replay
    live.close();
    away.close();
  });

  it('large payloads are deflated off the event loop, once, and each topic keeps its order', async () => {
    const s = await startServer({ compression: { enabled: true, asyncThresholdBytes: 8192 } });
    const deflateAsync = vi.spyOn(s.manager.compressor!, 'deflateAsync');
    const deflate = vi.spyOn(s.manager.compressor!, 'deflate');
    const raws = await Promise.all([1, 2].map(() => RawTcpClient.upgrade(s.port, '/ws', DEFLATE_OFFER)));
    const plain = await RawTcpClient.upgrade(s.port, '/ws');
    await waitFor(() => s.manager.connections.size === 3, 'connected');
    const big = realisticJson(40_000, 7);
    const sent = [big, { n: 1 }, realisticJson(2000, 8), { n: 2 }];
    const results = sent.map((m) => s.manager.broadcast(m));
    // Queued for all three sockets, written once the large one is deflated (the small ones wait behind it, or they
    // would arrive first).
    for (const r of results) expect(r.delivered).toBe(3);
    await waitFor(() => [...raws, plain].every((r) => r.frames.length === 4), 'all four');
    for (const r of raws) {
      expect(r.frames[0]![0]! & RSV1).toBe(RSV1);
      expect(r.frames[0]!.equals(raws[0]!.frames[0]!)).toBe(true);
      const texts = r.frames.map((f) => (f[0]! & RSV1 ? inflateFrame(f) : framePayload(f).toString()));
      expect(texts.map((t) => JSON.parse(t))).toEqual(sent);
    }
    expect(plain.frames.map((f) => JSON.parse(framePayload(f).toString()))).toEqual(sent);
    expect(deflateAsync).toHaveBeenCalledTimes(1);
    expect(deflate).toHaveBeenCalledTimes(1); // the 2 KB one, on the loop
    for (const r of [...raws, plain]) r.destroy();
  });
});

describe('inbound compressed frames', () => {
  it('accepts compressed client messages (ws client with perMessageDeflate)', async () => {
    const s = await startServer({ compression });
    const got: unknown[] = [];
    s.manager.on('message', ({ data }) => got.push(data));
    const ws = await openClient(s.url, { perMessageDeflate: { threshold: 0 } });
    const message = JSON.stringify(realisticJson(3000));
    ws.send(message);
    await waitFor(() => got.length === 1, 'message');
    expect(String(got[0])).toBe(message);
  });

  const BOMB_BYTES = 256 * 1024 * 1024;
  /** 256 MiB of zeros, deflated (about 250 KB: deflate cannot shrink more than ~1000:1), sync-flushed. */
  function bomb(): Buffer {
    const zeros = Buffer.alloc(16 * 1024 * 1024);
    const chunks: Buffer[] = [];
    // Deflate 16 MiB and repeat its stored body: each repeat is a valid sequence of deflate blocks.
    const part = deflateRawSync(zeros, { finishFlush: constants.Z_SYNC_FLUSH, level: 9 });
    for (let i = 0; i < BOMB_BYTES / zeros.length; i++) chunks.push(part);
    const out = Buffer.concat(chunks);
    return out.subarray(0, out.length - 4); // without the final 00 00 FF FF, as RFC 7692 sends it
  }

  it.each([
    ['in one frame', 1],
    ['in fragments', 16],
  ])(
    'a decompression bomb %s is closed with 1009, memory bounded',
    async (_name, fragments) => {
      const s = await startServer({ compression, maxPayloadBytes: 1024 * 1024 });
      const reasons: string[] = [];
      s.manager.on('disconnect', ({ reason }) => reasons.push(reason));
      const other = await openClient(s.url, { perMessageDeflate: true });
      const raw = await RawTcpClient.upgrade(s.port, '/ws', DEFLATE_OFFER);
      const body = bomb();
      expect(body.length).toBeLessThan(300 * 1024);
      globalThis.gc?.();
      const rssBefore = process.memoryUsage().rss;
      const step = Math.ceil(body.length / fragments);
      for (let i = 0; i < fragments; i++) {
        const last = i === fragments - 1;
        raw.send({
          opcode: i === 0 ? 1 : 0,
          rsv: i === 0 ? 4 : 0, // RSV1 on the first frame of the message
          fin: last,
          payload: body.subarray(i * step, (i + 1) * step),
        });
      }
      expect(await raw.waitClose()).toBe(1009);
      const rssGrowth = process.memoryUsage().rss - rssBefore;
      // The inflate stops at maxPayloadBytes: nowhere near the 256 MiB the frame would inflate to.
      expect(rssGrowth).toBeLessThan(64 * 1024 * 1024);
      await waitFor(() => reasons.includes('message-too-big'), 'disconnect reason');
      // Other connections are unaffected.
      const got = collect(other);
      s.manager.broadcast('still here');
      await waitFor(() => got.length === 1, 'other client');
      const end = closed(other);
      other.close();
      await end;
    },
    30_000,
  );
});
