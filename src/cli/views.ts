/**
 * How the client commands show jobs, tasks, workers and statistics to a person: tables and
 * summaries on stdout. `--json` prints the REST API's own objects instead (snake_case), for
 * scripts.
 */
import Table from 'cli-table3';
import ms from 'ms';
import type { JobInfo, TaskInfoRest } from '../client/index.ts';
import { snakeCase, type JobResultsView, type StatsView, type WorkerView } from '../protocol/index.ts';

/** A job as the SDK has it, with the `label` newer foremen add (the tasks' type, or the map function's name). */
type Job = JobInfo & { label?: string | null };

/** Rename an object's top-level keys back to the REST API's snake_case (the SDK camelCases them). */
export function snakeKeys(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [snakeCase(k), v]));
}

/**
 * The part of an id that tells it apart: the last 8 characters. Job ids are time-ordered (their
 * first characters are the time, shared by the jobs of a minute); their end is random.
 */
export function shortId(id: string): string {
  return id.length > 8 ? id.slice(-8) : id;
}

/** A duration for people: `450 ms`, `1.2 s`, `42 s`, `3 min`, `2.5 h`, `3 d`. */
export function duration(milliseconds: number): string {
  const unit = (n: number, name: string) => `${n < 10 && !Number.isInteger(n) ? n.toFixed(1).replace(/\.0$/, '') : Math.round(n)} ${name}`;
  if (milliseconds < 1_000) return `${Math.round(milliseconds)} ms`;
  if (milliseconds < 60_000) return unit(milliseconds / 1_000, 's');
  if (milliseconds < 3_600_000) return unit(milliseconds / 60_000, 'min');
  if (milliseconds < 86_400_000) return unit(milliseconds / 3_600_000, 'h');
  return unit(milliseconds / 86_400_000, 'd');
}

/** `4 minutes ago`, `in 7 days`, `just now`; `-` for no time. */
export function relativeTime(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const d = now - t;
  if (Math.abs(d) < 1_000) return 'just now';
  return d > 0 ? `${ms(d, { long: true })} ago` : `in ${ms(-d, { long: true })}`;
}

/** `2025-05-01 10:42:03 UTC (4 minutes ago)`; `-` for no time. */
export function when(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '-';
  return `${iso.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC')} (${relativeTime(iso, now)})`;
}

/**
 * A table without borders, columns two spaces apart: readable, and easy to cut with awk.
 * The header is bold on a terminal, plain elsewhere (pipes, files) and under NO_COLOR.
 */
export function table(head: string[], rows: (string | number)[][], tty = process.stdout.isTTY === true): string {
  const colour = tty && !process.env.NO_COLOR;
  const t = new Table({
    head,
    chars: {
      top: '', 'top-mid': '', 'top-left': '', 'top-right': '', bottom: '', 'bottom-mid': '', 'bottom-left': '', 'bottom-right': '',
      left: '', 'left-mid': '', mid: '', 'mid-mid': '', right: '', 'right-mid': '', middle: '  ',
    },
    style: { 'padding-left': 0, 'padding-right': 0, head: colour ? ['bold'] : [], border: [], compact: true },
  });
  t.push(...rows.map((r) => r.map(String)));
  // Cells are padded to their column's width; the last column's padding is only trailing spaces.
  return `${t.toString().split('\n').map((l) => l.trimEnd()).join('\n')}\n`;
}

/** Two columns, `name  value`, for one object's summary. */
function fields(rows: [string, string][], indent = ''): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${indent}${k.padEnd(width)}  ${v}`).join('\n') + '\n';
}

/** What a job runs: its name, else its tasks' type or its function's name, else its kind. */
export function jobLabel(j: Job): string {
  return j.name || j.label || j.kind;
}

/** `60%`, `60%, 2 failed`, `100%, 1 cancelled`. */
function progressText(j: Job): string {
  const parts = [`${Math.floor(j.progress * 100)}%`];
  if (j.failedTasks) parts.push(`${j.failedTasks} failed`);
  if (j.cancelledTasks) parts.push(`${j.cancelledTasks} cancelled`);
  return parts.join(', ');
}

/** `crowdcompute jobs`: one row per job, newest first. */
export function jobsTable(jobs: Job[], now = Date.now(), tty?: boolean): string {
  if (jobs.length === 0) return 'no jobs\n';
  return table(['ID', 'NAME', 'STATE', 'PROGRESS', 'TASKS', 'AGE'],
    jobs.map((j) => [j.id, jobLabel(j), j.status, progressText(j), j.totalTasks, relativeTime(j.createdAt, now)]), tty);
}

/** Why an open job stopped taking parts, for people. */
const CLOSED_BY: Record<NonNullable<Job['closedBy']>, string> = {
  seal: 'its producer: sealed',
  open_timeout: 'its open timeout: no part and no seal came in time',
  cancel: 'a cancel',
  deadline: 'its deadline',
  failure: 'a failure of the whole job',
};

/** `crowdcompute job <id>`: what the job is, how far it got, when, and its options. */
export function jobSummary(j: Job, now = Date.now()): string {
  const finished = j.completedTasks + j.failedTasks + j.cancelledTasks;
  const counts = [`${j.completedTasks} completed`, ...(j.failedTasks ? [`${j.failedTasks} failed`] : []), ...(j.cancelledTasks ? [`${j.cancelledTasks} cancelled`] : [])];
  const rows: [string, string][] = [
    ['name', j.name ?? '-'],
    ['kind', `${j.kind}${j.label ? ` (${j.kind === 'map' ? 'function' : 'type'} ${j.label})` : ''}${j.argCount !== null ? `, ${j.argCount} arguments` : ''}`],
    ['state', `${j.status}${j.cancelRequested && j.status !== 'cancelled' ? ' (cancel requested)' : ''}${j.open ? ' (open: takes more parts until sealed)' : ''}`],
    ['progress', `${Math.floor(j.progress * 100)}%: ${finished} of ${j.totalTasks} tasks finished (${counts.join(', ')})`],
    ['created', when(j.createdAt, now)],
    ['started', when(j.startedAt, now)],
    ['completed', when(j.completedAt, now)],
    ['priority', j.priority],
    ['attempts', `up to ${j.maxAttempts} per task`],
  ];
  // A worker caps shipped code with its own --sandbox-timeout, which wins when shorter.
  if (j.timeoutMs !== null) rows.push(['timeout', `${ms(j.timeoutMs, { long: true })} per task${j.kind === 'map' ? ', or the worker\'s --sandbox-timeout if shorter' : ''}`]);
  if (j.deadline !== null) rows.push(['deadline', `${when(j.deadline, now)}: what is not done by then fails (CC_ERR_DEADLINE)`]);
  if (j.open && j.openExpiresAt !== null) {
    rows.push(['open timeout', `${j.onOpenTimeout === 'seal' ? 'sealed' : 'cancelled'} ${when(j.openExpiresAt, now)} unless a part or a seal comes first (no part for ${ms(j.openTimeoutMs ?? 0, { long: true })})`]);
  }
  if (j.closedBy !== null) rows.push(['closed by', CLOSED_BY[j.closedBy]]);
  const hook = j.webhook;
  if (hook) {
    const last = hook.attempt_log[hook.attempt_log.length - 1];
    const tries = `${hook.attempts} attempt${hook.attempts === 1 ? '' : 's'}`;
    const said = hook.state === 'delivered' ? `delivered ${when(hook.finished_at, now)} after ${tries}`
      : hook.state === 'failed' ? `given up after ${tries}${hook.last_error ? `; last: ${short(hook.last_error)}` : ''}`
        : `pending: ${tries} so far${last?.error ? ` (last: ${short(last.error)})` : ''}${hook.next_attempt_at ? `; next by ${when(hook.next_attempt_at, now)}` : ''}`;
    rows.push(['webhook', `${hook.url}: ${said}`]);
  } else if (j.webhookUrl) {
    rows.push(['webhook', `${j.webhookUrl}: called when the job ends`]);
  }
  if (j.retentionMs !== null) rows.push(['retention', `kept ${ms(j.retentionMs, { long: true })} once finished${j.pruneAt ? `; may be pruned from ${when(j.pruneAt, now)}` : ''}`]);
  return `job ${j.id}\n${fields(rows, '  ')}`;
}

/** The first line of an error message, at most `max` characters. */
function short(text: string, max = 100): string {
  const line = text.split('\n')[0];
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/**
 * `crowdcompute job <id> --tasks`: one row per task, in order. ATTEMPT counts every start (lost
 * workers and hand retries included); FAILED counts what the max attempts limit, as the
 * dashboard shows them, so that `attempt 4` never sits beside a limit of 1 unexplained.
 */
export function tasksTable(tasks: TaskInfoRest[], tty?: boolean): string {
  if (tasks.length === 0) return 'no tasks\n';
  return table(['INDEX', 'ID', 'TYPE', 'STATE', 'ATTEMPT', 'FAILED', 'WORKER', 'ERROR'],
    tasks.map((t) => [t.index, t.taskId, t.type, t.status, t.attempt, `${t.failures} of ${t.maxAttempts}`, t.workerId ?? '-', t.error ? short(t.error.message) : '']), tty);
}

/** `crowdcompute job <id> --results`: the results in order, then what failed. */
export function resultsText(r: JobResultsView): string {
  const lines = [`results (${r.results.length}, in order): ${JSON.stringify(r.results)}`];
  if (r.failures.length) {
    lines.push(`failures (${r.failures.length}):`);
    for (const f of r.failures) lines.push(`  task ${f.task_id} (index ${f.index}) ${f.status}${f.error ? `: ${short(f.error.message, 200)}` : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `crowdcompute workers`: one row per worker the foreman's store knows. */
export function workersTable(workers: WorkerView[], now = Date.now(), tty?: boolean): string {
  if (workers.length === 0) return 'no workers\n';
  return table(['ID', 'STATUS', 'RUNNING', 'PATTERNS', 'CODE', 'FOREMAN', 'DONE', 'FAILED', 'LAST SEEN'],
    workers.map((w) => [w.worker_id, w.status, `${w.running_tasks}/${w.capacity}`, w.patterns.join(', ') || '-', w.allow_code ? 'allowed' : 'no',
      w.foreman_id ?? '-', w.tasks_completed, w.tasks_failed, relativeTime(w.last_seen_at, now)]), tty);
}

/** `12 (3 queued, 1 running, 8 completed)`: a count per state, the states with none left out. */
function perState(total: number, counts: Record<string, number>): string {
  const some = Object.entries(counts).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`);
  return `${total}${some.length ? ` (${some.join(', ')})` : ''}`;
}

/** `1.2 MiB`. */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(1)} ${units[i]}`;
}

/** `crowdcompute stats`: workers, jobs and tasks per state, retention and pruning, the database's size. */
export function statsSummary(s: StatsView): string {
  const r = s.retention;
  return fields([
    ['workers', `${s.workers.online} online, ${s.workers.offline} offline; ${s.running_tasks} tasks running on ${s.connected_workers} connected workers with ${s.total_capacity} slots`],
    ['jobs', perState(s.total_jobs, s.jobs)],
    ['tasks', perState(s.total_tasks, s.tasks)],
    ['retention', `finished jobs are kept ${ms(r.default_seconds * 1000, { long: true })} unless they say otherwise`],
    ['retained', `${r.retained_jobs} finished jobs, ${r.retained_tasks} of their tasks`],
    ['pruned', `${r.pruned_jobs} jobs, ${r.pruned_tasks} tasks since the database was made`],
    ['database', r.storage_bytes === null ? 'size unknown' : bytes(r.storage_bytes)],
    ['uptime', ms(s.uptime_seconds * 1000, { long: true })],
  ]);
}
