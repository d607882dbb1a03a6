/**
 * A schedule spec as the store keeps it, checked for what its schema cannot say (a cron
 * expression that parses, exactly one of cron and every, a job without the options a fire
 * sets itself), and the job each fire submits.
 * @internal
 */
import {
  CrowdComputeError, SCHEDULE_LIMITS, durationMs, type JobSpec, type ScheduleSpec, type SchedulePatch,
} from '../../protocol/index.ts';
import { cronProblem, nextTick, type TickRule } from '../../core/schedule-ticks.ts';
import type { ScheduleRecord } from '../../store/store.ts';

/** What a spec sets of a schedule record. */
export type ScheduleFields = Pick<ScheduleRecord, 'name' | 'cron' | 'everyMs' | 'timezone' | 'job' | 'overlap' | 'windowMs' | 'policy' | 'jitterMs'>;

function invalid(message: string, field: string): CrowdComputeError {
  return new CrowdComputeError('CC_ERR_INVALID_SCHEDULE', message, { field });
}

/** Job options a fire sets itself, and why the spec may not. */
const FIRE_SETS: Record<string, string> = {
  idempotencyKey: 'each fire gets its own key, schedule:<id>:<tick>',
  open: 'a fired job is submitted whole',
  runAt: 'a fired job runs at its tick',
  delay: 'a fired job runs at its tick (use jitter to spread ticks)',
};

/** Refuse what a schedule's job may not hold: options a fire sets, and ids or files that belong to one job. */
function checkJob(job: JobSpec): void {
  for (const [key, why] of Object.entries(FIRE_SETS)) {
    if ((job as Record<string, unknown>)[key] !== undefined) throw invalid(`job.${key}: a schedule's job takes no ${key}: ${why}`, `job.${key}`);
  }
  const tasks = job.kind === 'tasks' ? job.tasks : job.kind === 'graph' ? job.nodes : [];
  tasks.forEach((t, i) => {
    const where = job.kind === 'tasks' ? `job.tasks.${i}` : `job.nodes.${i}`;
    if ('taskId' in t && t.taskId !== undefined) throw invalid(`${where}.taskId: a task id names one task of one job, and a schedule fires many jobs; leave it out`, `${where}.taskId`);
    if ('runAt' in t && t.runAt !== undefined) throw invalid(`${where}.runAt: a fired job's tasks run at its tick`, `${where}.runAt`);
    if ('delay' in t && t.delay !== undefined) throw invalid(`${where}.delay: a fired job's tasks run at its tick`, `${where}.delay`);
    if (t.files?.length) throw invalid(`${where}.files: an uploaded file goes with one job (and is pruned with it); a schedule fires many jobs`, `${where}.files`);
  });
}

/**
 * The record fields of a new schedule, or of one changed by `patch` (`cron` replaces `every`
 * and the other way round), checked: CC_ERR_INVALID_SCHEDULE names the field and the rule.
 */
export function scheduleFields(spec: ScheduleSpec | SchedulePatch, before?: ScheduleFields): ScheduleFields {
  let cron = spec.cron !== undefined ? spec.cron.trim() : before?.cron ?? null;
  let everyMs = spec.every !== undefined ? durationMs(spec.every) : before?.everyMs ?? null;
  if (before && spec.cron !== undefined && spec.every === undefined) everyMs = null;
  if (before && spec.every !== undefined && spec.cron === undefined) cron = null;
  if ((cron === null) === (everyMs === null)) {
    throw invalid(cron === null ? 'give cron (a cron expression) or every (an interval such as 30s or 1h)' : 'give cron or every, not both', cron === null ? 'cron' : 'every');
  }
  const timezone = spec.timezone ?? (everyMs !== null ? 'UTC' : before?.timezone ?? 'UTC');
  if (everyMs !== null && spec.timezone !== undefined && timezone !== 'UTC') {
    throw invalid(`timezone: applies to cron expressions; ticks of every are aligned to the Unix epoch (every 1h fires on the UTC hour), whatever the zone`, 'timezone');
  }
  if (cron !== null) {
    const problem = cronProblem(cron);
    if (problem) throw invalid(`cron: ${problem}`, 'cron');
    if (nextTick({ cron, everyMs: null, timezone }, Date.now()) === null) throw invalid(`cron: "${cron}" never ticks (no such date comes)`, 'cron');
  }
  const job = spec.job ?? before?.job;
  if (!job) throw invalid('job: a schedule needs the job each tick fires', 'job');
  checkJob(job);
  const windowMs = spec.catchUp?.window !== undefined ? durationMs(spec.catchUp.window) : before?.windowMs ?? SCHEDULE_LIMITS.defaultWindowMs;
  const jitterMs = spec.jitter !== undefined ? durationMs(spec.jitter) : before?.jitterMs ?? 0;
  if (everyMs !== null && jitterMs >= everyMs) {
    throw invalid(`jitter: ${jitterMs} ms must be shorter than the interval (every ${everyMs} ms), or ticks would overtake each other`, 'jitter');
  }
  return {
    name: spec.name !== undefined ? spec.name : before?.name ?? null,
    cron, everyMs, timezone, job,
    overlap: spec.overlap ?? before?.overlap ?? 'skip',
    windowMs,
    policy: spec.catchUp?.policy ?? before?.policy ?? 'latest',
    jitterMs,
  };
}

/** A schedule's tick rule. */
export function ruleOf(s: Pick<ScheduleRecord, 'cron' | 'everyMs' | 'timezone'>): TickRule {
  return { cron: s.cron, everyMs: s.everyMs, timezone: s.timezone };
}

/** The idempotency key of a tick's job (the same on every foreman: a tick fires one job). */
export function tickKey(scheduleId: string, tick: number): string {
  return `schedule:${scheduleId}:${tick}`;
}

/** The idempotency key of a trigger's job. */
export function triggerKey(scheduleId: string, at: number): string {
  return `schedule:${scheduleId}:trigger:${at}`;
}

/** The job a fire submits: the schedule's job, named after it, with the tick in its metadata and the fire's key. */
export function firedSpec(s: Pick<ScheduleRecord, 'id' | 'name' | 'job'>, tick: number, idempotencyKey: string): JobSpec {
  return {
    ...s.job,
    name: s.job.name ?? s.name ?? s.id,
    idempotencyKey,
    metadata: { ...s.job.metadata, schedule: { id: s.id, tick } },
  } as JobSpec;
}
