import type { Logger } from 'pino';
import { PeriodicService } from '../service.ts';
import type { WorkerRegistry } from '../workers/worker-registry.ts';

/**
 * Finds zombies: workers that heartbeat but hold a task past its deadline plus a lease TTL
 * (their own timeout should have fired by then). They lose the task: it is requeued and the
 * worker told to stop it.
 */
export class ZombieReaper extends PeriodicService {
  readonly name = 'zombie reaper';
  private readonly registry: WorkerRegistry;

  constructor(registry: WorkerRegistry, intervalMs: number, log: Logger) {
    super(intervalMs, log);
    this.registry = registry;
  }

  protected runOnce(now: number): Promise<void> {
    return this.registry.revokeOverdue(now);
  }
}
