import { PRIORITY_RANK } from '../../protocol/index.ts';
import { allocateSlots, fairShares, type ShareJob, type ShareOwner } from '../../core/fair-share.ts';
import { matchesAny } from '../../core/pattern.ts';
import type { ActiveJob, CodeLanguage, JobCursor, RateLimitState, SchedulerSnapshot, Store, WorkerKind } from '../../store/store.ts';
import type { ShareView } from '../shared/share-view.ts';

/** Waits for a rate limit to earn a task are at least this long. */
const RATE_WAKE_MIN_MS = 10;
/** Reads of the store follow announcements of work at most this often. */
const STALE_READ_MIN_MS = 50;

/** What a worker can run, as far as choosing jobs for it goes. */
export interface ShareTarget {
  allowCode: boolean;
  /** With `allowCode`: the languages of shipped functions it runs. */
  codeLanguages: readonly CodeLanguage[];
  patterns: readonly string[];
  kind: WorkerKind;
}

/**
 * An unfinished job as the ledger keeps it: what it is, and its counts and turn as the fair
 * share reads them (`share`, updated in place as tasks are handed out and recorded).
 */
interface LedgerJob {
  job: ActiveJob;
  share: ShareJob;
  /** Per set of worker patterns: whether any of its known types matches one. */
  serves?: Map<string, boolean>;
}

/**
 * The dispatcher's view of who shares the workers: unfinished jobs with their running and
 * waiting tasks, owners' caps, and the rate limits.
 *
 * It is read from the store now and then (`refreshMs`, and soon after another foreman
 * announces work it does not describe: returned or released tasks), and kept up to date in
 * between with what this foreman does (jobs it accepts, tasks it hands out, results it records,
 * jobs that finish) and the jobs other foremen accept, which their notifications describe. On one foreman that is
 * exact; with several, each sees the others' running tasks as of its last read. Caps and rate
 * limits are held exactly by the store in the claim itself; the ledger only chooses.
 */
export class ShareLedger {
  private jobs = new Map<string, LedgerJob>();
  /** The jobs with tasks waiting: the only ones a plan looks at. */
  private waiting = new Set<LedgerJob>();
  /** Running tasks per owner ('' for jobs without one), and owners' caps. */
  private owners = new Map<string, ShareOwner>();
  private ownerCaps = new Map<string, number>();
  private limits: RateLimitState[] = [];
  private nextOrder = 0;
  /** With more unfinished jobs than one read takes, where the next read's look past the oldest starts. */
  private lookFrom: JobCursor | null = null;
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
    const snap = await this.store.schedulerSnapshot({ after: this.lookFrom });
    this.lookFrom = snap.next;
    this.apply(snap);
    return null;
  }

  private apply(snap: SchedulerSnapshot): void {
    const before = this.jobs;
    this.jobs = new Map();
    this.waiting.clear();
    this.ownerCaps = new Map(snap.ownerCaps.map((c) => [c.owner, c.maxConcurrency]));
    this.owners = new Map();
    for (const j of snap.jobs) this.put(j, before.get(j.jobId));
    this.limits = snap.rateLimits;
  }

  /** Add or replace a job, keeping its turn (and what was learnt of the workers it serves) if it was known. */
  private put(job: ActiveJob, had: LedgerJob | undefined): void {
    if (had && this.jobs.get(job.jobId) === had) this.remove(had);
    const owner = job.owner ?? '';
    const e: LedgerJob = {
      job,
      share: { jobId: job.jobId, owner, rank: PRIORITY_RANK[job.priority], weight: job.weight, order: had?.share.order ?? this.nextOrder++,
        running: job.running, waiting: job.waiting, maxConcurrency: job.maxConcurrency ?? Infinity },
      ...(had?.serves && had.job.types?.join() === job.types?.join() ? { serves: had.serves } : {}),
    };
    this.jobs.set(job.jobId, e);
    if (e.share.waiting > 0) this.waiting.add(e);
    this.ownerOf(owner).running += e.share.running;
  }

  private remove(e: LedgerJob): void {
    this.jobs.delete(e.job.jobId);
    this.waiting.delete(e);
    this.ownerOf(e.share.owner).running -= e.share.running;
  }

  private ownerOf(key: string): ShareOwner {
    let o = this.owners.get(key);
    if (!o) this.owners.set(key, o = { running: 0, maxConcurrency: (key !== '' ? this.ownerCaps.get(key) : undefined) ?? Infinity });
    return o;
  }

  /**
   * A job accepted (or appended to, or retried) here: `unfinished` is its tasks not yet ended,
   * `delayed` how many of the tasks it just brought wait for their time. Those, and the delayed
   * ones it had, are not waiting: the releaser's announcement brings them in when they are due.
   */
  upsert(job: Omit<ActiveJob, 'waiting' | 'running' | 'scheduled'> & { unfinished: number }, delayed: number): void {
    const had = this.jobs.get(job.jobId);
    const running = had?.share.running ?? 0;
    const scheduled = (had?.job.scheduled ?? 0) + delayed;
    const { unfinished, ...rest } = job;
    this.put({ ...rest, running, scheduled, waiting: Math.max(0, unfinished - running - scheduled) }, had);
  }

  /**
   * A job another foreman accepted, as it committed it. One already known was read from the
   * store after that commit, which is at least as fresh: it is kept.
   */
  accepted(job: ActiveJob): void {
    if (!this.jobs.has(job.jobId)) this.put(job, undefined);
  }

  /** A job finished: it takes no more slots. */
  finished(jobId: string): void {
    const e = this.jobs.get(jobId);
    if (e) this.remove(e);
  }

  /** Tasks handed to a worker: they run now. */
  claimed(tasks: readonly { jobId: string }[]): void {
    for (const t of tasks) {
      const e = this.jobs.get(t.jobId);
      if (!e) continue;
      e.share.running++;
      this.ownerOf(e.share.owner).running++;
      if (e.share.waiting > 0 && --e.share.waiting === 0) this.waiting.delete(e);
    }
  }

  /**
   * A result recorded: the task no longer runs (and waits again when it was retried). True when
   * its job or owner has a cap, which this may have made room under.
   */
  settled(jobId: string, retried: boolean): boolean {
    const e = this.jobs.get(jobId);
    if (!e) return false;
    if (e.share.running > 0) { e.share.running--; this.ownerOf(e.share.owner).running--; }
    if (retried && e.share.waiting++ === 0) this.waiting.add(e);
    return this.isCapped(e);
  }

  /**
   * How many of `slots` each job gets for a worker, by fair share. `except`: jobs that just came
   * back short for this worker.
   */
  plan(slots: number, target: ShareTarget, except: ReadonlySet<string>): { jobId: string; limit: number; capped?: boolean; few?: boolean }[] {
    const candidates: ShareJob[] = [];
    const key = target.patterns.join('\u0000');
    for (const e of this.waiting) {
      const j = e.job;
      if (except.has(j.jobId)) continue;
      if (j.kind === 'map' ? !target.allowCode || !target.codeLanguages.includes(j.language ?? 'javascript') : !this.serves(e, target.patterns, key)) continue;
      if (j.runOn !== null && j.runOn !== target.kind) continue;
      candidates.push(e.share);
    }
    if (candidates.length === 0) return [];
    // A capped job (or a job of a capped owner) is marked, for the store to hold the cap exactly;
    // a job with no more tasks left than it is given, for the store to read it with others.
    return allocateSlots(slots, candidates, this.owners).map((p) => {
      const e = this.jobs.get(p.jobId)!;
      const few = e.share.waiting + e.share.running <= p.limit;
      return this.isCapped(e) ? { ...p, capped: true, ...(few ? { few } : {}) } : few ? { ...p, few } : p;
    });
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
    const list = [...this.jobs.values()];
    const shares = fairShares(list.map((e) => e.share));
    const owners = new Map<string | null, { running: number; waiting: number; share: number; jobs: number }>();
    for (const { job, share } of list) {
      const o = owners.get(job.owner) ?? { running: 0, waiting: 0, share: 0, jobs: 0 };
      o.running += share.running;
      o.waiting += share.waiting;
      o.share += shares.get(job.jobId) ?? 0;
      o.jobs++;
      owners.set(job.owner, o);
    }
    return {
      owners: [...owners].map(([owner, o]) => ({ owner, ...o, maxConcurrency: owner === null ? null : this.ownerCaps.get(owner) ?? null }))
        .sort((a, b) => b.running - a.running || b.share - a.share),
      jobs: list.map(({ job, share }) => ({ jobId: job.jobId, owner: job.owner, priority: job.priority, weight: job.weight, maxConcurrency: job.maxConcurrency,
        running: share.running, waiting: share.waiting, share: shares.get(job.jobId) ?? 0 }))
        .sort((a, b) => b.running - a.running || b.share - a.share),
      rateLimits: this.limits,
    };
  }

  /** Whether a worker with these patterns may run some of a named job's tasks (true when its types are not known). */
  private serves(e: LedgerJob, patterns: readonly string[], key: string): boolean {
    if (patterns.length === 0) return false;
    if (e.job.types === null) return true;
    e.serves ??= new Map();
    let yes = e.serves.get(key);
    if (yes === undefined) {
      yes = e.job.types.some((type) => matchesAny(patterns, type));
      if (e.serves.size > 100) e.serves.clear();
      e.serves.set(key, yes);
    }
    return yes;
  }

  private isCapped(e: LedgerJob): boolean {
    return e.job.maxConcurrency !== null || (e.job.owner !== null && this.ownerCaps.has(e.job.owner));
  }
}
