import { constants as zlibConstants, deflateRaw, deflateRawSync, type ZlibOptions } from 'node:zlib';
import * as wsModule from 'ws';
import type { PerMessageDeflateOptions } from 'ws';
import type { DeflatedFrames } from '../../frames/payload.js';

/**
 * permessage-deflate (RFC 7692), paid once per broadcast: a publication is deflated once and framed once, and
 * every connection that negotiated the extension gets the same compressed frame (see README "Compression").
 * Only offers the shared compressor can serve are accepted: the server always answers
 * `server_no_context_takeover` and `server_max_window_bits=serverMaxWindowBits`; an offer that asks for a smaller
 * server window is declined, and that client gets uncompressed frames.
 */
export interface CompressionConfig {
  /**
   * Negotiate permessage-deflate with clients that offer it (browsers always do; `ws` clients by default).
   * @default false
   */
  enabled?: boolean;
  /**
   * Payloads smaller than this (bytes of the application payload) are sent uncompressed: below about 1 KB,
   * realistic JSON shrinks little and the deflate costs more than the bytes it saves.
   * @default 1024
   */
  thresholdBytes?: number;
  /**
   * zlib level, 1 (fastest) to 9 (smallest). Level 1 keeps the deflate of a 16 KB JSON message at about half the
   * CPU of level 6, for about 15% more bytes.
   * @default 1
   */
  level?: number;
  /**
   * The LZ77 window (9-15) of every compressed frame, announced as `server_max_window_bits`. A client offer with a
   * smaller `server_max_window_bits` is declined.
   * @default 15
   */
  serverMaxWindowBits?: number;
  /**
   * zlib memory level (1-9) of the deflate.
   * @default 8
   */
  memLevel?: number;
  /**
   * Payloads of at least this many bytes are deflated in zlib's thread pool instead of on the event loop; until
   * it is done, later publications to the same topic wait behind it, so every member keeps the topic's order.
   * Measured with `bench/deflate-threshold.mjs` (realistic JSON, level 1): up to 8 KB an inline deflate costs the
   * event loop less than handing it to the pool (tens of µs against ~0.1 ms); from 16 KB on the pool costs it
   * less, and at 32 KB an inline deflate blocks it for about 1 ms against ~0.1 ms.
   * @default 16384
   */
  asyncThresholdBytes?: number;
}

/**
 * permessage-deflate paid once per message for all recipients (RFC 7692). With `server_no_context_takeover` every
 * message is deflated on its own, so with the same window one compressed payload is valid on every connection
 * that negotiated those settings: it is deflated once, framed once with RSV1 set, and written to each of them as
 * the uncompressed path writes its shared frame.
 */

export type { DeflatedFrames };

/** Anything that caches deflated frames: a `Payload` or a `Publication`. */
export interface DeflateCache {
  deflated: DeflatedFrames | undefined;
}

const FIN_RSV1_TEXT = 0xc1;
const FIN_RSV1_BINARY = 0xc2;
/** The empty stored block a sync flush ends with; RFC 7692 §7.2.1 has the sender remove it. */
const FLUSH_TAIL_BYTES = 4;

/** Deflates shared frames for the connections that negotiated permessage-deflate. One per manager. */
export class FrameCompressor {
  readonly thresholdBytes: number;
  readonly asyncThresholdBytes: number;
  readonly windowBits: number;
  private readonly zlibOptions: ZlibOptions;

  constructor(config: Required<CompressionConfig>) {
    this.thresholdBytes = config.thresholdBytes;
    this.asyncThresholdBytes = config.asyncThresholdBytes;
    this.windowBits = config.serverMaxWindowBits;
    this.zlibOptions = {
      level: config.level,
      memLevel: config.memLevel,
      windowBits: config.serverMaxWindowBits,
      finishFlush: zlibConstants.Z_SYNC_FLUSH,
    };
  }

  /** Whether a payload of `bytes` is deflated on the event loop when a recipient needs it. */
  syncSize(bytes: number): boolean {
    return bytes >= this.thresholdBytes && bytes < this.asyncThresholdBytes;
  }

  /** The raw deflate of `body` without the `00 00 FF FF` tail, on the event loop. */
  deflate(body: Buffer): Buffer {
    const out = deflateRawSync(body, this.zlibOptions);
    return out.subarray(0, out.length - FLUSH_TAIL_BYTES);
  }

  /** {@link deflate} in zlib's thread pool; `undefined` if zlib failed (the message then goes uncompressed). */
  deflateAsync(body: Buffer, done: (deflated: Buffer | undefined) => void): void {
    deflateRaw(body, this.zlibOptions, (err, out) => {
      done(err ? undefined : out.subarray(0, out.length - FLUSH_TAIL_BYTES));
    });
  }

  /**
   * The cached deflated frame `variant` of a shared message (`body`, `bytes` long), deflated now if it is of a
   * size deflated on the event loop. `undefined`: send the uncompressed frame (too small, not smaller once
   * deflated, or large and not deflated off the loop yet).
   */
  frameFor(
    cache: DeflateCache,
    variant: string,
    bytes: number,
    body: string | Buffer,
    isBinary: boolean,
  ): Buffer | undefined {
    if (bytes < this.thresholdBytes) return undefined;
    const known = cache.deflated?.get(variant);
    if (known !== undefined) return known ?? undefined;
    if (bytes >= this.asyncThresholdBytes) return undefined;
    const raw = typeof body === 'string' ? Buffer.from(body) : body;
    const built = compressedFrame(this.deflate(raw), raw.length, isBinary);
    (cache.deflated ??= new Map()).set(variant, built);
    return built ?? undefined;
  }

  /** Deflate `variant` off the event loop into `cache`, then call `done`. */
  fillAsync(
    cache: DeflateCache,
    variant: string,
    body: string | Buffer,
    isBinary: boolean,
    done: () => void,
  ): void {
    const raw = typeof body === 'string' ? Buffer.from(body) : body;
    this.deflateAsync(raw, (deflated) => {
      const built = deflated ? compressedFrame(deflated, raw.length, isBinary) : null;
      (cache.deflated ??= new Map()).set(variant, built);
      done();
    });
  }
}

/** One frame (FIN, RSV1, text or binary) around a deflated payload; `null` if it is not smaller than `rawBytes`. */
export function compressedFrame(deflated: Buffer, rawBytes: number, isBinary: boolean): Buffer | null {
  const length = deflated.length;
  if (length >= rawBytes) return null;
  const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const out = Buffer.allocUnsafe(header + length);
  out[0] = isBinary ? FIN_RSV1_BINARY : FIN_RSV1_TEXT;
  if (length < 126) out[1] = length;
  else if (length < 65536) {
    out[1] = 126;
    out.writeUInt16BE(length, 2);
  } else {
    out[1] = 127;
    out.writeUInt16BE(0, 2);
    out.writeUIntBE(length, 4, 6);
  }
  deflated.copy(out, header);
  return out;
}

// ------------------------------------------------------------------ negotiation

/** `ws`'s `Sec-WebSocket-Extensions` parser and formatter (exported by ws, not in its type definitions). */
interface WsExtensionCodec {
  parse(header: string): Record<string, Array<Record<string, Array<string | true>>>>;
  format(extensions: Record<string, Array<Record<string, Array<string | true>>>>): string;
}
const codec = (wsModule as unknown as { extension: WsExtensionCodec }).extension;

const WINDOW_PARAMS = new Set(['client_max_window_bits', 'server_max_window_bits']);
const FLAG_PARAMS = new Set(['client_no_context_takeover', 'server_no_context_takeover']);

function windowBitsValue(value: string | true | undefined): number | undefined {
  if (typeof value !== 'string' || !/^\d{1,2}$/.test(value)) return undefined;
  const bits = Number(value);
  return bits >= 8 && bits <= 15 ? bits : undefined;
}

/** Whether one permessage-deflate offer can be served by frames deflated with `windowBits`. */
function servable(params: Record<string, Array<string | true>>, windowBits: number): boolean {
  for (const [key, values] of Object.entries(params)) {
    if (values.length !== 1) return false;
    const value = values[0];
    if (FLAG_PARAMS.has(key)) {
      if (value !== true) return false;
    } else if (WINDOW_PARAMS.has(key)) {
      if (key === 'client_max_window_bits' && value === true) continue;
      const bits = windowBitsValue(value);
      if (bits === undefined) return false;
      // Our frames need a client window of at least `windowBits` to inflate.
      if (key === 'server_max_window_bits' && bits < windowBits) return false;
    } else {
      return false;
    }
  }
  return true;
}

/**
 * The `Sec-WebSocket-Extensions` header to hand to `ws`: the first permessage-deflate offer the shared compressor
 * can serve, alone, or `undefined` to decline (no offer, none servable, or a header that does not parse). Declined
 * clients connect as before, with uncompressed frames; `ws` never sees an offer it would refuse with 400.
 */
export function servableDeflateOffer(header: string | undefined, windowBits: number): string | undefined {
  if (header === undefined) return undefined;
  let offers;
  try {
    offers = codec.parse(header)['permessage-deflate'];
  } catch {
    return undefined;
  }
  const offer = offers?.find((params) => servable(params, windowBits));
  return offer ? codec.format({ 'permessage-deflate': [offer] }) : undefined;
}

/**
 * `ws` server options for the negotiation: always `server_no_context_takeover` and the fixed window, so that one
 * deflated frame is valid on every such connection. `ws` itself never compresses (the threshold is out of reach):
 * every compressed frame is one of ours, written directly and in order with the uncompressed ones. Inbound
 * compressed frames are inflated by `ws`, with `maxPayload` applied to the inflated size.
 */
export function wsDeflateOptions(config: Required<CompressionConfig>): PerMessageDeflateOptions {
  return {
    serverNoContextTakeover: true,
    serverMaxWindowBits: config.serverMaxWindowBits,
    threshold: Number.MAX_SAFE_INTEGER,
  };
}
