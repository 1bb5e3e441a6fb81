import { encodeBinaryData } from '../protocol/index.js';

/** A payload that `send` and `sendVolatile` write as a binary frame (any `ArrayBufferView` works too). */
export type BinaryPayload = Uint8Array | ArrayBuffer;

/** The bytes of binary data (a view, not a copy), or `undefined` for anything else. */
export const toBytes = (data: unknown): Uint8Array | undefined =>
  data instanceof ArrayBuffer
    ? new Uint8Array(data)
    : ArrayBuffer.isView(data)
      ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
      : undefined;

/**
 * The `hello` (PROTOCOL.md §2.1). The session id goes with its token; JSON drops them while undefined, the
 * topics while there are none, and `auth` while undefined.
 */
export function helloFrame(
  token: string | undefined,
  sessionId: string | undefined,
  lastSeq: number,
  topics: Map<string, number>,
  auth?: unknown,
): string {
  return JSON.stringify({
    t: 'hello',
    v: 1,
    token,
    sessionId,
    lastSeq,
    topics: topics.size ? Object.fromEntries(topics) : undefined,
    auth,
  });
}

/**
 * A data frame (PROTOCOL.md §2.2): binary for binary payloads, else `{"t":"d","s":seq,"p":…}` text.
 * Reliable when `seq` is given; `fields` (request/reply fields, §2.8, JSON text such as `,"q":3`) follow `p`.
 * @throws TypeError when the payload is not JSON-serialisable (`undefined`, a function, a cycle, a BigInt).
 */
export function dataFrame(payload: unknown, seq?: number, fields = ''): string | Uint8Array {
  const bytes = toBytes(payload);
  if (bytes) return encodeBinaryData(bytes, seq);
  const json = JSON.stringify(payload) as string | undefined;
  if (json === undefined) throw new TypeError('payload is not JSON-serialisable');
  return `{"t":"d",${seq === undefined ? '' : `"s":${seq},`}"p":${json}${fields}}`;
}

/** The same frame with another sequence number. Binary frames are changed in place. */
export function renumber(frame: string | Uint8Array, seq: number): string | Uint8Array {
  if (typeof frame === 'string') return frame.replace(/"s":\d+/, `"s":${seq}`);
  new DataView(frame.buffer, frame.byteOffset).setFloat64(1, seq);
  return frame;
}

/** Size of a frame on the wire: UTF-8 bytes for text (`TextEncoder` rather than a loop: fewer bundle bytes). */
export const frameBytes = (frame: string | Uint8Array): number =>
  (typeof frame === 'string' ? new TextEncoder().encode(frame) : frame).byteLength;
