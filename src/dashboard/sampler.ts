import { closeCodeLabel } from '../metrics/index.js';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { WebSocketConnectionManager } from '../server/manager.js';
import type { ResolvedDashboardOptions } from './options.js';
import {
  countByMode,
  nodeCounts,
  topicRows,
  type ClusterView,
  type DashboardPoint,
  type DashboardSnapshot,
} from './snapshot.js';

const bump = (tally: Record<string, number>, key: string): void => {
  tally[key] = (tally[key] ?? 0) + 1;
};

/** The manager's monotonic counters that the rates are differences of. */
function readCounters(manager: WebSocketConnectionManager) {
  const c = manager.counters;
  return {
    out: c.sentReliable + c.sentVolatile + c.sentPlain,
    dropped: c.droppedVolatile + c.droppedPlain,
    answers: c.heartbeatAnswers,
    rttMsTotal: c.heartbeatRttMsTotal,
  };
}

/**
 * Samples a manager for the dashboard while at least one viewer watches, and costs nothing otherwise: with no
 * viewer there is no timer and no event listener. The first viewer starts it (tallies from
 * the manager's events count from then on); the last one to leave stops it and drops the history.
 *
 * What it reads: `getStats()`, `manager.counters` (messages sent and dropped, heartbeat answers: the same integers
 * the Prometheus metrics read), the topic table, and the `connect` / `disconnect` / `session-end` / `message`
 * events (as `websocket-stabilizer/metrics` counts them).
 */
export class DashboardSampler {
  private readonly viewers = new Set<(snapshot: DashboardSnapshot, history?: DashboardPoint[]) => void>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** When the sampling timer is due (`performance.now()`): how late it fires is the event-loop delay. */
  private dueAtMs = 0;
  private loopDelayMs = 0;
  private elu: EventLoopUtilization | undefined;
  private offs: Array<() => void> = [];
  private history: DashboardPoint[] = [];
  private tallies = DashboardSampler.emptyTallies();
  private received = 0;
  private last: ReturnType<typeof readCounters> & { t: number; received: number };
  private nodes: DashboardSnapshot['nodes'] = null;
  private lastRttMs: number | null = null;
  private lastClusterReadMs = 0;
  private clusterReading = false;

  constructor(
    private readonly manager: WebSocketConnectionManager,
    private readonly options: ResolvedDashboardOptions,
  ) {
    this.last = { t: 0, received: 0, ...readCounters(manager) };
  }

  private static emptyTallies() {
    return {
      sinceMs: Date.now(),
      resumed: 0,
      fresh: {} as Record<string, number>,
      disconnects: {} as Record<string, number>,
      closeCodes: {} as Record<string, number>,
      sessionEnds: {} as Record<string, number>,
    };
  }

  /** Whether the sampler runs (some viewer watches). With no viewer: `false`, and no timer exists. */
  get running(): boolean {
    return this.timer !== undefined;
  }

  /** Viewers watching now. */
  get viewerCount(): number {
    return this.viewers.size;
  }

  /**
   * Add a viewer: it gets the current snapshot with the history at once, then one snapshot per sample. Returns the
   * function that removes it.
   */
  watch(viewer: (snapshot: DashboardSnapshot, history?: DashboardPoint[]) => void): () => void {
    if (this.viewers.size === 0) this.start();
    this.viewers.add(viewer);
    viewer(this.snapshot(this.currentPoint()), this.history);
    return () => {
      if (this.viewers.delete(viewer) && this.viewers.size === 0) this.stop();
    };
  }

  /** Remove every viewer and stop. */
  close(): void {
    this.viewers.clear();
    this.stop();
  }

  private start(): void {
    const m = this.manager;
    this.tallies = DashboardSampler.emptyTallies();
    this.received = 0;
    this.last = { t: Date.now(), received: 0, ...readCounters(m) };
    this.elu = performance.eventLoopUtilization();
    this.offs = [
      m.on('connect', (e) => {
        if (e.mode !== 'protocol') return;
        if (e.resume === 'resumed') this.tallies.resumed++;
        else bump(this.tallies.fresh, e.freshReason ?? 'new');
      }),
      m.on('disconnect', (e) => {
        bump(this.tallies.disconnects, e.reason);
        bump(this.tallies.closeCodes, closeCodeLabel(e.code));
      }),
      m.on('session-end', (e) => bump(this.tallies.sessionEnds, e.reason)),
      m.on('message', () => {
        this.received++;
      }),
    ];
    this.schedule();
  }

  /**
   * The next sample. The event-loop delay is how late this timer fires: a monitor of its own
   * (`monitorEventLoopDelay`) would wake the loop every few ms, which costs an idle server more than the rest of
   * the dashboard together (see docs/dashboard.md, Cost).
   */
  private schedule(): void {
    this.dueAtMs = performance.now() + this.options.sampleIntervalMs;
    this.timer = setTimeout(this.onTimer, this.options.sampleIntervalMs);
    this.timer.unref();
  }

  private readonly onTimer = (): void => {
    this.loopDelayMs = Math.max(0, performance.now() - this.dueAtMs);
    this.tick();
    this.schedule();
  };

  private stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.elu = undefined;
    for (const off of this.offs) off();
    this.offs = [];
    this.history = [];
    this.nodes = null;
    this.lastRttMs = null;
    this.last.t = 0;
  }

  private tick(): void {
    const point = this.samplePoint();
    this.history.push(point);
    if (this.history.length > this.options.historySamples) this.history.shift();
    this.readCluster(point.t);
    const snapshot = this.snapshot(point);
    for (const viewer of this.viewers) viewer(snapshot);
  }

  /** The gauges now and the rates since the previous sample. */
  private samplePoint(): DashboardPoint {
    const m = this.manager;
    const now = Date.now();
    const c = readCounters(m);
    const dtS = Math.max(0.001, (now - this.last.t) / 1000);
    const answers = c.answers - this.last.answers;
    const stats = m.getStats();
    const point: DashboardPoint = {
      t: now,
      connections: stats.connections,
      detached: stats.detachedSessions,
      inPerS: round((this.received - this.last.received) / dtS),
      outPerS: round((c.out - this.last.out) / dtS),
      dropsPerS: round((c.dropped - this.last.dropped) / dtS),
      rttMs: answers > 0 ? round((c.rttMsTotal - this.last.rttMsTotal) / answers) : null,
      loopDelayMs: round(this.loopDelayMs),
      loopBusyPct: this.readLoopBusy(),
    };
    this.last = { t: now, received: this.received, ...c };
    if (point.rttMs !== null) this.lastRttMs = point.rttMs;
    return point;
  }

  /** The share of the interval the event loop was busy (%), from libuv's own counters (nothing sampled). */
  private readLoopBusy(): number {
    if (!this.elu) return 0;
    const now = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(now, this.elu).utilization;
    this.elu = now;
    return round(busy * 100);
  }

  /** The gauges now, with the rates of the last sample (none yet: 0), for a viewer that just arrived. */
  private currentPoint(): DashboardPoint {
    const stats = this.manager.getStats();
    const last = this.history.at(-1);
    return {
      t: Date.now(),
      connections: stats.connections,
      detached: stats.detachedSessions,
      inPerS: last?.inPerS ?? 0,
      outPerS: last?.outPerS ?? 0,
      dropsPerS: last?.dropsPerS ?? 0,
      rttMs: last?.rttMs ?? null,
      loopDelayMs: last?.loopDelayMs ?? 0,
      loopBusyPct: last?.loopBusyPct ?? 0,
    };
  }

  /** Per-node counts from a cluster backend, at most every `clusterIntervalMs`, one read at a time. */
  private readCluster(nowMs: number): void {
    const backend = this.manager.backend as ClusterView;
    if (typeof backend.getClusterConnections !== 'function') return;
    if (this.clusterReading || nowMs - this.lastClusterReadMs < this.options.clusterIntervalMs) return;
    this.clusterReading = true;
    this.lastClusterReadMs = nowMs;
    nodeCounts(backend).then(
      (nodes) => {
        this.clusterReading = false;
        if (this.running) this.nodes = nodes;
      },
      () => {
        this.clusterReading = false; // degraded: the page shows the backend state instead
      },
    );
  }

  private snapshot(point: DashboardPoint): DashboardSnapshot {
    const m = this.manager;
    const c = m.counters;
    const backend = m.backend as typeof m.backend & ClusterView;
    const { topics, otherTopics } = topicRows(m, this.options.maxTopics, this.options.maxMembersPerTopic);
    return {
      point,
      stats: m.getStats(),
      ...countByMode(m),
      ...this.tallies,
      lastRttMs: this.lastRttMs,
      totals: {
        sent: c.sentReliable + c.sentVolatile + c.sentPlain,
        dropped: c.droppedVolatile + c.droppedPlain,
        rateLimited: c.rateLimited.connection + c.rateLimited.principal,
        invalid: c.invalidMessages,
        upgradeRejections:
          Object.values(c.upgradeRejections).reduce((a, b) => a + b, 0) +
          [...c.appRefusals.values()].reduce((a, b) => a + b, 0),
      },
      topics,
      otherTopics,
      backend: {
        name: backend.name,
        ...(backend.nodeId !== undefined ? { nodeId: backend.nodeId } : {}),
        degraded: backend.degraded === true,
        pendingOps: backend.pendingOps ?? 0,
      },
      nodes: this.nodes,
    };
  }
}

const round = (n: number): number => Math.round(n * 10) / 10;
