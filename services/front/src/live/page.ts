/**
 * The live page (GET /live): one HTML document with its style and script inline, so that it needs no
 * build step, no CDN and no other request but its own /live/config and /live/events (and, under
 * `npm start`, the knobs' control server). Every value from the store is put on the page as text, never
 * as markup: a request path is whatever a client sent.
 */
export const LIVE_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bazar live</title>
<style>
  :root { font-family: system-ui, sans-serif; font-size: 14px; color: #1d232a; background: #f6f7f9; }
  body { margin: 0; }
  header { background: #1d232a; color: #fff; padding: 10px 16px; display: flex; gap: 18px; flex-wrap: wrap; align-items: baseline; }
  header h1 { font-size: 18px; margin: 0; }
  header .live { color: #7ee08a; } header .down { color: #ff8f8f; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(620px, 1fr)); gap: 12px; padding: 12px; }
  section.wide { grid-column: 1 / -1; }
  section { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; padding: 8px 12px; overflow: auto; }
  h2 { font-size: 15px; margin: 4px 0 8px; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
  th, td { text-align: left; padding: 2px 6px; border-bottom: 1px solid #eef0f3; white-space: nowrap; }
  th { color: #5b6570; font-weight: 600; }
  .hit { color: #187a2f; font-weight: 600; } .miss { color: #a35f00; font-weight: 600; }
  .err { color: #b3261e; font-weight: 600; } .muted { color: #8a939c; }
  .writing { background: #fff3cd; }
  .fresh { animation: flash 1.2s ease-out; }
  @keyframes flash { from { background: #dbeafe; } to { background: transparent; } }
  #try button, #knobs button { margin: 2px; }
  #knobs input { width: 7em; }
  #knobs .row { margin: 6px 0; }
  #knob-msg { min-height: 1.4em; }
</style>
</head>
<body>
<header>
  <h1>Bazar live</h1>
  <span>front <b id="front">…</b></span>
  <span>mode <b id="mode">…</b></span>
  <span>cache <b id="cache-size">…</b></span>
  <span>balancing <b id="balancing">…</b></span>
  <span id="conn" class="down">connecting…</span>
</header>
<main>
  <section class="wide">
    <h2>Requests this front answered</h2>
    <div id="try">Read book:
      <span id="try-books"></span>
      <label><input type="checkbox" id="try-nocache"> skip the cache (Cache-Control: no-cache)</label>
    </div>
    <table><thead><tr><th>time</th><th>request</th><th>status</th><th>cache</th><th>served by</th><th>database</th><th>version</th><th>invalidated</th><th>ms</th></tr></thead>
    <tbody id="requests"></tbody></table>
  </section>
  <section>
    <h2>This front's cache</h2>
    <div id="cache-stats" class="muted"></div>
    <table><thead><tr><th>book</th><th>cached version</th><th>fence</th><th>write announced</th><th>served by</th><th>database</th><th>expires in</th></tr></thead>
    <tbody id="books"></tbody></table>
  </section>
  <section>
    <h2>Invalidations received</h2>
    <table><thead><tr><th>time</th><th>kind</th><th>from</th><th>books (version)</th></tr></thead>
    <tbody id="invalidations"></tbody></table>
  </section>
  <section>
    <h2>Catalog pods and the standby's replay</h2>
    <table><thead><tr><th>pod</th><th>role</th><th>ready</th><th>standby streams</th><th>unapplied WAL</th><th>apply delay</th><th>last commit applied</th></tr></thead>
    <tbody id="pods"></tbody></table>
  </section>
  <section id="knobs" hidden>
    <h2>Knobs (npm start)</h2>
    <div class="row">Admin token: <input type="password" id="token" autocomplete="off" placeholder="from npm start" style="width:24em">
      <button id="token-use">use</button> <span class="muted">kept in this page only; without it nothing changes</span></div>
    <div class="row">Mode:
      <button data-policy='{"consistencyMode":"strict"}'>strict</button>
      <button data-policy='{"consistencyMode":"session"}'>session</button>
      <button data-policy='{"consistencyMode":"eventual"}'>eventual</button>
      · cache entries <input id="cache-max" type="number" min="1" value="3"> <button id="cache-max-set">set</button>
      · TTL ms <input id="cache-ttl" type="number" min="100" value="60000"> <button id="cache-ttl-set">set</button>
      · <button data-policy='{"loadBalancing":"round-robin"}'>round-robin</button>
      <button data-policy='{"loadBalancing":"random"}'>random</button></div>
    <div class="row">Standby replay: lag ms <input id="lag" type="number" min="0" max="60000" value="2000"> <button id="lag-set">set</button>
      <button data-replay='{"paused":true}'>pause</button> <button data-replay='{"paused":false}'>resume</button>
      · PostgreSQL: <button data-pg="primary/stop">stop primary</button> <button data-pg="primary/start">start primary</button>
      <button data-pg="standby/stop">stop standby</button> <button data-pg="standby/start">start standby</button></div>
    <div id="knob-msg" class="muted"></div>
    <table><thead><tr><th>process</th><th>state</th><th>policy in force</th><th></th></tr></thead>
    <tbody id="processes"></tbody></table>
    <div id="pg-state" class="muted"></div>
  </section>
</main>
<script>
'use strict';
const $ = (id) => document.getElementById(id);
const MAX_ROWS = 40;

function time(t) {
  const d = new Date(t);
  return d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
}
function row(cells) {
  const tr = document.createElement('tr');
  for (const [text, cls] of cells) {
    const td = document.createElement('td');
    td.textContent = text === undefined || text === null ? '' : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
  }
  return tr;
}
function prepend(tbody, tr) {
  tr.classList.add('fresh');
  tbody.insertBefore(tr, tbody.firstChild);
  while (tbody.children.length > MAX_ROWS) tbody.removeChild(tbody.lastChild);
}
function replace(tbody, rows) {
  tbody.replaceChildren(...rows);
}

function onRequest(e) {
  const tr = row([
    [time(e.t)],
    [e.method + ' ' + e.path],
    [e.status, e.status >= 400 ? 'err' : ''],
    [e.cache, e.cache],
    [e.servedBy],
    [e.database],
    [e.version],
    [e.invalidated],
    [e.ms.toFixed(1)],
  ]);
  tr.dataset.reqId = e.reqId || '';
  prepend($('requests'), tr);
}

function onInvalidation(e) {
  const books = e.books.map((b) => b.version === undefined ? b.bookId + ' (not done)' : b.bookId + ' (v' + b.version + ')').join(', ');
  prepend($('invalidations'), row([[time(e.t)], [e.kind === 'announce' ? 'write announced' : 'invalidate'], [e.from], [books]]));
}

function onSnapshot(s) {
  $('mode').textContent = s.policy.consistencyMode;
  $('balancing').textContent = s.policy.loadBalancing;
  $('cache-size').textContent = s.cache.entries + ' / ' + s.cache.maxEntries + ' entries, ' + (s.cache.bytes / 1048576).toFixed(2) + ' / ' + (s.cache.maxBytes / 1048576).toFixed(2) + ' MiB, TTL ' + (s.cache.ttlMs / 1000) + ' s';
  $('cache-stats').textContent = 'hits ' + s.cache.hits + ' · misses ' + s.cache.misses + ' · invalidations ' + s.cache.invalidations + ' · fills refused by a fence ' + s.cache.rejectedFills;
  replace($('books'), s.cache.books.map((b) => {
    const tr = row([
      [b.bookId],
      [b.cached ? 'v' + b.cached.version : '—', b.cached ? 'hit' : 'muted'],
      [b.fence ? 'v' + b.fence : '—'],
      [b.writing ? 'yes' : ''],
      [b.cached && b.cached.servedBy],
      [b.cached && b.cached.database],
      [b.cached ? (b.cached.ttlLeftMs / 1000).toFixed(1) + ' s' : ''],
    ]);
    if (b.writing) tr.className = 'writing';
    return tr;
  }));
  replace($('pods'), s.catalogPods.map((p) => {
    const r = p.readyz || {};
    const st = r.standby;
    return row([
      [p.name],
      [r.role || (p.error ? 'unreachable' : '')],
      [p.error ? p.error : r.status, r.status === 'ready' ? '' : 'err'],
      [st ? (st.receiving ? 'yes' : 'NO') : (r.role === 'origin' ? 'reads the primary' : ''), st && !st.receiving ? 'err' : ''],
      [st ? st.unappliedBytes + ' bytes' + (st.paused ? ' (PAUSED)' : '') : '', st && st.paused ? 'err' : ''],
      [st ? st.applyDelayMs + ' ms' : ''],
      [st && st.lastAppliedCommitAgoMs !== null ? (st.lastAppliedCommitAgoMs / 1000).toFixed(1) + ' s ago' : ''],
    ]);
  }));
}

function connect() {
  const events = new EventSource('/live/events');
  const conn = $('conn');
  events.addEventListener('open', () => { conn.textContent = 'live'; conn.className = 'live'; });
  events.addEventListener('error', () => { conn.textContent = 'reconnecting…'; conn.className = 'down'; });
  events.addEventListener('request', (m) => onRequest(JSON.parse(m.data)));
  events.addEventListener('invalidation', (m) => onInvalidation(JSON.parse(m.data)));
  events.addEventListener('snapshot', (m) => onSnapshot(JSON.parse(m.data)));
}

function setupTry() {
  for (let id = 1; id <= 7; id++) {
    const b = document.createElement('button');
    b.textContent = String(id);
    b.addEventListener('click', () => {
      const headers = $('try-nocache').checked ? { 'Cache-Control': 'no-cache' } : {};
      fetch('/info/' + id, { headers }).catch(() => undefined);
    });
    $('try-books').appendChild(b);
  }
}

function setupKnobs(url) {
  $('knobs').hidden = false;
  let token = '';
  const msg = (text, cls) => { $('knob-msg').textContent = text; $('knob-msg').className = cls || 'muted'; };
  async function call(method, path, body) {
    if (!token) { msg('Paste the admin token first (npm start printed it; it is also in .bazar/admin-token).', 'err'); return undefined; }
    const res = await fetch(url + path, {
      method,
      headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    }).catch((err) => ({ ok: false, status: 0, json: async () => ({ error: { message: String(err) } }) }));
    const answer = await res.json().catch(() => ({}));
    if (!res.ok) { msg((answer.error && answer.error.message) || ('HTTP ' + res.status), 'err'); return undefined; }
    return answer;
  }
  async function act(label, method, path, body) {
    msg(label + '…');
    const answer = await call(method, path, body);
    if (answer !== undefined) { msg(label + ': done'); await refresh(); }
  }
  async function refresh() {
    if (!token) return;
    const s = await call('GET', '/status');
    if (!s) return;
    replace($('processes'), s.processes.map((p) => {
      const tr = row([
        [p.name],
        [!p.running ? 'stopped' : p.ready ? 'ready' : 'not ready', p.running && p.ready ? 'hit' : 'err'],
        [p.policy ? p.policy.consistencyMode + (p.service === 'front' ? ', cache ' + p.policy.cacheMaxEntries : '') : ''],
      ]);
      const td = document.createElement('td');
      for (const action of ['stop', 'start', 'restart', 'kill']) {
        const b = document.createElement('button');
        b.textContent = action;
        b.addEventListener('click', () => act(action + ' ' + p.name, 'POST', '/processes/' + encodeURIComponent(p.name) + '/' + action));
        td.appendChild(b);
      }
      tr.appendChild(td);
      return tr;
    }));
    const pg = s.postgres;
    $('pg-state').textContent = pg
      ? 'PostgreSQL: primary ' + (pg.primaryUp ? 'up' : 'STOPPED') + ', standby ' + (pg.standbyUp ? 'up' : 'STOPPED') +
        ', replay ' + (pg.replayPaused ? 'PAUSED' : 'running') + ', delay ' + pg.replayDelayMs + ' ms'
      : 'PostgreSQL: external (no knobs)';
  }
  $('token-use').addEventListener('click', () => { token = $('token').value.trim(); $('token').value = ''; msg(token ? 'Token set.' : 'No token.'); void refresh(); });
  for (const b of document.querySelectorAll('[data-policy]')) {
    b.addEventListener('click', () => act('policy ' + b.dataset.policy, 'PUT', '/policy', JSON.parse(b.dataset.policy)));
  }
  for (const b of document.querySelectorAll('[data-replay]')) {
    b.addEventListener('click', () => act('standby ' + b.textContent, 'PUT', '/postgres/standby/replay', JSON.parse(b.dataset.replay)));
  }
  for (const b of document.querySelectorAll('[data-pg]')) {
    b.addEventListener('click', () => act(b.textContent, 'POST', '/postgres/' + b.dataset.pg));
  }
  $('cache-max-set').addEventListener('click', () => act('cache entries', 'PUT', '/policy', { cache: { maxEntries: Number($('cache-max').value) } }));
  $('cache-ttl-set').addEventListener('click', () => act('cache TTL', 'PUT', '/policy', { cache: { ttlMs: Number($('cache-ttl').value) } }));
  $('lag-set').addEventListener('click', () => act('lag', 'PUT', '/postgres/standby/replay', { delayMs: Number($('lag').value) }));
  setInterval(() => void refresh(), 2000);
}

async function start() {
  setupTry();
  const config = await (await fetch('/live/config')).json();
  $('front').textContent = config.front;
  connect();
  if (config.knobsUrl) setupKnobs(config.knobsUrl);
}
start();
</script>
</body>
</html>
`;
