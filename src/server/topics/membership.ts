import { BROADCAST_TOPIC, type SubMessage, type UnsubMessage } from '../../protocol/messages.js';
import { CloseCode } from '../../protocol/close-codes.js';
import { ErrorCode } from '../../protocol/error-codes.js';
import type { SessionRecord } from '../../backends/types.js';
import type { StorageBackend } from '../storage-backend.js';
import type { ResolvedConfig } from '../config-types.js';
import type { Connection, WriteOutcome } from '../transport/connection.js';
import { StabilizerError } from '../errors.js';
import type { ManagerEvents } from '../events.js';
import { TopicTable, type Topic } from './topics.js';

/** Context handed to the application's `authorizeSubscribe` hook; `Data` is the manager's. */
export interface SubscribeAuthorizationContext<Data = unknown> {
  /** The client (session) asking. */
  clientId: string;
  topic: string;
  remoteAddress: string | undefined;
  /** What the `authenticate` hook returned for this connection, if anything. */
  data: Data | undefined;
}

/**
 * Decides whether a client may subscribe to a topic itself (server-side `join` needs no permission). Without a
 * hook, client subscriptions are refused: a topic is private unless the application says otherwise.
 */
export type AuthorizeSubscribe<Data = unknown> = (
  ctx: SubscribeAuthorizationContext<Data>,
) => boolean | Promise<boolean>;

/** What membership needs from the manager. */
export interface MembershipHost {
  /** Coarse clock (the sweep's), stamped on writes like every other write. */
  readonly nowMs: number;
  readonly connections: ReadonlyMap<string, Connection>;
  readonly backend: StorageBackend;
  readonly config: ResolvedConfig;
  /** Log and emit an `error` event. */
  reportError(clientId: string | undefined, err: unknown): void;
  emitTopicEvent<K extends 'join' | 'leave'>(name: K, event: ManagerEvents[K]): void;
  /** A write to a member failed: disconnect it (its resume replays from the history). */
  onWriteFailure(conn: Connection, outcome: WriteOutcome): unknown;
}

/** Who is in which topic: the sessions' and plain sockets' side of the {@link TopicTable}. */
export class Memberships {
  readonly table: TopicTable;

  constructor(
    private readonly host: MembershipHost,
    private readonly authorize: AuthorizeSubscribe | undefined,
  ) {
    this.table = new TopicTable(host.config.topics, host.config.replay);
    const b = host.backend;
    if (b.topicOpened && b.topicClosed) {
      this.table.hooks = { opened: (t) => b.topicOpened!(t), closed: (t) => b.topicClosed!(t) };
    }
  }

  /** A new session starts in `$all` at its current offset. */
  onSessionCreated(session: SessionRecord): void {
    const all = this.table.all;
    session.topics.set(BROADCAST_TOPIC, all.offset);
    if (all.epoch !== undefined) (session.topicEpochs ??= new Map()).set(BROADCAST_TOPIC, all.epoch);
    this.host.backend.onTopicJoin?.(session.id, session, all);
  }

  /**
   * Make `clientId` a member of `name`. Returns the topic, or `undefined` if it already was a member.
   * @throws StabilizerError `INVALID_TOPIC`, `UNKNOWN_CLIENT` or `TOPIC_LIMIT`.
   */
  join(clientId: string, name: string, by: 'server' | 'client'): Topic | undefined {
    const invalid = this.table.invalidName(name);
    if (invalid) throw new StabilizerError(ErrorCode.InvalidTopic, `invalid topic name: ${invalid}`);
    const conn = this.host.connections.get(clientId);
    const session = conn ? conn.session : this.host.backend.getSession(clientId);
    if (!conn && !session)
      throw new StabilizerError(ErrorCode.UnknownClient, `no client with id ${clientId}`);
    const count = session
      ? session.topics.size - (session.topics.has(BROADCAST_TOPIC) ? 1 : 0)
      : conn!.topics?.size;
    if (session ? session.topics.has(name) : conn!.topics?.has(name)) return undefined;
    if (this.table.get(name)?.members.has(clientId)) return undefined; // joining: waits for the topic's offset
    if ((count ?? 0) >= this.host.config.topics.maxPerConnection) {
      throw new StabilizerError(ErrorCode.TopicLimit, `client ${clientId} is in too many topics`);
    }
    const topic = this.table.join(name, clientId);
    const ready = this.host.backend.topicReady?.(topic);
    if (!ready) this.joined(clientId, session, conn, topic, by);
    else this.joinWhileLoading(clientId, session, conn, topic, by, ready);
    return topic;
  }

  /**
   * A cluster backend is still loading `topic` here. The member is in the topic at once (it keeps it alive) but
   * gets nothing yet: it starts from the offset shared storage had when the load started (a session stores that
   * at once, so that a resume anywhere is exact), and once the topic is in step it is told that offset (`sub`)
   * and given every publication after it from the history, then the live ones. A publication never reaches a
   * client before the `sub` of its topic.
   */
  private joinWhileLoading(
    clientId: string,
    session: SessionRecord | undefined,
    conn: Connection | undefined,
    topic: Topic,
    by: 'server' | 'client',
    ready: Promise<void>,
  ): void {
    (topic.joining ??= new Set()).add(clientId);
    topic.version++;
    const name = topic.name;
    /** Still the member this join is for: in the topic, and the same session (or plain socket). */
    const same = () => {
      const c = this.host.connections.get(clientId);
      const s = c ? c.session : this.host.backend.getSession(clientId);
      if (this.table.get(name) !== topic || !topic.joining?.has(clientId)) return undefined;
      return s === session && (s || c === conn) ? { c } : undefined;
    };
    let at: { offset: number; epoch: string } | undefined;
    this.host.backend.topicJoinOffset?.(topic)?.then((base) => {
      if (!base || !same()) return;
      at = base;
      if (!session) return;
      session.topics.set(name, base.offset);
      (session.topicEpochs ??= new Map()).set(name, base.epoch);
      this.host.backend.onTopicJoin?.(clientId, session, topic);
    });
    ready.then(
      () => {
        if (this.table.get(name) !== topic || !topic.joining?.has(clientId)) return; // left meanwhile
        const now = same();
        if (!now) {
          // The member it was for is gone (session ended or moved, socket closed): do not leave it in the topic,
          // unless whoever holds the id now is a member by its own join.
          topic.joining.delete(clientId);
          const c = this.host.connections.get(clientId);
          const s = c ? c.session : this.host.backend.getSession(clientId);
          if (!(s ? s.topics.has(name) : c?.topics?.has(name))) this.table.leave(name, clientId);
          return;
        }
        topic.joining.delete(clientId);
        topic.version++;
        // Without the read of the offset (it failed), everything the topic holds here: more, never less.
        const from = at ?? { offset: topic.history.droppedThrough, epoch: topic.epoch };
        // Stored unless the session was read again from shared storage meanwhile (a resume here) without it.
        const stored = at !== undefined && session?.topics.get(name) === at.offset;
        this.joined(clientId, session, now.c, topic, by, from, stored);
      },
      (err: unknown) => this.host.reportError(clientId, err),
    );
  }

  private joined(
    clientId: string,
    session: SessionRecord | undefined,
    conn: Connection | undefined,
    topic: Topic,
    by: 'server' | 'client',
    from?: { offset: number; epoch: string | undefined },
    stored = false,
  ): void {
    const offset = from?.offset ?? topic.offset;
    if (session) {
      if (!stored) {
        session.topics.set(topic.name, offset);
        const epoch = from ? from.epoch : topic.epoch;
        if (epoch !== undefined) (session.topicEpochs ??= new Map()).set(topic.name, epoch);
      }
    } else (conn!.topics ??= new Set()).add(topic.name);
    // A protocol client learns the offset it starts from, so that a resume right after is exact.
    if (conn?.protocol)
      conn.writeMessage(
        { t: 'sub', c: topic.name, o: offset },
        this.host.nowMs,
        `{"t":"sub","c":${topic.quoted},"o":${offset}}`,
      );
    if (conn && offset < topic.offset) this.catchUp(conn, session, topic, offset, from?.epoch);
    if (!stored) this.host.backend.onTopicJoin?.(clientId, session, topic);
    this.host.emitTopicEvent('join', { clientId, topic: topic.name, by });
  }

  /**
   * A member that joined while its topic loaded: the publications after its join offset, from the history, right
   * after its `sub`. If the history no longer has them (or lost the epoch), a protocol client is closed with 1012:
   * its resume answers `gap` for the topic, never partial.
   */
  private catchUp(
    conn: Connection,
    session: SessionRecord | undefined,
    topic: Topic,
    offset: number,
    epoch: string | undefined,
  ): void {
    const pubs = epoch === topic.epoch || !session ? topic.history.since(offset) : undefined;
    if (!pubs) {
      if (session) conn.close(CloseCode.ServiceRestart, 'topic history lost, please resume', 'server-closed');
      return;
    }
    let written: WriteOutcome = 'ok';
    for (let i = 0; i < pubs.length && written === 'ok'; i++) {
      const pub = pubs[i]!;
      const skip = pub.exclude?.has(conn.id) === true;
      if (skip && !conn.protocol) continue;
      written = conn.writePublication(pub, skip, this.host.nowMs);
    }
    if (written !== 'ok' && written !== 'closed') this.host.onWriteFailure(conn, written);
  }

  /** Remove `clientId` from `name`. Returns whether it was a member. */
  leave(clientId: string, name: string, reason: ManagerEvents['leave']['reason']): boolean {
    if (name === BROADCAST_TOPIC) return false;
    const conn = this.host.connections.get(clientId);
    const session = conn ? conn.session : this.host.backend.getSession(clientId);
    const removed = session ? session.topics.delete(name) : (conn?.topics?.delete(name) ?? false);
    if (!removed) {
      // Still joining (a cluster backend loads the topic): it never was told `sub`, nor stored.
      if (!this.table.get(name)?.members.has(clientId)) return false;
      this.table.leave(name, clientId);
      return true;
    }
    session?.topicEpochs?.delete(name);
    // Still joining (stored, not told `sub` yet): the client never heard of it, nor did `join` listeners.
    const told = this.table.get(name)?.joining?.has(clientId) !== true;
    this.table.leave(name, clientId);
    this.host.backend.onTopicLeave?.(clientId, session, name);
    if (!told) return true;
    if (conn?.protocol && reason !== 'disconnect' && reason !== 'session-end') {
      conn.writeMessage({ t: 'unsub', c: name }, this.host.nowMs);
    }
    this.host.emitTopicEvent('leave', { clientId, topic: name, reason });
    return true;
  }

  /** A session ended for good (or a plain socket closed, with its `topics`): it leaves every topic. */
  dropAll(
    clientId: string,
    topics: Map<string, number> | Set<string> | undefined,
    reason: 'session-end' | 'disconnect',
  ): void {
    if (!topics) return;
    for (const name of [...topics.keys()]) {
      if (name === BROADCAST_TOPIC) continue;
      topics.delete(name);
      const told = this.table.get(name)?.joining?.has(clientId) !== true;
      this.table.leave(name, clientId);
      this.host.backend.onTopicLeave?.(clientId, undefined, name);
      if (told) this.host.emitTopicEvent('leave', { clientId, topic: name, reason });
    }
  }

  /**
   * A session this process held moved to another one (a cluster backend let it go): it stops being a member here,
   * without a `leave` (it still is one, on the other node).
   */
  release(session: SessionRecord): void {
    for (const name of session.topics.keys()) {
      if (name !== BROADCAST_TOPIC && this.table.get(name)?.members.has(session.id)) {
        this.table.leave(name, session.id);
      }
    }
  }

  /** A session loaded for a resume: make it a member of its topics here; resolves once they are all in step. */
  async adopt(session: SessionRecord): Promise<void> {
    const waits: Array<Promise<void>> = [];
    for (const name of session.topics.keys()) {
      const topic = name === BROADCAST_TOPIC ? this.table.all : this.table.join(name, session.id);
      const ready = this.host.backend.topicReady?.(topic);
      if (ready) waits.push(ready);
    }
    await Promise.all(waits);
  }

  /**
   * A client's `sub`: validated, authorized by the `authorizeSubscribe` hook, then joined (answered `sub` with the
   * starting offset), or refused with `unsub` and a code. A refusal never closes the socket.
   */
  async subscribe(conn: Connection, name: string): Promise<void> {
    const session = conn.session!;
    let code: string = ErrorCode.TopicForbidden;
    let message = 'not allowed to subscribe';
    try {
      const invalid = this.table.invalidName(name);
      if (invalid) throw new StabilizerError(ErrorCode.InvalidTopic, `invalid topic name: ${invalid}`);
      const known = session.topics.get(name);
      if (known !== undefined) return void this.reply(conn, { t: 'sub', c: name, o: known });
      const ctx = { clientId: conn.id, topic: name, remoteAddress: conn.remoteAddress, data: conn.data };
      if (this.authorize && (await this.authorize(ctx)) === true) {
        if (!conn.isOpen || conn.session !== session) return; // gone meanwhile: its resume has the truth
        if (session.topics.has(name)) return;
        this.join(conn.id, name, 'client');
        return;
      }
    } catch (err) {
      if (err instanceof StabilizerError) ({ code, message } = err);
      else {
        this.host.reportError(conn.id, err);
        message = 'authorization failed';
      }
    }
    if (conn.isOpen && conn.session === session) this.reply(conn, { t: 'unsub', c: name, code, message });
  }

  /** A client's `unsub`: leave the topic; the answer is `unsub` whether or not it was a member. */
  unsubscribe(conn: Connection, name: string): void {
    if (!this.leave(conn.id, name, 'client')) this.reply(conn, { t: 'unsub', c: name });
  }

  private reply(conn: Connection, message: SubMessage | UnsubMessage): void {
    conn.writeMessage(message, this.host.nowMs);
  }

  /** Member ids of a topic (sessions, attached or not, and plain connections). `$all`: every client. */
  members(name: string): string[] {
    if (name === BROADCAST_TOPIC) return [...this.host.connections.keys()];
    return [...(this.table.get(name)?.members ?? [])];
  }

  /** Topics a client is a member of (`$all` not listed). */
  topicsOf(clientId: string): string[] {
    const conn = this.host.connections.get(clientId);
    const session = conn ? conn.session : this.host.backend.getSession(clientId);
    const names = session ? session.topics.keys() : (conn?.topics?.values() ?? []);
    return [...names].filter((n) => n !== BROADCAST_TOPIC);
  }
}
