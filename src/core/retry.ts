/**
 * When something that failed is tried again (a task's next attempt, a reconnection):
 * exponential backoff with "equal jitter" (half the delay fixed, half random, as the AWS
 * architecture blog names it), so that a burst of failures does not come back as a burst of
 * retries, while the delay still grows with every failure.
 */

/** Shape of a backoff: the first delay and the cap. */
export interface BackoffOptions {
  /** Delay before the first retry, before jitter. */
  baseMs: number;
  /** Upper bound of any delay. */
  maxMs: number;
}

/** Retries of failed tasks: 100 ms, doubling, at most a minute. */
export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 100, maxMs: 60_000 };

/** Delay before retry number `failures` (1 = first retry), jittered within [ceiling/2, ceiling]. `random` is injectable for tests. */
export function retryDelayMs(failures: number, opts: BackoffOptions = DEFAULT_BACKOFF, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.maxMs, opts.baseMs * 2 ** Math.max(0, failures - 1));
  return Math.floor(ceiling / 2 + random() * (ceiling / 2));
}

/** Should a task that just failed its `failures`-th time run again? */
export function shouldRetry(params: { failures: number; maxAttempts: number; retryable: boolean | undefined }): boolean {
  return params.retryable !== false && params.failures < params.maxAttempts;
}
