import { BROADCAST_TOPIC, isTopicName, type TopicState } from '../../protocol/messages.js';
import { ReplayBuffer, type ReplayLimits } from '../../backends/replay-buffer.js';
import type { SessionRecord } from '../../backends/types.js';
import type { Payload } from '../../frames/payload.js';
import { Publication } from './publication.js';

/** The resolved `topics` settings a topic table applies (`ResolvedConfig['topics']`). */
export interface TopicSettings {
  readonly maxPerConnection: number;
  readonly maxNameLength: number;
  readonly history: ReplayLimits;
  readonly overrides: ReadonlyArray<{ readonly prefix: string; readonly history: ReplayLimits }>;
}

/**
 * A topic: one offset counter and one bounded history shared by all its members. Members are ids: protocol
 * sessions (attached or not: a detached session resumes from the history) and plain connections.
 */
export class Topic {
  /** Offset of the last reliable publication (0 before the first). */
  offset = 0;
  readonly history: ReplayBuffer<Publication>;
  /** Member ids. Empty for `$all`, whose members are every connection and session. */
  readonly members = new Set<string>();
  /**
   * Members still joining (a cluster backend is loading the topic): they keep it alive but get no publication
   * until they are told their starting offset (`sub`), then the ones after it from the history.
   */
  joining: Set<string> | undefined = undefined;
  /** Bumped on every join and leave, so that the publish path can reuse its member lookups. */
  version = 0;
  /** The name as a JSON string literal, quoted once for every frame of this topic. */
  readonly quoted: string;
  /**
   * Cluster backends: the id of the topic's history in shared storage (it changes when that storage lost the
   * topic). A session that joined under another epoch resumes the topic as `fresh` `gap`.
   */
  epoch: string | undefined = undefined;

  constructor(
    readonly name: string,
    limits: ReplayLimits,
  ) {
    this.history = new ReplayBuffer(limits);
    this.quoted = JSON.stringify(name);
  }

  /** A new publication: reliable ones take the next offset and go into the history. */
  publish(payload: Payload, exclude: ReadonlySet<string> | undefined, volatile: boolean, nowMs: number) {
    if (volatile) return new Publication(this.quoted, this.name, undefined, payload, exclude, nowMs);
    return this.accept(this.offset + 1, payload, exclude, nowMs);
  }

  /** A reliable publication numbered elsewhere (a cluster backend): it must be `offset + 1`. */
  accept(offset: number, payload: Payload, exclude: ReadonlySet<string> | undefined, nowMs: number) {
    const pub = new Publication(this.quoted, this.name, offset, payload, exclude, nowMs);
    this.offset = offset;
    this.history.push(pub);
    return pub;
  }

  /**
   * Forget the history (a cluster backend lost it, or could not fill a hole in it) and continue from `offset`:
   * a resume from any earlier position is then a `gap`, never partial.
   */
  reset(offset: number, epoch: string | undefined): void {
    this.history.clear();
    this.history.droppedThrough = offset;
    this.history.evictedThrough = offset;
    this.offset = offset;
    this.epoch = epoch;
    this.version++;
  }
}

/** How a resume answers one topic: its state for the `welcome`, and the publications to replay. */
export interface TopicReplay {
  state: TopicState;
  replay: Publication[];
}

/** How many topics without members keep their last offset here (memory backend), at most. */
export const MAX_IDLE_TOPIC_OFFSETS = 100_000;

/**
 * The topics of this process, by name. A named topic exists while it has members (a detached session counts),
 * so its history lives exactly as long as someone may resume from it; `$all` always exists. Offsets are never
 * reused: without a cluster backend (which keeps them in shared storage), a topic without members keeps its last
 * offset here, and a publish to it takes the next one, as on Redis.
 */
export class TopicTable {
  private readonly byName = new Map<string, Topic>();
  /** Last offset of each named topic that has no members (no cluster backend), oldest first. */
  private readonly idle = new Map<string, number>();
  /** Highest offset forgotten from `idle` (over {@link MAX_IDLE_TOPIC_OFFSETS}): a topic not known starts there. */
  private idleFloor = 0;
  /** The built-in topic `broadcast()` publishes to. */
  readonly all: Topic;
  /** Told when a named topic gets its first member here, and when its last one leaves (cluster backends). */
  hooks: { opened(topic: Topic): void; closed(topic: Topic): void } | undefined = undefined;

  constructor(
    private readonly config: TopicSettings,
    broadcastLimits: ReplayLimits,
  ) {
    this.all = new Topic(BROADCAST_TOPIC, broadcastLimits);
    this.byName.set(BROADCAST_TOPIC, this.all);
  }

  get size(): number {
    return this.byName.size;
  }

  get(name: string): Topic | undefined {
    return this.byName.get(name);
  }

  names(): IterableIterator<string> {
    return this.byName.keys();
  }

  /** Why `name` cannot be a topic an application or client joins, or `undefined` if it can. */
  invalidName(name: unknown): string | undefined {
    if (!isTopicName(name)) return 'not a topic name';
    if (name.length > this.config.maxNameLength) return `longer than ${this.config.maxNameLength}`;
    if (name.startsWith('$')) return 'reserved ($ names are the server’s)';
    return undefined;
  }

  /** Add `memberId` to topic `name`, creating it. Returns the topic; the caller records the join offset. */
  join(name: string, memberId: string): Topic {
    let topic = this.byName.get(name);
    let opened = false;
    if (!topic) {
      topic = new Topic(name, this.limitsFor(name));
      const last = this.hooks ? 0 : (this.idle.get(name) ?? this.idleFloor);
      if (last > 0) {
        this.idle.delete(name);
        topic.reset(last, undefined);
      }
      this.byName.set(name, topic);
      opened = true;
    }
    topic.members.add(memberId);
    topic.version++;
    if (opened) this.hooks?.opened(topic);
    return topic;
  }

  /** The history bounds of topic `name` (`$all`: `replay`; else `topics.history` or its prefix override). */
  limitsFor(name: string): ReplayLimits {
    if (name === BROADCAST_TOPIC) return this.all.history.limits;
    const override = this.config.overrides.find((o) => name.startsWith(o.prefix));
    return override?.history ?? this.config.history;
  }

  /** Remove a member; a named topic without members is dropped with its history. */
  leave(name: string, memberId: string): void {
    const topic = this.byName.get(name);
    if (!topic || topic === this.all) return;
    if (!topic.members.delete(memberId)) return;
    topic.joining?.delete(memberId);
    topic.version++;
    if (topic.members.size === 0) {
      this.byName.delete(name);
      if (this.hooks) this.hooks.closed(topic);
      else if (topic.offset > 0) this.keepIdle(name, topic.offset);
    }
  }

  /**
   * A reliable publish to a named topic without members here (no cluster backend): it takes the next offset, as
   * on Redis, and reaches no one (a later member starts after it). Returns that offset.
   */
  publishIdle(name: string): number {
    const offset = (this.idle.get(name) ?? this.idleFloor) + 1;
    this.idle.delete(name);
    this.keepIdle(name, offset);
    return offset;
  }

  private keepIdle(name: string, offset: number): void {
    this.idle.set(name, offset);
    if (this.idle.size <= MAX_IDLE_TOPIC_OFFSETS) return;
    const [oldest, last] = this.idle.entries().next().value as [string, number];
    this.idle.delete(oldest);
    // Forgotten: every topic not known here starts after it, so that no offset is ever handed out twice.
    this.idleFloor = Math.max(this.idleFloor, last);
  }

  /** Drop publications older than their topic's `maxAgeMs`. Called from the sweep: O(topics). */
  expire(nowMs: number): void {
    for (const topic of this.byName.values()) topic.history.expire(nowMs);
  }

  /**
   * Plan the resume of every topic of `session` from the client's positions (`hello.topics`): exactly one outcome
   * per topic, never partial. A topic resumes from the client's position, or from the join offset for a topic
   * the client does not know yet, never from before the join. Synchronous, so nothing published meanwhile is
   * missed.
   */
  planResume(session: SessionRecord, positions: Record<string, number> | undefined): TopicReplay[] {
    const out: TopicReplay[] = [];
    for (const [name, joinedAt] of session.topics) {
      const topic = this.byName.get(name);
      if (!topic) continue; // cannot happen: a member keeps its topic alive
      const known = positions && Object.hasOwn(positions, name) ? positions[name]! : joinedAt;
      const from = Math.max(known, joinedAt);
      let replay: Publication[] | undefined;
      const epochs = session.topicEpochs;
      if (topic.epoch !== undefined && epochs && epochs.get(name) !== topic.epoch) {
        // Joined under another history of the topic (the cluster's storage lost it): nothing to resume from.
        epochs.set(name, topic.epoch);
        out.push({ state: { c: name, o: topic.offset, resume: 'fresh', reason: 'gap' }, replay: [] });
      } else if (from > topic.offset) {
        out.push({
          state: { c: name, o: topic.offset, resume: 'fresh', reason: 'unknown-topic' },
          replay: [],
        });
      } else if ((replay = topic.history.since(from)) === undefined) {
        out.push({ state: { c: name, o: topic.offset, resume: 'fresh', reason: 'gap' }, replay: [] });
      } else {
        out.push({ state: { c: name, o: from, resume: 'resumed' }, replay });
      }
    }
    return out;
  }
}
