import { SUBPROTOCOL_MSGPACK } from '../protocol/messages.js';
import { MSGPACK_OPTIONS } from '../protocol/msgpack-options.js';

/** The MessagePack encoder and decoder of the `stabilizer.v1.msgpack` subprotocol (PROTOCOL.md §2.7). */
export interface MsgpackCodec {
  /** Encode a value (a payload, decoded from JSON: it holds no `undefined`). */
  pack(value: unknown): Buffer;
  /**
   * Encode a protocol message, leaving out fields that are `undefined` as JSON does (an absent optional field is
   * absent, never nil: the decoders refuse nil where they allow absence).
   */
  packMessage(message: object): Buffer;
  unpack(bytes: Uint8Array): unknown;
}

/** A copy of a protocol message (plain objects and arrays) without its `undefined` fields. */
function defined(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(defined);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = defined(v);
  return out;
}

/** `undefined`: not tried yet; `null`: msgpackr is not installed (or failed to load). */
let codec: MsgpackCodec | null | undefined;
let loading: Promise<MsgpackCodec | undefined> | undefined;

/** The codec if msgpackr has been loaded, else `undefined` (synchronous: for the subprotocol selection). */
export function loadedMsgpack(): MsgpackCodec | undefined {
  return codec ?? undefined;
}

/** Whether loading msgpackr has been attempted (successfully or not). */
export function msgpackSettled(): boolean {
  return codec !== undefined;
}

/**
 * Load msgpackr (an optional peer dependency) once, the first time a client offers `stabilizer.v1.msgpack`.
 * Resolves with `undefined`, never rejects, when it is not installed: the server then selects `stabilizer.v1`.
 */
export function loadMsgpack(): Promise<MsgpackCodec | undefined> {
  if (codec !== undefined) return Promise.resolve(codec ?? undefined);
  return (loading ??= import('msgpackr').then(
    (m) => {
      const packr = new m.Packr(MSGPACK_OPTIONS);
      const unpackr = new m.Unpackr(MSGPACK_OPTIONS);
      codec = {
        pack: (v) => packr.pack(v),
        packMessage: (m) => packr.pack(defined(m)),
        unpack: (b) => unpackr.unpack(b) as unknown,
      };
      return codec;
    },
    () => {
      codec = null;
      return undefined;
    },
  ));
}

/** Whether the upgrade request offers `stabilizer.v1.msgpack`. */
export function offersMsgpack(header: string | undefined): boolean {
  return header !== undefined && header.split(',').some((p) => p.trim() === SUBPROTOCOL_MSGPACK);
}
