// Pieces the dashboard's pages share: links that stay in the page, the job label, pattern
// matching (to say when no worker serves a task type), and small building blocks.
import { html, Progress, num } from '../common.js';

/** Go to a path inside the dashboard without reloading. */
export function navigate(path) {
  history.pushState(null, '', path);
  dispatchEvent(new PopStateEvent('popstate'));
}

/** A link inside the dashboard. */
export const Link = ({ href, children, class: cls }) => html`<a href=${href} class=${cls}
  onClick=${(e) => { if (e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return; e.preventDefault(); navigate(href); }}>${children}</a>`;

/**
 * Every state a job or task can be in, in the order work moves through them (as the foreman's
 * protocol lists them): `scheduled` waits for its start time, `queued` for a worker.
 */
export const STATES = ['scheduled', 'queued', 'running', 'completed', 'failed', 'cancelled'];

/** What a job runs, in a few words: its name, else its task types or function. */
export const jobTitle = (j) => j.name || j.label || (j.kind === 'map' ? 'map job' : 'tasks');

/** The job's progress bar: finished parts, then what running handlers reported. */
export const JobProgress = ({ job }) => html`<${Progress} total=${job.total_tasks} completed=${job.completed_tasks}
  failed=${job.failed_tasks} cancelled=${job.cancelled_tasks} live=${(job.running_progress ?? 0) * job.total_tasks} />`;

/** "12 / 40", with the failed count when there is one. */
export const Counts = ({ job }) => html`<span class="small">${num(job.completed_tasks)} / ${num(job.total_tasks)}${job.failed_tasks ? html` · <span class="state-text failed">${num(job.failed_tasks)} failed</span>` : ''}${job.cancelled_tasks ? html` · ${num(job.cancelled_tasks)} cancelled` : ''}</span>`;

const patternCache = new Map();
/** The DistWorker glob: `*` any run of characters, `?` one, the rest itself. */
export function matchesPattern(pattern, type) {
  let re = patternCache.get(pattern);
  if (!re) {
    re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's');
    patternCache.set(pattern, re);
  }
  return re.test(type);
}

/** Task types among `types` that no online worker serves (for a map job: whether any runs shipped code). */
export function unservedTypes(job, types, workers) {
  const online = workers.filter((w) => w.status === 'online');
  if (job.kind === 'map') return online.some((w) => w.allow_code) ? [] : ['shipped code (no online worker runs with --allow-code)'];
  return types.filter((t) => !online.some((w) => w.patterns.some((p) => matchesPattern(p, t))));
}

/** A job's task types as far as its label tells (up to three; "+N more" hides the rest). */
export const labelTypes = (job) => (job.kind === 'tasks' && job.label ? job.label.split(', ').filter((t) => !/^\+\d+ more$/.test(t) && !t.includes(' +')) : []);

/** A titled block. */
export const Section = ({ title, children, right }) => html`<section><div class="section-head"><h2>${title}</h2>${right}</div>${children}</section>`;
