import { ErrorCode } from '../protocol/error-codes.js';
import { StabilizerError } from '../server/errors.js';
import { isEpochError } from './link.js';

/** What the lanes read from the link. */
export interface LaneLink {
  /** Degraded, or a Cluster node was just lost and the probe has not decided yet. */
  readonly unsettled: boolean;
  /** Bumped every time the link turns degraded or a Cluster node is lost. */
  readonly generation: number;
  /** Operations in flight or queued (`maxPendingOps`): waiting publishes count too. */
  pending: number;
}

const noop = (): void => {};

/** Wait between two tries of a publish that met a failover. */
export const RETRY_DELAY_MS = 100;
/** A publish that keeps meeting a failover for this long rejects with its last error. */
export const RETRY_FOR_MS = 100_000;

interface Item {
  /** Sends the publish (the same dedupe id on every try: a try whose reply was lost is not published twice). */
  send: () => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (err: unknown) => void;
  state: 'waiting' | 'sent' | 'failed';
  generation: number;
  firstTryMs: number;
  /** Resolves once the publish settled (resolved or rejected). */
  done: Promise<void>;
}

interface Lane {
  /** Unsettled publishes, in call order. */
  items: Item[];
  /** A try failed: the publishes go one at a time, oldest first, until one succeeds and none is failed. */
  blocked: boolean;
  /** The last try succeeded: the next failed one goes at once rather than after a delay. */
  lastOk: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * A failure that a later try can get past: Redis did not answer (a closed connection, CLUSTERDOWN, redirections),
 * which `typedRedisError` turns into `BACKEND_UNAVAILABLE` with the Redis error as its cause. Not a lost history,
 * not the capacity bound, not a publish that replicas did not acknowledge (those have no cause).
 */
const retriable = (err: unknown): boolean =>
  err instanceof StabilizerError &&
  err.code === ErrorCode.BackendUnavailable &&
  err.cause !== undefined &&
  !isEpochError(err.cause);

/**
 * Keeps a topic's publishes in call order through a Redis failover. Normally every publish goes to Redis at once
 * (pipelined on one connection, so Redis numbers them in call order). A try that meets a failover (the master's
 * connection closed, CLUSTERDOWN: on a Cluster the publishes go through a connection on which ioredis does not
 * retry those by itself) blocks the topic's lane: the publishes after it that were in flight fail too, and from then
 * on the oldest unsettled publish is tried alone every {@link RETRY_DELAY_MS} until it succeeds, then the others in
 * order. A publish never overtakes one sent before the link last turned unsettled. Waiting publishes count in
 * `pending`; one that met failovers for {@link RETRY_FOR_MS} rejects.
 */
export class PublishLanes {
  private readonly lanes = new Map<string, Lane>();

  constructor(private readonly link: LaneLink) {}

  run<T>(topic: string, send: () => Promise<T>): Promise<T> {
    let lane = this.lanes.get(topic);
    if (!lane) {
      lane = { items: [], blocked: false, lastOk: true, timer: undefined };
      this.lanes.set(topic, lane);
    }
    const l = lane;
    let item: Item | undefined;
    const p = new Promise<T>((resolve, reject) => {
      item = {
        send,
        resolve: resolve as (v: unknown) => void,
        reject,
        state: 'waiting',
        generation: 0,
        firstTryMs: 0,
        done: Promise.resolve(),
      };
      this.link.pending++; // counted while not at Redis (at Redis, the script call counts itself)
      l.items.push(item);
    });
    item!.done = p.then(noop, noop);
    this.pump(topic, l);
    return p;
  }

  /** Settles once every publish of `topic` already in its lane has settled; `undefined` if none is. */
  settled(topic: string): Promise<void> | undefined {
    const lane = this.lanes.get(topic);
    if (!lane || lane.items.length === 0) return undefined;
    return Promise.all(lane.items.map((i) => i.done)).then(noop);
  }

  private pump(topic: string, lane: Lane): void {
    if (lane.timer) return;
    if (lane.items.length === 0) return void this.lanes.delete(topic);
    const inFlight = lane.items.filter((i) => i.state === 'sent');
    if (lane.blocked) {
      if (inFlight.length > 0) return; // wait for the tries under way to settle
      const first = lane.items[0]!;
      if (first.state === 'failed' && !lane.lastOk) {
        lane.timer = setTimeout(() => {
          lane.timer = undefined;
          this.start(topic, lane, first);
        }, RETRY_DELAY_MS);
        lane.timer.unref?.();
      } else this.start(topic, lane, first);
      return;
    }
    // Not blocked: send what waits, unless it could overtake a publish sent before the link last turned unsettled.
    const gen = this.link.generation;
    for (const item of lane.items) {
      if (item.state !== 'waiting') continue;
      const inFlightNow = lane.items.some((i) => i.state === 'sent');
      if (
        inFlightNow &&
        (this.link.unsettled || lane.items.some((i) => i.state === 'sent' && i.generation !== gen))
      )
        return;
      this.start(topic, lane, item);
    }
  }

  private start(topic: string, lane: Lane, item: Item): void {
    item.state = 'sent';
    this.link.pending--;
    item.generation = this.link.generation;
    if (item.firstTryMs === 0) item.firstTryMs = Date.now();
    let p: Promise<unknown>;
    try {
      p = item.send();
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (v) => {
        this.settle(lane, item);
        lane.lastOk = true;
        item.resolve(v);
        if (lane.blocked && !lane.items.some((i) => i.state === 'failed')) lane.blocked = false;
        this.pump(topic, lane);
      },
      (err: unknown) => {
        if (retriable(err) && Date.now() - item.firstTryMs < RETRY_FOR_MS) {
          item.state = 'failed';
          lane.lastOk = false;
          this.link.pending++;
          lane.blocked = true;
        } else {
          this.settle(lane, item);
          item.reject(err);
        }
        this.pump(topic, lane);
      },
    );
  }

  private settle(lane: Lane, item: Item): void {
    lane.items.splice(lane.items.indexOf(item), 1);
  }
}
