import type { DataMessage, DecodeFailure } from './messages.js';
import { isSeq, isTopicName } from './topics.js';

/**
 * Binary data frames: byte 0 is the kind. Direct: then (reliable only) the sequence as a float64 big-endian.
 * Topic: then (reliable only) the offset as a float64 big-endian, one byte with the topic name's UTF-8 length,
 * and the name. The payload is the rest.
 */
export const BinaryKind = { Reliable: 1, Volatile: 2, TopicReliable: 3, TopicVolatile: 4 } as const;

/** Encode a binary data message: `[kind][seq:f64be if reliable][payload]`. */
export function encodeBinaryData(payload: Uint8Array, seq?: number): Uint8Array {
  const headerBytes = seq === undefined ? 1 : 9;
  const out = new Uint8Array(headerBytes + payload.byteLength);
  const view = new DataView(out.buffer);
  if (seq === undefined) out[0] = BinaryKind.Volatile;
  else {
    out[0] = BinaryKind.Reliable;
    view.setFloat64(1, seq);
  }
  out.set(payload, headerBytes);
  return out;
}

/** Decode a binary data frame. The payload is a view into `frame`, not a copy. */
export function decodeBinaryData(frame: Uint8Array): DataMessage<Uint8Array> | DecodeFailure {
  const kind = frame[0];
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  if (kind === BinaryKind.Volatile) return { t: 'd', p: frame.subarray(1) };
  if (kind === BinaryKind.TopicReliable || kind === BinaryKind.TopicVolatile) {
    const at = kind === BinaryKind.TopicReliable ? 9 : 1;
    const nameBytes = frame[at];
    if (nameBytes === undefined || frame.byteLength < at + 1 + nameBytes) return { error: 'bad binary' };
    const c = new TextDecoder().decode(frame.subarray(at + 1, at + 1 + nameBytes));
    if (!isTopicName(c)) return { error: 'bad topic' };
    const p = frame.subarray(at + 1 + nameBytes);
    if (kind === BinaryKind.TopicVolatile) return { t: 'd', c, p };
    const o = view.getFloat64(1);
    return isSeq(o) ? { t: 'd', c, o, p } : { error: 'bad offset' };
  }
  if (kind === BinaryKind.Reliable && frame.byteLength >= 9) {
    const s = view.getFloat64(1);
    if (!isSeq(s)) return { error: 'bad sequence' };
    return { t: 'd', s, p: frame.subarray(9) };
  }
  return { error: 'bad binary' };
}
