import type { JobCounts, JobState } from '../protocol/index.ts';

/**
 * A job's state follows from its task counts: it is terminal when every task is, and then
 * `cancelled` if it was cancelled, `failed` if any task failed, else `completed` (for a graph,
 * `failed` first: a failed node cancels the rest).
 * Before that it is `running` once any task has started, else `queued`.
 */
export function deriveJobState(counts: JobCounts, opts: { started: boolean; cancelRequested: boolean; failureWins?: boolean }): JobState {
  const done = counts.completed + counts.failed + counts.cancelled;
  if (done >= counts.total) {
    // A graph whose node failed has failed, though the nodes left were cancelled because of it.
    if (opts.failureWins && counts.failed > 0) return 'failed';
    if (opts.cancelRequested || counts.cancelled > 0) return 'cancelled';
    return counts.failed > 0 ? 'failed' : 'completed';
  }
  return opts.started || done > 0 ? 'running' : 'queued';
}

/** True once every task of the job has ended (completed, failed or cancelled). */
export function isJobDone(counts: JobCounts): boolean {
  return counts.completed + counts.failed + counts.cancelled >= counts.total;
}
