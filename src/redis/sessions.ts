import { randomBytes } from 'node:crypto';
import type { ReplayLimits } from '../backends/replay-buffer.js';
import type { SessionLookup, SessionOwner, SessionRecord } from '../backends/types.js';
import type { BackendHost } from '../server/storage-backend.js';
import { newSessionRecord } from '../backends/session-record.js';
import { CloseCode } from '../protocol/close-codes.js';
import type { Connection } from '../server/transport/connection.js';
import type { Payload } from '../frames/payload.js';
import { decodeOwner, decodePayload, parseEntries, parseNodeMessage } from './codec.js';
import { isEpochError, type RedisLink } from './link.js';

/** A session held by this node: the manager's record plus what the cluster needs to keep it in step with Redis. */
export interface LocalSession {
  readonly record: SessionRecord;
  /** Generation this node owns in Redis (random per create or claim); messages of another generation are stale. */
  g: string;
  /**
   * `live`: messages are applied as they arrive. `loading` (a claim is in flight) and `catching-up` (a fetch of
   * missed entries is in flight): arriving messages wait in `held`.
   */
  state: 'live' | 'loading' | 'catching-up';
  held: Array<{ seq: number; payload: Payload }>;
}

export const newGeneration = (): string => randomBytes(9).toString('base64url');

/**
 * Fill a record's topics from the session's topic hash in Redis, returned by `claim` as a JSON array
 * `[name, "<joinedAt> <epoch>", ...]` (each topic with the offset and epoch it was joined at).
 */
function loadTopics(r: SessionRecord, json: string): void {
  let flat: unknown;
  try {
    flat = JSON.parse(json);
  } catch {
    flat = [];
  }
  r.topics.clear();
  const epochs = (r.topicEpochs ??= new Map());
  epochs.clear();
  if (!Array.isArray(flat)) return;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const name = String(flat[i]);
    const v = String(flat[i + 1]);
    const sp = v.indexOf(' ');
    r.topics.set(name, Number(v.slice(0, sp)));
    epochs.set(name, v.slice(sp + 1));
  }
}

/**
 * This node's sessions and the one rule that keeps them exactly-once: a reliable message reaches a socket only
 * after Redis assigned its sequence (it arrives here through the node channel or a fetch), and it is applied only
 * as `lastSeq + 1`. A gap triggers a fetch of the missing entries from the session's stream before anything else.
 */
export class LocalSessions {
  readonly byId = new Map<string, LocalSession>();
  host: BackendHost | undefined;

  constructor(private readonly link: RedisLink) {}

  create(id: string, limits: ReplayLimits, incarnation: string, owner: SessionOwner = {}): LocalSession {
    const ls = this.make(id, limits, incarnation, owner);
    this.byId.set(id, ls);
    return ls;
  }

  private make(id: string, limits: ReplayLimits, incarnation: string, owner: SessionOwner): LocalSession {
    const record = newSessionRecord(id, limits, incarnation, owner);
    return { record, g: newGeneration(), state: 'live', held: [] };
  }

  /** The local session whose record is `session`, if this node still holds it. */
  of(session: SessionRecord): LocalSession | undefined {
    const ls = this.byId.get(session.id);
    return ls && ls.record === session ? ls : undefined;
  }

  /** Forget a session locally (no Redis write). A claim of it still in flight then fails as superseded. */
  forget(ls: LocalSession): void {
    ls.g = '';
    if (this.byId.get(ls.record.id) === ls) this.byId.delete(ls.record.id);
    this.host?.releaseSession(ls.record);
    ls.held = [];
  }

  /** The attached connection of a session on this node, if any. */
  connectionOf(ls: LocalSession): Connection | undefined {
    const conn = this.host?.connections.get(ls.record.id);
    return conn && conn.session === ls.record ? conn : undefined;
  }

  /**
   * Claim session `id` of `incarnation` in Redis for a resume here: take ownership (the previous owner hears
   * `claimed` and closes its socket), load its sequences and replay buffer. The record object is kept if this node
   * already held that incarnation. Another incarnation held here under the same id is left alone unless Redis
   * confirms that it is stale (then it is dropped like a claimed one).
   */
  async claim(
    id: string,
    incarnation: string,
    limits: ReplayLimits,
    ttlMs: number,
    tombstoneTtlMs: number,
  ): Promise<SessionLookup> {
    const known = this.byId.get(id);
    const same = known?.record.incarnation === incarnation ? known : undefined;
    // Listed at once when nothing else is, so that messages of the new generation wait in `held` meanwhile.
    const ls =
      same ?? (known ? this.make(id, limits, incarnation, {}) : this.create(id, limits, incarnation));
    const g = newGeneration();
    ls.g = g;
    ls.state = 'loading';
    ls.held = [];
    let reply: unknown[];
    try {
      const o = this.link.opts;
      reply = (await this.link.call('wssClaim', [
        id,
        o.nodeId,
        g,
        ttlMs,
        limits.maxAgeMs,
        tombstoneTtlMs,
        incarnation,
      ])) as unknown[];
    } catch (err) {
      if (ls.g === g) this.forget(ls);
      throw err;
    }
    if (ls.g !== g) return { found: false, reason: 'superseded' }; // another claim, or forgotten meanwhile
    if (reply[0] !== 'ok') {
      this.forget(ls);
      const reason = reply[0] === 'expired' || reply[0] === 'evicted' ? reply[0] : 'unknown-session';
      return { found: false, reason };
    }
    const stale = known !== undefined && known !== ls && this.byId.get(id) === known ? known : undefined;
    if (stale) {
      // Redis has moved on from the incarnation this node held (its `claimed` notice is still on the way).
      const conn = this.connectionOf(stale);
      this.forget(stale);
      conn?.close(CloseCode.Replaced, 'session replaced', 'replaced');
    }
    const r = ls.record;
    const owner = decodeOwner(String(reply[6]), String(reply[7]));
    r.principal = owner.principal;
    r.data = owner.data;
    const redisNow = Number(reply[5]);
    const localNow = this.host?.nowMs ?? Date.now();
    r.lastSeq = Number(reply[1]);
    r.lastClientSeq = Number(reply[2]);
    const b = r.buffer;
    b.clear();
    b.evictedThrough = 0;
    b.droppedThrough = 0;
    loadTopics(r, String(reply[8]));
    const entries = parseEntries(reply, 9);
    for (const e of entries)
      b.push({ seq: e.seq, payload: decodePayload(e.enc), atMs: localNow - (redisNow - e.atMs) });
    // What Redis no longer holds (acked, or evicted: `e`) is dropped here too, so a resume below it is a gap.
    const evicted = Number(reply[3]);
    b.evictedThrough = Math.max(b.evictedThrough, evicted);
    b.droppedThrough = Math.max(
      b.droppedThrough,
      evicted,
      entries.length > 0 ? entries[0]!.seq - 1 : r.lastSeq,
    );
    const detachedAt = reply[4] === '' ? redisNow : Number(reply[4]);
    r.detachedAtMs = localNow - (redisNow - detachedAt);
    this.byId.set(id, ls);
    this.host?.detachedSessions.add(r);
    this.goLive(ls);
    // Not listed during the claim: fetch what was published for its new generation meanwhile.
    if (known !== undefined && known !== ls) this.catchUp(ls);
    return { found: true, session: r };
  }

  /** A message on this node's channel: sequenced direct sends, plain or volatile sends, `claimed` notices. */
  dispatch(text: string): void {
    const host = this.host;
    const m = parseNodeMessage(text);
    if (!m)
      return void (host?.log ?? this.link.log).warn({ event: 'redis.bad-message' }, 'unexpected message');
    if (!host) return;
    if (m.k === 'c') return this.claimedElsewhere(m.id, m.g);
    const payload = decodePayload(m.p);
    if (m.s) return this.offer(String(m.s[0]), String(m.s[1]), Number(m.s[2]), payload);
    const conn = m.t === undefined ? undefined : host.connections.get(m.t);
    if (conn) this.write(conn, payload, m.v === 1);
  }

  /** An unsequenced write (plain socket, or volatile): a slow volatile consumer just misses it. */
  private write(conn: Connection, payload: Payload, volatile: boolean): void {
    const host = this.host!;
    const outcome = conn.writePayload(payload, undefined, host.nowMs);
    if (outcome === 'ok' || outcome === 'closed' || (outcome === 'slow' && volatile)) return;
    host.onWriteFailure(conn, outcome);
  }

  /** A sequenced message for session `id` of generation `g` arrived on this node's channel. */
  offer(id: string, g: string, seq: number, payload: Payload): void {
    const ls = this.byId.get(id);
    if (!ls || ls.g !== g) return; // not ours (any more): its owner delivers it
    if (ls.state !== 'live') {
      ls.held.push({ seq, payload });
      return;
    }
    const r = ls.record;
    if (seq <= r.lastSeq) return;
    if (seq === r.lastSeq + 1) return this.apply(ls, seq, payload);
    ls.held.push({ seq, payload });
    this.catchUp(ls);
  }

  private apply(ls: LocalSession, seq: number, payload: Payload): void {
    const r = ls.record;
    const host = this.host!;
    r.lastSeq = seq;
    r.buffer.push({ seq, payload, atMs: host.nowMs });
    const conn = this.connectionOf(ls);
    if (!conn) return;
    const outcome = conn.writePayload(payload, seq, host.nowMs);
    if (outcome !== 'ok' && outcome !== 'closed') host.onWriteFailure(conn, outcome);
  }

  /** Apply held messages in order; start a catch-up if one is still missing. */
  private goLive(ls: LocalSession): void {
    ls.state = 'live';
    const held = ls.held.sort((a, b) => a.seq - b.seq);
    ls.held = [];
    for (let i = 0; i < held.length; i++) {
      const m = held[i]!;
      if (m.seq <= ls.record.lastSeq) continue;
      if (m.seq === ls.record.lastSeq + 1) this.apply(ls, m.seq, m.payload);
      else {
        ls.held = held.slice(i);
        this.catchUp(ls);
        return;
      }
    }
  }

  /** Fetch the entries after `lastSeq` from the session's stream, then continue with what arrived meanwhile. */
  catchUp(ls: LocalSession): void {
    if (ls.state !== 'live') return;
    ls.state = 'catching-up';
    const g = ls.g;
    const after = ls.record.lastSeq;
    const o = this.link.opts;
    const maxAge = this.host?.config.replay.maxAgeMs ?? 300_000;
    this.link.call('wssFetch', [ls.record.id, g, after, maxAge]).then(
      (reply) => {
        if (ls.g !== g || this.byId.get(ls.record.id) !== ls) return;
        const r = reply as unknown[];
        if (r[0] !== 'ok') return this.lose(ls, 'session moved or ended');
        // Redis restored an older state (e.g. from an AOF that missed the last writes): never renumber.
        if (Number(r[1]) < ls.record.lastSeq) return this.lose(ls, 'redis history went backwards');
        for (const e of parseEntries(r, 4)) {
          if (e.seq <= ls.record.lastSeq) continue;
          if (e.seq !== ls.record.lastSeq + 1) return this.lose(ls, 'missed messages were evicted');
          this.apply(ls, e.seq, decodePayload(e.enc));
        }
        // Everything after `after` that still exists was returned: anything beyond lastSeq now was evicted.
        if (Number(r[1]) > ls.record.lastSeq) return this.lose(ls, 'missed messages were evicted');
        this.goLive(ls);
      },
      (err: unknown) => {
        if (ls.g !== g) return;
        ls.state = 'live'; // retried by the next resync (recovery) or the next gap
        if (!isEpochError(err))
          this.host?.log.warn({ event: 'redis.fetch-failed', nodeId: o.nodeId, err }, 'fetch failed');
      },
    );
  }

  /**
   * The session cannot continue here (evicted gap, claimed elsewhere, deleted): forget it and close its socket
   * with a retryable code; the resume then decides (`resumed` elsewhere, or `fresh` with a reason).
   */
  lose(ls: LocalSession, why: string): void {
    this.forget(ls);
    const conn = this.connectionOf(ls);
    this.host?.log.warn(
      { event: 'redis.session-lost', clientId: ls.record.id, why },
      `session dropped: ${why}`,
    );
    conn?.close(CloseCode.ServiceRestart, 'session moved, please resume', 'server-closed');
  }

  /** Another node resumed (or replaced) a session of ours: close our socket for it with 4501, forget it. */
  claimedElsewhere(id: string, g: string): void {
    const ls = this.byId.get(id);
    if (!ls || ls.g !== g) return;
    const conn = this.connectionOf(ls);
    this.forget(ls);
    conn?.close(CloseCode.Replaced, 'session resumed on another connection', 'replaced');
  }

  /** After missed messages or a stall: fetch what every live session may have missed. */
  resyncAll(): void {
    for (const ls of this.byId.values()) this.catchUp(ls);
  }

  /** Redis lost the history: every protocol socket of this node is closed with 1012, every session forgotten. */
  dropAll(): number {
    const all = [...this.byId.values()];
    for (const ls of all) {
      const conn = this.connectionOf(ls);
      this.forget(ls);
      conn?.close(CloseCode.ServiceRestart, 'session history lost, please reconnect', 'server-closed');
    }
    return all.length;
  }
}
