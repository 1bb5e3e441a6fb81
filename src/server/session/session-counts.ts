import type { SessionRecord } from '../../backends/types.js';

/**
 * Sessions held by this process per remote IP and per principal, for `maxSessionsPerIp` and
 * `maxSessionsPerPrincipal`. A session is counted under the IP and principal recorded on it when it was tracked;
 * tracking and untracking are idempotent.
 */
export class SessionCounts {
  private readonly byIp = new Map<string, number>();
  private readonly byPrincipal = new Map<string, number>();
  private readonly tracked = new WeakSet<SessionRecord>();

  track(session: SessionRecord): void {
    if (this.tracked.has(session)) return;
    this.tracked.add(session);
    if (session.remoteAddress !== undefined) bump(this.byIp, session.remoteAddress, 1);
    if (session.principal !== undefined) bump(this.byPrincipal, session.principal, 1);
  }

  untrack(session: SessionRecord): void {
    if (!this.tracked.delete(session)) return;
    if (session.remoteAddress !== undefined) bump(this.byIp, session.remoteAddress, -1);
    if (session.principal !== undefined) bump(this.byPrincipal, session.principal, -1);
  }

  ofIp(remoteAddress: string): number {
    return this.byIp.get(remoteAddress) ?? 0;
  }

  ofPrincipal(principal: string): number {
    return this.byPrincipal.get(principal) ?? 0;
  }
}

function bump(map: Map<string, number>, key: string, delta: 1 | -1): void {
  const n = (map.get(key) ?? 0) + delta;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}
