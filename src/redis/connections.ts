import type { RedisLink } from './link.js';
import type { ResolvedRedisOptions } from './options.js';

/**
 * The cluster-wide connection registry: each node keeps the ids of the connections open on it in its own set
 * (`n:<node>:c`), and the `wssCluster` script reads the sets of live nodes only (a dead node's connections drop out
 * with its heartbeat). Writes are best effort: a node that was taken for dead adds them all again.
 */
export class NodeConnections {
  private readonly key: string;

  constructor(
    private readonly link: RedisLink,
    private readonly opts: ResolvedRedisOptions,
  ) {
    this.key = `${opts.controlPrefix}n:${opts.nodeId}:c`;
  }

  add(...ids: string[]): void {
    if (ids.length > 0) this.link.cmd.sadd(this.key, ...ids).catch(() => {});
  }

  remove(id: string): void {
    this.link.cmd.srem(this.key, id).catch(() => {});
  }

  /** Connections open on every live node. */
  async count(): Promise<number> {
    return Number(
      await this.link.run('wssCluster', [this.opts.controlPrefix, this.opts.nodeTimeoutMs, 'count']),
    );
  }

  /** Every open connection on every live node, with the node that holds it. */
  async list(): Promise<Array<{ clientId: string; nodeId: string }>> {
    const flat = (await this.link.run('wssCluster', [
      this.opts.controlPrefix,
      this.opts.nodeTimeoutMs,
      'list',
    ])) as string[];
    const out: Array<{ clientId: string; nodeId: string }> = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ nodeId: flat[i]!, clientId: flat[i + 1]! });
    return out;
  }
}
