import type { StatsView } from '../../protocol/index.ts';
import { seesEveryOwner, type Principal } from '../../core/access.ts';
import type { ShareView } from '../shared/share-view.ts';
import { rateLimitView } from './rate-limit-routes.ts';
import type { Store } from '../../store/store.ts';
import type { WorkerRegistry } from '../workers/worker-registry.ts';

/** Jobs the sharing lists, at most: for an admin, of everyone; for another key, of its own. */
const SHARING_JOBS = 100;

type SharingView = StatsView['sharing'];
type OwnerRow = SharingView['owners'][number];
type JobRow = SharingView['jobs'][number];
type Others = NonNullable<SharingView['others']>;

/** What GET /api/stats and the dashboard's live feed read. */
export interface StatsDeps {
  store: Store;
  registry: WorkerRegistry;
  startedAt: number;
  retentionMs: number;
  sharing: () => ShareView;
}

/**
 * The statistics as read once for any number of viewers: the counts (every owner's, summed:
 * they name no job or key), and the sharing indexed by owner, so that narrowing it to one
 * viewer ({@link statsFor}) costs its own jobs, not everyone's.
 * @internal
 */
export interface StatsPicture {
  counts: Omit<StatsView, 'sharing'>;
  /** Every owner and the first jobs, as an admin sees them. */
  all: SharingView;
  /** Each owner's row and jobs (largest running first). */
  byOwner: ReadonlyMap<string | null, { row: OwnerRow; jobs: JobRow[] }>;
  /** Every owner together: what the others of a viewer are, once its own are taken away. */
  totals: Others;
  rateLimits: SharingView['rate_limits'];
}

/** GET /api/stats: the statistics as `principal` may see them. */
export async function statsView(deps: StatsDeps, principal: Principal): Promise<StatsView> {
  return statsFor(await readStats(deps), principal);
}

/** The store's counts, this foreman's connected workers and the scheduler's sharing, read once. */
export async function readStats(deps: StatsDeps): Promise<StatsPicture> {
  const s = await deps.store.stats();
  const live = deps.registry.snapshot();
  const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
  return {
    counts: {
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
    },
    ...sharingPicture(deps.sharing()),
  };
}

/**
 * The statistics as `principal` may see them. Admin and --insecure: everything. Any other key:
 * its own owner row and jobs, and every other owner summed in `sharing.others`, with no ids.
 */
export function statsFor(picture: StatsPicture, principal: Principal): StatsView {
  if (seesEveryOwner(principal)) return { ...picture.counts, sharing: picture.all };
  const own = principal.kind === 'key' ? picture.byOwner.get(principal.keyId) : undefined;
  const t = picture.totals;
  const others: Others = own
    ? { owners: t.owners - 1, jobs: t.jobs - own.row.jobs, running: t.running - own.row.running, waiting: t.waiting - own.row.waiting, share: round(Math.max(0, t.share - own.row.share)) }
    : { ...t };
  return {
    ...picture.counts,
    sharing: { owners: own ? [own.row] : [], jobs: own ? own.jobs.slice(0, SHARING_JOBS) : [], others, rate_limits: picture.rateLimits },
  };
}

/** The scheduler's sharing in the REST API's shape, indexed by owner. @internal */
export function sharingPicture(v: ShareView): Omit<StatsPicture, 'counts'> {
  const owners = v.owners.map((o): OwnerRow => ({ owner: o.owner, running: o.running, waiting: o.waiting, share: round(o.share), max_concurrency: o.maxConcurrency, jobs: o.jobs }));
  const jobs = v.jobs.map((j): JobRow => ({ job_id: j.jobId, owner: j.owner, priority: j.priority as JobRow['priority'], weight: j.weight,
    max_concurrency: j.maxConcurrency, running: j.running, waiting: j.waiting, share: round(j.share) }));
  const byOwner = new Map<string | null, { row: OwnerRow; jobs: JobRow[] }>(owners.map((row) => [row.owner, { row, jobs: [] }]));
  // The ledger's jobs come largest running first: each owner's list keeps that order.
  for (const j of jobs) byOwner.get(j.owner)?.jobs.push(j);
  const rateLimits = v.rateLimits.map((l) => ({ ...rateLimitView(l), available: l.available }));
  const totals: Others = { owners: 0, jobs: 0, running: 0, waiting: 0, share: 0 };
  for (const o of v.owners) {
    totals.owners++;
    totals.jobs += o.jobs;
    totals.running += o.running;
    totals.waiting += o.waiting;
    totals.share += o.share;
  }
  totals.share = round(totals.share);
  return { all: { owners, jobs: jobs.slice(0, SHARING_JOBS), others: null, rate_limits: rateLimits }, byOwner, totals, rateLimits };
}

function round(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}
