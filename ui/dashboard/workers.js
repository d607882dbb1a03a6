// Every worker the store knows, and one worker: capacity, what it runs, its resources,
// recent throughput and its connections.
import { html, api, age, num, State, useEffect, useMemo, useRef, useState } from '../common.js';
import { Link } from './shared.js';
import { TimeChart } from './chart.js';

// A worker that runs shipped code outside a sandbox (a Python worker started with allow_code)
// says so wherever its code is listed: only fit for deployments that trust every submitter.
const unsandboxed = (w) => w.allow_code && w.resources?.codeSandbox === 'none';
const handles = (w) => html`${[...w.patterns, w.allow_code ? 'shipped code' : null].filter(Boolean).join(', ') || '–'}${unsandboxed(w)
  ? html` <span class="state failed" data-unsandboxed title="It runs shipped functions natively, not in a sandbox: every holder of submit:code can run anything on this machine">unsandboxed</span>` : ''}`;

/** Join links: make one (the link is shown once), see who uses them, revoke them. Admin keys only. */
function JoinLinks() {
  const [links, setLinks] = useState(null);
  const [made, setMade] = useState(null);
  const [error, setError] = useState(null);
  const load = () => api('/api/join-links').then(setLinks, (e) => setError(e.message));
  useEffect(() => { void load(); }, []);
  if (links === null && error) return html`<p class="muted small">Join links need an admin key.</p>`;
  const create = async () => {
    try { setMade(await api('/api/join-links', { method: 'POST', body: JSON.stringify({ name: 'from the dashboard' }) })); setError(null); await load(); } catch (e) { setError(e.message); }
  };
  const revoke = async (id) => { try { await api(`/api/join-links/${id}/revoke`, { method: 'POST' }); await load(); } catch (e) { setError(e.message); } };
  return html`<section class="panel join-links">
    <div class="section-head"><h3>Lend a browser</h3><button class="primary" data-testid="create-join-link" onClick=${create}>Create a join link</button></div>
    <p class="small muted">Anyone who opens a join link lends that browser tab to map jobs until they close it. A link works for a day, for up to 100 tabs at once.</p>
    ${made ? html`<div class="notice ok" role="status">Share this link (shown once): <code data-testid="join-link-url" class="link-text">${made.url}</code>
      <button class="small" onClick=${() => navigator.clipboard?.writeText(made.url)}>Copy</button></div>` : ''}
    ${error ? html`<div class="notice bad">${error}</div>` : ''}
    ${links && links.length ? html`<table><thead><tr><th>link</th><th class="num">tabs now</th><th>expires</th><th></th></tr></thead><tbody>
      ${links.map((l) => html`<tr data-join-link=${l.id}><td class="small">${l.name ?? l.id}</td><td class="num">${l.connected}${l.max_workers ? ` / ${l.max_workers}` : ''}</td>
        <td class="small muted">${l.revoked_at ? 'revoked' : l.expires_at ? new Date(l.expires_at).toLocaleString() : 'never'}</td>
        <td>${l.revoked_at ? '' : html`<button class="small danger" onClick=${() => revoke(l.id)}>Revoke</button>`}</td></tr>`)}</tbody></table>` : ''}
  </section>`;
}

function BrowserTable({ workers }) {
  return html`<div class="table-wrap"><table>
    <thead><tr><th>tab</th><th>status</th><th class="num">running</th><th class="num">completed</th><th class="hide-narrow">browser</th><th class="hide-narrow">last seen</th></tr></thead>
    <tbody>${workers.map((w) => html`<tr data-worker=${w.worker_id} data-kind="browser">
      <td><${Link} href=${`/workers/${encodeURIComponent(w.worker_id)}`}>${w.worker_id}</${Link}></td><td><${State} state=${w.status} /></td>
      <td class="num">${w.running_tasks} / ${w.capacity}</td><td class="num">${num(w.tasks_completed)}</td>
      <td class="hide-narrow small" title=${w.user_agent ?? ''}>${w.resources?.runtime?.replace(/^browser /, '') ?? '–'}${w.resources?.platform ? ` · ${w.resources.platform}` : ''}</td>
      <td class="hide-narrow small muted" data-last-seen=${w.last_seen_at}>${age(w.last_seen_at)}</td></tr>`)}
    ${workers.length === 0 ? html`<tr><td colspan="6" class="muted">No browser has joined yet.</td></tr>` : ''}</tbody></table></div>`;
}

export function Workers({ live }) {
  const workers = live.workers.filter((w) => w.kind !== 'browser');
  const browsers = live.workers.filter((w) => w.kind === 'browser');
  return html`
    <h2>Workers</h2>
    <div class="table-wrap"><table>
      <thead><tr><th>worker</th><th>status</th><th class="num">running</th><th class="hide-narrow">handles</th><th class="hide-narrow">runtime</th><th class="num hide-narrow">completed</th><th class="num hide-narrow">failed</th><th class="hide-narrow">foreman</th><th class="hide-narrow">last seen</th></tr></thead>
      <tbody>${workers.map((w) => html`<tr data-worker=${w.worker_id}>
        <td><${Link} href=${`/workers/${encodeURIComponent(w.worker_id)}`}>${w.worker_id}</${Link}></td><td><${State} state=${w.status} /></td>
        <td class="num">${w.running_tasks} / ${w.capacity}</td><td class="hide-narrow small">${handles(w)}</td>
        <td class="hide-narrow small" data-runtime>${w.resources?.runtime ?? '–'}</td>
        <td class="num hide-narrow">${num(w.tasks_completed)}</td><td class="num hide-narrow">${num(w.tasks_failed)}</td>
        <td class="hide-narrow small">${w.foreman_id ?? '–'}</td><td class="hide-narrow small muted" data-last-seen=${w.last_seen_at}>${age(w.last_seen_at)}</td></tr>`)}
      ${workers.length === 0 ? html`<tr><td colspan="9" class="muted">No worker has connected yet.</td></tr>` : ''}</tbody></table></div>
    <h2>Browsers</h2>
    <${BrowserTable} workers=${browsers} />
    <${JoinLinks} />`;
}

const RATE_SERIES = [{ label: 'completed / min', color: '--ok' }];

export function WorkerPage({ id, live }) {
  const [detail, setDetail] = useState(null);
  const [error, setError] = useState(null);
  // Completed counts as the feed brings them, for the recent-throughput chart.
  const samples = useRef([]);
  const summary = live.workers.find((w) => w.worker_id === id);
  useEffect(() => {
    let stop = false;
    api(`/api/workers/${encodeURIComponent(id)}`).then((d) => { if (!stop) { setDetail(d); setError(null); } }, (e) => setError(e.message));
    return () => { stop = true; };
  }, [id, live.workersVersion]);
  if (summary) {
    const s = samples.current;
    if (!s.length || s[s.length - 1].completed !== summary.tasks_completed || Date.now() - s[s.length - 1].t > 5000) s.push({ t: Date.now(), completed: summary.tasks_completed });
    while (s.length > 2 && s[0].t < Date.now() - 15 * 60_000) s.shift();
  }
  const rate = useMemo(() => {
    const s = samples.current;
    const xs = [];
    const ys = [];
    for (let i = 1; i < s.length; i++) {
      xs.push(s[i].t / 1000);
      ys.push(((s[i].completed - s[i - 1].completed) * 60_000) / Math.max(1, s[i].t - s[i - 1].t));
    }
    return [xs, ys];
  }, [live.workersVersion]);
  if (error && !detail) return html`<div class="notice bad">${error}</div><p><${Link} href="/workers">← all workers</${Link}></p>`;
  const w = detail ? { ...detail, ...(summary ?? {}) } : null;
  if (!w) return html`<p class="muted">Loading…</p>`;
  const res = w.resources ?? {};
  return html`
    <p class="small"><${Link} href="/workers">← all workers</${Link}></p>
    <h2>${w.worker_id} <${State} state=${w.status} /></h2>
    <div class="cards">
      <div class="card"><b>${w.running_tasks} / ${w.capacity}</b><span>running / capacity</span></div>
      <div class="card"><b>${num(w.tasks_completed)}</b><span>completed</span></div>
      <div class="card"><b>${num(w.tasks_failed)}</b><span>failed</span></div>
      <div class="card"><b>${res.cpuCores ?? '–'}</b><span>CPU cores</span></div>
      <div class="card"><b>${res.memoryMb ? `${Math.round(res.memoryMb / 1024)} GiB` : '–'}</b><span>memory</span></div>
    </div>
    <div class="grid2">
      <section><h2>About</h2><div class="panel"><dl class="kv">
        <dt>handles</dt><dd>${handles(w)}</dd>
        <dt>runtime</dt><dd>${res.runtime ?? '–'} ${res.platform ? `on ${res.platform}` : ''}</dd>
        <dt>version</dt><dd>${w.version ?? '–'}</dd>
        <dt>foreman</dt><dd>${w.foreman_id ?? '–'}</dd>
        <dt>connected</dt><dd>${new Date(w.connected_at).toLocaleString()} <span class="muted">(${age(w.connected_at)})</span></dd>
        ${w.disconnected_at ? html`<dt>disconnected</dt><dd>${new Date(w.disconnected_at).toLocaleString()}</dd>` : ''}
        <dt>last seen</dt><dd>${age(w.last_seen_at)}</dd>
      </dl></div></section>
      <section><h2>Recent throughput</h2><div class="panel">
        ${rate[0].length > 1 ? html`<${TimeChart} data=${rate} series=${RATE_SERIES} height=${160} yLabel="tasks / min" />` : html`<p class="muted small">Measured from the live feed while this page is open.</p>`}
      </div></section>
    </div>
    <h2>Running now</h2>
    <div class="table-wrap"><table><thead><tr><th>task</th><th>type</th><th>job</th><th class="num">attempt</th><th>since</th></tr></thead><tbody>
      ${w.running.map((r) => html`<tr><td class="mono small">${r.task_id}</td><td>${r.type || '–'}</td><td>${r.job_id ? html`<${Link} href=${`/jobs/${r.job_id}`}>${r.job_id.slice(0, 8)}</${Link}>` : '–'}</td><td class="num">${r.attempt}</td><td class="small muted">${age(r.assigned_at)}</td></tr>`)}
      ${w.running_others ? html`<tr data-running-others><td colspan="5" class="muted">${w.running.length ? 'and ' : ''}${num(w.running_others)} task${w.running_others === 1 ? '' : 's'} of other owners' jobs</td></tr>` : ''}
      ${w.running.length === 0 && !w.running_others ? html`<tr><td colspan="5" class="muted">${w.status === 'online' ? 'Nothing (or it is connected to another foreman).' : 'It is offline.'}</td></tr>` : ''}
    </tbody></table></div>
    <h2>Connections</h2>
    <div class="table-wrap"><table><thead><tr><th>when</th><th>what</th><th class="hide-narrow">from</th><th>detail</th></tr></thead><tbody>
      ${w.connections.map((c) => html`<tr><td class="small">${new Date(c.at).toLocaleString()}</td><td><${State} state=${c.event === 'connected' ? 'online' : 'offline'} /> ${c.event}</td><td class="hide-narrow small">${c.remote ?? '–'}</td><td class="small">${c.detail ?? ''}</td></tr>`)}
      ${w.connections.length === 0 ? html`<tr><td colspan="4" class="muted">None seen by this foreman since it started.</td></tr>` : ''}
    </tbody></table></div>`;
}
