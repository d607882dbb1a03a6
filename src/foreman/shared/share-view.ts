/**
 * Who shares the workers, as the dispatcher's ledger reports it to the dashboard and /api/stats.
 * Its own module so that the HTTP routes read it without importing the dispatcher.
 */
import type { RateLimitState } from '../../store/store.ts';

/** A job's or an owner's running tasks against their fair share, for the dashboard and /api/stats. */
export interface ShareView {
  owners: { owner: string | null; running: number; waiting: number; share: number; maxConcurrency: number | null; jobs: number }[];
  /** Every unfinished job, largest running first (the REST views show the first hundred a viewer may see). */
  jobs: { jobId: string; owner: string | null; priority: string; weight: number; maxConcurrency: number | null; running: number; waiting: number; share: number }[];
  /** As of the last read of the store. */
  rateLimits: RateLimitState[];
}
