// Turns the measured rows into bench/results/latest.md (tables, ratios, targets) and a hand-written SVG chart.

const LABELS = {
  stabilizer: 'stabilizer (plain)',
  'stabilizer-reliable': 'stabilizer (v1 reliable)',
  'ws-naive': 'raw ws (naive)',
  'ws-limit': 'raw ws (limit)',
  'ws-heartbeat': 'ws + README heartbeat',
  socketio: 'Socket.IO 4',
  json: 'JSON',
  msgpack: 'MessagePack',
  'stabilizer-deflate': 'stabilizer (v1, deflate once)',
  'ws-deflate': 'raw ws (deflate per socket)',
  'socketio-deflate': 'Socket.IO 4 (deflate per socket)',
};
// `msgpack` ÷ `json`: the encoding workload's ratio column.
const OURS = ['stabilizer', 'stabilizer-reliable', 'stabilizer-deflate', 'msgpack'];
const BASELINES = [
  'ws-limit',
  'ws-naive',
  'ws-heartbeat',
  'socketio',
  'ws-deflate',
  'socketio-deflate',
  'json',
];
const label = (s) => LABELS[s] ?? s;

function row(results, workload, system, metric) {
  return results.find((r) => r.workload === workload && r.system === system && r.metric === metric);
}

function get(results, workload, system, metric) {
  return row(results, workload, system, metric)?.value;
}

function median(values) {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/**
 * `a ÷ b` for a metric. With per-round values on both sides (interleaved rounds), the ratio of each round, and
 * their median, min and max; otherwise the one ratio of the two values.
 */
function ratioStats(results, workload, a, b, metric) {
  const ra = row(results, workload, a, metric);
  const rb = row(results, workload, b, metric);
  if (!ra || !rb || rb.value === 0) return undefined;
  const rounds =
    ra.rounds && rb.rounds && ra.rounds.length === rb.rounds.length
      ? ra.rounds.map((v, i) => v / rb.rounds[i])
      : [ra.value / rb.value];
  const iqr = rounds.length >= IQR_FROM_ROUNDS;
  return {
    median: median(rounds),
    min: Math.min(...rounds),
    max: Math.max(...rounds),
    // The spread a verdict uses: the interquartile range from IQR_FROM_ROUNDS rounds on, else min–max.
    low: iqr ? quantile(rounds, 0.25) : Math.min(...rounds),
    high: iqr ? quantile(rounds, 0.75) : Math.max(...rounds),
    iqr,
    rounds,
  };
}

/** From this many rounds on, the spread of a ratio is its interquartile range (one outlier round cannot decide). */
export const IQR_FROM_ROUNDS = 5;

/** Quantile `q` of `values`, linear between the closest ranks. */
function quantile(values, q) {
  const v = [...values].sort((a, b) => a - b);
  const at = (v.length - 1) * q;
  const lo = Math.floor(at);
  return v[lo] + (v[Math.min(lo + 1, v.length - 1)] - v[lo]) * (at - lo);
}

/** `1.05× (IQR 1.01–1.08; min–max 0.98–1.12)`: the median of the per-round ratios and their spread. */
function fmtStats(st) {
  if (!st) return '–';
  if (st.rounds.length === 1) return fmtRatio(st.median);
  const range = `${st.min.toFixed(2)}–${st.max.toFixed(2)}`;
  if (!st.iqr) return `${st.median.toFixed(2)}× (min–max ${range})`;
  return `${st.median.toFixed(2)}× (IQR ${st.low.toFixed(2)}–${st.high.toFixed(2)}; min–max ${range})`;
}

/**
 * A verdict only when the whole spread of the per-round ratios (IQR, or min–max with fewer rounds) is on one side
 * of the limit. `atMost`: the target is `≤ limit`; otherwise `≥ limit`.
 */
function verdict(st, limit, atMost) {
  if (!st) return undefined;
  const pass = atMost ? st.high <= limit : st.low >= limit;
  const fail = atMost ? st.low > limit : st.high < limit;
  return pass ? 'met' : fail ? 'NOT met' : 'no verdict (spread crosses the limit)';
}

function fmt(v) {
  if (v === undefined || v === null) return '–';
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toFixed(3);
}
const ratio = (a, b) => (a === undefined || b === undefined || b === 0 ? undefined : a / b);
const fmtRatio = (r) => (r === undefined ? '–' : `${r.toFixed(2)}×`);

function unique(list) {
  return [...new Set(list)];
}

/** One table per workload: a column per system, then our value ÷ each baseline. */
function workloadTable(results, workload) {
  const rows = results.filter((r) => r.workload === workload);
  const systems = unique(rows.map((r) => r.system));
  const ours = OURS.filter((s) => systems.includes(s));
  const oursAll = systems.filter((s) => s.startsWith('stabilizer'));
  const baselines = BASELINES.filter((s) => systems.includes(s));
  const ordered = [...oursAll, ...systems.filter((s) => !oursAll.includes(s))];
  const metrics = unique(rows.map((r) => `${r.metric}\u0000${r.unit}`));
  const rs = ours.length ? ours : oursAll;
  const head = ['metric', 'unit', ...ordered.map(label), ...baselines.map((b) => `÷ ${label(b)}`)];
  const caption =
    baselines.length && rs.length ? `Ratio columns: ${rs.map(label).join(' / ')} ÷ the baseline.\n\n` : '';
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const key of metrics) {
    const [metric, unit] = key.split('\u0000');
    const cells = ordered.map((s) => {
      const r = row(results, workload, s, metric);
      // The headline metric shows its range over the rounds too.
      if (r?.rounds && r.rounds.length > 1 && metric === 'server CPU per delivery')
        return `${fmt(r.value)} (${fmt(Math.min(...r.rounds))}–${fmt(Math.max(...r.rounds))})`;
      return fmt(r?.value);
    });
    const ratios = baselines.map((b) =>
      rs.map((o) => fmtStats(ratioStats(results, workload, o, b, metric))).join(' / '),
    );
    lines.push(`| ${[metric, unit, ...cells, ...ratios].join(' | ')} |`);
  }
  const rounds = rows.find((r) => r.rounds)?.rounds.length;
  const spread = rounds
    ? `\n\nValues are medians of ${rounds} interleaved rounds; server CPU per delivery shows (min–max) over the ` +
      'rounds; a ratio is the median of the per-round ratios, with ' +
      (rounds >= IQR_FROM_ROUNDS ? 'their interquartile range and min–max.' : 'their min–max.')
    : '';
  return caption + lines.join('\n') + spread;
}

/** The targets of the issue, each checked against this run's numbers (missing numbers are reported as such). */
function targets(results) {
  const out = [];
  const add = (what, measured, limit, pass) =>
    out.push({
      what,
      measured,
      limit,
      result:
        typeof pass === 'string' ? pass : pass === undefined ? 'not measured' : pass ? 'met' : 'NOT met',
    });

  // Broadcast and rooms, at saturation: every ratio from interleaved rounds, with its spread.
  const m = 'server CPU per delivery';
  const saturation = unique(
    results
      .filter((r) => r.workload.startsWith('broadcast') || r.workload.startsWith('rooms'))
      .map((r) => r.workload),
  );
  const main = 'broadcast 1000 clients, 10/turn, 150 B';
  const spreadAdd = (what, st, limit, atMost) =>
    add(what, fmtStats(st), `${atMost ? '≤' : '≥'} ${limit}×`, verdict(st, limit, atMost));
  // The main workload first, then the others.
  const ordered = [...saturation.filter((w) => w === main), ...saturation.filter((w) => w !== main)];
  for (const w of ordered) {
    const tag = w.startsWith('broadcast') ? `Broadcast (${w.slice(10)})` : `Rooms (${w.slice(7)})`;
    const rel = 'stabilizer-reliable';
    spreadAdd(
      `${tag}: ${label(rel)} CPU/delivery ÷ raw ws at the limit`,
      ratioStats(results, w, rel, 'ws-limit', m),
      1.2,
      true,
    );
    spreadAdd(
      `${tag}: Socket.IO CPU/delivery ÷ ${label(rel)}`,
      ratioStats(results, w, 'socketio', rel, m),
      3,
      false,
    );
    if (w === main) {
      const plain = 'stabilizer';
      spreadAdd(
        `${tag}: ${label(plain)} CPU/delivery ÷ raw ws at the limit`,
        ratioStats(results, w, plain, 'ws-limit', m),
        1.2,
        true,
      );
      spreadAdd(
        `${tag}: Socket.IO CPU/delivery ÷ ${label(plain)}`,
        ratioStats(results, w, 'socketio', plain, m),
        3,
        false,
      );
      const st = ratioStats(results, w, rel, plain, m);
      if (st)
        add(
          `${tag}: ${label(rel)} ÷ ${label(plain)} CPU/delivery (same within noise)`,
          fmtStats(st),
          '≈ 1×',
          'for the record',
        );
    }
  }
  // Compression: deflate once per broadcast vs our uncompressed broadcast and vs per-socket deflate.
  const compressed = unique(
    results.filter((r) => r.workload.startsWith('compression')).map((r) => r.workload),
  );
  for (const w of compressed) {
    const tag = `Compression (${w.slice(w.indexOf('broadcast') + 10)})`;
    const ours = 'stabilizer-deflate';
    const plainStats = ratioStats(results, w, ours, 'stabilizer-reliable', m);
    if (w.includes(' 2 KB')) {
      spreadAdd(
        `${tag}: ${label(ours)} CPU/delivery ÷ ${label('stabilizer-reliable')}`,
        plainStats,
        1.3,
        true,
      );
      const busy = 'server CPU per delivery in the publishing turns (sync work, no waits)';
      spreadAdd(
        `${tag}: ${label(ours)} ÷ ${label('stabilizer-reliable')}, CPU in the publishing turns only`,
        ratioStats(results, w, ours, 'stabilizer-reliable', busy),
        1.3,
        true,
      );
    } else if (plainStats)
      add(
        `${tag}: ${label(ours)} CPU/delivery ÷ ${label('stabilizer-reliable')}`,
        fmtStats(plainStats),
        '–',
        'for the record',
      );
    for (const other of ['ws-deflate', 'socketio-deflate']) {
      const st = ratioStats(results, w, other, ours, m);
      if (w.includes(' 150 B')) {
        // Below the 1 KB threshold nothing is deflated by anyone: not a compression comparison.
        if (st)
          add(`${tag}: ${label(other)} CPU/delivery ÷ ${label(ours)}`, fmtStats(st), '–', 'for the record');
      } else spreadAdd(`${tag}: ${label(other)} CPU/delivery ÷ ${label(ours)}`, st, 5, false);
    }
    const wire = (s) => get(results, w, s, 'bytes on the wire per delivery (server to client)');
    add(
      `${tag}: bytes on the wire per delivery, ours deflated / ours plain / ws / Socket.IO`,
      ['stabilizer-deflate', 'stabilizer-reliable', 'ws-deflate', 'socketio-deflate']
        .map((s) => fmt(wire(s)))
        .join(' / '),
      '–',
      'for the record',
    );
  }
  const ackRows = results.filter(
    (r) => saturation.includes(r.workload) && r.metric === 'acks from clients per delivery',
  );
  if (ackRows.length) {
    const worst = Math.max(...ackRows.flatMap((r) => r.rounds ?? [r.value]));
    add(
      'Acks from clients per broadcast delivery (every broadcast and rooms run)',
      fmt(worst),
      '0',
      worst === 0,
    );
  }
  const lossRows = results.filter(
    (r) =>
      saturation.includes(r.workload) &&
      ['topic messages lost', 'topic messages duplicated', 'order errors'].includes(r.metric),
  );
  if (lossRows.length) {
    const total = (metric) => lossRows.filter((r) => r.metric === metric).reduce((a, r) => a + r.value, 0);
    const lost = total('topic messages lost');
    const dup = total('topic messages duplicated');
    const order = total('order errors');
    add(
      'Topic publications lost / duplicated / out of order at the clients (every broadcast and rooms run)',
      `${fmt(lost)} / ${fmt(dup)} / ${fmt(order)}`,
      '0 / 0 / 0',
      lost === 0 && dup === 0 && order === 0,
    );
  }

  const idle = results.find((r) => r.workload.startsWith('idle'))?.workload;
  if (idle) {
    const heap = get(results, idle, 'stabilizer-reliable', 'heap per connection');
    const wsHeap = get(results, idle, 'ws-heartbeat', 'heap per connection');
    add(
      `Idle heap per connection, stabilizer.v1 with heartbeat + resume state, vs ws (+1 KB)`,
      heap === undefined || wsHeap === undefined
        ? '–'
        : `${fmt(heap)} KB vs ${fmt(wsHeap)} KB (+${fmt(heap - wsHeap)} KB)`,
      '≤ ws + 1 KB',
      heap === undefined || wsHeap === undefined ? undefined : heap <= wsHeap + 1,
    );
    for (const ours of ['stabilizer-reliable', 'stabilizer']) {
      const cpu = get(results, idle, ours, 'heartbeat CPU');
      if (cpu === undefined) continue;
      const rWs = ratio(cpu, get(results, idle, 'ws-heartbeat', 'heartbeat CPU'));
      const rSio = ratio(cpu, get(results, idle, 'socketio', 'heartbeat CPU'));
      add(
        `Heartbeat CPU, ${label(ours)} vs ws README recipe`,
        fmtRatio(rWs),
        '≤ 0.9×',
        rWs === undefined ? undefined : rWs <= 0.9,
      );
      // Issue 12's target: the median of the per-window ratios (same windows for every system) with its spread, of
      // the CPU per ping (a window holds a varying number of pings: see the idle workload in run.mjs).
      const st = ratioStats(results, idle, ours, 'ws-heartbeat', 'CPU per ping');
      add(
        `Heartbeat CPU per ping, ${label(ours)} ÷ ws README recipe, per window`,
        fmtStats(st),
        '≤ 1.1×',
        verdict(st, 1.1, true),
      );
      add(
        `Heartbeat CPU, ${label(ours)} vs Socket.IO`,
        fmtRatio(rSio),
        '≤ 0.6×',
        rSio === undefined ? undefined : rSio <= 0.6,
      );
    }
  }

  const storms = unique(results.filter((r) => r.workload.startsWith('resume storm')).map((r) => r.workload));
  for (const storm of storms) {
    const s = 'stabilizer-reliable';
    const tag = storm.slice(storm.lastIndexOf(',') + 2);
    const t = get(results, storm, s, 'time until all resumed');
    const resumed = get(results, storm, s, 'clients with every message');
    add(
      `Resume storm (${tag}): all 5,000 resumed with every message within`,
      t === undefined ? '–' : `${fmt(t)} ms (${fmt(resumed)} clients)`,
      '≤ 10,000 ms, all 5,000',
      t === undefined ? undefined : t <= 10_000 && resumed === 5000,
    );
    const lost = get(results, storm, s, 'messages lost');
    const dup = get(results, storm, s, 'messages duplicated');
    add(
      `Resume storm (${tag}): messages lost / duplicated`,
      `${fmt(lost)} / ${fmt(dup)}`,
      '0 / 0',
      lost === undefined ? undefined : lost === 0 && dup === 0,
    );
    const el = get(results, storm, s, 'event-loop delay p99');
    add(
      `Resume storm (${tag}): event-loop delay p99`,
      el === undefined ? '–' : `${fmt(el)} ms`,
      '≤ 200 ms',
      el === undefined ? undefined : el <= 200,
    );
  }

  const slow = results.find((r) => r.workload.startsWith('slow consumers'))?.workload;
  if (slow) {
    const s = 'stabilizer-reliable';
    const r = get(results, slow, s, 'healthy p99 ratio (slow / none)');
    add(
      'Slow consumers: healthy p99 with ÷ without slow clients',
      fmtRatio(r),
      '≤ 1.5×',
      r === undefined ? undefined : r <= 1.5,
    );
    const growth = get(results, slow, s, 'server memory held after GC, growth (with 5% slow)');
    const bound = get(results, slow, s, 'bound: slow × maxBufferedBytes + 3 × replay.maxBytes');
    add(
      'Slow consumers: server memory held (heap + buffers, after GC) ≤ slow × maxBufferedBytes + 3 × replay.maxBytes (the shared `$all` history)',
      growth === undefined ? '–' : `${fmt(growth)} MB vs ${fmt(bound)} MB`,
      '≤ bound',
      growth === undefined ? undefined : growth <= bound,
    );
  }
  const lines = ['| target | measured | limit | result |', '|---|---|---|---|'];
  for (const t of out) lines.push(`| ${t.what} | ${t.measured} | ${t.limit} | ${t.result} |`);
  return lines.join('\n');
}

export function renderMarkdown(results, { env, notes }) {
  const workloads = unique(results.map((r) => r.workload));
  const parts = [
    '# Benchmark results (latest run)',
    '',
    `Generated by \`npm run bench${env.mode === 'quick' ? ' -- --quick' : ''}\` on ${new Date().toISOString()}: ` +
      `${env.mode} mode, Node ${env.node}, ${env.cpus} × ${env.cpuModel}, took ${env.durationS} s. ` +
      `Load average at start ${env.loadavgAtStart.join(' ')}, at end ${env.loadavgAtEnd.join(' ')} ` +
      '(other processes on the machine add noise, mostly to latencies).',
    '',
    'Every number below was measured in this run (raw rows: `latest.json`). Server CPU is `process.cpuUsage()` ' +
      '(user + system) inside the server process; server and load generator are separate processes on loopback. ' +
      'Broadcast and rooms run at saturation (closed loop) in interleaved rounds: values are medians, ratios the ' +
      'median of the per-round ratios with their spread (the interquartile range from 5 rounds on, else ' +
      'min–max), and a target is met or not met only when the whole spread is on one side of its limit. ' +
      'Other latencies are from the intended send time of an open-loop ' +
      'schedule (HDR histogram). Ratios are stabilizer ÷ baseline: below 1× means less (CPU, memory, latency) or ' +
      'fewer.',
    '',
    '## Targets',
    '',
    targets(results),
    '',
  ];
  for (const w of workloads) parts.push(`## ${w}`, '', workloadTable(results, w), '');
  if (notes.length) parts.push('## Notes', '', ...notes.map((n) => `- ${n}`), '');
  parts.push(
    '## Systems',
    '',
    '- **stabilizer (plain)**: this library, clients without the subprotocol; `manager.broadcast(obj)`.',
    '- **stabilizer (v1 reliable)**: this library, `stabilizer.v1` clients; `broadcast()` publishes to the topic ' +
      '`$all` (one offset and one frame for every client, kept once in the topic history for resume, never acked); ' +
      'rooms are topics. Clients ack direct messages only, like the client library (every 32 or 200 ms).',
    '- **raw ws (naive)**: `ws` 8, one `JSON.stringify` per broadcast, then `ws.send(text)` for every client.',
    '- **raw ws (limit)**: `ws` 8, frame built once per broadcast, every socket corked for the whole turn ' +
      '(rooms: a client list per room).',
    '- **ws + README heartbeat**: `ws` with the `isAlive` / `setInterval` / `ping()` recipe of its README.',
    "- **Socket.IO 4**: `socket.io` 4.8, `transports: ['websocket']`, perMessageDeflate off, `io.emit()` " +
      '(rooms: `io.to(room).emit()`); ' +
      'connection state recovery on in the resume storm.',
    '',
    'The chart of the broadcast workload is `broadcast.svg`.',
    '',
  );
  return parts.join('\n');
}

// ---------------------------------------------------------------- SVG chart

const COLORS = {
  stabilizer: '#1b9e77',
  'stabilizer-reliable': '#66c2a5',
  'ws-limit': '#7570b3',
  'ws-naive': '#a6a6d8',
  socketio: '#d95f02',
};

/** The smallest 1, 2, 2.5 or 5 × 10^k at or above `v`, so that the axis ticks (quarters) are round numbers. */
function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 4, 5, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const isSaturation = (w) => w.startsWith('broadcast') || w.startsWith('rooms');

/**
 * Bars per workload and system, with a whisker over the min–max of the rounds. `series(workload, system)` gives
 * `{ value, min, max }` or undefined; `limit` draws a dashed line (a target).
 */
function panel(workloads, systems, series, { unit, title, limit }, x0, y0, width, height) {
  const points = workloads.flatMap((w) => systems.map((s) => series(w, s)).filter(Boolean));
  if (!points.length) return '';
  const max = niceCeil(Math.max(...points.map((p) => p.max), limit ?? 0) * 1.1);
  const plotTop = y0 + 30;
  const plotBottom = y0 + height - 60;
  const plotH = plotBottom - plotTop;
  const groupW = (width - 60) / workloads.length;
  const barW = Math.min(22, (groupW - 16) / systems.length);
  const y = (v) => plotBottom - (v / max) * plotH;
  const out = [
    `<text x="${x0 + width / 2}" y="${y0 + 16}" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<line x1="${x0 + 50}" y1="${plotBottom}" x2="${x0 + width - 10}" y2="${plotBottom}" stroke="#333"/>`,
    `<line x1="${x0 + 50}" y1="${plotTop}" x2="${x0 + 50}" y2="${plotBottom}" stroke="#333"/>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (max / 4) * i;
    out.push(
      `<line x1="${x0 + 50}" y1="${y(v)}" x2="${x0 + width - 10}" y2="${y(v)}" stroke="#ddd"/>`,
      `<text x="${x0 + 45}" y="${y(v) + 4}" text-anchor="end" font-size="10">${esc(fmt(v))}</text>`,
    );
  }
  if (limit !== undefined) {
    out.push(
      `<line x1="${x0 + 50}" y1="${y(limit)}" x2="${x0 + width - 10}" y2="${y(limit)}" stroke="#c00" stroke-dasharray="6 4"/>`,
      `<text x="${x0 + width - 12}" y="${y(limit) - 4}" text-anchor="end" font-size="10" fill="#c00">target ≤ ${limit}×</text>`,
    );
  }
  out.push(
    `<text x="${x0 + 12}" y="${(plotTop + plotBottom) / 2}" font-size="11" transform="rotate(-90 ${x0 + 12} ${(plotTop + plotBottom) / 2})" text-anchor="middle">${esc(unit)}</text>`,
  );
  workloads.forEach((w, gi) => {
    const gx = x0 + 55 + gi * groupW + (groupW - barW * systems.length) / 2;
    systems.forEach((s, si) => {
      const p = series(w, s);
      if (!p) return;
      const x = gx + si * barW;
      const mid = x + barW / 2 - 1;
      out.push(
        `<rect x="${x.toFixed(1)}" y="${y(p.value).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(plotBottom - y(p.value)).toFixed(1)}" fill="${COLORS[s]}"><title>${esc(`${label(s)}: ${fmt(p.value)} ${unit} (${fmt(p.min)}–${fmt(p.max)})`)}</title></rect>`,
      );
      if (p.max > p.min) {
        out.push(
          `<line x1="${mid.toFixed(1)}" y1="${y(p.min).toFixed(1)}" x2="${mid.toFixed(1)}" y2="${y(p.max).toFixed(1)}" stroke="#222"/>`,
        );
      }
      out.push(
        `<text x="${mid.toFixed(1)}" y="${(y(p.max) - 3).toFixed(1)}" text-anchor="middle" font-size="8">${esc(fmt(p.value))}</text>`,
      );
    });
    const short = w
      .replace(
        /^rooms: (\d+) rooms of (\d+) clients, (\d+)\/turn to each room/,
        '$1 rooms × $2, $3/turn each',
      )
      .replace('broadcast ', '')
      .replace(' clients', 'c');
    out.push(
      `<text x="${x0 + 55 + gi * groupW + groupW / 2}" y="${plotBottom + 16}" text-anchor="middle" font-size="10">${esc(short)}</text>`,
    );
  });
  return out.join('\n');
}

export function renderSvg(results) {
  const width = 1000;
  const panelH = 300;
  const workloads = unique(results.filter((r) => isSaturation(r.workload)).map((r) => r.workload));
  const systems = Object.keys(COLORS).filter((s) =>
    results.some((r) => isSaturation(r.workload) && r.system === s),
  );
  const m = 'server CPU per delivery';
  const cpu = (w, s) => {
    const r = row(results, w, s, m);
    if (!r) return undefined;
    const rounds = r.rounds ?? [r.value];
    return { value: r.value, min: Math.min(...rounds), max: Math.max(...rounds) };
  };
  const vsLimit = (w, s) => {
    const st = ratioStats(results, w, s, 'ws-limit', m);
    return st && { value: st.median, min: st.min, max: st.max };
  };
  const ours = OURS.filter((s) => systems.includes(s));
  const legend = systems
    .map(
      (s, i) =>
        `<rect x="${60 + i * 185}" y="${2 * panelH + 20}" width="12" height="12" fill="${COLORS[s]}"/>` +
        `<text x="${76 + i * 185}" y="${2 * panelH + 30}" font-size="11">${esc(label(s))}</text>`,
    )
    .join('\n');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${2 * panelH + 50}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    panel(
      workloads,
      systems,
      cpu,
      {
        unit: 'server CPU µs per delivery',
        title: 'At saturation: server CPU per delivery, median and min–max of the rounds (lower is better)',
      },
      0,
      0,
      width,
      panelH,
    ),
    panel(
      workloads,
      ours,
      vsLimit,
      {
        unit: '÷ raw ws at the limit',
        title: 'Server CPU per delivery ÷ raw ws at the limit, median and min–max of per-round ratios',
        limit: 1.2,
      },
      0,
      panelH,
      width,
      panelH,
    ),
    legend,
    '</svg>',
    '',
  ].join('\n');
}
