import type { SessionRecord } from '../../backends/types.js';
import type { BroadcastOptions, BroadcastResult, DeliveryFailure } from './broadcast.js';
import type { Connection, WriteOutcome } from '../transport/connection.js';
import type { Payload } from '../../frames/payload.js';
import type { Publication } from './publication.js';
import type { Topic, TopicTable } from './topics.js';
import type { FrameCompressor } from '../transport/compression.js';
import type { MsgpackCodec } from '../../frames/msgpack.js';

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
  /** The shared compressor, when `compression.enabled`. */
  readonly compressor: FrameCompressor | undefined;
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
  const c = target.compressor;
  if (c && (waiting.has(topic) || pub.payload.bytes >= c.asyncThresholdBytes)) {
    const recipients =
      topic === table.all ? [...target.connections.values()] : membersOf(target, topic).attached;
    const entry: Waiting = { target, topic, pub, recipients, exclude, deflating: 0 };
    startDeflates(c, entry);
    if (entry.deflating > 0 || waiting.has(topic)) {
      enqueue(entry, result);
      countDetached(target, table, topic, exclude, volatile, result);
      return result;
    }
  }
  if (topic === table.all) {
    for (const conn of target.connections.values()) deliver(target, conn, pub, exclude, result);
  } else {
    const members = membersOf(target, topic);
    for (let i = 0; i < members.attached.length; i++)
      deliver(target, members.attached[i]!, pub, exclude, result);
  }
  countDetached(target, table, topic, exclude, volatile, result);
  return result;
}

/** Detached sessions of the topic: the history has the publication for their resume. */
function countDetached(
  target: PublishTarget,
  table: TopicTable,
  topic: Topic,
  exclude: ReadonlySet<string> | undefined,
  volatile: boolean,
  result: BroadcastResult,
): void {
  if (volatile) return;
  if (topic === table.all) {
    result.buffered += target.detachedSessions.size;
    // O(excluded), not O(detached): usually the one sender.
    if (exclude) {
      for (const id of exclude) {
        const session = target.backend.getSession(id);
        if (session && target.detachedSessions.has(session)) result.buffered--;
      }
    }
    return;
  }
  const detached = membersOf(target, topic).detached;
  for (let i = 0; i < detached.length; i++) if (!exclude?.has(detached[i]!)) result.buffered++;
}

// ------------------------------------------------------------------ large publications, deflated off the loop

/** A publication waiting for its off-loop deflate, with the recipients it had when it was published. */
interface Waiting {
  readonly target: PublishTarget;
  readonly topic: Topic;
  readonly pub: Publication;
  readonly recipients: readonly Connection[];
  readonly exclude: ReadonlySet<string> | undefined;
  /** Deflates still running for it; it is written when this is 0 and everything before it is written. */
  deflating: number;
}

/**
 * Per topic, the publications waiting behind a large one that is being deflated in zlib's thread pool
 * (`compression.asyncThresholdBytes`). Every later publication of the topic, large or small, waits in line, so
 * each member gets the topic in offset order. Recipients are fixed at publication, as on the synchronous path: a
 * member that joins or resumes meanwhile gets the publication from the history instead, and never twice.
 */
const waiting = new Map<Topic, Waiting[]>();

/**
 * Start the off-loop deflates a large publication needs: its protocol frame and/or its plain-mode frame, for the
 * recipients that negotiated permessage-deflate and unless cached already (JSON and MessagePack members each get their
 * own variant, deflated once).
 */
function startDeflates(c: FrameCompressor, entry: Waiting): void {
  const { pub, recipients } = entry;
  const p = pub.payload;
  if (p.bytes < c.asyncThresholdBytes) return;
  let protocol = false;
  let plain = false;
  let msgpack: MsgpackCodec | undefined;
  for (let i = 0; i < recipients.length && !(protocol && plain && msgpack); i++) {
    const conn = recipients[i]!;
    if (!conn.isOpen || !conn.deflates) continue;
    if (conn.msgpack) msgpack = conn.msgpack;
    else if (conn.protocol) protocol = true;
    else plain = true;
  }
  if (protocol && !pub.deflated?.has('topic')) {
    entry.deflating++;
    c.fillAsync(pub, 'topic', pub.message(), p.isBinary, () => deflated(entry));
  }
  if (msgpack && !pub.deflated?.has('mp-topic')) {
    entry.deflating++;
    c.fillAsync(pub, 'mp-topic', pub.msgpack(msgpack).body(), true, () => deflated(entry));
  }
  if (plain && !p.deflated?.has('plain')) {
    entry.deflating++;
    c.fillAsync(p, 'plain', p.plain, p.isBinary, () => deflated(entry));
  }
}

/** Queue `entry` behind its topic's waiting publications; written at once if nothing waits for a deflate. */
function enqueue(entry: Waiting, result: BroadcastResult): void {
  let line = waiting.get(entry.topic);
  if (!line) waiting.set(entry.topic, (line = []));
  line.push(entry);
  // Reported as delivered: it is queued for these sockets and written as soon as it is deflated. A socket that
  // fails then is disconnected as on the synchronous path (a protocol session resumes from the history).
  const { recipients, exclude } = entry;
  for (let i = 0; i < recipients.length; i++) if (!exclude?.has(recipients[i]!.id)) result.delivered++;
  if (line.length === 1 && entry.deflating === 0) flush(entry.topic);
}

function deflated(entry: Waiting): void {
  if (--entry.deflating === 0) flush(entry.topic);
}

/** Write the topic's waiting publications, in order, up to the first still being deflated. */
function flush(topic: Topic): void {
  const line = waiting.get(topic);
  if (!line) return;
  while (line.length > 0 && line[0]!.deflating === 0) {
    const entry = line.shift()!;
    const scratch: BroadcastResult = { delivered: 0, buffered: 0, dropped: 0, failed: [] };
    for (let i = 0; i < entry.recipients.length; i++)
      deliver(entry.target, entry.recipients[i]!, entry.pub, entry.exclude, scratch);
  }
  if (line.length === 0) waiting.delete(topic);
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
  const joining = topic.joining;
  for (const id of topic.members) {
    if (joining?.has(id)) continue; // told its offset first, then given the history after it (membership.ts)
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
