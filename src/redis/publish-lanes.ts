/** One topic's publishes: those at Redis (by the link generation they were sent in), those waiting, in call order. */
interface Lane {
  inFlight: number;
  /** In-flight publishes per link generation at their send. */
  byGeneration: Map<number, number>;
  waiting: Array<() => void>;
}

/** What the lanes read from the link. */
export interface LaneLink {
  /** Degraded, or a Cluster node was just lost and the probe has not decided yet. */
  readonly unsettled: boolean;
  /** Bumped every time the link becomes unsettled. */
  readonly generation: number;
  /** Operations in flight or queued (`maxPendingOps`): waiting publishes count too. */
  pending: number;
}

/**
 * Keeps a topic's publishes in call order through a Redis failover. Normally every publish goes to Redis at once
 * (pipelined on one connection, so Redis numbers them in call order). During a failover ioredis retries the
 * publishes that met the dead master on its own timers, and a publish sent meanwhile could overtake them on the
 * promoted replica. So a topic's next publish is sent at once only if nothing went wrong since its earlier ones in
 * flight were sent (same link generation, link settled); otherwise it waits until they have all settled, and while
 * the link is unsettled the topic's publishes go one at a time. Waiting publishes count in `pending`.
 */
export class PublishLanes {
  private readonly lanes = new Map<string, Lane>();

  constructor(private readonly link: LaneLink) {}

  /** Run `send` for `topic` now, or once the topic's earlier publishes allow it. */
  run<T>(topic: string, send: () => Promise<T>): Promise<T> {
    let lane = this.lanes.get(topic);
    if (!lane) {
      lane = { inFlight: 0, byGeneration: new Map(), waiting: [] };
      this.lanes.set(topic, lane);
    }
    if (lane.waiting.length === 0 && this.mayOvertake(lane)) return this.start(topic, lane, send);
    const l = lane;
    this.link.pending++;
    return new Promise<T>((resolve, reject) => {
      l.waiting.push(() => {
        this.link.pending--;
        this.start(topic, l, send).then(resolve, reject);
      });
    });
  }

  /** May a publish go out while the lane's others are in flight? */
  private mayOvertake(lane: Lane): boolean {
    if (lane.inFlight === 0) return true;
    if (this.link.unsettled) return false;
    return lane.byGeneration.size === 1 && lane.byGeneration.has(this.link.generation);
  }

  private start<T>(topic: string, lane: Lane, send: () => Promise<T>): Promise<T> {
    const gen = this.link.generation;
    lane.inFlight++;
    lane.byGeneration.set(gen, (lane.byGeneration.get(gen) ?? 0) + 1);
    let p: Promise<T>;
    try {
      p = send();
    } catch (err) {
      p = Promise.reject(err);
    }
    const done = () => {
      lane.inFlight--;
      const left = lane.byGeneration.get(gen)! - 1;
      if (left === 0) lane.byGeneration.delete(gen);
      else lane.byGeneration.set(gen, left);
      this.drain(topic, lane);
    };
    p.then(done, done);
    return p;
  }

  private drain(topic: string, lane: Lane): void {
    while (lane.waiting.length > 0 && this.mayOvertake(lane)) lane.waiting.shift()!();
    if (lane.inFlight === 0 && lane.waiting.length === 0) this.lanes.delete(topic);
  }
}
