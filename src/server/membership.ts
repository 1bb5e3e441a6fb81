import { BROADCAST_TOPIC, type SubMessage, type UnsubMessage } from '../protocol/messages.js';
import { ErrorCode } from '../protocol/error-codes.js';
import type { SessionRecord, StorageBackend } from '../backends/types.js';
import type { ResolvedConfig } from './config-types.js';
import type { Connection } from './connection.js';
import { StabilizerError } from './errors.js';
import type { ManagerEvents } from './events.js';
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
}

/** Who is in which topic: the sessions' and plain sockets' side of the {@link TopicTable}. */
export class Memberships {
  readonly table: TopicTable;

  constructor(
    private readonly host: MembershipHost,
    private readonly authorize: AuthorizeSubscribe | undefined,
  ) {
    this.table = new TopicTable(host.config.topics, host.config.replay);
  }

  /** Topics need the in-process fan-out; the Redis backend sequences broadcasts per session (topics: not yet). */
  get supported(): boolean {
    return this.host.backend.routeBroadcast === undefined;
  }

  /** A new session starts in `$all` at its current offset. */
  onSessionCreated(session: SessionRecord): void {
    if (this.supported) session.topics.set(BROADCAST_TOPIC, this.table.all.offset);
  }

  /**
   * Make `clientId` a member of `name`. Returns the topic, or `undefined` if it already was a member.
   * @throws StabilizerError `TOPICS_UNSUPPORTED`, `INVALID_TOPIC`, `UNKNOWN_CLIENT` or `TOPIC_LIMIT`.
   */
  join(clientId: string, name: string, by: 'server' | 'client'): Topic | undefined {
    if (!this.supported) {
      throw new StabilizerError(
        ErrorCode.TopicsUnsupported,
        `the ${this.host.backend.name} backend has no topics`,
      );
    }
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
    if ((count ?? 0) >= this.host.config.topics.maxPerConnection) {
      throw new StabilizerError(ErrorCode.TopicLimit, `client ${clientId} is in too many topics`);
    }
    const topic = this.table.join(name, clientId);
    if (session) session.topics.set(name, topic.offset);
    else (conn!.topics ??= new Set()).add(name);
    // A protocol client learns the offset it starts from, so that a resume right after is exact.
    if (conn?.protocol)
      conn.writeMessage(
        { t: 'sub', c: name, o: topic.offset },
        this.host.nowMs,
        `{"t":"sub","c":${topic.quoted},"o":${topic.offset}}`,
      );
    this.host.emitTopicEvent('join', { clientId, topic: name, by });
    return topic;
  }

  /** Remove `clientId` from `name`. Returns whether it was a member. */
  leave(clientId: string, name: string, reason: ManagerEvents['leave']['reason']): boolean {
    if (name === BROADCAST_TOPIC) return false;
    const conn = this.host.connections.get(clientId);
    const session = conn ? conn.session : this.host.backend.getSession(clientId);
    const removed = session ? session.topics.delete(name) : (conn?.topics?.delete(name) ?? false);
    if (!removed) return false;
    this.table.leave(name, clientId);
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
      this.table.leave(name, clientId);
      this.host.emitTopicEvent('leave', { clientId, topic: name, reason });
    }
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
      if (!this.supported)
        throw new StabilizerError(ErrorCode.TopicsUnsupported, 'this backend has no topics');
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
