import type { FastifyInstance } from 'fastify';

/**
 * GET /: a plain status page that polls the REST API once a second. The live dashboard
 * (pushed over /ws) replaces it later; this one needs nothing but the API it reads.
 */
const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CrowdCompute foreman</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#222;background:#fafafa}
 h1{font-size:1.4rem;margin:0 0 1rem} h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
 .cards{display:flex;gap:1rem;flex-wrap:wrap} .card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.6rem 1rem;min-width:8rem}
 .card b{display:block;font-size:1.5rem} table{border-collapse:collapse;background:#fff;width:100%}
 td,th{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;font-size:13px} th{background:#f0f0f0}
 .bar{background:#eee;border-radius:3px;height:8px;width:120px;display:inline-block;vertical-align:middle}
 .bar i{display:block;height:8px;background:#3a7;border-radius:3px} .failed{color:#b33} .muted{color:#888}
</style></head><body>
<h1>CrowdCompute foreman</h1>
<div class="cards" id="cards"></div>
<p id="store" class="muted"></p>
<h2>Workers</h2><table><thead><tr><th>worker</th><th>status</th><th>running / capacity</th><th>patterns</th><th>code</th><th>done</th><th>failed</th></tr></thead><tbody id="workers"></tbody></table>
<h2>Recent jobs</h2><table><thead><tr><th>job</th><th>kind</th><th>status</th><th>progress</th><th>tasks</th><th>created</th></tr></thead><tbody id="jobs"></tbody></table>
<p class="muted">API: <a href="/docs">/docs</a> · <a href="/api/stats">/api/stats</a> · <a href="/health">/health</a> · <a href="/metrics">/metrics</a></p>
<script>
const esc = (s) => String(s ?? '').replace(/[&<>"]/g, (c) => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
async function refresh() {
  try {
    const [stats, workers, jobs] = await Promise.all(['/api/stats', '/api/workers', '/api/jobs?limit=20'].map((u) => fetch(u).then((r) => r.json())));
    document.getElementById('cards').innerHTML = [['connected workers', stats.connected_workers], ['running tasks', stats.running_tasks],
      ['queued tasks', stats.queued_tasks], ['active jobs', stats.active_jobs], ['completed jobs', stats.completed_jobs], ['failed jobs', stats.failed_jobs]]
      .map(([k, v]) => '<div class="card"><b>' + esc(v) + '</b>' + esc(k) + '</div>').join('');
    const r = stats.retention, days = r.default_seconds / 86400;
    const keep = days >= 1 ? days.toFixed(days % 1 ? 1 : 0) + ' d' : r.default_seconds >= 3600 ? (r.default_seconds / 3600).toFixed(1) + ' h' : r.default_seconds + ' s';
    const size = r.storage_bytes === null ? '' : ', database ' + (r.storage_bytes / 1048576).toFixed(1) + ' MiB';
    const health = await fetch('/health').then((h) => h.json()).catch(() => null);
    document.getElementById('store').innerHTML = (health && health.status === 'degraded' ? '<b class="failed">store ' + esc(health.store.state) + ': ' + esc(health.reason) + '</b><br>' : '') +
      'Finished jobs are kept ' + esc(keep) + ': ' + esc(r.retained_jobs) + ' jobs (' + esc(r.retained_tasks) + ' tasks) retained, ' +
      esc(r.pruned_jobs) + ' jobs (' + esc(r.pruned_tasks) + ' tasks) pruned' + esc(size) + '.';
    document.getElementById('workers').innerHTML = workers.map((w) => '<tr><td>' + esc(w.worker_id) + '</td><td>' + esc(w.status) + '</td><td>' +
      esc(w.running_tasks) + ' / ' + esc(w.capacity) + '</td><td>' + esc(w.patterns.join(', ')) + '</td><td>' + (w.allow_code ? 'yes' : 'no') +
      '</td><td>' + esc(w.tasks_completed) + '</td><td>' + esc(w.tasks_failed) + '</td></tr>').join('');
    document.getElementById('jobs').innerHTML = jobs.map((j) => '<tr><td>' + esc(j.name || j.id) + '</td><td>' + esc(j.kind) + '</td><td class="' +
      (j.status === 'failed' ? 'failed' : '') + '">' + esc(j.status) + '</td><td><span class="bar"><i style="width:' + Math.round(j.progress * 100) +
      '%"></i></span> ' + Math.round(j.progress * 100) + '%</td><td>' + esc(j.completed_tasks) + ' ok, ' + esc(j.failed_tasks) + ' failed / ' +
      esc(j.total_tasks) + '</td><td>' + esc(j.created_at) + '</td></tr>').join('');
  } catch (e) { document.getElementById('cards').textContent = 'foreman unreachable: ' + e.message; }
}
refresh(); setInterval(refresh, 1000);
</script></body></html>`;

/** GET /: the status page. */
export function registerStatusPage(app: FastifyInstance): void {
  app.get('/', { schema: { hide: true }, config: { access: 'page' } }, async (_req, reply) => {
    reply.type('text/html; charset=utf-8');
    return PAGE;
  });
}
