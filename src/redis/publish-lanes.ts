/** One topic's publishes: how many are at Redis, and those waiting to be sent, in call order. */
interface Lane {
  inFlight: number;
  waiting: Array<() => void>;
}

/**
 * Keeps a topic's publishes in call order through a Redis failover. Normally every publish goes to Redis at once
 * (pipelined on one connection, so Redis numbers them in call order). While the link is unsettled (a Cluster node
 * was lost, a failover is under way) ioredis retries the publishes that met the dead master on its own timers,
 * and a publish sent meanwhile could overtake them on the promoted replica. So while unsettled, a topic's next
 * publish is sent only once the previous ones have settled: one at a time per topic until the failover is over,
 * then pipelined again. Publishes that wait count in `pending` (the backend's `maxPendingOps` bound).
 */
export class PublishLanes {
  private readonly lanes = new Map<string, Lane>();

  constructor(
    private readonly unsettled: () => boolean,
    private readonly counter: { pending: number },
  ) {}

  /** Run `send` for `topic` now, or once the topic's earlier publishes allow it. */
  run<T>(topic: string, send: () => Promise<T>): Promise<T> {
    let lane = this.lanes.get(topic);
    if (!lane) {
      lane = { inFlight: 0, waiting: [] };
      this.lanes.set(topic, lane);
    }
    if (lane.waiting.length === 0 && (lane.inFlight === 0 || !this.unsettled()))
      return this.start(topic, lane, send);
    const l = lane;
    this.counter.pending++;
    return new Promise<T>((resolve, reject) => {
      l.waiting.push(() => {
        this.counter.pending--;
        this.start(topic, l, send).then(resolve, reject);
      });
    });
  }

  private start<T>(topic: string, lane: Lane, send: () => Promise<T>): Promise<T> {
    lane.inFlight++;
    let p: Promise<T>;
    try {
      p = send();
    } catch (err) {
      p = Promise.reject(err);
    }
    const done = () => {
      lane.inFlight--;
      this.drain(topic, lane);
    };
    p.then(done, done);
    return p;
  }

  private drain(topic: string, lane: Lane): void {
    while (lane.waiting.length > 0 && (lane.inFlight === 0 || !this.unsettled())) lane.waiting.shift()!();
    if (lane.inFlight === 0 && lane.waiting.length === 0) this.lanes.delete(topic);
  }
}
