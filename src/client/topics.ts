import {
  ErrorCode,
  isTopicName,
  type FreshReason,
  type TopicState,
  type UnsubMessage,
} from '../protocol/index.js';
import { ClientError } from './errors.js';
import type { ClientEvents, ClientState } from './options.js';

type Events = ClientEvents<unknown>;
type Settle = (v: number | ClientError) => void;

/**
 * The client's side of topics (PROTOCOL.md §2.6) and what it needs from the client. Plain functions over this
 * state rather than a class, so that the minifier can shorten their names (the client has a size budget).
 */
export interface Topics {
  /** Topic → position (highest offset received in order), for every topic the client is in. */
  p: Map<string, number>;
  /** Topics the application subscribed itself: kept across sessions, subscribed again on a fresh one. */
  n: Set<string>;
  /** Pending `subscribe()` promises per topic. */
  s: Map<string, Settle[]>;
  /** Topics the application unsubscribed whose `unsub` answer has not arrived. */
  u: Set<string>;
  /** Writes a frame to the socket. */
  w(frame: string): unknown;
  /** Emits a client event. */
  e<K extends keyof Events>(event: K, arg: Events[K]): void;
  /** Reports a protocol violation by the server. */
  v(reason: string): void;
}

const frame = (t: 'sub' | 'unsub', c: string) => JSON.stringify({ t, c });

const settle = (t: Topics, c: string, v: number | ClientError): void => {
  for (const f of t.s.get(c) ?? []) f(v);
  t.s.delete(c);
};

/** `StabilizerClient.subscribe`. While not `open` (welcomed), the `sub` waits for the next welcome. */
export function subscribe(t: Topics, c: string, st: ClientState): Promise<number> {
  const p = new Promise<number>((ok, no) => {
    if (!isTopicName(c) || c[0] === '$') throw new ClientError(ErrorCode.InvalidTopic, 'invalid topic name');
    if (st === 'closed') throw new ClientError(ErrorCode.ClientClosed, 'client is closed');
    t.n.add(c);
    const o = t.p.get(c);
    const leaving = t.u.has(c);
    if (o !== undefined && !leaving) return ok(o);
    let q = t.s.get(c);
    if (!q) {
      t.s.set(c, (q = []));
      // While an unsub is in flight, the sub goes after its answer (see `left`).
      if (st === 'open' && !leaving) t.w(frame('sub', c));
    }
    q.push((v) => (typeof v === 'number' ? ok(v) : no(v)));
  });
  p.catch(() => {});
  return p;
}

/** `StabilizerClient.unsubscribe`. */
export function unsubscribe(t: Topics, c: string, open: boolean): void {
  t.n.delete(c);
  // `$` topics are the server's: leaving one would be refused, and its messages dropped meanwhile
  if (c[0] === '$' || t.u.has(c) || !(t.p.has(c) || t.s.has(c))) return;
  t.u.add(c);
  if (open) t.w(frame('unsub', c));
}

/**
 * After a welcome: takes its topics as the positions, subscribes again where needed and sends the unsubscribes
 * made offline. Returns the events to emit (after the session's own).
 */
export function welcome(t: Topics, list: TopicState[] = [], resumed: boolean, reason?: FreshReason) {
  const { p: old, n: want, s: subs, u: unsubs, e } = t;
  const pos = (t.p = new Map(list.map((s) => [s.c, s.o])));
  const out = list.map((s) => {
    settle(t, s.c, s.o); // the server had our sub before the drop
    // A topic the client learns here (the server joined it while away, or had our sub): `subscribed` first.
    const added = !old.has(s.c) && s.c[0] !== '$';
    return () => {
      if (added) e('subscribed', { topic: s.c, offset: s.o });
      e('stream', { topic: s.c, resume: s.resume, reason: s.reason });
    };
  });
  for (const c of old.keys()) {
    if (pos.has(c)) continue;
    // Our unsub took effect; or a fresh session forgot the app's subscription; or the server made us leave.
    const why = unsubs.delete(c) ? 'client' : !resumed && want.has(c) ? 0 : 'server';
    if (why === 'server') want.delete(c);
    out.push(() =>
      why ? e('unsubscribed', { topic: c, reason: why }) : e('stream', { topic: c, resume: 'fresh', reason }),
    );
  }
  for (const c of unsubs) if (!pos.has(c) && !subs.has(c)) unsubs.delete(c);
  for (const c of new Set([...want, ...subs.keys()])) if (!pos.has(c)) t.w(frame('sub', c));
  for (const c of unsubs) t.w(frame('unsub', c));
  return out;
}

/**
 * A publication or `skip` with offset `o` (none: volatile) on topic `c`. Returns whether to deliver it: not a
 * duplicate, and not from a topic the app is leaving. A jump or a topic the client is not in is a violation.
 */
export function step(t: Topics, c: string, o?: number): boolean {
  const at = t.p.get(c);
  if (at === undefined) t.v('not in topic');
  else if (o === undefined || o === at + 1) {
    if (o) t.p.set(c, o);
    return !t.u.has(c);
  } else if (o > at) t.v(`topic offset gap: ${o} after ${at}`);
  return false;
}

/** The server's `sub`: the client is in `c` from offset `o` on. */
export function joined(t: Topics, c: string, o: number): void {
  if (!t.p.has(c)) {
    t.p.set(c, o);
    t.e('subscribed', { topic: c, offset: o });
  }
  settle(t, c, t.p.get(c)!);
}

/** The server's `unsub`: a leave (the answer to ours, or the server's), or with `code` a refused subscribe. */
export function left(t: Topics, { c, code, message }: UnsubMessage): void {
  const mine = t.u.delete(c);
  if (code) {
    t.n.delete(c);
    settle(t, c, new ClientError(code as ErrorCode, message ?? code));
  } else {
    if (!t.p.delete(c)) return;
    if (!mine) t.n.delete(c);
    else if (t.n.has(c)) t.w(frame('sub', c)); // subscribed again while leaving
  }
  t.e('unsubscribed', {
    topic: c,
    reason: code ? 'refused' : mine ? 'client' : 'server',
    code: code as ErrorCode | undefined,
  });
}

/** The client closed: rejects every pending subscribe; those topics are no longer wanted. */
export function fail(t: Topics, err: ClientError): void {
  for (const c of t.s.keys()) {
    t.n.delete(c);
    settle(t, c, err);
  }
}
