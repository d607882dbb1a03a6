import type { Logger } from 'pino';
import { describeAmount } from '../../protocol/index.ts';
import type { JobDeadlinePassed, JobOpenExpiry, Store } from '../../store/store.ts';
import { isStoreOutage } from '../../store/store-errors.ts';
import type { JobEvents } from '../shared/job-events.ts';
import type { LoopHealth, LoopTracker } from '../shared/loop-health.ts';
import type { Service } from '../shared/service.ts';
import type { WorkerRegistry } from '../workers/worker-registry.ts';
import { PoisonQuarantine, sweepIsolating } from './sweep-isolation.ts';

/** How the expiry timer is paced. */
export interface JobExpiryOptions {
  /**
   * The longest the timer sleeps: a round runs at least this often, to find times set through
   * another foreman of the same database (whose own timer normally handles them), or missed.
   */
  safetySweepMs: number;
  /** Jobs closed or failed per transaction. Default 100. */
  batch?: number;
  /** The time now (tests may set it). Default Date.now. */
  clock?: () => number;
}

/** The coarse safety sweep: long enough to cost nothing when idle, short enough that a missed time is not missed for long. */
export const EXPIRY_SAFETY_SWEEP_MS = 30_000;
/** A round that changed nothing while something is due (items set aside as poison) waits at least this long before the next. */
const IDLE_RETRY_MS = 1_000;

/**
 * Closes open jobs that got no part and no seal for their open timeout (sealed or cancelled, as
 * each chose) and fails the unfinished tasks of jobs past their deadline (CC_ERR_DEADLINE),
 * telling the workers of running ones to stop.
 *
 * Instead of polling, one timer is set to the next time due, read from the store after every
 * round (`jobNextExpiry`, the front of two partial indexes), and brought forward when a job is
 * submitted or appended with a sooner time (`soon`). Another foreman's submissions are its own
 * timer's; the timer never sleeps longer than `safetySweepMs`, so that a time nobody's timer
 * holds (its foreman stopped) is still met within that.
 */
export class JobExpiry implements Service {
  readonly name = 'job expiry';
  private readonly deps: { store: Store; registry: WorkerRegistry; events: JobEvents };
  private readonly options: JobExpiryOptions;
  private readonly log: Logger;
  private readonly clock: () => number;
  private readonly quarantine = { open: new PoisonQuarantine(), deadline: new PoisonQuarantine() };
  private tracker: LoopTracker | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** When the timer fires (epoch ms by the clock); null when none is set. */
  private armedAt: number | null = null;
  private current: Promise<void> | null = null;
  /** A time asked for while a round ran: looked at once the round ends. */
  private pending: number | null = null;
  private state: 'new' | 'running' | 'stopped' = 'new';

  constructor(deps: JobExpiry['deps'], options: JobExpiryOptions, log: Logger) {
    this.deps = deps;
    this.options = options;
    this.log = log;
    this.clock = options.clock ?? Date.now;
  }

  /** Report this service's rounds to `loops`. */
  watchedBy(loops: LoopHealth): this {
    this.tracker = loops.track(this.name);
    return this;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'running';
    // Times that passed while no foreman ran are due at once.
    this.arm(this.clock());
  }

  async stop(): Promise<void> {
    this.state = 'stopped';
    this.disarm();
    await this.current;
  }

  /** A job was submitted or appended with an open timeout or a deadline at `at`: wake by then. */
  soon(at: number): void {
    if (this.state !== 'running') return;
    if (this.current) { this.pending = Math.min(this.pending ?? at, at); return; }
    if (this.armedAt === null || at < this.armedAt) this.arm(at);
  }

  /** Run a round now (or wait for the one running). */
  runNow(): Promise<void> {
    if (this.current) return this.current;
    this.disarm();
    this.tracker?.began();
    const round = this.round().then(
      (next) => { this.tracker?.succeeded(); return next; },
      (err: unknown) => {
        this.tracker?.failed(err);
        this.log[isStoreOutage(err) ? 'debug' : 'error']({ err, service: this.name }, `${this.name} failed; it runs again in ${IDLE_RETRY_MS} ms`);
        return this.clock() + IDLE_RETRY_MS;
      });
    this.current = round.then((next) => {
      this.current = null;
      const asked = this.pending;
      this.pending = null;
      if (this.state === 'running') this.arm(asked === null ? next : Math.min(next, asked));
    });
    return this.current;
  }

  private arm(at: number): void {
    this.disarm();
    if (this.state !== 'running') return;
    const now = this.clock();
    const delay = Math.min(Math.max(0, at - now), this.options.safetySweepMs);
    this.armedAt = now + delay;
    this.timer = setTimeout(() => { this.timer = null; this.armedAt = null; void this.runNow(); }, delay);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.armedAt = null;
  }

  /** Everything due now, batch after batch; returns when the next round is due. */
  private async round(): Promise<number> {
    const now = this.clock();
    let changed = 0;
    changed += await this.drain('open_timeouts', now, (filter) => this.deps.store.jobExpireOpen({ now, limit: this.batch, ...filter }), (r) => this.closed(r));
    changed += await this.drain('deadlines', now, (filter) => this.deps.store.jobFailPastDeadline({ now, limit: this.batch, ...filter }), (r) => this.failed(r));
    const next = await this.deps.store.jobNextExpiry();
    const at = next ?? now + this.options.safetySweepMs;
    // Due still, though this round took all it could: what is left was set aside (it fails on its own).
    return at <= this.clock() && changed === 0 ? this.clock() + IDLE_RETRY_MS : at;
  }

  private get batch(): number { return this.options.batch ?? 100; }

  /** Take batches until one is not full; `each` handles every job taken. */
  private async drain<R extends { jobId: string }>(sweep: 'open_timeouts' | 'deadlines', now: number,
    run: (filter: { except?: readonly string[]; only?: readonly string[] }) => Promise<R[]>, each: (r: R) => void): Promise<number> {
    const { store } = this.deps;
    const quarantine = sweep === 'open_timeouts' ? this.quarantine.open : this.quarantine.deadline;
    let taken = 0;
    for (;;) {
      const { values, error } = await sweepIsolating({ loop: this.name, sweep, store, now, limit: this.batch, quarantine, tracker: this.tracker, log: this.log, run });
      let n = 0;
      for (const batch of values) for (const r of batch) { each(r); n++; }
      taken += n;
      if (error !== undefined) throw error;
      if (n < this.batch || this.state !== 'running') return taken;
    }
  }

  private closed(r: JobOpenExpiry): void {
    const { registry, events } = this.deps;
    const why = `no part and no seal for ${describeAmount(r.openTimeoutMs, 'ms')} (its openTimeout)`;
    for (const t of r.running) registry.stopTask(t.workerId, t, `job ${r.jobId} was cancelled: it got ${why}`);
    if (r.action === 'seal') this.log.info({ jobId: r.jobId, openTimeoutMs: r.openTimeoutMs }, `open job ${r.jobId} sealed: it got ${why}; its tasks run to the end`);
    else this.log.warn({ jobId: r.jobId, openTimeoutMs: r.openTimeoutMs, runningStopped: r.running.length }, `open job ${r.jobId} cancelled: it got ${why}`);
    if (r.change) events.publish([r.change]);
  }

  private failed(r: JobDeadlinePassed): void {
    const { registry, events } = this.deps;
    const at = new Date(r.deadline).toISOString();
    for (const t of r.running) registry.stopTask(t.workerId, t, `job ${r.jobId} passed its deadline ${at}`);
    this.log.warn({ jobId: r.jobId, deadline: at, failed: r.failed, runningStopped: r.running.length },
      `job ${r.jobId} passed its deadline ${at}: ${r.failed} unfinished tasks failed with CC_ERR_DEADLINE`);
    if (r.change) events.publish([r.change]);
  }
}
