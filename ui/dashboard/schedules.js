// Recurring schedules: the list (when each fires, its next run, its last run and that job's
// state), and one schedule's page with its next five ticks, its recent runs linked to their
// jobs, and the Pause / Resume and Run now buttons. Schedules are not in the live feed: the
// pages read them again when a job changes (a run's state) and every few seconds (next runs).
import { html, api, duration, State, useEffect, useState, useRef } from '../common.js';
import { Link } from './shared.js';

const REFRESH_MS = 10_000;

/** `1 h`, `30 s`, `90 min`: an interval in the largest unit that divides it. */
function interval(ms) {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['min', 60_000], ['s', 1000]]) if (ms % size === 0) return `${ms / size} ${unit}`;
  return `${ms} ms`;
}

/** `cron 0 3 * * * · Europe/Paris` or `every 1 h`. */
export function scheduleWhen(s) {
  return s.cron !== null ? html`<code>${s.cron}</code> <span class="small muted">${s.timezone}</span>` : html`every ${interval(s.every_ms)}`;
}

/** `in 4 min` or `4 min ago`. */
function relative(iso, now = Date.now()) {
  if (!iso) return '–';
  const d = Date.parse(iso) - now;
  return Math.abs(d) < 1000 ? 'now' : d > 0 ? `in ${duration(d)}` : `${duration(-d)} ago`;
}

const time = (iso) => (iso ? new Date(iso).toLocaleString() : '–');

/** What became of a run: its job's state (linked), else its outcome (skipped, missed, buffered). */
function RunState({ run }) {
  if (run.outcome !== 'fired') return html`<span class="muted">${run.outcome}</span>`;
  return run.job_state ? html`<${State} state=${run.job_state} />` : html`<span class="muted">job pruned</span>`;
}

/** Read a schedule (or the list) now, again when a job changes (at most once a second), and every few seconds. */
function useSchedule(path, live) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const pending = useRef(null);
  const load = async () => {
    try { setData(await api(path)); setError(null); } catch (e) { setError(e.message); }
  };
  useEffect(() => {
    void load();
    const t = setInterval(load, REFRESH_MS);
    return () => { clearInterval(t); clearTimeout(pending.current); };
  }, [path]);
  useEffect(() => {
    if (!data || pending.current) return;
    pending.current = setTimeout(() => { pending.current = null; void load(); }, 1000);
  }, [live.jobVersion]);
  return { data, setData, error, setError, load };
}

export function Schedules({ live }) {
  const { data, error } = useSchedule('/api/schedules', live);
  return html`
    <h2>Schedules</h2>
    ${error ? html`<div class="notice bad" role="alert">${error}</div>` : ''}
    <div class="table-wrap"><table data-testid="schedules">
      <thead><tr><th>schedule</th><th>when</th><th>next run</th><th class="hide-narrow">last run</th><th>state</th></tr></thead>
      <tbody>
        ${(data ?? []).map((s) => html`<tr data-schedule=${s.id}>
          <td><${Link} href=${`/schedules/${encodeURIComponent(s.id)}`}>${s.name ?? s.id}</${Link}>${s.name ? html`<div class="small muted mono">${s.id}</div>` : ''}</td>
          <td>${scheduleWhen(s)}</td>
          <td>${s.paused ? html`<span class="muted">–</span>` : html`<span title=${time(s.next_fire_at)}>${relative(s.next_fire_at)}</span>`}</td>
          <td class="hide-narrow">${s.recent_runs[0] ? html`<span class="small muted">${relative(s.recent_runs[0].fired_at ?? s.recent_runs[0].tick_at)}</span> <${RunState} run=${s.recent_runs[0]} />` : html`<span class="muted">none yet</span>`}</td>
          <td><${State} state=${s.paused ? 'paused' : 'active'} /></td></tr>`)}
        ${data && data.length === 0 ? html`<tr><td colspan="5" class="muted">No schedule yet. Create one with <code>crowdcompute schedule create</code>, the SDKs or POST /api/schedules.</td></tr>` : ''}
        ${!data && !error ? html`<tr><td colspan="5" class="muted">Loading…</td></tr>` : ''}
      </tbody></table></div>`;
}

/** What a schedule's job runs, in a few words. */
function jobText(job) {
  if (job.kind === 'map') return `map: ${job.function_name ?? 'function'} over ${(job.args ?? []).length} arguments`;
  if (job.kind === 'graph') return `task graph of ${(job.nodes ?? []).length} nodes`;
  const types = [...new Set((job.tasks ?? []).map((t) => t.type))];
  return `named tasks: ${types.slice(0, 3).join(', ')}${types.length > 3 ? ` +${types.length - 3} more` : ''} (${(job.tasks ?? []).length})`;
}

export function SchedulePage({ id, live }) {
  const path = `/api/schedules/${encodeURIComponent(id)}`;
  const { data: s, setData, error, setError, load } = useSchedule(path, live);
  const [notice, setNotice] = useState(null);
  const [busy, setBusy] = useState(false);

  const act = async (what) => {
    setBusy(true);
    try {
      const r = await api(`${path}/${what}`, { method: 'POST' });
      if (what === 'trigger') {
        setNotice(html`Fired: <${Link} href=${`/jobs/${r.job_id}`}>job ${r.job_id.slice(0, 8)}</${Link}>.`);
        await load();
      } else {
        setData(r);
        setNotice(what === 'pause' ? 'Paused: no tick fires until it is resumed.' : 'Resumed: it fires from its next tick on.');
      }
      setError(null);
    } catch (e) { setNotice(null); setError(e.message); } finally { setBusy(false); }
  };

  if (error && !s) return html`<div class="notice bad" role="alert">${error}</div><p><${Link} href="/schedules">← all schedules</${Link}></p>`;
  if (!s) return html`<p class="muted">Loading…</p>`;
  return html`
    <p class="small"><${Link} href="/schedules">← all schedules</${Link}></p>
    <div class="job-head">
      <h2>${s.name ?? s.id} <${State} state=${s.paused ? 'paused' : 'active'} /></h2>
      <div class="actions">
        ${s.paused
          ? html`<button class="primary" disabled=${busy} onClick=${() => act('resume')}>Resume</button>`
          : html`<button disabled=${busy} onClick=${() => act('pause')}>Pause</button>`}
        <button disabled=${busy} onClick=${() => act('trigger')}>Run now</button>
      </div>
    </div>
    ${notice ? html`<div class="notice ok" role="status">${notice}</div>` : ''}
    ${error ? html`<div class="notice bad" role="alert">${error}</div>` : ''}
    <div class="panel">
      <dl class="kv">
        <dt>id</dt><dd class="mono">${s.id}</dd>
        <dt>when</dt><dd>${scheduleWhen(s)}</dd>
        <dt>job</dt><dd>${jobText(s.job)}</dd>
        <dt>next run</dt><dd>${s.paused ? html`<span class="muted">paused${s.pause_note ? `: ${s.pause_note}` : ''}</span>` : html`${time(s.next_fire_at)} <span class="muted">(${relative(s.next_fire_at)})</span>`}</dd>
        <dt>overlap</dt><dd>${s.overlap.replace('_', ' ')}</dd>
        <dt>catch-up</dt><dd>${s.catch_up.policy}, within ${duration(s.catch_up.window_ms)}</dd>
        ${s.jitter_ms ? html`<dt>jitter</dt><dd>up to ${duration(s.jitter_ms)}</dd>` : ''}
        ${s.buffered_tick ? html`<dt>buffered</dt><dd>${time(s.buffered_tick)}: fires when the previous run's job finishes</dd>` : ''}
        ${s.owner ? html`<dt>owner</dt><dd class="mono">${s.owner}</dd>` : ''}
        <dt>created</dt><dd>${time(s.created_at)}</dd>
      </dl>
    </div>
    <div class="grid2">
      <div>
        <h2>Next runs${s.paused ? html` <span class="small muted">(once resumed)</span>` : ''}</h2>
        <div class="table-wrap"><table data-testid="next-runs"><tbody>
          ${s.next_fires.map((t) => html`<tr><td>${time(t)}</td><td class="small muted">${relative(t)}</td></tr>`)}
          ${s.next_fires.length === 0 ? html`<tr><td class="muted">No tick is left.</td></tr>` : ''}
        </tbody></table></div>
      </div>
      <div>
        <h2>Recent runs</h2>
        <div class="table-wrap"><table data-testid="recent-runs">
          <thead><tr><th>tick</th><th class="hide-narrow">reason</th><th>job</th><th>state</th></tr></thead>
          <tbody>
            ${s.recent_runs.map((r) => html`<tr data-run-job=${r.job_id ?? ''}>
              <td class="small">${time(r.tick_at)}</td><td class="hide-narrow small">${r.reason.replace('_', ' ')}</td>
              <td>${r.job_id ? html`<${Link} href=${`/jobs/${r.job_id}`} class="mono">${r.job_id.slice(0, 8)}</${Link}>` : html`<span class="muted">–</span>`}</td>
              <td><${RunState} run=${r} /></td></tr>`)}
            ${s.recent_runs.length === 0 ? html`<tr><td colspan="4" class="muted">None yet.</td></tr>` : ''}
          </tbody></table></div>
      </div>
    </div>`;
}
