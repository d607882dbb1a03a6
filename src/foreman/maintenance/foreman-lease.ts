import type { Logger } from 'pino';
import type { Store } from '../../store/store.ts';
import { PeriodicService } from '../shared/service.ts';
import type { StoreHealth } from '../shared/store-health.ts';
import type { WorkerRegistry } from '../workers/worker-registry.ts';

/**
 * The shortest lease a foreman holds, whatever its --lease-ttl: a foreman's lease is renewed a
 * few times over its length, and one short enough to lapse in a pause of the event loop would
 * have its workers shown offline (until its next renewal) for nothing.
 */
export const FOREMAN_LEASE_MIN_MS = 10_000;

/** How this foreman's lease is held. */
export interface ForemanLeaseOptions {
  foremanId: string;
  /** How long a lease runs without a renewal; it is renewed every third of that. */
  leaseMs: number;
}

/**
 * This foreman's lease in the store, and the reaping of the leases of foremen gone: how a
 * foreman that died without a word (SIGKILL, a lost machine) stops having its workers shown
 * online in the store (GET /api/workers, `crowdcompute workers`, the dashboard). Its tasks are
 * already taken back by their own leases (see LeaseReaper); this is the workers' rows.
 *
 * {@link ForemanLease.take} runs before the foreman serves: the lease is taken, workers an
 * earlier run under this id left online go offline, and the leases that ran out are reaped (on
 * SQLite every other foreman is known gone then: see Store.foremanLeaseTake). Then every third
 * of a lease the lease is renewed and lapsed ones are reaped, by every foreman of the database.
 * A foreman reaped while it lived (paused longer than its lease, cut off from the database)
 * learns it at its next renewal and records its connected workers online again.
 */
export class ForemanLease extends PeriodicService {
  readonly name = 'foreman lease';
  private readonly deps: { store: Store; registry: WorkerRegistry; health: StoreHealth };
  private readonly options: ForemanLeaseOptions;
  private taken = false;

  constructor(deps: ForemanLease['deps'], options: ForemanLeaseOptions, log: Logger) {
    super(Math.max(1, Math.floor(options.leaseMs / 3)), log);
    this.deps = deps;
    this.options = options;
  }

  /** Take this foreman's lease and reap lapsed ones; before the foreman accepts a worker. */
  async take(now = Date.now()): Promise<void> {
    const { foremanId, leaseMs } = this.options;
    const earlier = await this.deps.store.foremanLeaseTake({ foremanId, now, until: now + leaseMs });
    this.taken = true;
    if (earlier > 0) this.log.info({ workers: earlier }, `workers an earlier run of foreman ${foremanId} left recorded online were marked offline`);
    await this.reap(now);
  }

  protected async runOnce(now: number): Promise<void> {
    const { store, registry, health } = this.deps;
    if (!(await store.foremanLeaseRenew({ foremanId: this.options.foremanId, until: now + this.options.leaseMs }))) {
      const again = await registry.recordOnlineAgain();
      this.log.warn({ workers: again }, 'this foreman\'s lease had run out (a pause, or the database out of reach) and another foreman took it for gone; its connected workers are recorded online again');
    }
    // After an outage of the store no foreman could renew: the others get a lease's time to do
    // so before any of them is taken for gone.
    if (health.state === 'ok' && now >= health.availableSince + this.options.leaseMs) await this.reap(now);
  }

  private async reap(now: number): Promise<void> {
    const reaped = await this.deps.store.foremanReapLapsed({ now });
    if (reaped.workers > 0 || reaped.foremen.length > 0) {
      this.log.warn({ foremen: reaped.foremen.slice(0, 10), workers: reaped.workers },
        `workers of foremen gone (their lease ran out) marked offline: ${reaped.workers}`);
    }
  }

  /** Stop renewing, and end the lease: the workers still recorded online here go offline. */
  override async stop(): Promise<void> {
    await super.stop();
    if (!this.taken) return;
    this.taken = false;
    try {
      await this.deps.store.foremanLeaseEnd({ foremanId: this.options.foremanId, now: Date.now() });
    } catch (err) {
      // Another foreman reaps it once it runs out.
      this.log.warn({ err: (err as Error).message }, 'could not end this foreman\'s lease in the store; it runs out by itself');
    }
  }
}
