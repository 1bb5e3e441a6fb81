import type { SessionOwner } from '../backends/types.js';
import { Payload, type PayloadRpc } from '../frames/payload.js';

/**
 * Payload encoding in Redis: one tag character and the body. `s` raw text (sent as given), `j` JSON text of a
 * value, `b` base64 bytes, `q` a request or reply. The decoded `Payload` frames exactly like the original on every node.
 */
export function encodePayload(payload: Payload): string {
  // A request or reply (never binary): `q`, its fields as JSON, a newline, the payload's JSON text.
  if (payload.rpc) return `q${JSON.stringify(payload.rpc)}\n${payload.json}`;
  if (payload.isBinary) return `b${(payload.plain as Buffer).toString('base64')}`;
  const text = payload.plain as string;
  // A JSON value's Payload has plain === json text; a raw string's json is the quoted string.
  return payload.json === text ? `j${text}` : `s${text}`;
}

export function decodePayload(enc: string): Payload {
  const body = enc.slice(1);
  switch (enc.charCodeAt(0)) {
    case 98: // b
      return new Payload(Buffer.from(body, 'base64'));
    case 106: // j
      return new Payload(JSON.parse(body) as object);
    case 113: {
      // q
      const at = body.indexOf('\n');
      return new Payload(
        JSON.parse(body.slice(at + 1)) as object,
        JSON.parse(body.slice(0, at)) as PayloadRpc,
      );
    }
    default:
      return new Payload(body);
  }
}

/** A session's creator as stored in its hash: principal `-` (none) or `+<principal>`, data as JSON or ''. */
export function encodeOwner(owner: SessionOwner): { principal: string; data: string } {
  let data = '';
  try {
    data = JSON.stringify(owner.data) ?? '';
  } catch {
    // not JSON-serializable (cycle, BigInt): other nodes see `undefined`
  }
  return { principal: owner.principal === undefined ? '-' : `+${owner.principal}`, data };
}

export function decodeOwner(principal: string, data: string): SessionOwner {
  let parsed: unknown;
  try {
    parsed = data === '' ? undefined : JSON.parse(data);
  } catch {
    parsed = undefined;
  }
  return { principal: principal.startsWith('+') ? principal.slice(1) : undefined, data: parsed };
}

/** A sequenced message for one session, as stored in its stream. */
export interface StoredEntry {
  seq: number;
  /** Redis clock (ms) when it was sequenced. */
  atMs: number;
  enc: string;
}

/** Parse the `seq, at, enc` triples that `claim` and `fetch` return from index `from` on. */
export function parseEntries(reply: unknown[], from: number): StoredEntry[] {
  const out: StoredEntry[] = [];
  for (let i = from; i + 2 < reply.length; i += 3) {
    out.push({ seq: Number(reply[i]), atMs: Number(reply[i + 1]), enc: String(reply[i + 2]) });
  }
  return out;
}

/** A message on a node's channel. */
export type NodeMessage =
  | {
      /** Direct send: sequenced (`s` = `[id, generation, seq]`) or to one socket as it is (`t`). */
      k: 'd';
      i: string;
      p: string;
      s?: Array<string | number>;
      t?: string;
      v?: 0 | 1;
    }
  | {
      /** Another node claimed (resumed) or replaced session `id` of generation `g`. */
      k: 'c';
      id: string;
      g: string;
    };

/** A channel message's JSON object; `undefined` for text that is not JSON or not an object. */
function parseJsonObject(text: string): Record<string, unknown> | undefined {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return undefined;
  }
  return typeof m === 'object' && m !== null ? (m as Record<string, unknown>) : undefined;
}

/** Parse a node-channel message; `undefined` for anything unexpected (logged by the caller). */
export function parseNodeMessage(text: string): NodeMessage | undefined {
  const o = parseJsonObject(text);
  if (!o) return undefined;
  // cjson encodes an empty Lua table as {}: normalise list fields.
  if (o.s !== undefined && !Array.isArray(o.s)) o.s = [];
  if (o.k === 'd' && typeof o.i === 'string' && typeof o.p === 'string') return o as NodeMessage;
  if (o.k === 'c' && typeof o.id === 'string' && typeof o.g === 'string') return o as NodeMessage;
  return undefined;
}

/** A reliable publication on a topic channel (or read from its stream): epoch, offset, Redis ms, payload, excluded. */
export interface TopicPublication {
  k: 'pub';
  e: string;
  o: number;
  a: number;
  p: string;
  /** Excluded ids as a JSON array, or '' for none. */
  x: string;
  /** The publish's random id ('' from an older node): two publications under one offset differ in it. */
  i: string;
}

/** A message on a topic channel. */
export type TopicMessage =
  | TopicPublication
  | { k: 'volatile'; p: string; x: string }
  | { k: 'presence'; change: 'join' | 'leave'; i: string; n: string };

/**
 * A reliable publication as the publish script sends it:
 * `#<epoch>\n<offset>\n<ms>\n<excluded>\n<id>\n<payload>`.
 */
function parsePublication(text: string): TopicPublication | undefined {
  const i1 = text.indexOf('\n');
  const i2 = text.indexOf('\n', i1 + 1);
  const i3 = text.indexOf('\n', i2 + 1);
  const i4 = text.indexOf('\n', i3 + 1);
  const i5 = text.indexOf('\n', i4 + 1);
  if (i1 < 0 || i2 < 0 || i3 < 0 || i4 < 0 || i5 < 0) return undefined;
  const o = Number(text.slice(i1 + 1, i2));
  const a = Number(text.slice(i2 + 1, i3));
  if (!Number.isSafeInteger(o) || !Number.isFinite(a)) return undefined;
  const x = text.slice(i3 + 1, i4);
  return { k: 'pub', e: text.slice(1, i1), o, a, p: text.slice(i5 + 1), x, i: text.slice(i4 + 1, i5) };
}

/** Parse a topic-channel message; `undefined` for anything unexpected. */
export function parseTopicMessage(text: string): TopicMessage | undefined {
  if (text.charCodeAt(0) === 35) return parsePublication(text);
  const o = parseJsonObject(text);
  if (!o) return undefined;
  const x = typeof o.x === 'string' ? o.x : '';
  if (typeof o.p === 'string') {
    if (o.v === 1) return { k: 'volatile', p: o.p, x };
    if (typeof o.e === 'string' && typeof o.o === 'number' && typeof o.a === 'number') {
      return { k: 'pub', e: o.e, o: o.o, a: o.a, p: o.p, x, i: typeof o.i === 'string' ? o.i : '' };
    }
    return undefined;
  }
  if ((o.k === 'j' || o.k === 'l') && typeof o.i === 'string' && typeof o.n === 'string') {
    return { k: 'presence', change: o.k === 'j' ? 'join' : 'leave', i: o.i, n: o.n };
  }
  return undefined;
}
