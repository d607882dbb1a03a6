// The first page: cards, the last hour's throughput and failures, recent jobs, the workers.
import { html, num, bytes, duration, age, useMemo, State } from '../common.js';
import { TimeChart } from './chart.js';
import { Link, JobProgress, Counts, jobTitle, Section } from './shared.js';

const SERIES = [{ label: 'completed / s', color: '--ok' }, { label: 'failed / s', color: '--bad' }];

function Cards({ stats, health }) {
  if (!stats) return html`<p class="muted">Loading…</p>`;
  const used = stats.total_capacity ? Math.round((100 * stats.running_tasks) / stats.total_capacity) : 0;
  const cards = [
    ['workers online', num(stats.connected_workers), `${num(stats.total_capacity)} slots`],
    ['running tasks', num(stats.running_tasks), `${used}% of capacity`],
    ['queued tasks', num(stats.queued_tasks), ''],
    ['active jobs', num(stats.active_jobs), ''],
    ['completed jobs', num(stats.completed_jobs), ''],
    ['failed jobs', num(stats.failed_jobs), stats.cancelled_jobs ? `${num(stats.cancelled_jobs)} cancelled` : ''],
  ];
  return html`
    ${health && health.status !== 'healthy' ? html`<div class="notice bad" role="alert">Store ${health.store?.state}: ${health.reason}</div>` : ''}
    <div class="cards">${cards.map(([k, v, sub]) => html`<div class="card" data-card=${k}><b>${v}</b><span>${k}</span><small>${sub || '\u00a0'}</small></div>`)}</div>`;
}

function Throughput({ series }) {
  const data = useMemo(() => [series.map((p) => p.t / 1000), series.map((p) => p.completed / 10), series.map((p) => p.failed / 10)], [series]);
  const done = series.reduce((a, p) => a + p.completed, 0);
  const failed = series.reduce((a, p) => a + p.failed, 0);
  const rate = done + failed ? ((100 * failed) / (done + failed)).toFixed(1) : '0.0';
  return html`<${Section} title="Throughput, last hour" right=${html`<span class="small muted">${num(done)} completed · ${num(failed)} failed attempts · failure rate ${rate}%</span>`}>
    <div class="panel"><${TimeChart} data=${data} series=${SERIES} yLabel="tasks / s" /></div></${Section}>`;
}

const pct = (x) => `${Math.round(100 * x)}%`;

// Who the workers are shared between: per job (and per owner, when there are several) the
// tasks running now against the fair share, caps, and the rate limits' tokens left. A key that
// is not admin gets its own jobs and owner row, and the other owners summed (`others`).
function Sharing({ sharing, jobs }) {
  const active = (sharing?.jobs ?? []).filter((j) => j.running > 0 || j.waiting > 0);
  const others = sharing?.others && (sharing.others.running > 0 || sharing.others.waiting > 0) ? sharing.others : null;
  if (active.length === 0 && !others && !(sharing?.rate_limits ?? []).length) return '';
  const running = active.reduce((a, j) => a + j.running, 0) + (others?.running ?? 0);
  const named = new Map(jobs.map((j) => [j.id, j]));
  const owners = [
    ...(sharing.owners ?? []).filter((o) => o.running > 0 || o.share > 0)
      .map((o) => html`<code>${o.owner ?? 'no key'}</code> ${num(o.running)} running, share ${pct(o.share)}${o.max_concurrency !== null ? `, cap ${o.max_concurrency}` : ''}`),
    ...(others ? [html`<span data-share-others>${num(others.owners)} other owner${others.owners === 1 ? '' : 's'} (${num(others.jobs)} job${others.jobs === 1 ? '' : 's'}) ${num(others.running)} running, ${num(others.waiting)} waiting, share ${pct(others.share)}</span>`] : []),
  ];
  return html`<${Section} title="Sharing" right=${html`<span class="small muted">running tasks against each one's fair share</span>`}>
    ${active.length ? html`<div class="table-wrap"><table><thead><tr><th>job</th><th class="hide-narrow">priority</th><th class="num">weight</th><th class="num">running</th><th class="num">of running</th><th class="num">fair share</th><th class="num hide-narrow">cap</th><th class="num hide-narrow">waiting</th></tr></thead>
    <tbody>${active.slice(0, 12).map((j) => html`<tr data-share-job=${j.job_id}><td><${Link} href=${`/jobs/${j.job_id}`}>${named.has(j.job_id) ? jobTitle(named.get(j.job_id)) : j.job_id.slice(0, 8)}</${Link}></td>
      <td class="hide-narrow">${j.priority}</td><td class="num">${j.weight}</td><td class="num">${num(j.running)}</td><td class="num">${running ? pct(j.running / running) : '–'}</td>
      <td class="num">${pct(j.share)}</td><td class="num hide-narrow">${j.max_concurrency ?? '–'}</td><td class="num hide-narrow">${num(j.waiting)}</td></tr>`)}</tbody></table></div>` : ''}
    ${owners.length > 1 ? html`<p class="small" data-share-owners>By owner: ${owners.map((o, i) => html`${i ? ' · ' : ''}${o}`)}</p>` : ''}
    ${(sharing.rate_limits ?? []).length ? html`<p class="small muted" data-rate-limits>Rate limits: ${sharing.rate_limits.map((l, i) => html`${i ? ' · ' : ''}<code>${l.pattern}</code> ${l.limit} (${num(l.available)} now)`)}</p>` : ''}
  </${Section}>`;
}

export function Overview({ live }) {
  const { stats, workers, series, recentJobs, health } = live;
  const online = workers.filter((w) => w.status === 'online');
  const r = stats?.retention;
  return html`
    <${Cards} stats=${stats} health=${health} />
    <${Throughput} series=${series} />
    <${Sharing} sharing=${stats?.sharing} jobs=${recentJobs} />
    <div class="grid2">
      <${Section} title="Recent jobs" right=${html`<${Link} href="/jobs" class="small">all jobs →</${Link}>`}>
        <div class="table-wrap"><table><thead><tr><th>job</th><th>state</th><th>progress</th><th class="hide-narrow">age</th></tr></thead>
        <tbody>${recentJobs.slice(0, 8).map((j) => html`<tr data-job=${j.id}><td><${Link} href=${`/jobs/${j.id}`}>${jobTitle(j)}</${Link}></td><td><${State} state=${j.status} /></td>
          <td><${JobProgress} job=${j} /> <${Counts} job=${j} /></td><td class="hide-narrow muted small">${age(j.created_at)}</td></tr>`)}
        ${recentJobs.length === 0 ? html`<tr><td colspan="4" class="muted">No jobs yet.</td></tr>` : ''}</tbody></table></div></${Section}>
      <${Section} title="Workers" right=${html`<${Link} href="/workers" class="small">all workers →</${Link}>`}>
        <div class="table-wrap"><table><thead><tr><th>worker</th><th>status</th><th class="num">running</th><th class="hide-narrow">handles</th></tr></thead>
        <tbody>${online.slice(0, 8).map((w) => html`<tr data-worker=${w.worker_id}><td><${Link} href=${`/workers/${encodeURIComponent(w.worker_id)}`}>${w.worker_id}</${Link}></td><td><${State} state=${w.status} /></td>
          <td class="num">${w.running_tasks} / ${w.capacity}</td><td class="hide-narrow small">${[...w.patterns, w.allow_code ? 'shipped code' : null].filter(Boolean).join(', ') || '–'}</td></tr>`)}
        ${online.length === 0 ? html`<tr><td colspan="4" class="muted">No worker is connected. Start one: <code>crowdcompute worker --foreman ${location.origin.replace(/^http/, 'ws')}/ws</code></td></tr>` : ''}</tbody></table></div></${Section}>
    </div>
    ${r ? html`<p class="muted small">Finished jobs are kept ${duration(r.default_seconds * 1000)}: ${num(r.retained_jobs)} jobs (${num(r.retained_tasks)} tasks) retained, ${num(r.pruned_jobs)} jobs (${num(r.pruned_tasks)} tasks) pruned${r.storage_bytes !== null ? `, database ${bytes(r.storage_bytes)}` : ''}. Up ${duration(stats.uptime_seconds * 1000)}.</p>` : ''}`;
}
