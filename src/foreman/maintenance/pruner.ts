import type { Logger } from 'pino';
import type { Store } from '../../store/store.ts';
import type { ForemanMetrics } from '../shared/foreman-metrics.ts';
import { PeriodicService } from '../shared/service.ts';
import { PoisonQuarantine, sweepIsolating } from './sweep-isolation.ts';

/** How the pruner paces itself. */
export interface PrunerOptions {
  intervalMs: number;
  /** The foremen's retention: tombstones of pruned jobs are kept as long again. */
  retentionMs: number;
  /** Tasks deleted per step (one short transaction). Default 1,000. */
  batchTasks?: number;
  /** Steps per round at most, the event loop free between them. Default 50. */
  maxSteps?: number;
}

/**
 * Deletes finished jobs past their retention, with their tasks, results and attempt history, so
 * that a foreman left running does not fill its disk. It works in steps of a bounded number of
 * tasks, each one short transaction, and lets the event loop run between steps, so dispatch and
 * result commits never wait long behind it; a round ends when nothing more is due (or after
 * `maxSteps`, the rest waiting for the next round). On SQLite the freed pages are reused by new
 * rows, so under a steady load the file stops growing.
 */
export class Pruner extends PeriodicService {
  readonly name = 'pruner';
  private readonly deps: { store: Store; metrics: ForemanMetrics };
  private readonly options: PrunerOptions;
  private readonly quarantine = new PoisonQuarantine();

  constructor(deps: Pruner['deps'], options: PrunerOptions, log: Logger) {
    super(options.intervalMs, log);
    this.deps = deps;
    this.options = options;
  }

  protected async runOnce(now: number): Promise<void> {
    const { store, metrics } = this.deps;
    let jobs = 0;
    let tasks = 0;
    const maxTasks = this.options.batchTasks ?? 1_000;
    let error: unknown;
    for (let step = 0; step < (this.options.maxSteps ?? 50) && error === undefined; step++) {
      // A step kept to a few jobs (finding one that fails) leaves the tombstones to a whole step.
      const r = await sweepIsolating({ loop: this.name, sweep: 'prune', store, now, limit: 50, quarantine: this.quarantine, tracker: this.tracker, log: this.log,
        run: (filter) => store.jobPrune({ now, maxTasks, ...(filter.only ? {} : { forgetPrunedBefore: now - this.options.retentionMs }), ...filter }) });
      error = r.error;
      for (const v of r.values) { jobs += v.jobs; tasks += v.tasks; }
      if (!r.values.some((v) => v.more)) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    metrics.prunedJobs.inc(jobs);
    metrics.prunedTasks.inc(tasks);
    if (jobs > 0) this.log.debug({ jobs, tasks }, 'pruned finished jobs past their retention');
    if (error !== undefined) throw error;
  }
}
