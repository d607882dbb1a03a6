import type { Logger } from 'pino';
import type { ScheduleRecord, Store } from '../../store/store.ts';
import { isStoreOutage } from '../../store/store-errors.ts';
import type { ForemanMetrics } from '../shared/foreman-metrics.ts';
import type { JobEvents } from '../shared/job-events.ts';
import type { JobService } from '../jobs/job-service.ts';
import type { LoopTracker } from '../shared/loop-health.ts';
import type { Service } from '../shared/service.ts';
import { scheduleStep, type ScheduleStep } from './schedule-steps.ts';
import { fireTraced } from './fire-tracing.ts';

/** How the scheduler runs. */
export interface SchedulerOptions {
  /** What time it is (epoch ms): Date.now, or a test's clock. */
  clock: () => number;
  /** Schedules read and fired in one transaction, at most. */
  batchSize?: number;
  /**
   * The longest the scheduler sleeps without looking at the store: catches what no event told
   * this foreman (a schedule changed through another foreman whose announcement was lost, a
   * buffered tick's job finished elsewhere), and a clock that moved.
   */
  safetyIntervalMs?: number;
  /** A schedule whose step fails on its own is set aside this long; the others go on. */
  setAsideMs?: number;
}

/**
 * Fires the schedules' ticks. One timer, set for the earliest due schedule (and at most the
 * safety interval away); when it rings, the due schedules are read in one query, their steps
 * built (catch-up and overlap policies, the jobs by the submission's code), and written in one
 * transaction, each step guarded by the schedule's version and next tick: with several foremen
 * on one database, a tick that two of them find due fires once, by whichever commits first,
 * and the other's step changes nothing. No foreman leads; each looks.
 */
export class Scheduler implements Service {
  readonly name = 'scheduler';
  private readonly store: Store;
  private readonly jobs: JobService;
  private readonly events: JobEvents;
  private readonly metrics: ForemanMetrics;
  private readonly log: Logger;
  private readonly tracker: LoopTracker | null;
  private readonly clock: () => number;
  private readonly batchSize: number;
  private readonly safetyMs: number;
  private readonly setAsideMs: number;
  private state: 'new' | 'running' | 'stopped' = 'new';
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  /** Schedules whose step failed on their own, until when they are left alone. */
  private readonly setAside = new Map<string, number>();
  /** Jobs that buffered ticks wait for (job id → schedule id). */
  private readonly awaited = new Map<string, string>();
  private unsubscribe: (() => void) | null = null;

  constructor(deps: { store: Store; jobs: JobService; events: JobEvents; metrics: ForemanMetrics; log: Logger; tracker?: LoopTracker }, options: SchedulerOptions) {
    this.store = deps.store;
    this.jobs = deps.jobs;
    this.events = deps.events;
    this.metrics = deps.metrics;
    this.log = deps.log;
    this.tracker = deps.tracker ?? null;
    this.clock = options.clock;
    this.batchSize = options.batchSize ?? 1_000;
    this.safetyMs = options.safetyIntervalMs ?? 2_000;
    this.setAsideMs = options.setAsideMs ?? 60_000;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'running';
    // A buffered tick fires as soon as the job it waits for finishes (here, or heard from another foreman).
    this.unsubscribe = this.events.onChange((change) => {
      if (change.finished && this.awaited.has(change.jobId)) {
        this.awaited.delete(change.jobId);
        void this.lookAgain();
      }
    });
    void this.lookAgain();
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.running;
  }

  /**
   * Look at the store now (a schedule changed, a job finished, a test moved the clock): fire
   * what is due and set the timer again. Resolves when that look is done.
   */
  lookAgain(): Promise<void> {
    if (this.state !== 'running') return Promise.resolve();
    if (this.running) {
      // One look at a time; a call during one makes another right after it.
      this.again = true;
      return this.running.then(() => this.running ?? undefined);
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.tracker?.began();
    this.running = this.look()
      .then(() => this.tracker?.succeeded(), (err: unknown) => {
        this.tracker?.failed(err);
        this.log[isStoreOutage(err) ? 'debug' : 'error']({ err, service: this.name }, `the scheduler could not look at the schedules; it looks again within ${this.safetyMs} ms`);
      })
      .then(() => this.arm())
      .finally(() => {
        this.running = null;
        if (this.again && this.state === 'running') {
          this.again = false;
          void this.lookAgain();
        }
      });
    return this.running;
  }

  /** Fire everything due, a batch at a time. */
  private async look(): Promise<void> {
    for (let rounds = 0; rounds < 100 && this.state === 'running'; rounds++) {
      const now = this.clock();
      for (const [id, until] of this.setAside) if (until <= now) this.setAside.delete(id);
      const due = await this.store.scheduleDue({ now, limit: this.batchSize, except: [...this.setAside.keys()] });
      if (due.length === 0) return;
      await this.fireBatch(due, now);
      if (due.length < this.batchSize) return;
    }
  }

  /**
   * The owners among these whose API key is revoked or gone: their schedules must not fire
   * (a revoked key does nothing more, here as on a socket), so they are paused, saying why.
   */
  private async revokedOwners(due: ScheduleRecord[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const owner of new Set(due.map((s) => s.owner).filter((o): o is string => o !== null))) {
      const key = await this.store.credentialGet(owner);
      if (!key || key.revokedAt !== null) out.add(owner);
    }
    return out;
  }

  /** Build each due schedule's step and write them in one transaction. */
  private async fireBatch(due: ScheduleRecord[], now: number): Promise<void> {
    const steps: { schedule: ScheduleRecord; step: ScheduleStep }[] = [];
    const revoked = await this.revokedOwners(due);
    for (const s of due) {
      if (s.owner !== null && revoked.has(s.owner)) {
        await this.store.scheduleUpdate({ id: s.id, change: { paused: true, pauseNote: `paused by the foreman: the API key ${s.owner} that owns it was revoked` }, now: Date.now() });
        this.log.warn({ scheduleId: s.id, owner: s.owner }, 'schedule paused: the API key that owns it was revoked');
        continue;
      }
      try {
        // Job rows carry the real time (creation, queue deadlines); ticks go by the clock.
        const step = scheduleStep(s, now, (spec, owner) => this.jobs.buildFired(spec, owner, Date.now()));
        if (step) steps.push({ schedule: s, step });
      } catch (err) {
        // Its job no longer passes this foreman's limits, say: this schedule waits, the others fire.
        this.putAside(s.id, now, err);
      }
    }
    if (steps.length === 0) return;
    const outcomes = await fireTraced(this.store, steps.map((x) => x.step.params));
    const cancels: { jobId: string; scheduleId: string }[] = [];
    outcomes.forEach((outcome, i) => {
      const { schedule, step } = steps[i];
      if (!outcome.applied) {
        if (outcome.error) this.putAside(schedule.id, now, outcome.error);
        else this.metrics.scheduleTicks.inc({ outcome: 'lost' }, step.params.runs.length || 1);
        return;
      }
      for (const [outcomeName, n] of Object.entries(step.counts)) if (n > 0) this.metrics.scheduleTicks.inc({ outcome: outcomeName }, n);
      for (const ms of step.lateness) this.metrics.scheduleLateness.observe(ms / 1000);
      for (const fired of outcome.jobs) {
        const spec = step.specs.get(fired.job.id);
        if (!fired.deduplicated && spec) {
          const params = step.params.runs.find((r) => r.job?.job.id === fired.job.id)!.job!;
          this.jobs.announceAccepted(spec, params, fired.job);
        }
        this.log.info({ scheduleId: schedule.id, jobId: fired.job.id, tick: new Date(fired.tickAt).toISOString(), deduplicated: fired.deduplicated }, 'schedule fired');
      }
      if (step.counts.skipped + step.counts.missed + step.counts.buffered > 0) {
        this.log.info({ scheduleId: schedule.id, skipped: step.counts.skipped, missed: step.counts.missed, buffered: step.counts.buffered, previousJobId: schedule.lastJobId }, 'schedule ticks not fired');
      }
      for (const jobId of step.cancels) cancels.push({ jobId, scheduleId: schedule.id });
      const last = outcome.jobs.at(-1)?.job.id ?? schedule.lastJobId;
      if (step.params.advance?.bufferedTick !== null && last) this.awaited.set(last, schedule.id);
    });
    if (this.awaited.size > 100_000) this.awaited.clear();
    for (const c of cancels) {
      await this.jobs.cancelBySystem(c.jobId, `schedule ${c.scheduleId} fired again (overlap cancel_previous)`)
        .catch((err: unknown) => this.log.warn({ err, scheduleId: c.scheduleId, jobId: c.jobId }, 'could not cancel the previous run of a schedule'));
    }
  }

  private putAside(scheduleId: string, now: number, err: unknown): void {
    this.metrics.scheduleTicks.inc({ outcome: 'error' });
    this.setAside.set(scheduleId, now + this.setAsideMs);
    this.log.error({ scheduleId, err }, `schedule ${scheduleId} could not fire; it is left alone for ${Math.round(this.setAsideMs / 1000)} s while the others go on`);
  }

  /** Set the one timer: for the earliest due schedule, at most the safety interval away. */
  private async arm(): Promise<void> {
    if (this.state !== 'running') return;
    let wait = this.safetyMs;
    try {
      const next = await this.store.scheduleNextDue();
      if (next !== null) wait = Math.min(wait, Math.max(0, next - this.clock()));
    } catch {
      // The store is away: the safety interval brings the next look.
    }
    if (this.state !== 'running' || this.timer) return;
    this.timer = setTimeout(() => { this.timer = null; void this.lookAgain(); }, wait);
    this.timer.unref();
  }
}
