import type { Logger } from 'pino';
import type { Store } from '../../store/store.ts';
import { isStoreOutage } from '../../store/store-errors.ts';
import type { LoopTracker } from '../shared/loop-health.ts';
import type { ForemanMetrics } from '../shared/foreman-metrics.ts';
import type { Service } from '../shared/service.ts';

/** Most tasks released in one statement; a larger backlog is released in several, back to back. */
const RELEASE_BATCH = 2_000;
/** The longest a timer is set for: the next release is read again at least this often. */
const MAX_TIMER_MS = 60_000;

/** How the releaser paces itself. */
export interface TaskReleaserOptions {
  /**
   * How often the next release time is read again even when nothing said it changed: a
   * backstop for a notification lost between foremen, or a store that was out.
   */
  recheckMs: number;
  /** The foreman's clock (epoch ms); injected by tests. */
  now: () => number;
}

/**
 * Moves delayed tasks (`runAt` / `delay`) from `scheduled` to the queue when their time comes.
 * One timer, set to the earliest release the store holds: nothing polls per task, and a foreman
 * that only waits does nothing until then. Submissions here say when their tasks are due
 * ({@link TaskReleaser.dueAt}); other foremen's submissions reach it through the store's
 * notifications ({@link TaskReleaser.lookAgain}) and, should one be lost, the recheck.
 *
 * Which foreman releases a task does not matter: the release is a guarded update, so with
 * several foremen each task is released once, by whichever is alive when it is due. A task's
 * time is kept in the store, so a restart loses nothing: the next foreman to start reads it.
 */
export class TaskReleaser implements Service {
  readonly name = 'task releaser';
  private readonly deps: { store: Store; metrics: ForemanMetrics; log: Logger; workAvailable: () => void; tracker?: LoopTracker };
  private readonly options: TaskReleaserOptions;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private recheck: ReturnType<typeof setInterval> | null = null;
  /** When the timer fires (epoch ms); Infinity when none is set. */
  private armedFor = Infinity;
  private running: Promise<void> | null = null;
  /** A look was asked for while one ran: run once more when it ends. */
  private again = false;
  private state: 'new' | 'running' | 'stopped' = 'new';

  constructor(deps: TaskReleaser['deps'], options: TaskReleaserOptions) {
    this.deps = deps;
    this.options = options;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'running';
    this.recheck = setInterval(() => this.lookAgain(), this.options.recheckMs);
    this.recheck.unref();
    await this.lookAgain();
  }

  /** Tasks were stored that are due at `at`: make sure the timer fires by then. */
  dueAt(at: number): void {
    if (this.state !== 'running' || at >= this.armedFor) return;
    this.arm(at);
  }

  /** Release what is due now and read the next release time again (another foreman's submission, a recheck, a test). */
  lookAgain(): Promise<void> {
    if (this.state !== 'running') return Promise.resolve();
    if (this.running) { this.again = true; return this.running; }
    this.running = this.releaseDue().finally(() => {
      this.running = null;
      if (this.again) { this.again = false; void this.lookAgain(); }
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    if (this.timer) clearTimeout(this.timer);
    if (this.recheck) clearInterval(this.recheck);
    this.timer = null;
    this.recheck = null;
    await this.running;
  }

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.armedFor = at;
    const wait = Math.min(MAX_TIMER_MS, Math.max(0, at - this.options.now()));
    this.timer = setTimeout(() => { this.timer = null; this.armedFor = Infinity; void this.lookAgain(); }, wait);
  }

  private async releaseDue(): Promise<void> {
    const { store, metrics, log, workAvailable, tracker } = this.deps;
    tracker?.began();
    try {
      for (;;) {
        const now = this.options.now();
        const r = await store.taskReleaseDue({ now, limit: RELEASE_BATCH, wallNow: Date.now() });
        if (r.released > 0) {
          metrics.tasksReleased.inc(r.released);
          workAvailable();
          log.debug({ released: r.released, jobIds: r.jobIds.slice(0, 5) }, 'delayed tasks released to the queue');
        }
        if (r.released < RELEASE_BATCH || this.state !== 'running') break;
      }
      const next = await store.taskNextRelease();
      if (this.state === 'running' && next !== null && next < this.armedFor) this.arm(next);
      tracker?.succeeded();
    } catch (err) {
      tracker?.failed(err);
      // The store is out (logged once by its health tracker) or a statement failed: try again
      // soon rather than at the next recheck, so that an outage delays releases only by itself.
      log[isStoreOutage(err) ? 'debug' : 'error']({ err }, 'could not release delayed tasks; trying again shortly');
      if (this.state === 'running') this.arm(this.options.now() + Math.min(1_000, this.options.recheckMs));
    }
  }
}
