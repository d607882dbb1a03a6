/**
 * One schedule's step at a moment: its buffered tick (when the previous job has finished) and
 * its due ticks, through the catch-up and overlap policies, as one guarded write for the store.
 * @internal
 */
import { SCHEDULE_LIMITS, TERMINAL_JOB_STATES, type JobSpec } from '../../protocol/index.ts';
import { catchUpPlan, dueAt, overlapAction } from '../../core/schedule-plan.ts';
import type { JobInsertParams, ScheduleFireParams, ScheduleRecord, ScheduleRunInsert } from '../../store/store.ts';
import { firedSpec, ruleOf, tickKey } from './schedule-spec.ts';

/** Builds the rows of a fired job (JobService.buildFired: the submission's code and limits). */
export type BuildJob = (spec: JobSpec, owner: string | null, now: number) => JobInsertParams;

/** A step to write, and what to do once it is written. */
export interface ScheduleStep {
  params: ScheduleFireParams;
  /** The spec of each job the step fires, by job id (to announce it once written). */
  specs: Map<string, JobSpec>;
  /** Jobs to cancel once the step is written (overlap cancel_previous). */
  cancels: string[];
  /** Ticks by outcome, and how late each fire is (ms after its due time). */
  counts: { fired: number; skipped: number; missed: number; buffered: number };
  lateness: number[];
}

const unfinished = (s: Pick<ScheduleRecord, 'lastJobId' | 'lastJobState'>): boolean =>
  s.lastJobId !== null && s.lastJobState !== null && !TERMINAL_JOB_STATES.has(s.lastJobState);

/** The step of schedule `s` at `now`; null when it has nothing to do. */
export function scheduleStep(s: ScheduleRecord, now: number, build: BuildJob): ScheduleStep | null {
  const runs: ScheduleRunInsert[] = [];
  const specs = new Map<string, JobSpec>();
  const cancels: string[] = [];
  const counts = { fired: 0, skipped: 0, missed: 0, buffered: 0 };
  const lateness: number[] = [];
  let previous = { id: s.lastJobId, unfinished: unfinished(s) };
  let buffered = s.bufferedTick;
  const fire = (tick: number, reason: ScheduleRunInsert['reason']) => {
    const spec = firedSpec(s, tick, tickKey(s.id, tick));
    const job = build(spec, s.owner, now);
    specs.set(job.job.id, spec);
    runs.push({ tickAt: tick, firedAt: now, reason, outcome: 'fired', job });
    counts.fired++;
    lateness.push(Math.max(0, now - dueAt(s, tick)));
    previous = { id: job.job.id, unfinished: true };
  };

  // The buffered tick goes first, once the job it waited for has finished.
  if (buffered !== null && !previous.unfinished) {
    fire(buffered, 'schedule');
    buffered = null;
  }
  let nextTick = s.nextTick;
  if (s.nextTick !== null && s.dueAt !== null && s.dueAt <= now) {
    const plan = catchUpPlan({ id: s.id, rule: ruleOf(s), jitterMs: s.jitterMs, windowMs: s.windowMs, policy: s.policy, nextTick: s.nextTick }, now, SCHEDULE_LIMITS.noneGraceMs);
    counts.missed += plan.missedUnlisted;
    for (const t of plan.ticks) {
      if (t.action === 'missed') {
        runs.push({ tickAt: t.tick, firedAt: null, reason: 'catch_up', outcome: 'missed' });
        counts.missed++;
        continue;
      }
      switch (overlapAction(s.overlap, previous.unfinished, buffered !== null)) {
        case 'fire': fire(t.tick, t.reason); break;
        case 'cancel_previous_and_fire':
          // The previous run's job, or one fired earlier in this step: cancelled once the step is written.
          if (previous.id) cancels.push(previous.id);
          fire(t.tick, t.reason);
          break;
        case 'buffer':
          buffered = t.tick;
          runs.push({ tickAt: t.tick, firedAt: null, reason: t.reason, outcome: 'buffered' });
          counts.buffered++;
          break;
        case 'skip':
          runs.push({ tickAt: t.tick, firedAt: null, reason: t.reason, outcome: 'skipped' });
          counts.skipped++;
          break;
      }
    }
    nextTick = plan.nextTick;
  }
  if (runs.length === 0 && nextTick === s.nextTick && buffered === s.bufferedTick) return null;
  return {
    params: {
      scheduleId: s.id, guard: { version: s.version, nextTick: s.nextTick },
      advance: { nextTick, dueAt: nextTick === null ? null : dueAt(s, nextTick), bufferedTick: buffered },
      runs, setsLastJob: true, now,
    },
    specs, cancels, counts, lateness,
  };
}
