import type { StatsView } from '../../protocol/index.ts';
import type { ShareView } from '../dispatch/share-ledger.ts';
import { rateLimitView } from './rate-limit-routes.ts';
import type { Store } from '../../store/store.ts';
import type { WorkerRegistry } from '../workers/worker-registry.ts';

/** GET /api/stats, and the dashboard's live cards: the store's counts and this foreman's connected workers. */
export async function statsView(deps: { store: Store; registry: WorkerRegistry; startedAt: number; retentionMs: number; sharing: () => ShareView }): Promise<StatsView> {
  const s = await deps.store.stats();
  const live = deps.registry.snapshot();
  const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
  return {
    connected_workers: live.connected,
    total_capacity: live.capacity,
    running_tasks: live.running,
    total_jobs: total(s.jobs),
    active_jobs: s.jobs.queued + s.jobs.running,
    completed_jobs: s.jobs.completed,
    failed_jobs: s.jobs.failed,
    cancelled_jobs: s.jobs.cancelled,
    total_tasks: total(s.tasks),
    queued_tasks: s.tasks.queued,
    completed_tasks: s.tasks.completed,
    failed_tasks: s.tasks.failed,
    jobs: s.jobs,
    tasks: s.tasks,
    workers: s.workers,
    uptime_seconds: Math.round((Date.now() - deps.startedAt) / 1000),
    retention: {
      default_seconds: deps.retentionMs / 1000,
      retained_jobs: s.jobs.completed + s.jobs.failed + s.jobs.cancelled,
      retained_tasks: s.tasks.completed + s.tasks.failed + s.tasks.cancelled,
      pruned_jobs: s.pruned.jobs,
      pruned_tasks: s.pruned.tasks,
      storage_bytes: s.storageBytes,
    },
    sharing: sharingView(deps.sharing()),
  };
}

/** Running tasks against fair shares, in the REST API's shape. */
function sharingView(v: ShareView): StatsView['sharing'] {
  return {
    owners: v.owners.map((o) => ({ owner: o.owner, running: o.running, share: round(o.share), max_concurrency: o.maxConcurrency, jobs: o.jobs })),
    jobs: v.jobs.map((j) => ({ job_id: j.jobId, owner: j.owner, priority: j.priority as StatsView['sharing']['jobs'][number]['priority'], weight: j.weight,
      max_concurrency: j.maxConcurrency, running: j.running, waiting: j.waiting, share: round(j.share) })),
    rate_limits: v.rateLimits.map((l) => ({ ...rateLimitView(l), available: l.available })),
  };
}

function round(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}
