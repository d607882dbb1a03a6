/**
 * What a schedule does when a foreman finds ticks due: which fire, which are missed (the
 * catch-up policy), and what each fire does while the previous run's job is unfinished (the
 * overlap policy). Pure: the foreman reads the schedule, asks here, and writes the answer in
 * one guarded transaction.
 */
import type { ScheduleCatchUpPolicy, ScheduleOverlap, ScheduleRunReason } from '../protocol/index.ts';
import { jitterOf, nextTick, type TickRule } from './schedule-ticks.ts';

/** A schedule as the plan needs it. */
export interface PlanSchedule {
  id: string;
  rule: TickRule;
  jitterMs: number;
  windowMs: number;
  policy: ScheduleCatchUpPolicy;
  /** The first tick not handled yet. */
  nextTick: number;
}

/** A tick due, and whether it fires or was missed. */
export interface PlannedTick {
  tick: number;
  /** `fire` goes on to the overlap decision. */
  action: 'fire' | 'missed';
  /** A fire on time (`schedule`) or late (`catch_up`). */
  reason: Extract<ScheduleRunReason, 'schedule' | 'catch_up'>;
}

/** What to do with the due ticks of one schedule, and where it stands after. */
export interface CatchUpPlan {
  /** In tick order. Missed ticks far past the window are only counted (`missedUnlisted`). */
  ticks: PlannedTick[];
  /** Missed ticks not in `ticks` (only the newest few missed are listed, for the history). */
  missedUnlisted: number;
  /** The first tick not handled by this plan (null: the rule has no more). */
  nextTick: number | null;
}

/** Limits of one plan: the foreman takes the rest in its next step. */
export interface PlanLimits {
  /** Most ticks fired by one plan. */
  maxFires: number;
  /** Most missed ticks listed (for the run history); the others are counted. */
  maxListedMissed: number;
  /** Most ticks looked at (a cron of seconds after a long outage). */
  maxScanned: number;
}

/** Default limits of a plan. */
export const PLAN_LIMITS: PlanLimits = { maxFires: 100, maxListedMissed: 10, maxScanned: 100_000 };

/** When a tick fires: the tick plus its jitter. */
export function dueAt(s: Pick<PlanSchedule, 'id' | 'jitterMs'>, tick: number): number {
  return tick + jitterOf(s.id, tick, s.jitterMs);
}

/** How late a tick may be found and still fire under policy `none`: a minute, or the window if shorter. */
export function graceMs(windowMs: number, noneGraceMs: number): number {
  return Math.min(noneGraceMs, windowMs);
}

/**
 * The catch-up plan of a schedule at `now`. Ticks are taken in order up to the first not yet
 * due (its jitter included). A tick found due more than the window late is missed; within
 * the window, `all` fires every one, `latest` only the newest (the others are missed), `none`
 * only one found due within the grace. A fire found due within the grace is on time
 * (`schedule`), later is `catch_up`.
 */
export function catchUpPlan(s: PlanSchedule, now: number, noneGraceMs: number, limits: PlanLimits = PLAN_LIMITS): CatchUpPlan {
  const grace = graceMs(s.windowMs, noneGraceMs);
  const listed: PlannedTick[] = [];
  let missedUnlisted = 0;
  const miss = (tick: number) => {
    listed.push({ tick, action: 'missed', reason: 'catch_up' });
    // Only the newest few missed are kept in the list.
    const missedAt = listed.findIndex((t) => t.action === 'missed');
    if (listed.filter((t) => t.action === 'missed').length > limits.maxListedMissed) { listed.splice(missedAt, 1); missedUnlisted++; }
  };
  let t: number | null = s.nextTick;
  // Far past the window (the foreman or the store was away): missed, whatever the policy.
  // An interval jumps there at once; a cron is walked (up to maxScanned ticks).
  const cutoff = now - s.windowMs - s.jitterMs;
  if (t !== null && t < cutoff && s.rule.everyMs !== null) {
    const skipped = Math.floor((cutoff - t) / s.rule.everyMs);
    if (skipped > limits.maxListedMissed) {
      missedUnlisted += skipped - limits.maxListedMissed;
      t += (skipped - limits.maxListedMissed) * s.rule.everyMs;
    }
  }
  let scanned = 0;
  const candidates: number[] = [];
  let fires = 0;
  while (t !== null && scanned < limits.maxScanned) {
    const due = dueAt(s, t);
    if (due > now) break;
    scanned++;
    if (now - due > s.windowMs) {
      miss(t);
    } else if (s.policy === 'all') {
      if (fires === limits.maxFires) break;
      listed.push({ tick: t, action: 'fire', reason: now - due <= grace ? 'schedule' : 'catch_up' });
      fires++;
    } else if (s.policy === 'none') {
      if (now - due <= grace) {
        if (fires === limits.maxFires) break;
        listed.push({ tick: t, action: 'fire', reason: 'schedule' });
        fires++;
      } else miss(t);
    } else {
      candidates.push(t);
    }
    t = nextTick(s.rule, t);
  }
  if (candidates.length > 0) {
    // latest: the newest due tick fires; the older ones within the window are missed.
    for (const c of candidates.slice(0, -1)) miss(c);
    const newest = candidates.at(-1)!;
    listed.push({ tick: newest, action: 'fire', reason: now - dueAt(s, newest) <= grace ? 'schedule' : 'catch_up' });
  }
  listed.sort((a, b) => a.tick - b.tick);
  return { ticks: listed, missedUnlisted, nextTick: t };
}

/** What a fire does, given the overlap policy and the previous run's job. */
export type OverlapAction = 'fire' | 'skip' | 'buffer' | 'cancel_previous_and_fire';

/**
 * The overlap decision for one fire. `previousUnfinished`: the previous run's job has not
 * finished (a job fired earlier in the same step counts). `buffered`: buffer_one holds a tick
 * already (a second one is skipped: at most one is remembered).
 */
export function overlapAction(policy: ScheduleOverlap, previousUnfinished: boolean, buffered: boolean): OverlapAction {
  if (!previousUnfinished) return 'fire';
  switch (policy) {
    case 'allow': return 'fire';
    case 'cancel_previous': return 'cancel_previous_and_fire';
    case 'buffer_one': return buffered ? 'skip' : 'buffer';
    case 'skip': return 'skip';
  }
}
