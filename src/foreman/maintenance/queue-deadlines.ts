import type { Logger } from 'pino';
import type { Store } from '../../store/store.ts';
import type { ForemanMetrics } from '../shared/foreman-metrics.ts';
import type { JobEvents } from '../shared/job-events.ts';
import { PeriodicService } from '../shared/service.ts';
import { PoisonQuarantine, sweepIsolating } from './sweep-isolation.ts';

/**
 * Fails the tasks that no worker started before their job's queue deadline (`queueTimeoutMs`),
 * with CC_ERR_NO_WORKER: work nobody can run (no connected worker serves its type, or none
 * has room) ends with an error that says so instead of waiting for ever. Tasks already started
 * keep running under their own timeoutMs.
 */
export class QueueDeadlines extends PeriodicService {
  readonly name = 'queue deadlines';
  private readonly deps: { store: Store; events: JobEvents; metrics: ForemanMetrics };
  private readonly quarantine = new PoisonQuarantine();

  constructor(deps: QueueDeadlines['deps'], intervalMs: number, log: Logger) {
    super(intervalMs, log);
    this.deps = deps;
  }

  protected async runOnce(now: number): Promise<void> {
    const { store, events, metrics } = this.deps;
    const { values, error } = await sweepIsolating({ loop: this.name, sweep: 'queue_deadlines', store, now, limit: 100, quarantine: this.quarantine, tracker: this.tracker, log: this.log,
      run: (filter) => store.taskExpireQueued({ now, limit: 100, ...filter }) });
    for (const r of values) {
      if (r.failed === 0) continue;
      metrics.tasksNeverStarted.inc(r.failed);
      this.log.warn({ failed: r.failed, jobIds: r.jobs.slice(0, 5).map((j) => j.jobId) }, 'tasks failed with CC_ERR_NO_WORKER: no worker started them before their queue deadline');
      events.publish(r.jobs);
    }
    if (error !== undefined) throw error;
  }
}
