import type { ReplayLimits } from '../backends/replay-buffer.js';
import type { BackendHost } from '../server/storage-backend.js';
import { ErrorCode } from '../protocol/error-codes.js';
import { BROADCAST_TOPIC } from '../protocol/messages.js';
import type { BroadcastOptions, ClusterBroadcastReport } from '../server/topics/broadcast.js';
import { StabilizerError } from '../server/errors.js';
import type { Payload } from '../frames/payload.js';
import type { Topic } from '../server/topics/topics.js';
import type { RedisLink } from './link.js';
import type { ResolvedRedisOptions } from './options.js';
import { PublishLanes } from './publish-lanes.js';
import { assertCapacity, msgId, publishToTopic } from './routing.js';
import type { TopicFollower } from './topics.js';

/**
 * The Redis writes of topics that are not fan-out: publishing (with the epoch this node follows the topic at), a
 * session's membership stored with the session, and cluster-wide presence. Every write is O(1) and touches one
 * topic's keys or one session's.
 */
export class TopicCluster {
  constructor(
    private readonly link: RedisLink,
    private readonly opts: ResolvedRedisOptions,
    private readonly follower: TopicFollower,
    private readonly host: () => BackendHost | undefined,
    private readonly defaultLimits: ReplayLimits,
  ) {
    this.lanes = new PublishLanes(link);
    // On a Cluster publishes have their own connection: a join offset is read after the publishes sent before it.
    if (link.pub !== link.cmd) follower.beforeBase = (name) => this.lanes.settled(name);
  }

  private readonly lanes: PublishLanes;

  /**
   * Publish through Redis (see `publishToTopic`), in call order per topic through a failover (`PublishLanes`); a
   * changed epoch makes this node read the topic again.
   */
  publish(topic: string, payload: Payload, options: BroadcastOptions): Promise<ClusterBroadcastReport> {
    const limits = this.host()?.topicTable.limitsFor(topic) ?? this.defaultLimits;
    let p: Promise<ClusterBroadcastReport>;
    if (options.volatile) p = publishToTopic(this.link, this.opts, topic, limits, payload, options, '');
    else {
      try {
        assertCapacity(this.link, this.opts);
      } catch (err) {
        return Promise.reject(err);
      }
      const id = msgId(); // the same on every try: one that executed but lost its reply is not published twice
      const send = () =>
        this.lanes.run(topic, () => {
          // The epoch as this node follows the topic when the publish is sent (not when it was queued).
          const epoch = this.follower.epochOf(topic) ?? '';
          const floor = this.follower.floorOf(topic);
          return publishToTopic(this.link, this.opts, topic, limits, payload, options, epoch, floor, id);
        });
      // A member that joined here while the topic loads starts at the offset read when the load began. On a Cluster
      // publishes go on their own connection, which could overtake that read: they wait for its answer.
      const base = this.link.pub !== this.link.cmd ? this.follower.joinOffsetOf(topic) : undefined;
      p = base ? base.then(send, send) : send();
    }
    p.catch((err: unknown) => {
      if (err instanceof StabilizerError && err.code === ErrorCode.HistoryLost) this.follower.refresh(topic);
    });
    return p;
  }

  /**
   * A member joined here at `joinedAt`: stored with its session (when this node owns it, generation `g`) and in
   * the topic's presence.
   */
  joined(
    memberId: string,
    session: { id: string; g: string } | undefined,
    topic: Topic,
    joinedAt: number,
    fail: (err: unknown) => void,
    epoch = topic.epoch,
  ): void {
    if (session) {
      const value = `${joinedAt} ${epoch ?? ''}`;
      this.link.call('wssSessionTopic', [session.id, session.g, topic.name, value]).catch(fail);
    }
    if (topic.name !== BROADCAST_TOPIC) this.presence('add', memberId, topic.name);
  }

  /** A member left topic `name` for good. */
  left(
    memberId: string,
    session: { id: string; g: string } | undefined,
    name: string,
    fail: (err: unknown) => void,
  ): void {
    if (session) this.link.call('wssSessionTopic', [session.id, session.g, name, '']).catch(fail);
    this.presence('del', memberId, name);
  }

  /** Members of a topic held by live nodes (`list`), or their number from the per-node counters (`count`). */
  async members(topic: string, mode: 'list' | 'count'): Promise<unknown> {
    const k = this.follower.keys(topic);
    const live = await this.link.cmd.zrangebyscore(
      `${this.opts.controlPrefix}nodes`,
      Date.now() - this.opts.nodeTimeoutMs,
      '+inf',
    );
    return this.link.topicScript('wssTopicMembers', [k.members, k.counts], [mode, ...live]);
  }

  /** Members of a topic held by live nodes, each with its node. */
  async memberList(topic: string): Promise<Array<{ clientId: string; nodeId: string }>> {
    const flat = (await this.members(topic, 'list')) as string[];
    const out: Array<{ clientId: string; nodeId: string }> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ clientId: flat[i]!, nodeId: flat[i + 1]! });
    return out;
  }

  /** Presence of one member in one topic, held by this node (O(1), on the topic's keys). */
  presence(op: 'add' | 'del', memberId: string, topic: string): void {
    const k = this.follower.keys(topic);
    this.link
      .topicScript(
        'wssTopicPresence',
        [k.members, k.counts],
        [op, memberId, this.opts.nodeId, k.channel, this.link.pubCmd],
      )
      .catch(() => {}); // best effort: a node that comes back re-adds its members (resync)
  }

  /** Re-add the presence of every member of every topic followed here (after this node was reaped). */
  readdPresence(): void {
    const table = this.host()?.topicTable;
    if (!table) return;
    for (const name of table.names()) {
      if (name === BROADCAST_TOPIC) continue;
      for (const id of table.get(name)!.members) this.presence('add', id, name);
    }
  }
}
