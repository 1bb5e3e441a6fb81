import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeClientMessage } from '../../src/protocol/index.js';
import { matchHeartbeatFrame } from '../../src/server/session/heartbeat-frames.js';

/** What the server makes of a text frame: the fast path when it matches, else the full decoder. */
const decode = (text: string): unknown => matchHeartbeatFrame(Buffer.from(text)) ?? decodeClientMessage(text);

describe('matchHeartbeatFrame', () => {
  it('matches the bundled client heartbeat frames exactly as the JSON decoder decodes them', () => {
    fc.assert(
      fc.property(fc.constantFrom('pong', 'ack'), fc.maxSafeNat(), (t, s) => {
        const text = `{"t":"${t}","s":${s}}`;
        const fast = matchHeartbeatFrame(Buffer.from(text));
        expect(fast).toBeDefined();
        expect(fast).toStrictEqual(decodeClientMessage(text));
      }),
    );
    // Negative ones are left to the decoder, which refuses them as before.
    fc.assert(
      fc.property(fc.constantFrom('pong', 'ack'), fc.maxSafeInteger(), (t, s) => {
        const text = `{"t":"${t}","s":${s}}`;
        expect(decode(text)).toStrictEqual(decodeClientMessage(text));
        if (s < 0) expect(matchHeartbeatFrame(Buffer.from(text))).toBeUndefined();
      }),
    );
    for (const text of ['{"t":"ping"}', '{"t":"pong"}']) {
      expect(matchHeartbeatFrame(Buffer.from(text))).toStrictEqual(decodeClientMessage(text));
    }
    expect(matchHeartbeatFrame(Buffer.from(`{"t":"ack","s":${Number.MAX_SAFE_INTEGER}}`))).toEqual({
      t: 'ack',
      s: Number.MAX_SAFE_INTEGER,
    });
  });

  it('leaves every near miss to the decoder, whose answer stands', () => {
    const nearMisses = [
      '{"t":"ack","s":01}', // leading zero: not JSON
      '{"t":"ack","s":-1}',
      '{"t":"pong","s":1.5}',
      '{"t":"pong","s":1e3}',
      '{"t":"ack","s":9007199254740992}', // 2^53: not a safe integer
      '{"t":"ack","s":99999999999999999}',
      '{"t":"ack","s":}',
      '{"t":"ack"}',
      '{"t":"ack","s":"1"}',
      '{"t":"ack", "s":1}', // valid JSON with a space: the decoder accepts it
      ' {"t":"ping"}',
      '{"t":"ping","x":1}',
      '{"t":"pinG"}',
      '{"t":"pong","s":1}x',
      '{"t":"pong","s":1,"x":2}',
      '{"t":"ack","s":1}}',
    ];
    for (const text of nearMisses) {
      expect(matchHeartbeatFrame(Buffer.from(text)), text).toBeUndefined();
    }
    expect(decode('{"t":"ack", "s":1}')).toEqual({ t: 'ack', s: 1 });
    expect(decode('{"t":"ack","s":01}')).toEqual({ error: 'bad JSON' });
    expect(decode('{"t":"ack","s":9007199254740992}')).toEqual({ error: 'bad ack' });
  });

  it('agrees with the decoder on arbitrary mutations of heartbeat frames', () => {
    const frame = fc
      .tuple(fc.constantFrom('pong', 'ack'), fc.maxSafeNat())
      .map(([t, s]) => `{"t":"${t}","s":${s}}`);
    const mutated = fc
      .tuple(frame, fc.nat(), fc.integer({ min: 0, max: 2 }), fc.constantFrom(...'0123456789{}",:-. est'))
      .map(([text, at, op, ch]) => {
        const i = at % (text.length + 1);
        if (op === 0) return text.slice(0, i) + ch + text.slice(i); // insert
        if (op === 1) return text.slice(0, i) + text.slice(i + 1); // delete
        return text.slice(0, i) + ch + text.slice(i + 1); // replace
      });
    fc.assert(
      fc.property(mutated, (text) => {
        const fast = matchHeartbeatFrame(Buffer.from(text));
        if (fast !== undefined) expect(fast).toStrictEqual(decodeClientMessage(text));
        expect(decode(text)).toStrictEqual(decodeClientMessage(text));
      }),
      { numRuns: 2000 },
    );
  });

  it('matches a frame that is a view into a larger buffer (as ws may hand it over)', () => {
    const big = Buffer.from('xx{"t":"pong","s":42}yy');
    expect(matchHeartbeatFrame(big.subarray(2, big.length - 2))).toEqual({ t: 'pong', s: 42 });
  });
});
