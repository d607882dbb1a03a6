import { TokenBucket } from 'limiter';

/** How many failures are allowed, and how fast they are forgiven. */
export interface FailureLimiterOptions {
  /** Failures one subject may make in a burst. */
  burst: number;
  /** Then one more each this often. */
  refillMs: number;
  /** Most subjects remembered at once; past that, the longest quiet are forgotten first. Default 100,000. */
  maxSubjects?: number;
}

interface Entry { bucket: TokenBucket; at: number }

/**
 * Failed credential checks, counted per subject: a client address (`addr:…`) and a credential id
 * (`key:…`, `token:…`). It never decides whether a credential is valid and is never asked before
 * a check: a valid credential is accepted whatever its address did, so that one client's
 * failures (or an attacker's, behind the same proxy or NAT) lock nobody else out. It only says
 * whether a check that failed is answered 401 (under every subject's budget) or 429 (over one).
 * Counting per credential id too limits guessing one key's secret from many addresses.
 */
export class FailureLimiter {
  private readonly entries = new Map<string, Entry>();
  private readonly options: Required<FailureLimiterOptions>;

  constructor(options: FailureLimiterOptions) {
    this.options = { maxSubjects: 100_000, ...options };
  }

  /**
   * Count one failure against each subject. Returns the first subject that was already over its
   * budget (the failure is then refused as rate limited, and counted against none), or null
   * when every one had room.
   */
  fail(subjects: readonly string[]): string | null {
    const now = Date.now();
    const entries = subjects.map((subject) => ({ subject, entry: this.entryOf(subject, now) }));
    for (const { subject, entry } of entries) {
      entry.bucket.drip();
      if (entry.bucket.content < 1) return subject;
    }
    for (const { entry } of entries) entry.bucket.tryRemoveTokens(1);
    return null;
  }

  private entryOf(subject: string, now: number): Entry {
    let entry = this.entries.get(subject);
    if (entry) {
      // Re-inserted, so that the map's order is by last failure and the oldest go first.
      this.entries.delete(subject);
    } else {
      if (this.entries.size >= this.options.maxSubjects) this.forget(now);
      const bucket = new TokenBucket({ bucketSize: this.options.burst, tokensPerInterval: 1, interval: this.options.refillMs });
      bucket.content = this.options.burst;
      entry = { bucket, at: now };
    }
    entry.at = now;
    this.entries.set(subject, entry);
    return entry;
  }

  /**
   * Make room: forget subjects whose budget has refilled (nothing to remember), then, if a
   * flood of fresh subjects still fills the map, the longest quiet ones.
   */
  private forget(now: number): void {
    const refilledAfter = this.options.burst * this.options.refillMs;
    // The map is in order of last failure, oldest first: the refilled are at its start.
    for (const [subject, e] of this.entries) {
      if (now - e.at < refilledAfter) break;
      this.entries.delete(subject);
    }
    const excess = this.entries.size - Math.floor(this.options.maxSubjects * 0.9);
    if (excess <= 0) return;
    let n = 0;
    for (const subject of this.entries.keys()) {
      if (n++ >= excess) break;
      this.entries.delete(subject);
    }
  }
}
