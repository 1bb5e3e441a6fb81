import { Cluster } from 'ioredis';

const SLOTS = 16384;
const PROBE_TIMEOUT_MS = 1000;
/** A failed probe is confirmed by another one this much later before the link is degraded. */
const CONFIRM_MS = 250;

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Watches a Redis Cluster client for a failover: ioredis reports a node error or a lost node connection (a master
 * died, its replica is being promoted). The whole cluster client stays `ready` meanwhile, so nothing else would say
 * so. On such a signal the watch is `suspect` at once (the publish lanes go one at a time, see `PublishLanes`), and a
 * probe decides: the cluster is healthy when every slot is served and every master in the slot map answers PING
 * through ioredis's own connection. A failed probe is `down` (the link is degraded); the probe runs again on every
 * heartbeat tick until it passes (`up`). One `down`/`up` pair per failover, however many errors ioredis reports.
 */
export class ClusterWatch {
  /** A node error was seen and no probe has passed since. */
  suspect = false;
  /** A probe failed: a master is unreachable or slots are not served. */
  down = false;
  private probing = false;
  private closed = false;
  private reason = '';
  private failedSinceMs = 0;

  constructor(
    private readonly cluster: Cluster,
    clients: unknown[],
    private readonly handlers: { suspect(): void; down(reason: string): void; up(): void },
  ) {
    const watched = new Set(clients.filter((c): c is Cluster => c instanceof Cluster));
    for (const c of watched) {
      c.on('node error', (err: Error, key?: string) => this.signal(`${key ?? 'a node'}: ${err.message}`));
      c.on('-node', () => this.signal('a Redis Cluster node connection was lost'));
    }
  }

  private signal(reason: string): void {
    if (this.closed) return;
    if (!this.suspect) this.handlers.suspect();
    this.suspect = true;
    if (!this.down) this.reason = reason;
    void this.check();
  }

  /** From the link's heartbeat timer: probe again while suspect or down. */
  tick(): void {
    if (this.suspect || this.down) void this.check();
  }

  close(): void {
    this.closed = true;
  }

  private async check(): Promise<void> {
    if (this.probing || this.closed) return;
    this.probing = true;
    let ok = false;
    try {
      ok = await this.probe();
    } finally {
      this.probing = false;
    }
    if (this.closed) return;
    if (ok) {
      this.suspect = false;
      if (this.down) {
        this.down = false;
        this.handlers.up();
      }
      this.failedSinceMs = 0;
    } else if (!this.down) {
      // Confirmed by a second probe a moment later: a node whose slot map lags the others' for a moment after a
      // failover (gossip) is not another failover.
      const nowMs = Date.now();
      if (this.failedSinceMs === 0) {
        this.failedSinceMs = nowMs;
        setTimeout(() => void this.check(), CONFIRM_MS).unref();
      } else if (nowMs - this.failedSinceMs >= CONFIRM_MS) {
        this.down = true;
        this.handlers.down(`redis cluster failover (${this.reason || 'a master is unreachable'})`);
      }
    }
  }

  /** Every slot served, and every master of the slot map answers PING on ioredis's connection to it. */
  private async probe(): Promise<boolean> {
    try {
      const map = await within(this.cluster.cluster('SLOTS'), PROBE_TIMEOUT_MS);
      let covered = 0;
      const masters = new Set<string>();
      const nat = (this.cluster.options as { natMap?: unknown }).natMap;
      for (const [start, end, master] of map) {
        if (!master) continue;
        covered += end - start + 1;
        const key = `${master[0]}:${master[1]}`;
        const mapped =
          typeof nat === 'function'
            ? (nat as (k: string) => { host: string; port: number } | null)(key)
            : (nat as Record<string, { host: string; port: number }> | undefined)?.[key];
        masters.add(mapped ? `${mapped.host}:${mapped.port}` : key);
      }
      if (covered < SLOTS) return false;
      const byKey = new Map(
        this.cluster.nodes('master').map((r) => [`${r.options.host}:${r.options.port}`, r]),
      );
      const missing = [...masters].some((k) => !byKey.has(k));
      if (missing) {
        // ioredis has not learnt the new slot map yet: ask it to (its own refresh, also run on MOVED).
        (this.cluster as unknown as { refreshSlotsCache?: () => void }).refreshSlotsCache?.();
        return false;
      }
      await Promise.all([...masters].map((k) => within(byKey.get(k)!.ping(), PROBE_TIMEOUT_MS)));
      return true;
    } catch {
      return false;
    }
  }
}
