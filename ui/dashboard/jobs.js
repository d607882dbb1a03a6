// The job list: filters by state, text (task type, function, name, id) and time; pages; rows
// updated live as their jobs change.
import { html, api, age, State, useEffect, useState, useRef } from '../common.js';
import { Link, JobProgress, Counts, jobTitle, STATES } from './shared.js';

const PAGE = 50;
const SINCE = { '': 'any time', '1h': 'last hour', '24h': 'last 24 hours', '7d': 'last 7 days' };
const SINCE_MS = { '1h': 3_600_000, '24h': 86_400_000, '7d': 604_800_000 };

/** Read the filters from the address bar, so a filtered list can be linked to and reloaded. */
function filtersFromUrl() {
  const q = new URLSearchParams(location.search);
  return { status: q.get('status') ?? '', search: q.get('search') ?? '', since: q.get('since') ?? '', page: Number(q.get('page') ?? 0) || 0 };
}

export function Jobs({ live }) {
  const [f, setF] = useState(filtersFromUrl);
  const [rows, setRows] = useState(null);
  const [more, setMore] = useState(false);
  const [error, setError] = useState(null);
  const [text, setText] = useState(f.search);
  const stale = useRef(false);

  const load = async () => {
    const q = new URLSearchParams({ limit: String(PAGE + 1), offset: String(f.page * PAGE) });
    if (f.status) q.set('status', f.status);
    if (f.search) q.set('search', f.search);
    if (f.since) q.set('since', String(Date.now() - SINCE_MS[f.since]));
    try {
      const list = await api(`/api/jobs?${q}`);
      setRows(list.slice(0, PAGE));
      setMore(list.length > PAGE);
      setError(null);
    } catch (e) { setError(e.message); }
  };

  useEffect(() => {
    const q = new URLSearchParams(Object.entries(f).filter(([k, v]) => v && !(k === 'page' && v === 0)));
    history.replaceState(null, '', `/jobs${q.size ? `?${q}` : ''}`);
    void load();
  }, [f.status, f.search, f.since, f.page]);

  // Typing filters after a pause, not at every key.
  useEffect(() => {
    const t = setTimeout(() => { if (text !== f.search) setF({ ...f, search: text, page: 0 }); }, 300);
    return () => clearTimeout(t);
  }, [text]);

  // A job not on the page changed (say, a new one): reload the first page, at most once a second.
  useEffect(() => {
    if (!rows || f.page !== 0) return;
    const unknown = live.jobUpdates.some((j) => !rows.some((r) => r.id === j.id));
    if (!unknown || stale.current) return;
    stale.current = true;
    const t = setTimeout(() => { stale.current = false; void load(); }, 1000);
    return () => { clearTimeout(t); stale.current = false; };
  }, [live.jobVersion]);

  const shown = (rows ?? []).map((r) => live.jobs.get(r.id) ?? r);
  return html`
    <h2>Jobs</h2>
    <div class="filters" role="search">
      <select aria-label="state" value=${f.status} onChange=${(e) => setF({ ...f, status: e.currentTarget.value, page: 0 })}>
        <option value="">every state</option>${STATES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
      <input type="search" aria-label="search" placeholder="task type, function, name or id" value=${text} onInput=${(e) => setText(e.currentTarget.value)} />
      <select aria-label="created" value=${f.since} onChange=${(e) => setF({ ...f, since: e.currentTarget.value, page: 0 })}>
        ${Object.entries(SINCE).map(([v, l]) => html`<option value=${v}>${l}</option>`)}
      </select>
    </div>
    ${error ? html`<div class="notice bad">${error}</div>` : ''}
    <div class="table-wrap"><table>
      <thead><tr><th>job</th><th class="hide-narrow">kind</th><th>state</th><th>progress</th><th class="hide-narrow">priority</th><th class="hide-narrow">age</th></tr></thead>
      <tbody>
        ${shown.map((j) => html`<tr data-job=${j.id}>
          <td><${Link} href=${`/jobs/${j.id}`}>${jobTitle(j)}</${Link}><div class="small muted mono">${j.id.slice(0, 8)}</div></td>
          <td class="hide-narrow" data-kind>${j.kind}</td>
          <td><${State} state=${j.status} />${j.open ? html` <span class="small muted" title="It takes more tasks until its submitter seals it">open</span>` : ''}</td>
          <td><${JobProgress} job=${j} /><div><${Counts} job=${j} /></div></td>
          <td class="hide-narrow">${j.priority}</td>
          <td class="hide-narrow small muted">${age(j.created_at)}</td></tr>`)}
        ${rows && shown.length === 0 ? html`<tr><td colspan="6" class="muted">No job matches.</td></tr>` : ''}
        ${!rows ? html`<tr><td colspan="6" class="muted">Loading…</td></tr>` : ''}
      </tbody></table></div>
    <div class="pager">
      <button disabled=${f.page === 0} onClick=${() => setF({ ...f, page: f.page - 1 })}>← newer</button>
      <span class="small muted">page ${f.page + 1}</span>
      <button disabled=${!more} onClick=${() => setF({ ...f, page: f.page + 1 })}>older →</button>
    </div>`;
}
