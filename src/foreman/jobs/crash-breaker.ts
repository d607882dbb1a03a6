import type { SettledOutcome } from '../workers/worker-registry.ts';

/** Errors that mean a shipped function took down its sandbox (a heap it outgrew, a process that died). */
const SANDBOX_CRASH_CODES: ReadonlySet<string> = new Set(['CC_ERR_MEMORY_LIMIT', 'CC_ERR_SANDBOX_CRASHED']);

/** Most jobs whose crashes are counted at once (the oldest are forgotten first). */
const MAX_JOBS = 10_000;

/**
 * A map job whose function keeps taking down sandboxes is failed as a whole after a few
 * crashes, instead of being tried task after task on every worker of the fleet. Each crash
 * already fails its own task without a retry (the worker reports it as permanent); this
 * counts them per job. Only Node workers' reports count: a browser tab reports no such crash
 * (tabs have no heap limit), and a tab is anyone's, so it may not fail other people's jobs.
 * Counts are this foreman's own; with several foremen a job fails after at most this many on each.
 */
export class CrashBreaker {
  private readonly crashes = new Map<string, number>();
  private readonly limit: number;
  private readonly trip: (jobId: string, crashes: number, lastError: string) => void;

  /** `trip` is called once per job, when its crashes reach `limit`. */
  constructor(limit: number, trip: (jobId: string, crashes: number, lastError: string) => void) {
    this.limit = limit;
    this.trip = trip;
  }

  /** A recorded outcome: counted when it is a sandbox crash of a job's task on a Node worker. */
  observe(settled: SettledOutcome): void {
    const error = settled.outcome.error;
    if (settled.outcome.status !== 'failed' || !error?.code || !SANDBOX_CRASH_CODES.has(error.code) || !settled.jobId || settled.kind !== 'node') return;
    const n = (this.crashes.get(settled.jobId) ?? 0) + 1;
    if (n > this.limit) return;
    if (!this.crashes.has(settled.jobId) && this.crashes.size >= MAX_JOBS) this.crashes.delete(this.crashes.keys().next().value!);
    this.crashes.set(settled.jobId, n);
    if (n === this.limit) this.trip(settled.jobId, n, error.message);
  }

  /** The job ended: nothing more to count. */
  forget(jobId: string): void {
    this.crashes.delete(jobId);
  }
}
