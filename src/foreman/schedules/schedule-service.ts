import type { Logger } from 'pino';
import {
  CrowdComputeError, SCHEDULE_LIMITS, TERMINAL_JOB_STATES, timeMs, type ScheduleSpec, type SchedulePatch,
} from '../../protocol/index.ts';
import { listingOwner, mayAccessJob, maySubmit, ownerOf, requireScope, unauthenticated, type Principal } from '../../core/access.ts';
import { dueAt } from '../../core/schedule-plan.ts';
import { nextTick, ticksBetween } from '../../core/schedule-ticks.ts';
import type { ScheduleChange, ScheduleFireParams, ScheduleRecord, Store } from '../../store/store.ts';
import type { JobService } from '../jobs/job-service.ts';
import { fireTraced } from './fire-tracing.ts';
import { firedSpec, ruleOf, scheduleFields, tickKey, triggerKey, type ScheduleFields } from './schedule-spec.ts';

/** What the schedule service acts through. */
export interface ScheduleServiceDeps {
  store: Store;
  jobs: JobService;
  log: Logger;
  /** The scheduler looks again (a schedule's timing changed). */
  changed: () => void;
  /** What time it is for the schedules (the foreman's clock). */
  clock: () => number;
  /** Most schedules one owner may keep (--max-schedules). */
  maxPerOwner: number;
}

/**
 * Creating, reading, changing, pausing, triggering and backfilling schedules, for the REST API,
 * with the access rules of core/access.ts: a key with a submit scope manages its own schedules,
 * admin every one; another owner's schedule is "not found".
 */
export class ScheduleService {
  private readonly d: ScheduleServiceDeps;

  constructor(deps: ScheduleServiceDeps) {
    this.d = deps;
  }

  /** The schedule, if it exists and the principal may see it; else CC_ERR_SCHEDULE_NOT_FOUND either way. */
  async visible(id: string, principal: Principal): Promise<ScheduleRecord> {
    if (principal.kind === 'anonymous') throw unauthenticated();
    const s = await this.d.store.scheduleGet(id);
    if (!s || !mayAccessJob(principal, s.owner)) throw new CrowdComputeError('CC_ERR_SCHEDULE_NOT_FOUND', `schedule ${id} does not exist`, { scheduleId: id });
    return s;
  }

  /** Schedules by id: the key's own, or every one for admin. */
  async list(principal: Principal): Promise<ScheduleRecord[]> {
    if (principal.kind === 'anonymous') throw unauthenticated();
    const owner = listingOwner(principal);
    return this.d.store.scheduleList(owner !== undefined ? { owner: owner ?? '' } : {});
  }

  /** Create a schedule; its first tick is the first after now. */
  async create(spec: ScheduleSpec, principal: Principal): Promise<ScheduleRecord> {
    this.mayManage(principal);
    const fields = scheduleFields(spec);
    await this.checkJob(fields, principal);
    // A schedule fires for ever: one key's share of them is bounded, as its other work is.
    const owner = ownerOf(principal);
    const kept = (await this.d.store.scheduleList({ owner: owner ?? '' })).length;
    if (kept >= this.d.maxPerOwner) {
      throw new CrowdComputeError('CC_ERR_INVALID_SCHEDULE', `this key keeps ${kept} schedules, the foreman allows at most ${this.d.maxPerOwner} per key (--max-schedules); delete one first`,
        { limit: this.d.maxPerOwner, actual: kept });
    }
    const now = this.d.clock();
    const next = nextTick(ruleOf(fields), now);
    const made = await this.d.store.scheduleCreate({
      id: spec.id, owner: ownerOf(principal), ...fields, paused: spec.paused === true, pauseNote: null,
      nextTick: next, dueAt: next === null ? null : dueAt({ id: spec.id, jitterMs: fields.jitterMs }, next), createdAt: Date.now(),
    });
    if (!made) throw new CrowdComputeError('CC_ERR_SCHEDULE_EXISTS', `a schedule with id ${spec.id} exists already; ids are unique (choose another, or change that one with PATCH /api/schedules/${spec.id})`, { scheduleId: spec.id });
    this.d.log.info({ scheduleId: made.id, owner: made.owner, cron: made.cron, everyMs: made.everyMs, paused: made.paused }, 'schedule created');
    this.d.changed();
    return made;
  }

  /**
   * Change a schedule. A new rule (cron, every, time zone) or jitter starts from the first tick
   * after now; other changes keep the tick it waits for.
   */
  async update(id: string, patch: SchedulePatch, principal: Principal): Promise<ScheduleRecord> {
    this.mayManage(principal);
    return this.change(id, principal, async (s) => {
      const fields = scheduleFields(patch, s);
      if (patch.job !== undefined) await this.checkJob(fields, principal);
      const change: ScheduleChange = { ...fields };
      const retimed = fields.cron !== s.cron || fields.everyMs !== s.everyMs || fields.timezone !== s.timezone || fields.jitterMs !== s.jitterMs;
      const paused = patch.paused ?? s.paused;
      if (patch.paused !== undefined) change.paused = patch.paused;
      if (patch.paused === false) change.pauseNote = null;
      if (retimed || (s.paused && !paused)) Object.assign(change, this.restart(s.id, fields));
      return change;
    }, 'schedule changed');
  }

  /** Pause: no tick fires until it is resumed. */
  async pause(id: string, note: string | undefined, principal: Principal): Promise<ScheduleRecord> {
    this.mayManage(principal);
    return this.change(id, principal, async () => ({ paused: true, pauseNote: note ?? null }), 'schedule paused');
  }

  /** Resume from the first tick after now: ticks that came while it was paused are not caught up. */
  async resume(id: string, principal: Principal): Promise<ScheduleRecord> {
    this.mayManage(principal);
    return this.change(id, principal, async (s) => (s.paused ? { paused: false, pauseNote: null, ...this.restart(s.id, s) } : {}), 'schedule resumed');
  }

  /** Delete a schedule and its run history; the jobs it fired stay. */
  async delete(id: string, principal: Principal): Promise<void> {
    this.mayManage(principal);
    await this.visible(id, principal);
    if (!(await this.d.store.scheduleDelete(id))) throw new CrowdComputeError('CC_ERR_SCHEDULE_NOT_FOUND', `schedule ${id} does not exist`, { scheduleId: id });
    this.d.log.info({ scheduleId: id }, 'schedule deleted');
    this.d.changed();
  }

  /**
   * One run now, outside the ticks (the next tick stays as it was). Overlap: cancel_previous
   * cancels the previous run's job; skip and buffer_one do not hold an explicit trigger back.
   */
  async trigger(id: string, principal: Principal): Promise<{ jobId: string; fireAt: number }> {
    this.mayManage(principal);
    const s = await this.visible(id, principal);
    const fireAt = this.d.clock();
    const spec = firedSpec(s, fireAt, triggerKey(s.id, fireAt));
    const job = this.d.jobs.buildFired(spec, s.owner, Date.now());
    const [outcome] = await fireTraced(this.d.store, [{
      scheduleId: s.id, guard: null, runs: [{ tickAt: fireAt, firedAt: fireAt, reason: 'trigger', outcome: 'fired', job }], setsLastJob: true, now: fireAt,
    }]);
    if (!outcome.applied) {
      if (outcome.error) throw outcome.error;
      throw new CrowdComputeError('CC_ERR_SCHEDULE_NOT_FOUND', `schedule ${id} does not exist`, { scheduleId: id });
    }
    const fired = outcome.jobs[0];
    if (!fired.deduplicated) this.d.jobs.announceAccepted(spec, job, fired.job);
    if (s.overlap === 'cancel_previous' && s.lastJobId && s.lastJobState && !TERMINAL_JOB_STATES.has(s.lastJobState)) {
      await this.d.jobs.cancelBySystem(s.lastJobId, `schedule ${s.id} was triggered (overlap cancel_previous)`);
    }
    this.d.log.info({ scheduleId: s.id, jobId: fired.job.id }, 'schedule triggered');
    return { jobId: fired.job.id, fireAt };
  }

  /**
   * Fire every tick t with from <= t < to as its own job (at most 1,000), overlap aside. A tick
   * that fired already is not fired again: its job is found by its idempotency key.
   */
  async backfill(id: string, range: { from: number | string; to: number | string }, principal: Principal): Promise<{ fired: number; skipped: number; jobIds: string[] }> {
    this.mayManage(principal);
    const s = await this.visible(id, principal);
    const from = timeMs(range.from);
    const to = timeMs(range.to);
    const now = this.d.clock();
    if (!(from < to)) throw new CrowdComputeError('CC_ERR_INVALID_SCHEDULE', `backfill: from (${new Date(from).toISOString()}) must be before to (${new Date(to).toISOString()})`, { field: 'from' });
    if (to > now) throw new CrowdComputeError('CC_ERR_INVALID_SCHEDULE', `backfill: to (${new Date(to).toISOString()}) is in the future; a backfill fires past ticks (up to now, ${new Date(now).toISOString()})`, { field: 'to' });
    const max = SCHEDULE_LIMITS.maxBackfillTicks;
    const { ticks, more } = ticksBetween(ruleOf(s), from, to, max);
    if (more) throw new CrowdComputeError('CC_ERR_INVALID_SCHEDULE', `backfill: the range has more than ${max} ticks, the most one request fires; split it`, { field: 'to', limit: max });
    if (ticks.length === 0) return { fired: 0, skipped: 0, jobIds: [] };
    const specs = ticks.map((tick) => firedSpec(s, tick, tickKey(s.id, tick)));
    const jobs = specs.map((spec) => this.d.jobs.buildFired(spec, s.owner, Date.now()));
    const params: ScheduleFireParams = {
      scheduleId: s.id, guard: null, setsLastJob: false, now,
      runs: ticks.map((tick, i) => ({ tickAt: tick, firedAt: now, reason: 'backfill', outcome: 'fired', job: jobs[i] })),
    };
    const [outcome] = await fireTraced(this.d.store, [params]);
    if (!outcome.applied) {
      if (outcome.error) throw outcome.error;
      throw new CrowdComputeError('CC_ERR_SCHEDULE_NOT_FOUND', `schedule ${id} does not exist`, { scheduleId: id });
    }
    let fired = 0;
    outcome.jobs.forEach((j, i) => {
      if (j.deduplicated) return;
      fired++;
      this.d.jobs.announceAccepted(specs[i], jobs[i], j.job);
    });
    this.d.log.info({ scheduleId: s.id, from: new Date(from).toISOString(), to: new Date(to).toISOString(), fired, skipped: ticks.length - fired }, 'schedule backfilled');
    return { fired, skipped: ticks.length - fired, jobIds: outcome.jobs.map((j) => j.job.id) };
  }

  /** The next tick after now, and when it is due. */
  private restart(id: string, fields: Pick<ScheduleFields, 'cron' | 'everyMs' | 'timezone' | 'jitterMs'>): Pick<ScheduleChange, 'nextTick' | 'dueAt'> {
    const next = nextTick(ruleOf(fields), this.d.clock());
    return { nextTick: next, dueAt: next === null ? null : dueAt({ id, jitterMs: fields.jitterMs }, next) };
  }

  /** A change guarded by the version read: a fire in between makes it read and try again. */
  private async change(id: string, principal: Principal, make: (s: ScheduleRecord) => Promise<ScheduleChange>, what: string): Promise<ScheduleRecord> {
    for (let attempt = 1; ; attempt++) {
      const s = await this.visible(id, principal);
      const change = await make(s);
      const out = await this.d.store.scheduleUpdate({ id, change, expectVersion: s.version, now: Date.now() });
      if (out) {
        this.d.log.info({ scheduleId: id, paused: out.paused }, what);
        this.d.changed();
        return out;
      }
      if (attempt >= 5) throw new CrowdComputeError('CC_ERR_STORE_UNAVAILABLE', `schedule ${id} kept changing while this change was made; try again`, { scheduleId: id });
    }
  }

  /** A schedule's job is checked as a submission would be; its problems are the schedule's. */
  private async checkJob(fields: ScheduleFields, principal: Principal): Promise<void> {
    try {
      await this.d.jobs.checkSpec(fields.job, principal);
    } catch (err) {
      if (err instanceof CrowdComputeError && (err.code === 'CC_ERR_INVALID_JOB' || err.code === 'CC_ERR_PAYLOAD_TOO_LARGE')) {
        throw new CrowdComputeError('CC_ERR_INVALID_SCHEDULE', `job: ${err.message.replace(/^CC_ERR_[A-Z_]+: /, '')}`, { field: 'job' });
      }
      throw err;
    }
  }

  private mayManage(principal: Principal): void {
    if (maySubmit(principal)) return;
    requireScope(principal, 'submit', 'managing schedules');
  }
}
