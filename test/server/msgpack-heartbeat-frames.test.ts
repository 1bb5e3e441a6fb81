import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeClientMessage } from '../../src/protocol/index.js';
import { matchMsgpackHeartbeat } from '../../src/server/session/heartbeat-frames.js';
import { msgpackCodec } from '../../src/client/msgpack.js';
import { packr, unpackr } from '../helpers/raw-protocol.js';

/** The full decoder's answer for a MessagePack frame (what the server does when the fast path does not match). */
const full = (bytes: Uint8Array): unknown => decodeClientMessage(unpackr.unpack(bytes) as unknown);

/** The bytes the bundled client writes for a JSON frame on a MessagePack socket. */
const codec = msgpackCodec();
const ws = { protocol: 'stabilizer.v1.msgpack' } as never;
const clientBytes = (json: string): Buffer => Buffer.from(codec.e(json, ws) as Uint8Array);

describe('matchMsgpackHeartbeat', () => {
  it("matches the bundled client's ping, pong and ack frames exactly as the full decoder decodes them", () => {
    fc.assert(
      fc.property(fc.constantFrom('pong', 'ack'), fc.integer({ min: 0, max: 2 ** 32 - 1 }), (t, s) => {
        const bytes = clientBytes(`{"t":"${t}","s":${s}}`);
        const fast = matchMsgpackHeartbeat(bytes);
        expect(fast).toBeDefined();
        expect(fast).toStrictEqual(full(bytes));
      }),
    );
    for (const json of ['{"t":"ping"}', '{"t":"pong"}']) {
      const bytes = clientBytes(json);
      expect(matchMsgpackHeartbeat(bytes)).toStrictEqual(full(bytes));
    }
  });

  it('leaves everything else to the decoder (whose answer stands): other spellings, floats, negatives, extras', () => {
    const others = [
      packr.pack({ t: 'ack', s: 2 ** 40 }), // float64 in msgpackr
      packr.pack({ t: 'ack', s: -1 }),
      packr.pack({ t: 'ack', s: 1.5 }),
      packr.pack({ s: 1, t: 'ack' }),
      packr.pack({ t: 'ack', s: 1, x: 1 }),
      packr.pack({ t: 'ack' }),
      Buffer.concat([packr.pack({ t: 'ack', s: 1 }), Buffer.from([0])]),
      Buffer.from([0x82, 0xa1, 0x74, 0xa3, 0x61, 0x63, 0x6b, 0xa1, 0x73, 0xcd, 0x01]), // uint16 cut short
      Buffer.from([0x82, 0xa1, 0x74, 0xa3, 0x61, 0x63, 0x6b, 0xa1, 0x73, 0xcf, 0, 0, 0, 0, 0, 0, 0, 1]), // uint64
    ];
    for (const bytes of others) expect(matchMsgpackHeartbeat(bytes)).toBeUndefined();
    // A uint64 spelling is still a valid ack for the full decoder.
    expect(full(others[8]!)).toEqual({ t: 'ack', s: 1 });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), (bytes) => {
        const fast = matchMsgpackHeartbeat(Buffer.from(bytes));
        if (fast === undefined) return;
        expect(fast).toStrictEqual(full(bytes));
      }),
    );
  });
});
