import type { SessionRecord } from '../backends/types.js';
import type { BroadcastOptions, BroadcastResult, DeliveryFailure } from './broadcast.js';
import type { Connection, WriteOutcome } from './connection.js';
import type { Payload } from './payload.js';
import type { Publication } from './publication.js';
import type { Topic, TopicTable } from './topics.js';

/** What the publish path needs from the manager. */
export interface PublishTarget {
  readonly connections: ReadonlyMap<string, Connection>;
  readonly detachedSessions: ReadonlySet<SessionRecord>;
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
  const result: BroadcastResult = { delivered: 0, buffered: 0, dropped: 0, failed: [] };
  if (topic === table.all) {
    for (const conn of target.connections.values()) deliver(target, conn, pub, exclude, result);
    if (!volatile) {
      result.buffered += target.detachedSessions.size;
      if (exclude) for (const s of target.detachedSessions) if (exclude.has(s.id)) result.buffered--;
    }
    return result;
  }
  for (const id of topic.members) {
    const conn = target.connections.get(id);
    if (conn) deliver(target, conn, pub, exclude, result);
    else if (!volatile && !exclude?.has(id)) result.buffered++; // a detached session: the history has it
  }
  return result;
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
