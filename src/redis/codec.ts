import type { SessionOwner } from '../backends/types.js';
import { Payload, type PayloadRpc } from '../server/payload.js';

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
      /** Broadcast: `s` lists this node's sessions as `[id, generation, seq, ...]`; plain sockets get it too. */
      k: 'b';
      i: string;
      p: string;
      v: 0 | 1;
      x: string[];
      s: Array<string | number>;
    }
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

/** Parse a node-channel message; `undefined` for anything unexpected (logged by the caller). */
export function parseNodeMessage(text: string): NodeMessage | undefined {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof m !== 'object' || m === null) return undefined;
  const o = m as Record<string, unknown>;
  // cjson encodes an empty Lua table as {}: normalise list fields.
  if (o.s !== undefined && !Array.isArray(o.s)) o.s = [];
  if (o.x !== undefined && !Array.isArray(o.x)) o.x = [];
  if (o.k === 'b' && typeof o.i === 'string' && typeof o.p === 'string') return o as NodeMessage;
  if (o.k === 'd' && typeof o.i === 'string' && typeof o.p === 'string') return o as NodeMessage;
  if (o.k === 'c' && typeof o.id === 'string' && typeof o.g === 'string') return o as NodeMessage;
  return undefined;
}
