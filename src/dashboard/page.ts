import { dashboardScript } from './page-script.js';

const STYLE = `
:root{color-scheme:light dark;--fg:#1d2330;--muted:#6b7280;--line:#d8dde6;--card:#f6f8fb;--accent:#2563eb;--bad:#c2410c;--ok:#15803d}
@media (prefers-color-scheme:dark){:root{--fg:#e5e7eb;--muted:#9ca3af;--line:#374151;--card:#111827;--accent:#60a5fa;--bad:#fb923c;--ok:#4ade80}}
*{box-sizing:border-box}body{font:14px/1.4 system-ui,sans-serif;color:var(--fg);margin:0;padding:1rem 1.5rem;max-width:80rem}
header{display:flex;gap:1rem;align-items:baseline;flex-wrap:wrap}h1{font-size:1.2rem;margin:0}h2{font-size:.95rem;margin:0 0 .4rem}
.muted,header span{color:var(--muted)}.ok{color:var(--ok)}.bad{color:var(--bad)!important;font-weight:600}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(11.5rem,1fr));gap:.6rem;margin:1rem 0}
.card{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.5rem .7rem}
.card b{display:block;font-size:1.6rem;font-variant-numeric:tabular-nums}.card small{color:var(--muted)}
.spark{width:100%;height:36px;color:var(--accent);display:block}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(17rem,1fr));gap:1rem}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.15rem .4rem;border-bottom:1px solid var(--line);vertical-align:top}
td+td{font-variant-numeric:tabular-nums}th{font-weight:600;color:var(--muted)}
#topics td:last-child{color:var(--muted);font-size:.85em;word-break:break-all}
section{background:var(--card);border:1px solid var(--line);border-radius:6px;padding:.6rem .8rem}
form{display:flex;gap:.4rem;align-items:center;flex-wrap:wrap;margin:.3rem 0}
input,button{font:inherit;padding:.2rem .5rem}.mt{margin-top:1rem}
`;

/** A metric card: the number, what it is, and a sparkline of its history (if `series` is given). */
const card = (id: string, label: string, series?: string, extra = ''): string =>
  `<div class="card"><small>${label}</small><b id="v-${id}">–</b>${extra}${
    series ? `<svg class="spark" data-series="${series}" role="img"></svg>` : ''
  }</div>`;

const tallyBox = (id: string, title: string): string =>
  `<section><h2>${title}</h2><table><tbody id="${id}"></tbody></table></section>`;

/**
 * The dashboard page: markup, style and script inlined (nothing loaded from elsewhere). `actions`: the viewer may
 * use them (they are on, and it came with credentials).
 */
export function dashboardPage(nonce: string, basePath: string, actions: boolean): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>websocket-stabilizer dashboard</title><style nonce="${nonce}">${STYLE}</style></head>
<body data-base="${escapeHtml(basePath)}" data-actions="${actions ? 'on' : 'off'}">
<header><h1>websocket-stabilizer</h1><span id="backend"></span><span id="status">connecting…</span>
<span>event tallies since <span id="since">–</span></span></header>
<div class="cards">
${card('connections', 'connections', 'connections', '<small>plain <span id="v-plain">–</span> · protocol <span id="v-protocol">–</span></small>')}
${card('detached', 'detached sessions', 'detached', '<small>sessions held <span id="v-sessions">–</span></small>')}
${card('in', 'messages in / s', 'inPerS')}
${card('out', 'messages out / s', 'outPerS')}
${card('drops', 'drops / s', 'dropsPerS', '<small>slow consumers closed <span id="v-slow">–</span></small>')}
${card('rtt', 'heartbeat round trip (ms)', 'rttMs', '<small>pings go to idle connections only</small>')}
${card('loop', 'event-loop delay (ms)', 'loopDelayMs', '<small>how late the sampling timer fired</small>')}
${card('busy', 'event loop busy (%)', 'loopBusyPct')}
${card('resumed', 'sessions resumed')}
</div>
<div class="grid">
${tallyBox('fresh', 'fresh sessions by reason')}
${tallyBox('disconnects', 'disconnects by reason')}
${tallyBox('codes', 'close codes')}
${tallyBox('ends', 'sessions ended by reason')}
<section><h2>since start</h2><table><tbody>
<tr><td>messages sent</td><td id="v-sent"></td></tr><tr><td>messages dropped</td><td id="v-dropped"></td></tr>
<tr><td>upgrades refused</td><td id="v-rejected"></td></tr><tr><td>rate-limited</td><td id="v-limited"></td></tr>
</tbody></table></section>
<section id="nodes-box" hidden><h2>nodes (cluster-wide, from the backend)</h2><table><thead><tr><th>node</th><th>connections</th></tr></thead><tbody id="nodes"></tbody></table></section>
</div>
<section class="mt"><h2>topics on this node</h2><table><thead><tr><th>topic</th><th>members</th><th>who</th></tr></thead>
<tbody id="topics"></tbody></table><p class="muted" id="topics-other"></p></section>
<section id="actions" hidden class="mt"><h2>actions (logged)</h2>
<form id="disconnect-form"><input id="disconnect-id" placeholder="client id" aria-label="client id">
<label><input type="checkbox" id="disconnect-resume" checked> let it resume</label><button>disconnect</button></form>
<button id="drain">drain this node</button> <span id="action-result" class="muted"></span></section>
<script nonce="${nonce}">(${dashboardScript.toString()})();</script>
</body></html>`;
}

/** The login form (a token: sets the session cookie). */
export function loginPage(nonce: string, basePath: string, failed: boolean): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>dashboard login</title><style nonce="${nonce}">${STYLE}</style></head><body>
<h1>websocket-stabilizer dashboard</h1>${failed ? '<p class="bad">That token was not accepted.</p>' : ''}
<form method="post" action="${escapeHtml(basePath)}/login"><label>token <input type="password" name="token" autocomplete="current-password" autofocus></label>
<button>sign in</button></form></body></html>`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
