/**
 * The dashboard page's script, run in the browser. It is served as this function's source text (see page.ts), so
 * it must not use anything from outside its own body: no imports, no module-level names.
 */
export function dashboardScript(): void {
  type Point = {
    t: number;
    connections: number;
    detached: number;
    inPerS: number;
    outPerS: number;
    dropsPerS: number;
    rttMs: number | null;
    loopDelayMs: number;
    loopBusyPct: number;
  };
  type Snapshot = {
    point: Point;
    history?: Point[];
    stats: {
      sessions: number;
      handshaking: number;
      detachedSessionBytes: number;
      draining: boolean;
      shuttingDown: boolean;
    };
    plain: number;
    protocol: number;
    sinceMs: number;
    lastRttMs: number | null;
    resumed: number;
    fresh: Record<string, number>;
    disconnects: Record<string, number>;
    closeCodes: Record<string, number>;
    sessionEnds: Record<string, number>;
    totals: Record<string, number>;
    topics: Array<{ name: string; members: number; sample: string[] }>;
    otherTopics: { count: number; members: number };
    backend: { name: string; nodeId?: string; degraded: boolean; pendingOps: number };
    nodes: Array<{ nodeId: string; connections: number }> | null;
  };

  const base = document.body.dataset.base ?? '';
  const maxPoints = 300;
  const series: Point[] = [];
  const $ = (id: string): HTMLElement => document.getElementById(id)!;
  const fmt = (n: number | null): string =>
    n === null
      ? '–'
      : n >= 10_000
        ? `${Math.round(n / 1000)}k`
        : String(n >= 100 ? Math.round(n) : Math.round(n * 10) / 10);

  /** A sparkline: the series as an SVG polyline over its own range (0 at the bottom). */
  function spark(svg: SVGSVGElement, values: Array<number | null>): void {
    const w = 160;
    const h = 36;
    const max = Math.max(1e-9, ...values.map((v) => v ?? 0));
    // The x axis spans the points so far (at least a minute's worth), growing up to `maxPoints`.
    const span = Math.max(values.length, 60);
    const step = w / (span - 1);
    const x0 = w - step * (values.length - 1);
    const pts = values.map(
      (v, i) => `${(x0 + i * step).toFixed(1)},${(h - 2 - ((v ?? 0) / max) * (h - 4)).toFixed(1)}`,
    );
    svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    svg.innerHTML = pts.length
      ? `<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="${pts.join(' ')}"/>`
      : '';
    svg.setAttribute('aria-label', `max ${fmt(max)}`);
  }

  /** Fill a two-column table body from a tally, largest first. */
  function tally(id: string, counts: Record<string, number>, empty: string): void {
    const rows = Object.entries(counts).sort((a, b) => b[1] - a[1]);
    const body = $(id);
    body.replaceChildren();
    for (const [k, v] of rows.length ? rows : [[empty, 0] as [string, number]]) {
      const tr = document.createElement('tr');
      const a = document.createElement('td');
      const b = document.createElement('td');
      a.textContent = k;
      b.textContent = rows.length ? String(v) : '';
      tr.dataset.key = k;
      tr.append(a, b);
      body.append(tr);
    }
  }

  function render(s: Snapshot): void {
    if (s.history) series.splice(0, series.length, ...s.history);
    series.push(s.point);
    if (series.length > maxPoints) series.splice(0, series.length - maxPoints);
    const p = s.point;
    const values: Record<string, string> = {
      connections: fmt(p.connections),
      plain: fmt(s.plain),
      protocol: fmt(s.protocol),
      detached: fmt(p.detached),
      sessions: fmt(s.stats.sessions),
      in: fmt(p.inPerS),
      out: fmt(p.outPerS),
      drops: fmt(p.dropsPerS),
      rtt: fmt(p.rttMs ?? s.lastRttMs),
      loop: fmt(p.loopDelayMs),
      busy: fmt(p.loopBusyPct),
      resumed: String(s.resumed),
      sent: fmt(s.totals.sent ?? 0),
      dropped: fmt(s.totals.dropped ?? 0),
      rejected: fmt(s.totals.upgradeRejections ?? 0),
      limited: fmt(s.totals.rateLimited ?? 0),
      slow: String(s.disconnects['slow-consumer'] ?? 0),
    };
    for (const [k, v] of Object.entries(values)) $(`v-${k}`).textContent = v;
    document.querySelectorAll<SVGSVGElement>('svg[data-series]').forEach((svg) => {
      const key = svg.dataset.series as keyof Point;
      spark(
        svg,
        series.map((q) => q[key] as number | null),
      );
    });
    $('since').textContent = new Date(s.sinceMs).toLocaleTimeString();
    const node = s.backend.nodeId ? ` · node ${s.backend.nodeId}` : '';
    const state = s.stats.shuttingDown ? 'shutting down' : s.stats.draining ? 'draining' : 'serving';
    $('backend').textContent =
      `${s.backend.name}${node} · ${state}${s.backend.degraded ? ' · BACKEND DEGRADED' : ''}`;
    $('backend').classList.toggle('bad', s.backend.degraded || s.stats.draining);
    tally('fresh', s.fresh, 'none yet');
    tally('disconnects', s.disconnects, 'none yet');
    tally('codes', s.closeCodes, 'none yet');
    tally('ends', s.sessionEnds, 'none yet');
    const topics = $('topics');
    topics.replaceChildren();
    for (const t of s.topics) {
      const tr = document.createElement('tr');
      tr.dataset.topic = t.name;
      for (const text of [
        t.name,
        String(t.members),
        t.sample.join(', ') + (t.members > t.sample.length ? ' …' : ''),
      ]) {
        const td = document.createElement('td');
        td.textContent = text;
        tr.append(td);
      }
      topics.append(tr);
    }
    $('topics-other').textContent = s.otherTopics.count
      ? `and ${s.otherTopics.count} more topics with ${s.otherTopics.members} members`
      : s.topics.length
        ? ''
        : 'no topics';
    const nodes = $('nodes');
    nodes.replaceChildren();
    $('nodes-box').hidden = s.nodes === null;
    for (const n of s.nodes ?? []) {
      const tr = document.createElement('tr');
      for (const text of [
        n.nodeId + (n.nodeId === s.backend.nodeId ? ' (this)' : ''),
        String(n.connections),
      ]) {
        const td = document.createElement('td');
        td.textContent = text;
        tr.append(td);
      }
      nodes.append(tr);
    }
  }

  $('actions').hidden = document.body.dataset.actions !== 'on';
  const status = $('status');
  const events = new EventSource(`${base}/events`);
  events.onopen = () => {
    status.textContent = 'live';
    status.className = 'ok';
  };
  events.onerror = () => {
    status.textContent = 'reconnecting…';
    status.className = 'bad';
  };
  events.onmessage = (e: MessageEvent<string>) => render(JSON.parse(e.data) as Snapshot);

  async function act(name: string, body: object): Promise<void> {
    const res = await fetch(`${base}/actions/${name}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    $('action-result').textContent = `${name}: ${res.status} ${await res.text()}`;
  }
  $('disconnect-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const id = ($('disconnect-id') as HTMLInputElement).value.trim();
    if (id)
      void act('disconnect', { clientId: id, resume: ($('disconnect-resume') as HTMLInputElement).checked });
  });
  $('drain').addEventListener('click', () => {
    if (confirm('Drain this node? Readiness turns false; connections stay.')) void act('drain', {});
  });
}
