import type { Logger } from 'pino';
import { leaseReapingStartsAt } from '../../core/leases.ts';
import type { Store } from '../../store/store.ts';
import type { ForemanMetrics } from '../shared/foreman-metrics.ts';
import type { JobEvents } from '../shared/job-events.ts';
import { PeriodicService } from '../shared/service.ts';
import type { WorkerRegistry } from '../workers/worker-registry.ts';
import type { StoreHealth } from '../shared/store-health.ts';
import { PoisonQuarantine, sweepIsolating } from './sweep-isolation.ts';

/** How the lease reaper is paced. */
export interface LeaseReaperOptions {
  intervalMs: number;
  leaseTtlMs: number;
  maxLostAttempts: number;
  /**
   * When this foreman began serving: reaping waits one lease TTL after it (see core/leases.ts).
   * Default: when the reaper starts, which the foreman does once its port is served.
   */
  startedAt?: number;
  /** Most tasks reaped per round. Default 1000. */
  batch?: number;
}

/**
 * Requeues running tasks whose lease expired in the store: their worker is connected to no
 * foreman (it died while this foreman was down, or it belonged to another foreman that died),
 * or its heartbeats stopped arriving. A task lost too often fails with CC_ERR_WORKER_LOST.
 */
export class LeaseReaper extends PeriodicService {
  readonly name = 'lease reaper';
  private readonly deps: { store: Store; registry: WorkerRegistry; events: JobEvents; metrics: ForemanMetrics; workAvailable: () => void; health: StoreHealth };
  private readonly options: LeaseReaperOptions;
  private startsAt = Infinity;
  private readonly quarantine = new PoisonQuarantine();

  constructor(deps: LeaseReaper['deps'], options: LeaseReaperOptions, log: Logger) {
    super(options.intervalMs, log);
    this.deps = deps;
    this.options = options;
    if (options.startedAt !== undefined) this.startsAt = leaseReapingStartsAt(options.startedAt, options.leaseTtlMs);
  }

  /**
   * The workers' lease TTL to come back counts from here, when the port is served: not from
   * when the foreman began starting, which on a busy machine can take most of a TTL itself
   * (seen: a restarted foreman reaping the leases of a worker still reconnecting).
   */
  override async start(): Promise<void> {
    if (this.options.startedAt === undefined) this.startsAt = leaseReapingStartsAt(Date.now(), this.options.leaseTtlMs);
    await super.start();
  }

  protected async runOnce(now: number): Promise<void> {
    if (now < this.startsAt) return;
    // Leases could not be renewed while the store was out: give workers a lease TTL after it
    // comes back to renew them, as after a restart, before taking anything away.
    const { health } = this.deps;
    if (health.state !== 'ok' || now < leaseReapingStartsAt(health.availableSince, this.options.leaseTtlMs)) return;
    const { store, registry, events, metrics } = this.deps;
    const limit = this.options.batch ?? 1000;
    const { values, error } = await sweepIsolating({ loop: this.name, sweep: 'leases', store, now, limit, quarantine: this.quarantine, tracker: this.tracker, log: this.log,
      run: (filter) => store.taskRequeueExpired({ now, maxLost: this.options.maxLostAttempts, limit, ...filter }) });
    for (const reaped of values) {
      if (reaped.expired.length === 0) continue;
      this.log.warn({ requeued: reaped.requeued.length, failed: reaped.failed.length, taskIds: reaped.expired.slice(0, 5).map((t) => t.taskId) },
        'leases expired; tasks put back in the queue');
      metrics.tasksRequeued.inc(reaped.requeued.length);
      registry.leasesExpired(reaped.expired);
      events.publish(reaped.jobs);
      this.deps.workAvailable();
    }
    if (error !== undefined) throw error;
  }
}
