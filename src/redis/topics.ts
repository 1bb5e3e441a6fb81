import { randomBytes } from 'node:crypto';
import type { SessionRecord } from '../backends/types.js';
import type { BackendHost } from '../server/storage-backend.js';
import { CloseCode } from '../protocol/close-codes.js';
import { BROADCAST_TOPIC } from '../protocol/messages.js';
import { Publication } from '../server/topics/publication.js';
import type { Topic } from '../server/topics/topics.js';
import { decodePayload, parseTopicMessage, type TopicPublication } from './codec.js';
import type { RedisLink } from './link.js';
import type { PresenceEvent } from './options.js';
import { topicKeys, type TopicKeys } from './topic-scripts.js';

/** A topic this node follows: subscribed to its channel, its local `Topic` kept in step with its Redis stream. */
interface Followed {
  readonly name: string;
  readonly keys: TopicKeys;
  /** The manager's topic; `undefined` for `$all` until the backend is bound. */
  topic: Topic | undefined;
  epoch: string | undefined;
  /**
   * `live`: publications are applied as they arrive. `loading` (first read of the stream) and `catching-up` (a
   * read of a hole): arriving publications wait in `held`.
   */
  state: 'loading' | 'live' | 'catching-up';
  held: TopicPublication[];
  /** An offset known to be taken in `epoch` (a resuming session's join offset), for the next read's check. */
  floor?: number | undefined;
  /** Settles when the first load is done (or failed). */
  ready: Promise<void> | undefined;
  /**
   * The topic's offset and epoch in Redis when this node started following it, read before the load (members
   * that join while it loads start there); settles before `ready`.
   */
  base: Promise<{ offset: number; epoch: string } | undefined> | undefined;
  /** `$all` before the bind: the first read, applied to the manager's topic by `bindAll`. */
  preload?: unknown[];
  closed: boolean;
  /** The id of the publication applied at `topic.offset` ('' when not known: after a reset). */
  lastId: string;
  /** The highest offset seen on the channel in `epoch`: offsets on one channel only grow. */
  chanTop: number;
  /** A channel message said the history may have gone backwards: read the topic (with the check) again. */
  suspect: boolean;
  /** Epochs this node left (rewound or lost histories): their publications are dropped. */
  dead: string[];
}

export type { PresenceEvent };

/** Longest a topic's history can be asked for when the manager's bounds are not known yet (before `bind`). */
const UNBOUND_MAX_AGE_MS = 86_400_000;

/**
 * The fan-out side of topics on Redis. The node subscribes to the channel of every topic it has members in
 * (`$all` always) and applies each publication once, in offset order, to its local `Topic`, which writes it to the
 * local members through the one publish path. The rule of the cluster holds: a publication reaches a socket only
 * after Redis stored it, as `offset + 1` of the epoch this node knows. A jump means the subscription missed
 * something: the missing range is read from the topic's stream first (never skipped). If the stream no longer has
 * it (trimmed) or the epoch changed (Redis lost the topic), the local history is reset and the topic's protocol
 * members are closed with 1012: their resume answers `fresh` `gap` for the topic, never partial.
 */
export class TopicFollower {
  private readonly byChannel = new Map<string, Followed>();
  private readonly byName = new Map<string, Followed>();
  host: BackendHost | undefined;
  /** Presence changes of followed topics (set by the backend). */
  onPresence: ((e: PresenceEvent) => void) | undefined;

  /**
   * Publishes of a topic that this node sent before it started following it, if they can still be in flight on
   * another connection than the base read (a Cluster's publish connection): the base read waits for them.
   */
  beforeBase: ((name: string) => Promise<void> | undefined) | undefined;

  constructor(private readonly link: RedisLink) {}

  keys(name: string): TopicKeys {
    return topicKeys(this.link.opts.keyPrefix, name);
  }

  /** Start following `name` (its first member here). `topic` may come later ({@link bindAll} for `$all`). */
  open(name: string, topic: Topic | undefined): Promise<void> {
    const known = this.byName.get(name);
    if (known && !known.closed) {
      known.topic ??= topic;
      return known.ready ?? Promise.resolve();
    }
    const f: Followed = {
      name,
      keys: this.keys(name),
      topic,
      epoch: undefined,
      state: 'loading',
      held: [],
      ready: undefined,
      base: undefined,
      closed: false,
      lastId: '',
      chanTop: 0,
      suspect: false,
      dead: [],
    };
    this.byName.set(name, f);
    this.byChannel.set(f.keys.channel, f);
    const base = (f.base = name === BROADCAST_TOPIC ? undefined : this.readBase(f));
    f.ready = Promise.all([this.load(f), base]).then(
      () => {
        if (this.byName.get(name) === f) f.ready = f.base = undefined;
      },
      () => {},
    );
    return f.ready;
  }

  /**
   * The topic's offset in Redis now (an empty read after the last offset; it creates the epoch of a new topic as
   * the load does). Sent at once on the command connection, before any publish this node sends after the join
   * that opened the topic (on a Cluster, publishes use their own connection to the same master: sent later).
   */
  private readBase(f: Followed): Promise<{ offset: number; epoch: string } | undefined> {
    const maxAge = f.topic?.history.limits.maxAgeMs ?? UNBOUND_MAX_AGE_MS;
    const read = () =>
      this.link.topicScript(
        'wssTopicRead',
        [f.keys.meta, f.keys.stream],
        [Number.MAX_SAFE_INTEGER, newEpoch(), maxAge, 0, 0, ''],
      );
    const earlier = this.beforeBase?.(f.name);
    return (earlier ? earlier.then(read) : read()).then(
      (r) => {
        const reply = r as unknown[];
        return { epoch: String(reply[0]), offset: Number(reply[1]) };
      },
      () => undefined,
    );
  }

  /** `undefined` if `name` is live here, else the promise of its load. */
  readyOf(name: string): Promise<void> | undefined {
    const f = this.byName.get(name);
    return f && f.state !== 'live' ? (f.ready ?? undefined) : undefined;
  }

  /** While `name` loads here: its offset in Redis when the load started (see `Followed.base`). */
  joinOffsetOf(name: string): Promise<{ offset: number; epoch: string } | undefined> | undefined {
    const f = this.byName.get(name);
    return f && f.state !== 'live' && f.ready ? f.base : undefined;
  }

  /** The last member here left: unsubscribe and forget (a later member loads it again). */
  close(name: string): void {
    const f = this.byName.get(name);
    if (!f || name === BROADCAST_TOPIC) return;
    f.closed = true;
    f.held = [];
    this.byName.delete(name);
    this.byChannel.delete(f.keys.channel);
    this.link.unfollow(f.keys.channel).catch(() => {});
  }

  /**
   * The backend was bound: `$all` (read by `connect`) now has the manager's topic, filled synchronously from that
   * read and what arrived since, so that the first session already starts at the topic's real offset.
   */
  bindAll(topic: Topic): void {
    const f = this.byName.get(BROADCAST_TOPIC);
    if (!f) return void this.open(BROADCAST_TOPIC, topic);
    f.topic = topic;
    const read = f.preload;
    f.preload = undefined;
    if (read) this.applyRead(f, read, true);
    else if (f.state === 'live') this.catchUp(f); // the read at connect failed: try again
  }

  /** A message on a topic channel. */
  dispatch(channel: string, text: string): void {
    const f = this.byChannel.get(channel);
    if (!f || f.closed) return;
    const m = parseTopicMessage(text);
    if (!m) return void this.link.log.warn({ event: 'redis.bad-message', channel }, 'unexpected message');
    if (m.k === 'presence') {
      this.onPresence?.({ topic: f.name, clientId: m.i, nodeId: m.n, change: m.change });
      return;
    }
    if (m.k === 'volatile') {
      const topic = f.topic;
      if (!topic || !this.host) return;
      const x = m.x ? new Set(JSON.parse(m.x) as string[]) : undefined;
      const pub = new Publication(
        topic.quoted,
        topic.name,
        undefined,
        decodePayload(m.p),
        x,
        this.host.nowMs,
      );
      this.host.deliverPublication(topic, pub);
      return;
    }
    this.offer(f, m);
  }

  private offer(f: Followed, m: TopicPublication): void {
    if (f.dead.includes(m.e)) return; // a history this node left (rewound or lost): never applied
    if (m.e === f.epoch) {
      // Redis numbers a topic's publications in the order it publishes them, so offsets on its channel only grow.
      // One at or below an offset already seen (or another publication under the offset applied last) means the
      // history went backwards: a failover promoted a replica that lacked the last writes. The read that follows
      // checks it in Redis and gives the topic a new epoch.
      if (m.o <= f.chanTop) f.suspect = true;
      else f.chanTop = m.o;
      if (m.o === f.topic?.offset && m.i !== '' && f.lastId !== '' && m.i !== f.lastId) f.suspect = true;
    }
    const topic = f.topic;
    if (f.state !== 'live' || !topic) return void f.held.push(m);
    if (m.e !== f.epoch || f.suspect) {
      f.held.push(m);
      return this.catchUp(f); // the read tells the new epoch, and what it holds
    }
    if (m.o <= topic.offset) return; // already applied (held by a load or a catch-up)
    if (m.o === topic.offset + 1) return this.apply(f, topic, m);
    f.held.push(m);
    this.catchUp(f);
  }

  private apply(f: Followed, topic: Topic, m: TopicPublication): void {
    const host = this.host;
    const exclude = m.x ? new Set(JSON.parse(m.x) as string[]) : undefined;
    const pub = topic.accept(m.o, decodePayload(m.p), exclude, host?.nowMs ?? Date.now());
    f.lastId = m.i;
    host?.deliverPublication(topic, pub);
  }

  /**
   * Read the stream (all of it, or after the local offset), then apply what was held. Never rejects: a failed
   * read leaves the topic to the next catch-up (a jump, or the resync after Redis is back).
   */
  private async load(f: Followed, full = f.state === 'loading'): Promise<void> {
    const topic = f.topic;
    try {
      if (full) await this.link.follow(f.keys.channel);
      const after = full || !topic ? 0 : topic.offset;
      const maxAge = topic?.history.limits.maxAgeMs ?? UNBOUND_MAX_AGE_MS;
      // What this node knows of the epoch: Redis must not be behind it, and the publication it applied last must
      // still be the one at its offset (see the READ script).
      const same = topic !== undefined && f.epoch !== undefined && topic.epoch === f.epoch;
      const floor = same ? Math.max(topic.offset, f.chanTop, f.floor ?? 0) : 0;
      const at = same && f.lastId !== '' ? topic.offset : 0;
      f.floor = undefined;
      f.suspect = false;
      const reply = (await this.link.topicScript(
        'wssTopicRead',
        [f.keys.meta, f.keys.stream],
        [after, newEpoch(), maxAge, floor, at, at > 0 ? f.lastId : ''],
      )) as unknown[];
      if (f.closed) return;
      this.applyRead(f, reply, full);
    } catch (err) {
      if (f.closed) return;
      f.state = 'live'; // retried by the next catch-up (a jump, a resync)
      if (full) f.epoch = undefined; // forces a full read next time
      this.link.log.warn({ event: 'redis.topic-read-failed', topic: f.name, err }, 'topic read failed');
    }
  }

  private applyRead(f: Followed, reply: unknown[], full: boolean): void {
    if (!f.topic) {
      // `$all` before the bind: kept as it is, applied once the manager's topic is known.
      f.preload = reply;
      f.state = 'live';
      return;
    }
    const epoch = String(reply[0]);
    const offset = Number(reply[1]);
    const entries: TopicPublication[] = [];
    for (let i = 3; i + 4 < reply.length; i += 5) {
      entries.push({
        k: 'pub',
        e: epoch,
        o: Number(reply[i]),
        a: Number(reply[i + 1]),
        p: String(reply[i + 2]),
        x: String(reply[i + 3] ?? ''),
        i: String(reply[i + 4] ?? ''),
      });
    }
    const topic = f.topic;
    const changed = f.epoch !== undefined && f.epoch !== epoch;
    if (full || changed || f.epoch === undefined) {
      const first = entries.length > 0 ? entries[0]!.o - 1 : offset;
      if (changed) {
        f.dead.push(f.epoch!);
        if (f.dead.length > 8) f.dead.shift();
        this.lost(f, topic, first, epoch, 'the topic’s history in redis was lost or went backwards');
      } else topic.reset(first, epoch);
      f.epoch = epoch;
      f.chanTop = 0;
      f.lastId = '';
    }
    for (const e of entries) {
      if (e.o <= topic.offset) continue;
      if (e.o !== topic.offset + 1) {
        this.lost(f, topic, e.o - 1, epoch, 'missed publications were trimmed');
      }
      this.apply(f, topic, e);
    }
    if (offset > topic.offset) this.lost(f, topic, offset, epoch, 'missed publications were trimmed');
    this.goLive(f, topic);
  }

  private goLive(f: Followed, topic: Topic): void {
    f.state = 'live';
    const held = f.held.filter((m) => !f.dead.includes(m.e)).sort((a, b) => a.o - b.o);
    f.held = [];
    for (let i = 0; i < held.length; i++) {
      const m = held[i]!;
      if (m.e !== f.epoch || m.o > topic.offset + 1) {
        f.held = held.slice(i);
        return this.catchUp(f);
      }
      if (m.o === topic.offset + 1) this.apply(f, topic, m);
    }
    // A suspicious message arrived while the read was under way (which may have run before it): check again.
    if (f.suspect) this.catchUp(f);
  }

  /**
   * A session resuming here joined `name` at offset `joinedAt` of the epoch this node follows, and Redis's top is
   * below it: the topic's history went backwards (a failover lost its last writes) without this node seeing it.
   * Read the topic with that floor, which gives it a new epoch in Redis, so this resume and every other one answer
   * `gap` for it. Resolves once the read is applied.
   */
  async checkFloors(session: SessionRecord): Promise<void> {
    await Promise.all([...session.topics].map(([name, at]) => this.checkFloor(name, at, session)));
  }

  private async checkFloor(name: string, joinedAt: number, session: SessionRecord): Promise<void> {
    const f = this.byName.get(name);
    const topic = f?.topic;
    if (!f || !topic || f.state !== 'live' || joinedAt <= topic.offset || topic.epoch !== f.epoch) return;
    if (session.topicEpochs?.get(name) !== topic.epoch) return; // joined under another epoch: a gap anyway
    f.floor = joinedAt;
    f.state = 'catching-up';
    await this.load(f, false);
  }

  /** Fill a hole (or learn a new epoch) from the stream before anything else is applied. */
  catchUp(f: Followed): void {
    if (f.state !== 'live' || f.closed) return;
    f.state = 'catching-up';
    void this.load(f, false);
  }

  /** The epoch this node follows `name` at (`undefined` if it does not follow it, or has not loaded it yet). */
  epochOf(name: string): string | undefined {
    return this.byName.get(name)?.epoch;
  }

  /** The highest offset this node saw taken in the epoch it follows `name` at (0 if it does not follow it). */
  floorOf(name: string): number {
    const f = this.byName.get(name);
    const topic = f?.topic;
    if (!f || !topic || f.epoch === undefined || topic.epoch !== f.epoch) return 0;
    return Math.max(topic.offset, f.chanTop);
  }

  /** A publish found another epoch: read the topic again. */
  refresh(name: string): void {
    const f = this.byName.get(name);
    if (f?.topic) this.catchUp(f);
  }

  /** After the subscriber reconnected, or Redis stalled: read what every followed topic may have missed. */
  resyncAll(): void {
    for (const f of this.byName.values()) {
      if (f.state === 'live' && f.topic) this.catchUp(f);
    }
  }

  /**
   * Publications this node's members may have missed are gone: continue from `offset` with an empty history, and
   * close the topic's protocol sockets (1012) so that their resume answers `gap` for it.
   */
  private lost(f: Followed, topic: Topic, offset: number, epoch: string, why: string): void {
    topic.reset(offset, epoch);
    f.lastId = '';
    const host = this.host;
    if (!host) return;
    host.log.warn({ event: 'redis.topic-gap', topic: f.name, offset, why }, `topic reset: ${why}`);
    const ids = f.name === BROADCAST_TOPIC ? [...host.connections.keys()] : [...topic.members];
    for (const id of ids) {
      const conn = host.connections.get(id);
      if (conn?.session)
        conn.close(CloseCode.ServiceRestart, 'topic history lost, please resume', 'server-closed');
    }
  }
}

const newEpoch = (): string => randomBytes(9).toString('base64url');
