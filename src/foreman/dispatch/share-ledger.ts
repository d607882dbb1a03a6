import { PRIORITY_RANK } from '../../protocol/index.ts';
import { allocateSlots, fairShares, type ShareJob, type ShareOwner } from '../../core/fair-share.ts';
import { matchesAny } from '../../core/pattern.ts';
import type { ActiveJob, RateLimitState, SchedulerSnapshot, Store, WorkerKind } from '../../store/store.ts';

/** Waits for a rate limit to earn a task are at least this long. */
const RATE_WAKE_MIN_MS = 10;
/** Reads of the store follow announcements of work at most this often. */
const STALE_READ_MIN_MS = 50;

/** What a worker can run, as far as choosing jobs for it goes. */
export interface ShareTarget {
  allowCode: boolean;
  patterns: readonly string[];
  kind: WorkerKind;
}

/** An unfinished job as the ledger keeps it: its share settings and counts, and its turn among equals. */
interface LedgerJob extends ActiveJob {
  order: number;
  /** Per set of worker patterns: whether any of its known types matches one. */
  serves?: Map<string, boolean>;
}

/** A job's or an owner's running tasks against their fair share, for the dashboard and /api/stats. */
export interface ShareView {
  owners: { owner: string | null; running: number; share: number; maxConcurrency: number | null; jobs: number }[];
  jobs: { jobId: string; owner: string | null; priority: string; weight: number; maxConcurrency: number | null; running: number; waiting: number; share: number }[];
  /** As of the last read of the store. */
  rateLimits: RateLimitState[];
}

/**
 * The dispatcher's view of who shares the workers: unfinished jobs with their running and
 * waiting tasks, owners' caps, and the rate limits.
 *
 * It is read from the store now and then (`refreshMs`, and soon after another foreman
 * announces work), and kept up to date in between with what this foreman does: jobs it
 * accepts, tasks it hands out, results it records, jobs that finish. On one foreman that is
 * exact; with several, each sees the others' running tasks as of its last read. Caps and rate
 * limits are held exactly by the store in the claim itself; the ledger only chooses.
 */
export class ShareLedger {
  private jobs = new Map<string, LedgerJob>();
  private ownerCaps = new Map<string, number>();
  private limits: RateLimitState[] = [];
  private nextOrder = 0;
  private readAt = -Infinity;
  private stale = true;
  private readonly store: Store;
  private readonly refreshMs: number;

  constructor(store: Store, options: { refreshMs: number }) {
    this.store = store;
    this.refreshMs = options.refreshMs;
  }

  /** Read the store again at the next chance (another foreman announced work). */
  markStale(): void {
    this.stale = true;
  }

  /** Read the store again before the next claim, however recent the last read (a rate limit changed here). */
  readNow(): void {
    this.stale = true;
    this.readAt = -Infinity;
  }

  /**
   * Read the store if the last read is old, or was marked stale. A stale mark right after a read
   * waits a little (announcements come in bursts): the answer is then how long, to look again.
   */
  async refreshIfDue(now: number): Promise<number | null> {
    const age = now - this.readAt;
    if (!this.stale && age < this.refreshMs) return null;
    if (age < STALE_READ_MIN_MS) return STALE_READ_MIN_MS - age;
    this.stale = false;
    this.readAt = now;
    this.apply(await this.store.schedulerSnapshot());
    return null;
  }

  private apply(snap: SchedulerSnapshot): void {
    const jobs = new Map<string, LedgerJob>();
    for (const j of snap.jobs) jobs.set(j.jobId, { ...j, order: this.jobs.get(j.jobId)?.order ?? this.nextOrder++ });
    this.jobs = jobs;
    this.ownerCaps = new Map(snap.ownerCaps.map((c) => [c.owner, c.maxConcurrency]));
    this.limits = snap.rateLimits;
  }

  /** A job accepted (or appended to) here: `unfinished` is its tasks not yet ended. */
  upsert(job: Omit<ActiveJob, 'waiting' | 'running'> & { unfinished: number }): void {
    const had = this.jobs.get(job.jobId);
    const running = had?.running ?? 0;
    const { unfinished, ...rest } = job;
    this.jobs.set(job.jobId, { ...rest, running, waiting: Math.max(0, unfinished - running), order: had?.order ?? this.nextOrder++ });
  }

  /** A job finished: it takes no more slots. */
  finished(jobId: string): void {
    this.jobs.delete(jobId);
  }

  /** Tasks handed to a worker: they run now. */
  claimed(tasks: readonly { jobId: string }[]): void {
    for (const t of tasks) {
      const j = this.jobs.get(t.jobId);
      if (j) { j.running++; j.waiting = Math.max(0, j.waiting - 1); }
    }
  }

  /**
   * A result recorded: the task no longer runs (and waits again when it was retried). True when
   * its job or owner has a cap, which this may have made room under.
   */
  settled(jobId: string, retried: boolean): boolean {
    const j = this.jobs.get(jobId);
    if (!j) return false;
    j.running = Math.max(0, j.running - 1);
    if (retried) j.waiting++;
    return j.maxConcurrency !== null || (j.owner !== null && this.ownerCaps.has(j.owner));
  }

  /** Whether any job may have work at all (else claims need not be planned). */
  get size(): number {
    return this.jobs.size;
  }

  /**
   * How many of `slots` each job gets for a worker, by fair share. `except`: jobs that just came
   * back short for this worker.
   */
  plan(slots: number, target: ShareTarget, except: ReadonlySet<string>): { jobId: string; limit: number; capped?: boolean }[] {
    const candidates: ShareJob[] = [];
    for (const j of this.jobs.values()) {
      if (j.waiting <= 0 || except.has(j.jobId)) continue;
      if (j.kind === 'map' ? !target.allowCode : !this.serves(j, target.patterns)) continue;
      if (j.runOn !== null && j.runOn !== target.kind) continue;
      candidates.push(this.shareJob(j));
    }
    if (candidates.length === 0) return [];
    // A capped job (or a job of a capped owner) is marked, for the store to hold the cap exactly.
    return allocateSlots(slots, candidates, this.owners()).map((p) => (this.isCapped(p.jobId) ? { ...p, capped: true } : p));
  }

  /** Whether claims must spend rate limits (some limit is set). */
  get rateLimited(): boolean {
    return this.limits.length > 0;
  }

  /**
   * After a claim came back short while rate limits are set: when to look again, the time the
   * fastest limit takes to earn a task (ms), or null without limits.
   */
  nextRefillMs(): number | null {
    if (this.limits.length === 0) return null;
    return Math.max(RATE_WAKE_MIN_MS, Math.ceil(Math.min(...this.limits.map((l) => l.perMs / l.max))));
  }

  /** Running tasks against fair shares, per owner and per job (largest running first). */
  view(): ShareView {
    const jobs = [...this.jobs.values()];
    const shares = fairShares(jobs.map((j) => this.shareJob(j)));
    const owners = new Map<string | null, { running: number; share: number; jobs: number }>();
    for (const j of jobs) {
      const o = owners.get(j.owner) ?? { running: 0, share: 0, jobs: 0 };
      o.running += j.running;
      o.share += shares.get(j.jobId) ?? 0;
      o.jobs++;
      owners.set(j.owner, o);
    }
    return {
      owners: [...owners].map(([owner, o]) => ({ owner, ...o, maxConcurrency: owner === null ? null : this.ownerCaps.get(owner) ?? null }))
        .sort((a, b) => b.running - a.running || b.share - a.share),
      jobs: jobs.map((j) => ({ jobId: j.jobId, owner: j.owner, priority: j.priority, weight: j.weight, maxConcurrency: j.maxConcurrency,
        running: j.running, waiting: j.waiting, share: shares.get(j.jobId) ?? 0 }))
        .sort((a, b) => b.running - a.running || b.share - a.share).slice(0, 100),
      rateLimits: this.limits,
    };
  }

  /** Whether a worker with these patterns may run some of a named job's tasks (true when its types are not known). */
  private serves(j: LedgerJob, patterns: readonly string[]): boolean {
    if (patterns.length === 0) return false;
    if (j.types === null) return true;
    const key = patterns.join('\u0000');
    j.serves ??= new Map();
    let yes = j.serves.get(key);
    if (yes === undefined) {
      yes = j.types.some((type) => matchesAny(patterns, type));
      if (j.serves.size > 100) j.serves.clear();
      j.serves.set(key, yes);
    }
    return yes;
  }

  private isCapped(jobId: string): boolean {
    const j = this.jobs.get(jobId);
    return j !== undefined && (j.maxConcurrency !== null || (j.owner !== null && this.ownerCaps.has(j.owner)));
  }

  private shareJob(j: LedgerJob): ShareJob {
    return {
      jobId: j.jobId, owner: j.owner ?? '', rank: PRIORITY_RANK[j.priority], weight: j.weight, order: j.order,
      running: j.running, waiting: j.waiting, maxConcurrency: j.maxConcurrency ?? Infinity,
    };
  }

  private owners(): Map<string, ShareOwner> {
    const out = new Map<string, ShareOwner>();
    for (const j of this.jobs.values()) {
      const key = j.owner ?? '';
      const o = out.get(key) ?? { running: 0, maxConcurrency: (j.owner !== null ? this.ownerCaps.get(j.owner) : undefined) ?? Infinity };
      o.running += j.running;
      out.set(key, o);
    }
    return out;
  }
}
