import type { JobCounts, JobState } from '../protocol/index.ts';

/**
 * A job's state follows from its task counts: it is terminal when every task is, and then
 * `cancelled` if it was cancelled, `failed` if any task failed, else `completed` (a graph's
 * ending is decided by core/graph.ts's `graphState`: its optional nodes may fail).
 * Before that it is `running` once any task has started, else `queued`.
 */
export function deriveJobState(counts: JobCounts, opts: { started: boolean; cancelRequested: boolean }): JobState {
  const done = counts.completed + counts.failed + counts.cancelled;
  if (done >= counts.total) {
    if (opts.cancelRequested || counts.cancelled > 0) return 'cancelled';
    return counts.failed > 0 ? 'failed' : 'completed';
  }
  return opts.started || done > 0 ? 'running' : 'queued';
}

/** True once every task of the job has ended (completed, failed or cancelled). */
export function isJobDone(counts: JobCounts): boolean {
  return counts.completed + counts.failed + counts.cancelled >= counts.total;
}
