import type { Logger } from 'pino';
import type { Store } from '../../store/store.ts';
import type { ForemanMetrics } from '../foreman-metrics.ts';
import { PeriodicService } from '../service.ts';

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

  constructor(deps: Pruner['deps'], options: PrunerOptions, log: Logger) {
    super(options.intervalMs, log);
    this.deps = deps;
    this.options = options;
  }

  protected async runOnce(now: number): Promise<void> {
    const { store, metrics } = this.deps;
    let jobs = 0;
    let tasks = 0;
    for (let step = 0; step < (this.options.maxSteps ?? 50); step++) {
      const r = await store.jobPrune({ now, maxTasks: this.options.batchTasks ?? 1_000, forgetPrunedBefore: now - this.options.retentionMs });
      jobs += r.jobs;
      tasks += r.tasks;
      if (!r.more) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    metrics.prunedJobs.inc(jobs);
    metrics.prunedTasks.inc(tasks);
    if (jobs > 0) this.log.debug({ jobs, tasks }, 'pruned finished jobs past their retention');
  }
}
