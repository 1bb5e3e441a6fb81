import { afterEach, describe, expect, it, vi } from 'vitest';
import { SUBPROTOCOL, SUBPROTOCOL_MSGPACK } from '../../src/protocol/index.js';
import {
  framePayload,
  inflateFrame,
  inflateFrameBytes,
  realisticJson,
  RSV1,
} from '../helpers/deflate-frames.js';
import { packr, unpackr } from '../helpers/raw-protocol.js';
import { RawTcpClient } from '../helpers/raw-tcp.js';
import { closeAllServers, startServer, waitFor } from '../helpers/server.js';

// permessage-deflate on `stabilizer.v1.msgpack` connections: the MessagePack data frames of a publication are
// deflated once (their own variant, next to the JSON one) and the same compressed bytes reach every such member.

afterEach(closeAllServers);

const compression = { enabled: true } as const;
const DEFLATE = 'permessage-deflate; client_max_window_bits';
const FIN_RSV1_BINARY = 0x80 | RSV1 | 2;

async function msgpackRaw(port: number, deflate: boolean): Promise<RawTcpClient> {
  const headers: Record<string, string> = { 'Sec-WebSocket-Protocol': SUBPROTOCOL_MSGPACK };
  if (deflate) headers['Sec-WebSocket-Extensions'] = DEFLATE;
  const r = await RawTcpClient.upgrade(port, '/ws', headers);
  r.send({ opcode: 2, payload: packr.pack({ t: 'hello', v: 1 }) });
  await waitFor(() => r.frames.some((f) => decode(f).t === 'welcome'), 'msgpack welcome');
  return r;
}

async function jsonRaw(port: number): Promise<RawTcpClient> {
  const r = await RawTcpClient.upgrade(port, '/ws', {
    'Sec-WebSocket-Protocol': SUBPROTOCOL,
    'Sec-WebSocket-Extensions': DEFLATE,
  });
  r.sendText(JSON.stringify({ t: 'hello', v: 1 }));
  await waitFor(() => r.texts.some((t) => t.includes('"welcome"')), 'json welcome');
  return r;
}

/** A MessagePack server frame, inflated first if it is compressed. */
function decode(frame: Buffer): Record<string, unknown> {
  const bytes = frame[0]! & RSV1 ? inflateFrameBytes(frame) : framePayload(frame);
  return unpackr.unpack(bytes) as Record<string, unknown>;
}

/** The data frames (`t: 'd'`) a MessagePack client got, as on the wire. */
const dataFrames = (r: RawTcpClient): Buffer[] => r.frames.filter((f) => decode(f).t === 'd');

describe('permessage-deflate with MessagePack', () => {
  it('a broadcast is deflated once per encoding: every msgpack+deflate member gets the same compressed bytes', async () => {
    const s = await startServer({ compression });
    const deflate = vi.spyOn(s.manager.compressor!, 'deflate');
    const packed = await Promise.all([1, 2, 3].map(() => msgpackRaw(s.port, true)));
    const packedPlain = await msgpackRaw(s.port, false);
    const json = await jsonRaw(s.port);
    const message = realisticJson(2048);
    s.manager.broadcast(message);
    await waitFor(
      () => [...packed, packedPlain].every((r) => dataFrames(r).length === 1) && json.frames.length === 2,
      'one broadcast each',
    );
    const first = dataFrames(packed[0]!)[0]!;
    expect(first[0]).toBe(FIN_RSV1_BINARY);
    for (const r of packed) expect(dataFrames(r)[0]!.equals(first)).toBe(true);
    expect(decode(first)).toEqual({ t: 'd', c: '$all', o: 1, p: message });
    // Smaller than the uncompressed MessagePack frame the member without the extension got.
    const uncompressed = dataFrames(packedPlain)[0]!;
    expect(uncompressed[0]).toBe(0x82);
    expect(decode(uncompressed)).toEqual({ t: 'd', c: '$all', o: 1, p: message });
    expect(first.length).toBeLessThan(uncompressed.length * 0.75); // MessagePack is compact already
    // The JSON member got the JSON variant, compressed too.
    const jsonFrame = json.frames[1]!;
    expect(jsonFrame[0]).toBe(0x80 | RSV1 | 1);
    expect(JSON.parse(inflateFrame(jsonFrame))).toEqual({ t: 'd', c: '$all', o: 1, p: message });
    expect(deflate).toHaveBeenCalledTimes(2); // one per encoding (MessagePack, JSON), not per socket

    // Volatile: deflated once as well, the same bytes for both msgpack+deflate members of the topic.
    for (const r of packed.slice(0, 2))
      s.manager.join([...s.manager.connections.keys()][packed.indexOf(r)]!, 'v');
    await waitFor(() => packed.slice(0, 2).every((r) => r.frames.some((f) => decode(f).t === 'sub')), 'subs');
    s.manager.publish('v', realisticJson(3000, 2), { volatile: true });
    await waitFor(() => packed.slice(0, 2).every((r) => dataFrames(r).length === 2), 'volatile');
    const v = dataFrames(packed[0]!)[1]!;
    expect(v[0]).toBe(FIN_RSV1_BINARY);
    expect(dataFrames(packed[1]!)[1]!.equals(v)).toBe(true);
    expect(decode(v)).toEqual({ t: 'd', c: 'v', p: realisticJson(3000, 2) });
    expect(deflate).toHaveBeenCalledTimes(3);
    for (const r of [...packed, packedPlain, json]) r.destroy();
  });

  it('direct messages to a msgpack+deflate client are compressed (reliable and volatile)', async () => {
    const s = await startServer({ compression });
    const r = await msgpackRaw(s.port, true);
    const id = [...s.manager.connections.keys()][0]!;
    const message = realisticJson(2500, 3);
    s.manager.sendToClient(id, message);
    s.manager.sendToClient(id, message, { volatile: true });
    await waitFor(() => dataFrames(r).length === 2, 'two direct messages');
    const [reliable, volatile] = dataFrames(r) as [Buffer, Buffer];
    expect(reliable[0]).toBe(FIN_RSV1_BINARY);
    expect(decode(reliable)).toEqual({ t: 'd', s: 1, p: message });
    expect(volatile[0]).toBe(FIN_RSV1_BINARY);
    expect(decode(volatile)).toEqual({ t: 'd', p: message });
    r.destroy();
  });

  it('a large publication is deflated off the event loop once for the MessagePack members, in topic order', async () => {
    const s = await startServer({ compression: { enabled: true, asyncThresholdBytes: 8192 } });
    const deflateAsync = vi.spyOn(s.manager.compressor!, 'deflateAsync');
    const packed = await Promise.all([1, 2].map(() => msgpackRaw(s.port, true)));
    const big = realisticJson(40_000, 7);
    const sent = [big, { n: 1 }, realisticJson(2000, 8)];
    for (const m of sent) s.manager.broadcast(m);
    await waitFor(() => packed.every((r) => dataFrames(r).length === 3), 'all three');
    for (const r of packed) {
      const frames = dataFrames(r);
      expect(frames[0]![0]).toBe(FIN_RSV1_BINARY);
      expect(frames[0]!.equals(dataFrames(packed[0]!)[0]!)).toBe(true);
      expect(frames.map((f) => decode(f).p)).toEqual(sent);
    }
    expect(deflateAsync).toHaveBeenCalledTimes(1);
    for (const r of packed) r.destroy();
  });
});
