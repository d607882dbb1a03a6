/**
 * How `crowdcompute schedule` shows schedules to a person: a table of them, and one in full
 * with its next ticks and its recent runs (each with its job and that job's state). `--json`
 * prints the REST API's own objects instead.
 */
import ms from 'ms';
import type { ScheduleView } from '../protocol/index.ts';
import { relativeTime, table } from './views.ts';

/** `every 1h` or `cron 0 3 * * * (Europe/Paris)`. */
export function scheduleWhen(s: ScheduleView): string {
  if (s.cron !== null) return `cron ${s.cron}${s.timezone && s.timezone !== 'UTC' ? ` (${s.timezone})` : ' (UTC)'}`;
  return `every ${s.every_ms === null ? '?' : ms(s.every_ms)}`;
}

/** `2026-05-01 10:42:03 UTC (in 4 minutes)`; `-` for no time. */
function at(iso: string | null | undefined, now: number): string {
  if (!iso) return '-';
  return `${iso.replace('T', ' ').replace(/(\.\d+)?Z$/, ' UTC')} (${relativeTime(iso, now)})`;
}

/** The newest run that did something: `4 minutes ago, job completed`, or what became of its tick. */
function lastRun(s: ScheduleView, now: number): string {
  const r = s.recent_runs[0];
  if (!r) return '-';
  const what = r.outcome === 'fired' ? `job ${r.job_state ?? 'pruned'}` : r.outcome;
  return `${relativeTime(r.fired_at ?? r.tick_at, now)}, ${what}`;
}

/** `crowdcompute schedule list`: one row per schedule, by id. */
export function schedulesTable(list: ScheduleView[], now = Date.now(), tty?: boolean): string {
  if (list.length === 0) return 'no schedules\n';
  return table(['ID', 'NAME', 'WHEN', 'NEXT RUN', 'LAST RUN', 'PAUSED'],
    list.map((s) => [s.id, s.name ?? '-', scheduleWhen(s), s.paused ? '-' : relativeTime(s.next_fire_at, now), lastRun(s, now), s.paused ? 'yes' : 'no']), tty);
}

/** What a schedule's job runs, in a few words. */
function jobText(job: Record<string, unknown>): string {
  const tasks = Array.isArray(job.tasks) ? job.tasks as { type?: unknown }[] : [];
  const nodes = Array.isArray(job.nodes) ? job.nodes : [];
  if (job.kind === 'map') return `map ${typeof job.function_name === 'string' ? job.function_name : 'function'} over ${Array.isArray(job.args) ? job.args.length : 0} arguments`;
  if (job.kind === 'graph') return `task graph of ${nodes.length} nodes`;
  const types = [...new Set(tasks.map((t) => String(t.type)))];
  return `${tasks.length} named task${tasks.length === 1 ? '' : 's'} (${types.slice(0, 3).join(', ')}${types.length > 3 ? ', …' : ''})`;
}

/** `crowdcompute schedule show <id>`: the schedule, its next five ticks, its recent runs. */
export function scheduleSummary(s: ScheduleView, now = Date.now(), tty?: boolean): string {
  const rows: [string, string][] = [
    ['name', s.name ?? '-'],
    ['when', scheduleWhen(s)],
    ['job', jobText(s.job)],
    ['state', s.paused ? `paused${s.pause_note ? `: ${s.pause_note}` : ''}` : 'active'],
    ['next run', s.paused ? '- (paused)' : at(s.next_fire_at, now)],
    ['overlap', s.overlap],
    ['catch-up', `${s.catch_up.policy}, within ${ms(s.catch_up.window_ms, { long: true })}`],
    ['jitter', s.jitter_ms ? `up to ${ms(s.jitter_ms, { long: true })}` : 'none'],
    ['owner', s.owner ?? '-'],
    ['created', at(s.created_at, now)],
  ];
  if (s.buffered_tick) rows.push(['buffered', `${at(s.buffered_tick, now)}: fires when the previous run's job finishes`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  const out = [`schedule ${s.id}`, ...rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`)];
  out.push('', `next ${s.next_fires.length} ticks${s.paused ? ' (once resumed)' : ''}:`, ...s.next_fires.map((t) => `  ${at(t, now)}`));
  out.push('', 'recent runs:');
  const runs = s.recent_runs.length === 0 ? '  none yet\n'
    : table(['TICK', 'REASON', 'OUTCOME', 'JOB', 'STATE'], s.recent_runs.map((r) => [at(r.tick_at, now), r.reason, r.outcome, r.job_id ?? '-', r.job_state ?? '-']), tty);
  return `${out.join('\n')}\n${runs}`;
}
