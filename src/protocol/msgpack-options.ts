/**
 * The msgpackr options of `stabilizer.v1.msgpack` (PROTOCOL.md §2.7), shared by the server and the client codec so
 * the two can never drift: plain MessagePack as any implementation reads it (no msgpackr records), fixmaps where
 * they fit (one byte of header for a small map), `undefined` as nil, 64-bit integers as numbers (a sequence past
 * 2^53 is refused by the decoders).
 */
export const MSGPACK_OPTIONS = {
  useRecords: false,
  variableMapSize: true,
  encodeUndefinedAsNil: true,
  int64AsType: 'number',
} as const;
