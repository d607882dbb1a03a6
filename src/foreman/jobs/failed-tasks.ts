import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from 'pino';
import { listingOwner, unauthenticated, type Principal } from '../../core/access.ts';
import type { FailedTaskFilter, FailedTaskGroup, Store } from '../../store/store.ts';
import type { JobService } from './job-service.ts';

/** Failed tasks a bulk retry reads per store round. */
export const RETRY_BATCH = 500;

/**
 * Tasks of one job requeued per transaction. On SQLite a transaction runs on the event loop's
 * own thread, and requeueing a task rewrites its row (its error goes): a hundred at a time keeps
 * each step short, and the loop runs between steps.
 */
export const RETRY_STEP = 100;

/** What a bulk retry did. */
export interface FailedRetryOutcome {
  requeued: number;
  jobIds: string[];
  /** More tasks matched than the call's limit. */
  more: boolean;
}

/**
 * The dead letters: tasks that failed for good, grouped by type and error, and retried in
 * bulk. A key sees and retries its own jobs' tasks; admin every owner's. A retry reuses the
 * job retry (JobService.requeued), so a finished job runs again, its results keep their
 * argument order, and each task's result is recorded once (the attempt fences it).
 */
export class FailedTasks {
  private readonly store: Store;
  private readonly jobs: JobService;
  private readonly log: Logger;

  constructor(deps: { store: Store; jobs: JobService; log: Logger }) {
    this.store = deps.store;
    this.jobs = deps.jobs;
    this.log = deps.log;
  }

  /** The principal's failed tasks, grouped, a page of groups. */
  async list(filter: FailedTaskFilter, page: { limit: number; offset: number }, principal: Principal): Promise<FailedTaskGroup[]> {
    return this.store.taskFailedGroups({ ...this.scoped(filter, principal), ...page });
  }

  /**
   * Requeue up to `limit` of the principal's failed tasks that match, walking them in storage
   * order a batch at a time, in short transactions (a job's tasks, at most RETRY_STEP of them),
   * and letting the event loop run after each (on SQLite the store works on the loop's own thread).
   */
  async retry(filter: FailedTaskFilter, limit: number, principal: Principal): Promise<FailedRetryOutcome> {
    this.jobs.mayCancel(principal, 'retrying failed tasks');
    const scoped = this.scoped(filter, principal);
    const jobIds = new Set<string>();
    let requeued = 0;
    let afterSeq = 0;
    let more = false;
    for (;;) {
      const want = Math.min(RETRY_BATCH, limit - requeued);
      // One more than wanted tells whether the limit leaves some behind.
      const page = await this.store.taskFailedPage({ ...scoped, afterSeq, limit: want + 1 });
      const take = page.slice(0, want);
      const byJob = new Map<string, string[]>();
      for (const t of take) byJob.set(t.jobId, [...(byJob.get(t.jobId) ?? []), t.taskId]);
      for (const [jobId, ids] of byJob) {
        for (let i = 0; i < ids.length; i += RETRY_STEP) {
          const res = await this.store.jobRetry({ jobId, taskIds: ids.slice(i, i + RETRY_STEP), now: Date.now() });
          if (res && res.retried > 0) {
            this.jobs.requeued(res);
            requeued += res.retried;
            jobIds.add(jobId);
          }
          await yieldToLoop();
        }
      }
      if (take.length > 0) afterSeq = take[take.length - 1].seq;
      if (page.length <= want) break;
      if (requeued >= limit) { more = true; break; }
    }
    if (requeued > 0) this.log.info({ requeued, jobs: jobIds.size, filter: { ...filter, taskIds: filter.taskIds?.length } }, 'failed tasks put back in the queue in bulk');
    return { requeued, jobIds: [...jobIds], more };
  }

  private scoped(filter: FailedTaskFilter, principal: Principal): FailedTaskFilter {
    if (principal.kind === 'anonymous') throw unauthenticated();
    const owner = listingOwner(principal);
    return { ...filter, ...(owner !== undefined ? { owner: owner ?? '' } : {}) };
  }
}
