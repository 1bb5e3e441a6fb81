import type { WebSocketConnectionManager } from '../server/manager.js';
import type { ManagerStats } from '../server/manager-options.js';

/** One point of the charts: the gauges and the rates over the interval that ends at `t`. */
export interface DashboardPoint {
  /** Wall-clock time of the sample (ms since the epoch). */
  t: number;
  connections: number;
  detached: number;
  /** Data messages received and written per second (replays included in `outPerS`). */
  inPerS: number;
  outPerS: number;
  /** Messages lost for a recipient per second (volatile or plain; reliable ones wait in the replay buffer). */
  dropsPerS: number;
  /** Mean heartbeat round trip over the interval (ms); `null` when no ping was answered in it. */
  rttMs: number | null;
  /** How late the sampling timer fired (ms): the event-loop delay at that moment. */
  loopDelayMs: number;
  /** The share of the interval the event loop was busy (%, `performance.eventLoopUtilization`). */
  loopBusyPct: number;
}

/** A topic as listed: its members on this process, and the first few member ids. */
export interface TopicRow {
  name: string;
  members: number;
  sample: string[];
}

/** Everything the page shows, sent on every sample. */
export interface DashboardSnapshot {
  point: DashboardPoint;
  stats: ManagerStats;
  /** Open registered connections by mode. */
  plain: number;
  protocol: number;
  /** When counting by event began (the first viewer's arrival): the tallies below count from then. */
  sinceMs: number;
  /**
   * The latest mean heartbeat round trip measured (ms), for when the last interval had none: only idle
   * connections are pinged (any inbound frame proves liveness), so a busy server answers few pings.
   */
  lastRttMs: number | null;
  /** Protocol connections that resumed their session. */
  resumed: number;
  /** Protocol connections that got a new session, by reason (`new` for a first connection). */
  fresh: Record<string, number>;
  /** Connections closed, by reason and by close code. */
  disconnects: Record<string, number>;
  closeCodes: Record<string, number>;
  /** Sessions gone for good, by reason. */
  sessionEnds: Record<string, number>;
  /** Totals since the manager started (its counters). */
  totals: {
    sent: number;
    dropped: number;
    rateLimited: number;
    invalid: number;
    upgradeRejections: number;
  };
  topics: TopicRow[];
  /** Topics beyond `maxTopics`, and their members summed. */
  otherTopics: { count: number; members: number };
  /** This node's backend state. */
  backend: { name: string; nodeId?: string; degraded: boolean; pendingOps: number };
  /** With a cluster backend: open connections per live node, read from the backend (`null` otherwise). */
  nodes: Array<{ nodeId: string; connections: number }> | null;
}

/** Open connections by mode: one pass over the registry (O(connections), once per sample). */
export function countByMode(manager: WebSocketConnectionManager): { plain: number; protocol: number } {
  let protocol = 0;
  for (const conn of manager.connections.values()) if (conn.protocol) protocol++;
  return { plain: manager.connections.size - protocol, protocol };
}

/** The first `max` member ids of a topic, without copying its member set. */
function firstMembers(manager: WebSocketConnectionManager, name: string, max: number): string[] {
  const out: string[] = [];
  for (const id of manager.topicTable.get(name)?.members ?? []) {
    if (out.length === max) break;
    out.push(id);
  }
  return out;
}

/** The `maxTopics` largest topics with up to `maxMembers` member ids each, and what is left over. */
export function topicRows(
  manager: WebSocketConnectionManager,
  maxTopics: number,
  maxMembers: number,
): { topics: TopicRow[]; otherTopics: { count: number; members: number } } {
  const counts = [...manager.getTopicMemberCounts()];
  counts.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  const shown = counts.slice(0, maxTopics);
  const rest = counts.slice(maxTopics);
  return {
    topics: shown.map(([name, members]) => ({
      name,
      members,
      sample: firstMembers(manager, name, maxMembers),
    })),
    otherTopics: { count: rest.length, members: rest.reduce((n, [, m]) => n + m, 0) },
  };
}

/** The parts of a cluster backend the dashboard reads, when the backend has them (the Redis backend does). */
export interface ClusterView {
  readonly nodeId?: string;
  getClusterConnections?(): Promise<Array<{ clientId: string; nodeId: string }>>;
}

/** Open connections per node, from a cluster backend's connection list. */
export async function nodeCounts(
  backend: ClusterView,
): Promise<Array<{ nodeId: string; connections: number }> | null> {
  if (typeof backend.getClusterConnections !== 'function') return null;
  const counts = new Map<string, number>();
  if (backend.nodeId !== undefined) counts.set(backend.nodeId, 0);
  for (const { nodeId } of await backend.getClusterConnections())
    counts.set(nodeId, (counts.get(nodeId) ?? 0) + 1);
  return [...counts]
    .map(([nodeId, connections]) => ({ nodeId, connections }))
    .sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1));
}
