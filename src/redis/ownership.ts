import type { SessionInfo, SessionOwner } from '../backends/types.js';
import { decodeOwner, encodeOwner } from './codec.js';
import { typedRedisError } from './errors.js';
import type { RedisLink } from './link.js';
import type { ResolvedRedisOptions } from './options.js';
import type { LocalSession, LocalSessions } from './sessions.js';

/**
 * This node's ownership of its sessions in Redis: create, attach (held by a connection here: no TTL), detach
 * (its TTL runs; any node may resume it), delete (with a tombstone). Every write carries the generation this node
 * owns, so a write that lost the race to a resume elsewhere changes nothing.
 */
export class SessionOwnership {
  constructor(
    private readonly link: RedisLink,
    private readonly opts: ResolvedRedisOptions,
    private readonly local: LocalSessions,
    private readonly ttlMs: () => number,
    private readonly fail: (clientId: string, err: unknown) => void,
  ) {}

  /** The session's incarnation and owner as stored in Redis, or `undefined` if Redis has no such session. */
  async inspect(id: string): Promise<SessionInfo | undefined> {
    let h: Array<string | null>;
    try {
      h = await this.link.cmd.hmget(`${this.opts.controlPrefix}s:${id}`, 'i', 'u', 'a');
    } catch (err) {
      throw typedRedisError(err, 'resume');
    }
    if (!h[0]) return undefined;
    const owner = decodeOwner(h[1] ?? '-', h[2] ?? '');
    return { incarnation: h[0], principal: owner.principal, data: owner.data };
  }

  created(ls: LocalSession, owner: SessionOwner): void {
    const stored = encodeOwner(owner);
    const { id, incarnation } = ls.record;
    this.link
      .call('wssCreate', [id, ls.g, this.opts.nodeId, incarnation, stored.principal, stored.data])
      .catch((err: unknown) => this.fail(id, err));
  }

  /** `g`: the generation it was held at (the local session is already forgotten). */
  deleted(id: string, g: string, tombstone: boolean | 'evicted'): void {
    const tomb = tombstone === 'evicted' ? 'evicted' : tombstone ? '1' : '0';
    this.link
      .call('wssDelete', [id, g, tomb, this.opts.tombstoneTtlMs])
      .catch((err: unknown) => this.fail(id, err));
  }

  attach(ls: LocalSession): void {
    const g = ls.g;
    this.link.call('wssAttach', [ls.record.id, g, this.opts.nodeId]).then(
      (r) => {
        if (r === 0 && ls.g === g) this.local.lose(ls, 'session ended in redis');
      },
      (err: unknown) => this.fail(ls.record.id, err),
    );
  }

  detach(ls: LocalSession, report = true): Promise<unknown> {
    const p = this.link.call('wssDetach', [ls.record.id, ls.g, this.opts.nodeId, this.ttlMs()]);
    return p.catch((err: unknown) => (report ? this.fail(ls.record.id, err) : undefined));
  }

  /** Leaving: the sessions attached here start their TTL (resumable elsewhere). Waits at most 1 s. */
  async detachAttached(): Promise<void> {
    const detaching: Array<Promise<unknown>> = [];
    if (!this.link.degraded) {
      for (const ls of this.local.byId.values())
        if (this.local.connectionOf(ls)) detaching.push(this.detach(ls, false));
    }
    await Promise.race([Promise.all(detaching), new Promise((r) => setTimeout(r, 1000))]);
  }

  /** Another node took this one for dead: put every session held here back as it is (attached or detached). */
  reclaimAll(): void {
    for (const ls of this.local.byId.values()) {
      if (this.local.connectionOf(ls)) this.attach(ls);
      else void this.detach(ls, false);
    }
  }
}
