import type { Counter, Gauge, LabelValues, Registry } from 'prom-client';
import { CloseCode } from '../protocol/close-codes.js';
import { upgradeRejectionStatus } from '../server/operations/counters.js';
import type { WebSocketConnectionManager } from '../server/manager.js';

/** Close codes reported as themselves; any other code a peer sends is reported as `other` (bounded cardinality). */
const knownCloseCodes = new Set<number>([
  ...Object.values(CloseCode),
  1000,
  1001,
  1002,
  1003,
  1005,
  1006,
  1007,
]);
for (let code = 1008; code <= 1015; code++) knownCloseCodes.add(code);

/** The `code` label of a close code. */
export function closeCodeLabel(code: number): string {
  return knownCloseCodes.has(code) ? String(code) : 'other';
}

/** The subset of `prom-client` this module uses; pass the module itself (`import * as prom from 'prom-client'`). */
export interface PromClientModule {
  Counter: typeof Counter;
  Gauge: typeof Gauge;
}

/** Options of {@link registerPrometheusMetrics}. */
export interface PrometheusMetricsOptions {
  /** `prom-client` (an optional peer dependency, so the library never imports it itself). */
  promClient: PromClientModule;
  /** Registry to register in. */
  registry: Registry;
  /**
   * Prefix of every metric name.
   * @default 'websocket_stabilizer_'
   */
  prefix?: string;
  /**
   * Per-topic member counts, as the gauge `topic_members{topic}`, behind a cardinality guard: at most `maxTopics`
   * topics get a series of their own (the ones with the most members, among those `include` accepts); every other
   * topic is summed into `topic="other"`. Read at scrape time (O(topics log topics) then), never on the send path.
   * Leave it out for no per-topic series.
   * @default undefined (no `topic_members` gauge)
   */
  topicMetrics?: TopicMetricsOptions;
}

/** The cardinality guard of the per-topic gauge; see {@link PrometheusMetricsOptions.topicMetrics}. */
export interface TopicMetricsOptions {
  /** Topics with a series of their own, at most (the largest first); a non-negative integer. */
  maxTopics: number;
  /**
   * Which topics may have a series of their own (e.g. `(t) => !t.startsWith('user:')`); the rest count as `other`.
   * @default every topic
   */
  include?: (topic: string) => boolean;
}

/** The label name of the series that sums every topic without a series of its own. */
export const OTHER_TOPICS_LABEL = 'other';

/**
 * Member counts by topic label: the `maxTopics` largest topics that `include` accepts by name, and everything else
 * summed as `other` (always present, 0 when nothing is left over). A topic literally named `other` counts as other.
 */
export function topicMemberSeries(
  counts: ReadonlyMap<string, number>,
  { maxTopics, include }: TopicMetricsOptions,
): Array<[string, number]> {
  const named: Array<[string, number]> = [];
  let other = 0;
  for (const entry of counts) {
    if (entry[0] !== OTHER_TOPICS_LABEL && (include === undefined || include(entry[0]))) named.push(entry);
    else other += entry[1];
  }
  named.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  for (const [, n] of named.splice(Math.max(0, maxTopics))) other += n;
  named.push([OTHER_TOPICS_LABEL, other]);
  return named;
}

/**
 * Expose a manager's state and lifecycle as Prometheus metrics, through its public events and `getStats()`
 * (nothing is added to the send path). Returns a function that unsubscribes and unregisters.
 *
 * Gauges (read at scrape time): `connections`, `handshaking_connections`, `sessions`, `detached_sessions`,
 * `detached_session_bytes`, `draining`, `shutting_down`, `backend_degraded`, `backend_pending_operations`.
 * Counters: `connects_total{mode,resume}`, `fresh_sessions_total{reason}`, `disconnects_total{reason,code}`,
 * `session_ends_total{reason}`, `messages_received_total{reliable}`, `messages_sent_total{reliability}`, `messages_dropped_total{reliability}`,
 * `messages_replayed_total`, `messages_rate_limited_total{limit}`, `upgrade_rejections_total{status,reason}`,
 * `errors_total`. With `topicMetrics`: `topic_members{topic}`. Message and upgrade counts
 * are plain integers on the manager (`manager.counters`), copied into prom-client at scrape time.
 */
export function registerPrometheusMetrics(
  manager: WebSocketConnectionManager,
  options: PrometheusMetricsOptions,
): () => void {
  const { promClient: prom, registry } = options;
  const p = options.prefix ?? 'websocket_stabilizer_';
  const registers = [registry];
  const names: string[] = [];
  const gauge = (name: string, help: string, read: () => number) => {
    names.push(p + name);
    return new prom.Gauge({
      name: p + name,
      help,
      registers,
      collect() {
        this.set(read());
      },
    });
  };
  const counter = (name: string, help: string, labelNames: string[] = []) => {
    names.push(p + name);
    return new prom.Counter({ name: p + name, help, labelNames, registers });
  };
  /** A counter whose values are read from the manager's plain integers at scrape time. */
  const countedAtScrape = (
    name: string,
    help: string,
    labelNames: string[],
    read: () => Array<[LabelValues<string>, number]>,
  ) => {
    names.push(p + name);
    return new prom.Counter({
      name: p + name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const [labels, value] of read()) this.inc(labels, value);
      },
    });
  };
  const { topicMetrics } = options;
  if (topicMetrics) {
    if (!Number.isInteger(topicMetrics.maxTopics) || topicMetrics.maxTopics < 0)
      throw new TypeError('topicMetrics.maxTopics must be a non-negative integer');
    names.push(`${p}topic_members`);
    new prom.Gauge({
      name: `${p}topic_members`,
      help: `Members of each topic (sessions and plain sockets); the ${topicMetrics.maxTopics} largest topics by name, the rest summed as topic="other"`,
      labelNames: ['topic'],
      registers,
      collect() {
        this.reset(); // topics that are gone lose their series
        for (const [topic, n] of topicMemberSeries(manager.getTopicMemberCounts(), topicMetrics))
          this.set({ topic }, n);
      },
    });
  }
  const backend = manager.backend;
  const { counters } = manager;

  gauge('connections', 'Open, registered connections', () => manager.getConnectionCount());
  gauge(
    'handshaking_connections',
    'Protocol sockets waiting for hello',
    () => manager.getStats().handshaking,
  );
  gauge('sessions', 'Protocol sessions held by this process', () => manager.getStats().sessions);
  gauge('detached_sessions', 'Sessions waiting for a resume', () => manager.getStats().detachedSessions);
  gauge(
    'detached_session_bytes',
    'Estimated bytes held by detached sessions (budget: maxDetachedSessionBytes)',
    () => manager.getStats().detachedSessionBytes,
  );
  gauge('draining', '1 while draining (readiness false, see closeOnSignals drainDelayMs)', () =>
    manager.getStats().draining ? 1 : 0,
  );
  gauge('shutting_down', '1 once the graceful shutdown started', () => (manager.isShuttingDown ? 1 : 0));
  gauge('backend_degraded', '1 while the storage backend (Redis) is unreachable', () =>
    backend.degraded === true ? 1 : 0,
  );
  gauge(
    'backend_pending_operations',
    'Operations sent to the storage backend (Redis) and not yet answered',
    () => backend.pendingOps ?? 0,
  );
  const connects = counter('connects_total', 'Accepted connections', ['mode', 'resume']);
  const fresh = counter('fresh_sessions_total', 'Protocol connections that got a new session, by reason', [
    'reason',
  ]);
  const replayed = counter('messages_replayed_total', 'Reliable messages replayed on resume');
  const disconnects = counter('disconnects_total', 'Closed connections by reason and close code', [
    'reason',
    'code',
  ]);
  const sessionEnds = counter('session_ends_total', 'Sessions gone for good by reason', ['reason']);
  const received = counter('messages_received_total', 'Inbound messages', ['reliable']);
  const errors = counter('errors_total', 'Errors reported');
  countedAtScrape(
    'messages_sent_total',
    'Data messages written to sockets (replays included), by reliability: reliable, volatile, plain',
    ['reliability'],
    () => [
      [{ reliability: 'reliable' }, counters.sentReliable],
      [{ reliability: 'volatile' }, counters.sentVolatile],
      [{ reliability: 'plain' }, counters.sentPlain],
    ],
  );
  countedAtScrape(
    'messages_dropped_total',
    'Data messages lost for a recipient (reliable ones are never dropped: they wait in the replay buffer)',
    ['reliability'],
    () => [
      [{ reliability: 'volatile' }, counters.droppedVolatile],
      [{ reliability: 'plain' }, counters.droppedPlain],
    ],
  );
  countedAtScrape(
    'upgrade_rejections_total',
    'WebSocket upgrades refused before a socket existed, by HTTP status and reason',
    ['status', 'reason'],
    () => [
      ...(Object.keys(counters.upgradeRejections) as Array<keyof typeof counters.upgradeRejections>).map(
        (reason) =>
          [
            { status: String(upgradeRejectionStatus[reason]), reason },
            counters.upgradeRejections[reason],
          ] as [Record<string, string>, number],
      ),
      ...[...counters.appRefusals].map(
        ([status, n]) =>
          [{ status: String(status), reason: 'refused-by-app' }, n] as [Record<string, string>, number],
      ),
    ],
  );
  countedAtScrape(
    'messages_rate_limited_total',
    'Inbound messages refused by a rate limit (each closes its connection with 4002), by limit: connection (rateLimit) or principal (rateLimiters.messagesPerPrincipal)',
    ['limit'],
    () => [
      [{ limit: 'connection' }, counters.rateLimited.connection],
      [{ limit: 'principal' }, counters.rateLimited.principal],
    ],
  );
  countedAtScrape(
    'messages_invalid_total',
    'Inbound messages that failed schema.inbound validation (answered INVALID_MESSAGE, not delivered)',
    [],
    () => [[{}, counters.invalidMessages]],
  );

  const offs = [
    manager.on('connect', (e) => {
      connects.inc({ mode: e.mode, resume: e.resume });
      if (e.mode === 'protocol' && e.resume === 'fresh') fresh.inc({ reason: e.freshReason ?? 'new' });
      if (e.replayed > 0) replayed.inc(e.replayed);
    }),
    manager.on('disconnect', (e) => disconnects.inc({ reason: e.reason, code: closeCodeLabel(e.code) })),
    manager.on('session-end', (e) => sessionEnds.inc({ reason: e.reason })),
    manager.on('message', (e) => received.inc({ reliable: String(e.reliable) })),
    manager.on('error', () => errors.inc()),
  ];
  return () => {
    for (const off of offs) off();
    for (const name of names) registry.removeSingleMetric(name);
  };
}
