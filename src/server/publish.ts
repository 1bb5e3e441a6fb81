import type { SessionRecord } from '../backends/types.js';
import type { BroadcastOptions, BroadcastResult, DeliveryFailure } from './broadcast.js';
import type { Connection, WriteOutcome } from './connection.js';
import type { Payload } from './payload.js';
import type { Publication } from './publication.js';
import type { Topic, TopicTable } from './topics.js';

/** What the publish path needs from the manager. */
export interface PublishTarget {
  readonly connections: ReadonlyMap<string, Connection>;
  /** Changes whenever `connections` does. */
  readonly connectionsVersion: number;
  readonly detachedSessions: ReadonlySet<SessionRecord>;
  /** Sessions by id, to tell whether an excluded id is a detached session. */
  readonly backend: { getSession(id: string): SessionRecord | undefined };
  readonly nowMs: number;
  /** Handle a failed write: disconnect the client and report it. */
  onWriteFailure(conn: Connection, outcome: WriteOutcome): DeliveryFailure['reason'];
}

/**
 * The one publish path, for `broadcast` (topic `$all`: every connection) and `publish` (a named topic: its
 * members). The payload is serialized once and framed once: every protocol member gets the same bytes (the offset
 * is the topic's, not the member's), every plain member the bare payload. Detached sessions cost nothing here:
 * they resume from the topic's history. A bad socket never makes it throw.
 */
export function publishTo(
  target: PublishTarget,
  table: TopicTable,
  topic: Topic,
  payload: Payload,
  options: BroadcastOptions = {},
): BroadcastResult {
  const volatile = options.volatile === true;
  let exclude: Set<string> | undefined = options.exclude ? new Set(options.exclude) : undefined;
  if (exclude?.size === 0) exclude = undefined;
  const pub = topic.publish(payload, exclude, volatile, target.nowMs);
  return deliverPublication(target, table, topic, pub);
}

/**
 * Write a publication to this process's members of `topic` (for `$all`: every connection): the second half of
 * {@link publishTo}, and what a cluster backend calls for a publication Redis numbered. Detached sessions cost
 * nothing: they resume from the topic's history.
 */
export function deliverPublication(
  target: PublishTarget,
  table: TopicTable,
  topic: Topic,
  pub: Publication,
): BroadcastResult {
  const volatile = pub.offset === undefined;
  const exclude = pub.exclude;
  const result: BroadcastResult = { delivered: 0, buffered: 0, dropped: 0, failed: [] };
  if (topic === table.all) {
    for (const conn of target.connections.values()) deliver(target, conn, pub, exclude, result);
    if (!volatile) {
      result.buffered += target.detachedSessions.size;
      // O(excluded), not O(detached): usually the one sender.
      if (exclude) {
        for (const id of exclude) {
          const session = target.backend.getSession(id);
          if (session && target.detachedSessions.has(session)) result.buffered--;
        }
      }
    }
    return result;
  }
  const members = membersOf(target, topic);
  for (let i = 0; i < members.attached.length; i++)
    deliver(target, members.attached[i]!, pub, exclude, result);
  if (!volatile) {
    // Detached sessions: the history has it.
    for (let i = 0; i < members.detached.length; i++)
      if (!exclude?.has(members.detached[i]!)) result.buffered++;
  }
  return result;
}

/** A named topic's members, split into attached connections and detached ids. */
interface MemberLookup {
  topicVersion: number;
  connectionsVersion: number;
  attached: Connection[];
  detached: string[];
}

const lookups = new WeakMap<Topic, MemberLookup>();

/**
 * The members of `topic`, looked up in the registry once and reused by every publication until a member joins or
 * leaves, or a connection comes or goes. Walking member ids through the registry map for every publication costs
 * a few dependent cache misses per delivery (id, map entry, connection), which on 100 rooms of 50 was a quarter
 * of the publish path's CPU; a plain array of connections is what the raw `ws` limit iterates too. A stale lookup
 * is replaced at the topic's next publication (until then it may hold connections that have closed).
 */
function membersOf(target: PublishTarget, topic: Topic): MemberLookup {
  const known = lookups.get(topic);
  if (
    known &&
    known.topicVersion === topic.version &&
    known.connectionsVersion === target.connectionsVersion
  ) {
    return known;
  }
  const lookup: MemberLookup = {
    topicVersion: topic.version,
    connectionsVersion: target.connectionsVersion,
    attached: [],
    detached: [],
  };
  for (const id of topic.members) {
    const conn = target.connections.get(id);
    if (conn) lookup.attached.push(conn);
    else lookup.detached.push(id);
  }
  lookups.set(topic, lookup);
  return lookup;
}

function deliver(
  target: PublishTarget,
  conn: Connection,
  pub: Publication,
  exclude: ReadonlySet<string> | undefined,
  result: BroadcastResult,
): void {
  const reliable = pub.offset !== undefined;
  if (exclude?.has(conn.id)) {
    // An excluded protocol member gets a `skip` for the offset, so its position stays contiguous.
    if (!reliable || !conn.protocol) return;
    const outcome = conn.writePublication(pub, true, target.nowMs);
    if (outcome !== 'ok' && outcome !== 'closed') target.onWriteFailure(conn, outcome);
    return;
  }
  const outcome = conn.writePublication(pub, false, target.nowMs);
  if (outcome === 'ok') result.delivered++;
  else if (reliable && conn.protocol) {
    // In the topic's history: drop the socket (unless it is closing anyway); the resume delivers it.
    result.buffered++;
    if (outcome !== 'closed') target.onWriteFailure(conn, outcome);
  } else if (outcome === 'closed')
    return; // already closing (e.g. 4001 sent): not a failure, no terminate
  else if (outcome === 'slow' && !reliable) result.dropped++;
  else result.failed.push({ clientId: conn.id, reason: target.onWriteFailure(conn, outcome) });
}
