// The dead letters: tasks that failed for good (no attempt left, or a permanent error),
// grouped by task type and error (its code, and its message's first line), with a "Retry all"
// per group that asks first. A key sees its own jobs' tasks; admin every owner's. Groups are
// read again when a job changes (a task failing ends or reopens its job) and every few seconds.
import { html, api, duration, num, useEffect, useState, useRef } from '../common.js';
import { Link } from './shared.js';

const REFRESH_MS = 10_000;

/** `4 min ago`. */
function ago(iso, now = Date.now()) {
  const d = now - Date.parse(iso);
  return d < 1000 ? 'just now' : `${duration(d)} ago`;
}

/** A task type that may break after its dots on a narrow screen (`images.<wbr>resize`), never inside a word. */
const typeText = (type) => type.split('.').map((part, i) => (i ? html`.<wbr />${part}` : part));

/** A group's key, for the confirmation it is waiting on. */
const groupKey = (g) => JSON.stringify([g.type, g.error_code, g.message]);

/** The filter as the query string of GET /api/failed. */
function query(filter) {
  const q = new URLSearchParams({ limit: '200' });
  if (filter.type) q.set('type', filter.type);
  if (filter.error) q.set('error_code', filter.error);
  return `/api/failed?${q}`;
}

export function Failed({ live }) {
  const [filter, setFilter] = useState({ type: '', error: '' });
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState(null);
  const [asking, setAsking] = useState(null);
  const [busy, setBusy] = useState(false);
  const pending = useRef(null);
  const path = query(filter);
  const load = async () => {
    try { setData(await api(path)); setError(null); } catch (e) { setError(e.message); }
  };
  useEffect(() => {
    void load();
    const t = setInterval(load, REFRESH_MS);
    return () => { clearInterval(t); clearTimeout(pending.current); pending.current = null; };
  }, [path]);
  useEffect(() => {
    if (!data || pending.current) return;
    pending.current = setTimeout(() => { pending.current = null; void load(); }, 1000);
  }, [live.jobVersion]);

  const retry = async (g) => {
    setBusy(true);
    try {
      const r = await api('/api/failed/retry', { method: 'POST', body: JSON.stringify({ type: g.type, error_code: g.error_code, message: g.message }) });
      setNotice(`Requeued ${num(r.requeued)} task${r.requeued === 1 ? '' : 's'} in ${num(r.jobs)} job${r.jobs === 1 ? '' : 's'}${r.more ? '; more remain: retry the group again' : ''}.`);
      setError(null);
      setAsking(null);
      await load();
    } catch (e) { setNotice(null); setError(e.message); } finally { setBusy(false); }
  };

  const groups = data?.groups ?? [];
  const total = groups.reduce((n, g) => n + g.count, 0);
  return html`
    <h2>Failed tasks</h2>
    <p class="small muted">Tasks that failed for good (no attempt left, or a permanent error), by task type and error. Once the cause is fixed, retry a group: its tasks run again with fresh attempts, and their jobs with them.</p>
    <form class="filters" onSubmit=${(e) => e.preventDefault()}>
      <input type="search" placeholder="task type" aria-label="task type" value=${filter.type} onChange=${(e) => setFilter({ ...filter, type: e.target.value.trim() })} />
      <input type="search" placeholder="error code" aria-label="error code" value=${filter.error} onChange=${(e) => setFilter({ ...filter, error: e.target.value.trim() })} />
      ${data ? html`<span class="small muted" data-testid="failed-total">${num(total)} task${total === 1 ? '' : 's'} in ${num(groups.length)} group${groups.length === 1 ? '' : 's'}${data.next_offset !== null ? ' (the largest 200 groups)' : ''}</span>` : ''}
    </form>
    ${notice ? html`<div class="notice ok" role="status">${notice}</div>` : ''}
    ${error ? html`<div class="notice bad" role="alert">${error}</div>` : ''}
    <div class="table-wrap"><table data-testid="failed-groups">
      <thead><tr><th>type</th><th>error</th><th class="num">tasks</th><th class="num hide-narrow">jobs</th><th class="hide-narrow">last failed</th><th></th></tr></thead>
      <tbody>
        ${groups.map((g) => html`<tr data-group=${`${g.type} ${g.error_code}`}>
          <td class="mono">${typeText(g.type)}</td>
          <td class="wrap-anywhere"><span class="err">${g.error_code || '–'}</span><div class="small">${g.message || html`<span class="muted">no message</span>`}</div>
            <div class="small muted">e.g. ${[...new Set(g.job_ids)].map((j, i) => html`${i ? ', ' : ''}<${Link} href=${`/jobs/${j}`} class="mono">job ${j.slice(-8)}</${Link}>`)}</div></td>
          <td class="num">${num(g.count)}</td>
          <td class="num hide-narrow">${num(g.jobs)}</td>
          <td class="hide-narrow small" title=${new Date(g.last_failed_at).toLocaleString()}>${ago(g.last_failed_at)}</td>
          <td class="row-actions">${asking === groupKey(g)
            ? html`<div class="small">Run ${num(g.count)} task${g.count === 1 ? '' : 's'} again?</div>
                <div class="actions"><button class="primary" disabled=${busy} onClick=${() => retry(g)}>Retry ${num(g.count)}</button><button disabled=${busy} onClick=${() => setAsking(null)}>Cancel</button></div>`
            : html`<button disabled=${busy} onClick=${() => { setNotice(null); setAsking(groupKey(g)); }}>Retry all</button>`}</td></tr>`)}
        ${data && groups.length === 0 ? html`<tr><td colspan="6" class="muted">No failed tasks${filter.type || filter.error ? ' match' : ''}.</td></tr>` : ''}
        ${!data && !error ? html`<tr><td colspan="6" class="muted">Loading…</td></tr>` : ''}
      </tbody></table></div>`;
}
