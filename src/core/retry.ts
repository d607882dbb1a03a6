/**
 * When a failed attempt runs again: exponential backoff with full jitter (AWS architecture
 * blog's "full jitter"), so that a burst of failures does not come back as a burst of retries.
 */
export interface BackoffOptions {
  /** Delay before the first retry, before jitter. */
  baseMs: number;
  /** Upper bound of any delay. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 100, maxMs: 60_000 };

/** Delay before retry number `failures` (1 = first retry). `random` is injectable for tests. */
export function retryDelayMs(failures: number, opts: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.max(0, failures - 1));
  return Math.floor(ceiling / 2 + random() * (ceiling / 2));
}

/** Should a task that just failed its `failures`-th time run again? */
export function shouldRetry(params: { failures: number; maxAttempts: number; retryable: boolean | undefined }): boolean {
  return params.retryable !== false && params.failures < params.maxAttempts;
}
