// One job: what it is, how far it got, its tasks with their inputs, results, errors and every
// attempt, and the Cancel and Retry buttons.
import { html, api, age, duration, preview, num, State, useEffect, useState, useRef } from '../common.js';
import { JobProgress, Counts, jobTitle, unservedTypes, labelTypes, Link, STATES } from './shared.js';
import { WebhookDeliveries } from './webhook.js';

const PAGE = 50;
const LANGUAGE_NAMES = { javascript: 'JavaScript', python: 'Python' };
const TERMINAL = new Set(['completed', 'failed', 'cancelled']);

function Attempts({ task }) {
  if (!task.attempts.length) return html`<p class="muted small">Not started yet.</p>`;
  return html`<table class="attempts"><thead><tr><th>#</th><th>worker</th><th>ended</th><th class="hide-narrow">started</th><th class="num hide-narrow">took</th><th>error</th></tr></thead><tbody>
    ${task.attempts.map((a) => html`<tr><td>${a.attempt}</td><td>${a.worker_id ? html`<${Link} href=${`/workers/${encodeURIComponent(a.worker_id)}`}>${a.worker_id}</${Link}>` : '–'}</td>
      <td><${State} state=${a.status === 'lost' ? 'failed' : a.status} />${a.status === 'lost' ? html` <span class="small muted">lost</span>` : ''}</td>
      <td class="small muted hide-narrow">${a.started_at ? new Date(a.started_at).toLocaleTimeString() : '–'}</td>
      <td class="num small hide-narrow">${a.duration_ms !== null ? duration(a.duration_ms) : '–'}</td>
      <td class="small">${a.error ? html`<code>${a.error.code ?? a.error.name ?? 'Error'}</code> ${a.error.message}` : ''}</td></tr>`)}
  </tbody></table>`;
}

/**
 * How a task's attempts add up, beside its attempt number: the failures counted against its
 * max attempts (since the last Retry, which starts the count again), the attempts lost with
 * their worker (never counted), and those that ended before a Retry. Each attempt is one of
 * these, or the one running or finished now, so the numbers explain the attempt number.
 */
export function attemptNote(task) {
  const lost = task.attempts.filter((a) => a.status === 'lost').length;
  // A cancelled attempt is one before a Retry, unless it is the task's state now.
  const failed = task.attempts.filter((a) => a.status === 'failed' || (a.status === 'cancelled' && a.attempt < task.attempt)).length;
  const beforeRetry = Math.max(0, failed - task.failures);
  if (task.attempt <= 1 && lost === 0) return '';
  return [`failed ${task.failures} of ${task.max_attempts}`, lost ? `lost ${lost}` : '', beforeRetry ? `${beforeRetry} before a Retry` : ''].filter(Boolean).join(' · ');
}

const ATTEMPT_HELP = 'Failed: errors and timeouts counted against the max attempts since the last Retry. Lost: attempts whose worker went away, which are not counted.';

function TaskRow({ task, onRetry, busy }) {
  const [open, setOpen] = useState(false);
  return html`
    <tr data-task=${task.task_id} class=${open ? 'open' : ''}>
      <td class="num">${task.index}</td>
      <td><button class="link" aria-expanded=${open} onClick=${() => setOpen(!open)}>${task.type}</button></td>
      <td><${State} state=${task.status} />${task.status === 'running' && task.progress !== null ? html` <span class="small">${Math.round(task.progress)}%</span>` : ''}</td>
      <td class="num" data-attempt>${task.attempt}${attemptNote(task) ? html`<div class="small muted" title=${ATTEMPT_HELP}>${attemptNote(task)}</div>` : ''}</td>
      <td class="small hide-narrow">${task.worker_id ?? '–'}</td>
      <td class="small err">${task.error ? task.error.message : task.status === 'completed' ? html`<span class="muted">${preview(task.result, 60)}</span>` : ''}</td>
      <td>${task.status === 'failed' || task.status === 'cancelled' ? html`<button disabled=${busy} onClick=${() => onRetry(task.task_id)}>Retry</button>` : ''}</td>
    </tr>
    ${open ? html`<tr class="detail"><td colspan="7"><div class="grid2">
      <div><h3>Input</h3><pre>${preview(task.input, 4000)}</pre></div>
      <div><h3>${task.status === 'completed' ? 'Result' : task.error ? 'Error' : 'Result'}</h3><pre class=${task.error ? 'err' : ''}>${task.error ? `${task.error.code ?? ''} ${task.error.message}${task.error.stack ? `\n\n${task.error.stack}` : ''}` : preview(task.result, 4000)}</pre></div>
    </div><h3>Attempts</h3><${Attempts} task=${task} /></td></tr>` : ''}`;
}

// A task graph's nodes: each one's state (or waiting for its upstream nodes), attempt, worker,
// the artifacts it wrote, and what it depends on or reads.
function GraphNodes({ graph }) {
  return html`<div class="section-head"><h2>Nodes</h2><span class="small muted">output: <code>${graph.output}</code></span></div>
    <div class="table-wrap"><table class="nodes" data-testid="graph-nodes">
      <thead><tr><th>node</th><th>type</th><th>state</th><th class="num">attempt</th><th class="hide-narrow">worker</th><th class="num">artifacts</th><th>after</th></tr></thead>
      <tbody>${graph.nodes.map((n) => html`<tr data-node=${n.node_id} data-state=${n.waiting ? 'waiting' : n.status}>
        <td><code>${n.node_id}</code></td><td>${n.type}</td>
        <td>${n.waiting ? html`<span class="muted">waiting</span>` : html`<${State} state=${n.status} />`}</td>
        <td class="num">${n.attempt}</td><td class="small hide-narrow">${n.worker_id ?? '–'}</td><td class="num">${num(n.artifacts)}</td>
        <td class="small">${n.depends_on.length ? html`${n.depends_on.join(', ')}${n.input_adapter ? html` <span class="muted">(${n.input_adapter})</span>` : ''}` : '–'}</td></tr>`)}
      </tbody></table></div>`;
}

// The job's OpenTelemetry trace id, to paste into a tracing backend's search: selected whole by
// one click, or copied by the button (the clipboard needs a secure page: https or localhost).
function TraceId({ traceId }) {
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try { await navigator.clipboard.writeText(traceId); setCopied(true); } catch { setCopied(false); }
  };
  return html`<code class="select-all" data-trace-id title="Look this trace up in your tracing backend (Jaeger, Tempo, …)">${traceId}</code>
    ${navigator.clipboard ? html` <button class="small" data-copy-trace onClick=${copy}>${copied ? 'Copied' : 'Copy'}</button>` : ''}`;
}

export function JobPage({ id, live }) {
  const [job, setJob] = useState(null);
  const [tasks, setTasks] = useState(null);
  const [from, setFrom] = useState(0);
  const [status, setStatus] = useState('');
  const [error, setError] = useState(null);
  const [notice, setNotice] = useState(null);
  const [busy, setBusy] = useState(false);
  const [graph, setGraph] = useState(null);
  const [code, setCode] = useState(null);
  const pending = useRef(null);

  const loadTasks = async (f = from, s = status) => {
    const q = new URLSearchParams({ limit: String(PAGE), offset: String(f) });
    if (s) q.set('status', s);
    setTasks(await api(`/api/jobs/${id}/tasks?${q}`));
    if (job?.kind === 'graph' || graph) setGraph(await api(`/api/jobs/${id}/graph`));
  };
  const load = async () => {
    try {
      const j = await api(`/api/jobs/${id}`);
      setJob(j);
      if (j.kind === 'graph') setGraph(await api(`/api/jobs/${id}/graph`));
      if (j.kind === 'map' && !code) setCode(await api(`/api/jobs/${id}/code`));
      await loadTasks();
      setError(null);
    } catch (e) { setError(e.message); }
  };
  useEffect(() => { void load(); }, [id]);
  useEffect(() => { void loadTasks().catch((e) => setError(e.message)); }, [from, status]);

  // The job changed: take its new counts now, and its tasks at most once a second.
  const update = live.jobs.get(id);
  useEffect(() => {
    if (!update) return;
    setJob((j) => (j ? { ...j, ...update } : update));
    if (!pending.current) pending.current = setTimeout(() => { pending.current = null; void loadTasks().catch(() => {}); }, 1000);
  }, [update]);
  useEffect(() => () => clearTimeout(pending.current), []);

  const act = async (what, path) => {
    setBusy(true);
    try {
      const r = await api(path, { method: 'POST' });
      setNotice(what === 'retry' ? `${r.retried} task${r.retried === 1 ? '' : 's'} put back in the queue.` : 'Cancelled: queued tasks will not start, running ones are being stopped.');
      setJob(r);
      await loadTasks();
    } catch (e) { setNotice(null); setError(e.message); } finally { setBusy(false); }
  };

  if (error && !job) return html`<div class="notice bad" role="alert">${error}</div><p><${Link} href="/jobs">← all jobs</${Link}></p>`;
  if (!job) return html`<p class="muted">Loading…</p>`;
  const retryable = job.failed_tasks + job.cancelled_tasks > 0;
  const waiting = !TERMINAL.has(job.status) && job.completed_tasks + job.failed_tasks + job.cancelled_tasks < job.total_tasks;
  const types = [...new Set([...labelTypes(job), ...(tasks ?? []).filter((t) => (t.status === 'queued' || t.status === 'scheduled') && t.kind === 'named').map((t) => t.type)])];
  const unserved = waiting ? unservedTypes(job, types, live.workers) : [];
  return html`
    <p class="small"><${Link} href="/jobs">← all jobs</${Link}></p>
    <div class="job-head">
      <h2>${jobTitle(job)} <${State} state=${job.status} />${job.open ? html` <span class="small muted" title="It takes more tasks until its submitter seals it">open</span>` : ''}</h2>
      <div class="actions">
        <button class="danger" disabled=${busy || TERMINAL.has(job.status)} onClick=${() => act('cancel', `/api/jobs/${id}/cancel`)}>Cancel job</button>
        <button class="primary" disabled=${busy || !retryable} onClick=${() => act('retry', `/api/jobs/${id}/retry`)}>Retry failed${job.cancelled_tasks ? ' and cancelled' : ''}</button>
      </div>
    </div>
    ${unserved.length ? html`<div class="notice" role="status">No connected worker handles ${unserved.map((t, i) => html`${i ? ', ' : ''}<code>${t}</code>`)}: ${unserved.length === 1 ? 'its tasks wait' : 'those tasks wait'} until one connects${job.queue_timeout_ms ? `, or fail after ${duration(job.queue_timeout_ms)} (queue timeout)` : ''}.</div>` : ''}
    ${notice ? html`<div class="notice ok" role="status">${notice}</div>` : ''}
    ${error ? html`<div class="notice bad" role="alert">${error}</div>` : ''}
    <div class="panel">
      <div class="progress-big"><${JobProgress} job=${job} /> <${Counts} job=${job} /></div>
      <dl class="kv">
        <dt>id</dt><dd class="mono">${job.id}</dd>
        <dt>kind</dt><dd>${job.kind === 'map' ? `map: ${job.label ?? 'function'} (${LANGUAGE_NAMES[job.language] ?? job.language}) over ${num(job.arg_count)} arguments, ${num(job.chunk_size)} per task`
          : job.kind === 'graph' ? `task graph of ${num(job.total_tasks)} nodes: ${job.label ?? ''}` : `named tasks: ${job.label ?? ''}`}</dd>
        <dt>priority</dt><dd>${job.priority}</dd>
        <dt>max attempts</dt><dd data-max-attempts>${job.max_attempts} per task${job.max_attempts === 1 ? ' (no retry)' : ''}${job.timeout_ms ? ` · timeout ${duration(job.timeout_ms)}` : ''}
          <div class="small muted">Errors and timeouts count; an attempt lost with its worker does not, and Retry starts the count again.</div></dd>
        <dt>created</dt><dd>${new Date(job.created_at).toLocaleString()} <span class="muted">(${age(job.created_at)})</span></dd>
        ${job.started_at ? html`<dt>started</dt><dd>${new Date(job.started_at).toLocaleString()}</dd>` : ''}
        ${job.completed_at ? html`<dt>finished</dt><dd>${new Date(job.completed_at).toLocaleString()} <span class="muted">(took ${duration(Date.parse(job.completed_at) - Date.parse(job.started_at ?? job.created_at))})</span></dd>` : ''}
        ${job.trace_id ? html`<dt>trace</dt><dd><${TraceId} traceId=${job.trace_id} /></dd>` : ''}
        ${job.prune_at ? html`<dt>kept until</dt><dd>${new Date(job.prune_at).toLocaleString()}</dd>` : ''}
      </dl>
    </div>
    ${code ? html`<details class="panel" data-code><summary>Function <span class="small muted">${LANGUAGE_NAMES[code.language] ?? code.language}</span></summary><pre class="mono">${code.source}</pre></details>` : ''}
    ${graph ? html`<${GraphNodes} graph=${graph} />` : ''}
    <${WebhookDeliveries} id=${id} job=${job} />
    <div class="section-head"><h2>Tasks</h2>
      <div class="filters"><select aria-label="task state" value=${status} onChange=${(e) => { setFrom(0); setStatus(e.currentTarget.value); }}>
        <option value="">every state</option>${STATES.map((s) => html`<option value=${s}>${s}</option>`)}</select></div></div>
    <div class="table-wrap"><table class="tasks">
      <thead><tr><th class="num">#</th><th>type</th><th>state</th><th class="num">attempt</th><th class="hide-narrow">worker</th><th>result or error</th><th></th></tr></thead>
      <tbody>${(tasks ?? []).map((t) => html`<${TaskRow} key=${t.task_id} task=${t} busy=${busy} onRetry=${(taskId) => act('retry', `/api/tasks/${encodeURIComponent(taskId)}/retry`)} />`)}
      ${tasks && tasks.length === 0 ? html`<tr><td colspan="7" class="muted">No task${status ? ` is ${status}` : ''}.</td></tr>` : ''}</tbody></table></div>
    <div class="pager">
      <button disabled=${from === 0} onClick=${() => setFrom(Math.max(0, from - PAGE))}>← previous</button>
      <span class="small muted">${tasks?.length ? `tasks ${tasks[0].index}–${tasks[tasks.length - 1].index} of ${num(job.total_tasks)}` : ''}</span>
      <button disabled=${!tasks || tasks.length < PAGE} onClick=${() => setFrom(tasks[tasks.length - 1].index + 1)}>next →</button>
    </div>`;
}
