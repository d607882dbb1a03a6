import type { Logger } from 'pino';
import type { JobChange, Store } from '../../store/store.ts';
import type { Peer } from './peer.ts';
import type { Service } from './service.ts';

/** How often a running job's subscribers get a progress message, at most. */
const PROGRESS_INTERVAL_MS = 100;

/** Someone in this process that follows every job change (the HTTP API's waiters, tests). */
export type JobChangeListener = (change: JobChange) => void;

/** Most results a completion carries inline; more are read over HTTP, in pages. */
const INLINE_RESULTS_MAX = 100_000;

/**
 * Fans job changes out to whoever watches the job: WebSocket subscribers (clients) and
 * in-process listeners (the HTTP API's waiters, tests). Progress is coalesced per job and
 * sent at most every PROGRESS_INTERVAL_MS; completion is sent at once, with the ordered
 * results inline when they fit in one frame.
 */
export class JobEvents implements Service {
  readonly name = 'job events';
  private readonly subscribers = new Map<string, Set<Peer>>();
  private readonly listeners = new Set<JobChangeListener>();
  private readonly progressListeners = new Set<(jobId: string) => void>();
  private readonly pendingProgress = new Map<string, JobChange>();
  /** Handler progress (percent) of running tasks, by job and task, as reported through this foreman. */
  private readonly live = new Map<string, Map<string, number>>();
  private timer: ReturnType<typeof setTimeout> | null = null;

  private readonly store: Store;
  private readonly log: Logger;
  private readonly maxInlineBytes: number;

  constructor(store: Store, log: Logger, maxInlineBytes: number) {
    this.store = store;
    this.log = log;
    this.maxInlineBytes = maxInlineBytes;
  }

  /** Send `conn` the job's progress and completion. */
  subscribe(jobId: string, conn: Peer): void {
    let set = this.subscribers.get(jobId);
    if (!set) { set = new Set(); this.subscribers.set(jobId, set); }
    set.add(conn);
  }

  /** Stop sending `conn` the job's events. */
  unsubscribe(jobId: string, conn: Peer): void {
    const set = this.subscribers.get(jobId);
    set?.delete(conn);
    if (set && set.size === 0) this.subscribers.delete(jobId);
  }

  /** Forget a closed connection's subscriptions. */
  dropConnection(conn: Peer): void {
    for (const [jobId, set] of this.subscribers) {
      set.delete(conn);
      if (set.size === 0) this.subscribers.delete(jobId);
    }
  }

  /** Follow every job change in this process; returns the function that stops it. */
  onChange(listener: JobChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Hear of every task progress report that passes through this foreman (by job); returns the function that stops it. */
  onTaskProgress(listener: (jobId: string) => void): () => void {
    this.progressListeners.add(listener);
    return () => this.progressListeners.delete(listener);
  }

  /** Called after a commit changed jobs. */
  publish(changes: readonly JobChange[]): void {
    let completions: Promise<Set<Peer> | null>[] | null = null;
    for (const change of changes) {
      for (const l of this.listeners) l(change);
      if (change.finished) {
        this.pendingProgress.delete(change.jobId);
        this.live.delete(change.jobId);
        (completions ??= []).push(this.sendCompleted(change));
      } else if (this.subscribers.has(change.jobId)) {
        this.pendingProgress.set(change.jobId, change);
        this.timer ??= setTimeout(() => this.flushProgress(), PROGRESS_INTERVAL_MS);
      }
    }
    // A completion is what its client waits on: once this commit's completions are queued (one
    // frame per connection), they are written, not held for the end of the turn.
    if (completions) {
      void Promise.all(completions).then((sets) => {
        const peers = new Set<Peer>();
        for (const set of sets) if (set) for (const p of set) peers.add(p);
        for (const p of peers) p.flush();
      });
    }
  }

  /** Tell one connection about a job that had already finished when it subscribed. */
  async sendCompletedTo(conn: Peer, change: JobChange): Promise<void> {
    conn.send({ type: 'job_completed', jobId: change.jobId, state: change.state, counts: change.counts, ...(await this.inlineResults(change.jobId)) });
  }

  private flushProgress(): void {
    this.timer = null;
    for (const change of this.pendingProgress.values()) {
      const set = this.subscribers.get(change.jobId);
      if (!set) continue;
      for (const conn of set) conn.send({ type: 'job_progress', jobId: change.jobId, state: change.state, counts: change.counts });
    }
    this.pendingProgress.clear();
  }

  private async inlineResults(jobId: string, inHand?: unknown[]): Promise<{ results?: unknown[] }> {
    // Read no more than could be sent: a job of a million results is read in pages by its client.
    // A one-task job's commit had its results in hand (JobChange.results): nothing to read.
    const res = inHand ? { results: inHand, total: inHand.length } : await this.store.jobResults(jobId, { offset: 0, limit: INLINE_RESULTS_MAX });
    if (!res || res.total > res.results.length || res.total > INLINE_RESULTS_MAX) return {};
    // Measure before deciding: a job with large results is fetched over HTTP instead.
    const size = JSON.stringify(res.results).length;
    return size <= this.maxInlineBytes ? { results: res.results } : {};
  }

  /** Send a job's completion to its subscribers; resolves with those it was sent to. */
  private async sendCompleted(change: JobChange): Promise<Set<Peer> | null> {
    const set = this.subscribers.get(change.jobId);
    if (!set || set.size === 0) return null;
    this.subscribers.delete(change.jobId);
    try {
      const extra = await this.inlineResults(change.jobId, change.results);
      for (const conn of set) conn.send({ type: 'job_completed', jobId: change.jobId, state: change.state, counts: change.counts, ...extra });
      return set;
    } catch (err) {
      this.log.error({ err, jobId: change.jobId }, 'could not send job completion');
      return null;
    }
  }

  /** Send a task's progress to the job's subscribers (not persisted per message). */
  taskProgress(jobId: string, taskId: string, progress: number, message?: string, data?: Record<string, unknown>): void {
    let board = this.live.get(jobId);
    if (!board) {
      if (this.live.size >= 10_000) this.live.delete(this.live.keys().next().value!);
      board = new Map();
      this.live.set(jobId, board);
    }
    board.set(taskId, progress);
    for (const l of this.progressListeners) l(jobId);
    const set = this.subscribers.get(jobId);
    if (!set) return;
    for (const conn of set) conn.send({ type: 'task_progress_event', jobId, taskId, progress, ...(message !== undefined ? { message } : {}), ...(data ? { data } : {}) });
  }

  /** A task's attempt ended: its handler progress no longer counts toward its job's. */
  taskSettled(jobId: string, taskId: string): void {
    const board = this.live.get(jobId);
    board?.delete(taskId);
    if (board?.size === 0) this.live.delete(jobId);
  }

  /**
   * How far the running tasks of a job have come by their handlers' own reports, as a share of
   * the whole job (0..1): a one-task job whose handler said 40% shows 0.4. Only the progress
   * reported through this foreman is known here.
   */
  runningProgress(jobId: string, total: number): number {
    const board = this.live.get(jobId);
    if (!board || total === 0) return 0;
    let sum = 0;
    for (const p of board.values()) sum += p / 100;
    return Math.min(1, sum / total);
  }

  /**
   * Look up the jobs someone here is waiting for and publish those that finished: a backstop
   * for a missed notification when several foremen share the store, and the way a waiter hears
   * of a job pruned before it finished (`crowdcompute prune --unfinished`): it ends cancelled,
   * and its results are CC_ERR_JOB_PRUNED (called periodically).
   */
  async recheckWatched(limit = 1000): Promise<void> {
    let n = 0;
    for (const jobId of [...this.subscribers.keys()]) {
      if (n++ >= limit) break;
      const job = await this.store.jobGet(jobId);
      if (!this.subscribers.has(jobId)) continue;
      if (job && job.completedAt !== null) {
        this.publish([{ jobId, state: job.state, counts: job.counts, finished: true }]);
      } else if (!job && await this.store.jobPruned(jobId)) {
        this.publish([{ jobId, state: 'cancelled', counts: { total: 0, completed: 0, failed: 0, cancelled: 0 }, finished: true }]);
      }
    }
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.subscribers.clear();
    this.listeners.clear();
    this.progressListeners.clear();
  }
}
