import type { Logger } from 'pino';
import type { CodeLanguage, TaskOutcome, TraceContext } from '../../protocol/index.ts';
import { retryDelayMs } from '../../core/retry.ts';
import { isConnectionError, isStoreOutage, isStoreWideError } from '../../store/store-errors.ts';
import type { ClaimedTask, JobCode, JobRecord, Store, TaskFinishResult, TaskOutcomeParams } from '../../store/store.ts';
import { commitInParts } from '../../core/commit-in-parts.ts';
import type { LoopTracker } from '../shared/loop-health.ts';
import { taskError } from '../../protocol/index.ts';
import type { JobEvents } from '../shared/job-events.ts';
import type { ForemanMetrics } from '../shared/foreman-metrics.ts';
import type { Peer } from '../shared/peer.ts';
import type { Service } from '../shared/service.ts';
import type { DispatchTarget, SettledOutcome, WorkerRegistry } from '../workers/worker-registry.ts';
import { AckBatcher } from './ack-batcher.ts';
import { JobCache } from './job-cache.ts';
import type { GraphPlan } from '../../core/graph.ts';
import type { ThroughputSeries } from '../shared/throughput-series.ts';
import { matchesAny } from '../../core/pattern.ts';
import { ShareLedger } from './share-ledger.ts';
import type { ShareView } from '../shared/share-view.ts';
import { typesFromLabel } from '../../core/fair-share.ts';
import { traceCommit, traceDispatch } from './dispatch-tracing.ts';
import type { WorkAnnouncement } from '../shared/work-announcement.ts';

/** How the dispatcher paces itself. */
export interface DispatcherOptions {
  leaseTtlMs: number;
  /** How often idle workers look for work even when nothing announced any (retries coming due, other foremen). */
  sweepIntervalMs: number;
}

/** An outcome on its way to the store: as the worker sent it, and as the store is asked to record it. */
interface Settling {
  b: SettledOutcome;
  p: TaskOutcomeParams;
}

/** Rounds of a worker's claim: a job that came back short leaves its slots to the next round's choice. */
const CLAIM_ROUNDS = 3;

/** How long a result acknowledgement may wait for a frame to ride in. */
const ACK_DELAY_MS = 25;

/**
 * Moves work between the store and the workers.
 *
 * One loop (`tick`) does both halves, and never runs twice at once:
 *  1. group commit: every result that arrived since the last tick is recorded in one store
 *     call (one transaction), then acknowledged to its worker;
 *  2. dispatch: every worker with free capacity claims up to that many tasks in one store
 *     call, and receives them in one frame.
 * A tick is scheduled with setImmediate when results arrive, so under light load a result is
 * committed within the same event-loop turn, and under heavy load many results share one
 * commit; new work is dispatched within the turn that announced it (see `kick`). This is
 * what lets one SQLite file carry tens of thousands of tasks per second: the cost per
 * transaction is paid per batch, not per task.
 *
 * Workers whose last claim came back short are skipped until new work is announced
 * (`workVersion`), so idle workers cost nothing while the queue is empty.
 *
 * When the store fails (unreachable, full), nothing that arrived is dropped: the outcomes go
 * back to the head of the queue, unacknowledged (their workers keep them), and the loop waits
 * with growing pauses (capped at a few seconds) before it tries again.
 */
export class Dispatcher implements Service {
  readonly name = 'dispatcher';
  private pending: SettledOutcome[] = [];
  private workVersion = 0;
  /** Per worker, the work version at which its last claim came back short. */
  private readonly emptyAt = new Map<string, number>();
  /**
   * The same for tasks that require resources, by `fitVersion`: it moves when such tasks may
   * have appeared (a submission here, a graph node released, the sweep), not with every task,
   * so plain work does not pay for a second claim.
   */
  private readonly emptyFitAt = new Map<string, number>();
  private fitVersion = 0;
  private scheduled = false;
  private running = false;
  private again = false;
  private stopped = false;
  /** Tasks are claimed only once started: work announced before (while the foreman comes up) waits for start's tick. */
  private started = false;
  private rotate = 0;
  /** A claim of this dispatch came back short while rate limits were set: look again when they refill. */
  private rateHeld = false;
  private wakeTimer: ReturnType<typeof setTimeout> | null = null;
  private wakeAt = Infinity;
  private sweepTimer: ReturnType<typeof setInterval> | null = null;
  private readonly code = new JobCache<JobCode>(1000);
  /** What named tasks are sent with, per job: its graph (null if none), its metadata (null if none), and the trace it belongs to (null if none). */
  private readonly jobInfo = new JobCache<{ graph: GraphPlan | null; metadata: Record<string, unknown> | null; traceContext: TraceContext | null }>(10_000);
  private readonly acks: AckBatcher;
  /** Who shares the workers: jobs, owners, rate limits. */
  private readonly ledger: ShareLedger;
  private idleResolvers: (() => void)[] = [];
  /** Consecutive ticks that failed on the store, and the pause before the next try. */
  private failures = 0;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;

  private readonly store: Store;
  /** The dashboard's throughput chart, fed with what each commit recorded. */
  private readonly series: ThroughputSeries | null;
  private readonly registry: WorkerRegistry;
  private readonly events: JobEvents;
  private readonly metrics: ForemanMetrics;
  private readonly log: Logger;
  private readonly options: DispatcherOptions;
  /** Where a worker downloads a file its task carries (a signed path on this foreman). */
  private readonly fileLink: (fileId: string) => string;
  /** Where each tick is reported (/health sees a dispatcher that is stuck or keeps failing). */
  private readonly tracker: LoopTracker | null;

  /** Told of every failure recorded (the crash breaker counts sandbox crashes per job). */
  private readonly onFailure: ((settled: SettledOutcome) => void) | null;

  constructor(deps: { store: Store; registry: WorkerRegistry; events: JobEvents; metrics: ForemanMetrics; log: Logger; series?: ThroughputSeries; fileLink?: (fileId: string) => string; tracker?: LoopTracker;
    onFailure?: (settled: SettledOutcome) => void }, options: DispatcherOptions) {
    this.tracker = deps.tracker ?? null;
    this.onFailure = deps.onFailure ?? null;
    this.series = deps.series ?? null;
    this.fileLink = deps.fileLink ?? ((id) => `/api/files/${encodeURIComponent(id)}/download`);
    this.store = deps.store;
    this.registry = deps.registry;
    this.events = deps.events;
    this.metrics = deps.metrics;
    this.log = deps.log;
    this.options = options;
    this.acks = new AckBatcher((workerId, tasks) => this.registry.acknowledge(workerId, tasks), ACK_DELAY_MS);
    this.ledger = new ShareLedger(this.store, { refreshMs: options.sweepIntervalMs });
  }

  /** Running tasks against fair shares, per owner and per job, and what is left of each rate limit. */
  shares(): ShareView {
    return this.ledger.view();
  }

  /** The rate limits changed through this foreman: the next claim applies them. */
  rateLimitsChanged(): void {
    this.ledger.readNow();
    this.announceWork();
  }

  /** A job finished (here or through another foreman): it takes no more slots. */
  jobFinished(jobId: string): void {
    this.ledger.finished(jobId);
  }

  async start(): Promise<void> {
    if (this.sweepTimer || this.stopped) return;
    this.started = true;
    // Also the pace at which idle workers look again for tasks that require resources, which
    // another foreman may have queued without this one hearing of it.
    this.sweepTimer = setInterval(() => this.announceWork({ requiring: true }), this.options.sweepIntervalMs);
    this.sweepTimer.unref();
    this.kick();
  }

  /** Stop dispatching; commit and acknowledge what has arrived. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.sweepTimer = this.wakeTimer = null;
    if (this.retryTimer) { clearTimeout(this.retryTimer); this.retryTimer = null; }
    await this.drained();
    try {
      await this.flushOutcomes();
    } catch (err) {
      // The store is out as the foreman stops: the workers keep these results and send them
      // again to whichever foreman they reach next.
      this.log.warn({ err, outcomes: this.pending.length }, 'could not record the last results before stopping; their workers keep them');
    }
    this.acks.close();
  }

  /**
   * New or returning work exists: every idle worker should look again; with `requiring`, for
   * tasks that require resources too (looked for apart, and only when such work may be there).
   */
  announceWork(options: WorkAnnouncement = {}): void {
    const before = this.workVersion++;
    if (options.jobs || options.accepted) {
      for (const { record: j, delayed } of options.jobs ?? []) {
        // What its tasks are sent with is known here already: no read of the job at its first dispatch.
        if (j.kind !== 'graph' && this.jobInfo.get(j.id) === undefined) this.jobInfo.set(j.id, { graph: null, metadata: j.metadata, traceContext: j.traceContext });
        this.ledger.upsert({ jobId: j.id, kind: j.kind, owner: j.owner, priority: j.priority, weight: j.weight, maxConcurrency: j.maxConcurrency,
          runOn: j.runOn, language: j.language, createdAt: j.createdAt, types: typesFromLabel(j), unfinished: j.counts.total - j.counts.completed - j.counts.failed - j.counts.cancelled }, delayed);
      }
      for (const j of options.accepted ?? []) this.ledger.accepted(j);
      for (const w of options.sendWith ?? []) {
        if (this.jobInfo.get(w.jobId) === undefined) this.jobInfo.set(w.jobId, { graph: null, metadata: w.metadata, traceContext: w.traceContext });
      }
    } else {
      // Work this foreman did not accept (returned, retried, or another foreman's): read who shares again.
      this.ledger.markStale();
    }
    if (options.requiring) this.fitVersion++;
    if (options.types || options.code) this.keepIdle(before, options);
    this.kick(true);
  }

  /**
   * Idle workers for which the announced work holds nothing stay idle: a claim would only scan
   * the queue to find that out (and with a backlog nobody connected can run, that scan is long).
   */
  private keepIdle(before: number, work: WorkAnnouncement): void {
    const types = work.types ?? [];
    if (types.length > 32) return;
    for (const t of this.registry.targets()) {
      if (this.emptyAt.get(t.workerId) !== before) continue;
      const wants = (work.code === true && t.hello.allowCode) || types.some((type) => matchesAny(t.hello.patterns, type));
      if (!wants) this.emptyAt.set(t.workerId, this.workVersion);
    }
  }

  /** A worker (or, without an id, some worker) may have free slots. */
  lookAgain(workerId?: string): void {
    if (workerId !== undefined) { this.emptyAt.delete(workerId); this.emptyFitAt.delete(workerId); }
    this.kick();
  }

  /**
   * Run a tick soon. Results wait for the end of the turn (setImmediate), so that those read
   * from every socket in one turn share a commit. New work (`now`) is dispatched within the
   * turn instead: a submission is announced after the commit that gathered the turn's
   * submissions, so the next turn would add nothing to the claim, and a submission that finds
   * an idle worker goes out with its commit rather than a turn later.
   */
  private kick(now = false): void {
    if (this.scheduled || this.retryTimer) return;
    this.scheduled = true;
    if (now) queueMicrotask(() => void this.tick()); else setImmediate(() => void this.tick());
  }

  /** Outcomes arrived from a worker: its slots are freed now, the outcomes recorded in the next group commit. */
  acceptOutcomes(peer: Peer, outcomes: readonly TaskOutcome[]): void {
    for (const s of this.registry.settle(peer, outcomes)) this.pending.push(s);
    this.kick();
  }

  /** Resolves when no tick is running or scheduled and no result waits to be committed. */
  drained(): Promise<void> {
    if (!this.running && !this.scheduled && (this.pending.length === 0 || this.retryTimer !== null || this.stopped)) return Promise.resolve();
    return new Promise((resolve) => this.idleResolvers.push(resolve));
  }

  private async tick(): Promise<void> {
    this.scheduled = false;
    if (this.running) { this.again = true; return; }
    this.running = true;
    this.tracker?.began();
    try {
      await this.flushOutcomes();
      if (this.started && !this.stopped) await this.dispatch();
      this.failures = 0;
      this.tracker?.succeeded();
    } catch (err) {
      this.failures++;
      this.tracker?.failed(err);
      // A store outage is logged once by the store's health tracker; anything else here is a bug.
      if (!isStoreOutage(err) && !isConnectionError(err)) {
        this.log.error({ err }, 'dispatch tick failed; trying again shortly');
      }
      if (!this.stopped) {
        const pause = retryDelayMs(this.failures, { baseMs: 100, maxMs: 5_000 });
        this.retryTimer = setTimeout(() => { this.retryTimer = null; this.kick(); }, pause);
        this.retryTimer.unref();
      }
    } finally {
      this.running = false;
      if (this.retryTimer) {
        for (const r of this.idleResolvers.splice(0)) r();
      } else if (this.again || this.pending.length > 0) { this.again = false; this.kick(); }
      else if (!this.scheduled) for (const r of this.idleResolvers.splice(0)) r();
    }
  }

  /**
   * Record the outcomes that arrived, in one transaction. When the store as a whole fails, they
   * go back to the head of the queue, unacknowledged (their workers keep them), and the tick
   * fails. When the commit fails for one outcome (a value the database refuses), the others are
   * recorded without it (core/commit-in-parts.ts), and that task fails with CC_ERR_RESULT_REFUSED.
   */
  private async flushOutcomes(): Promise<void> {
    if (this.pending.length === 0) return;
    const traced = traceCommit(this.pending);
    if (traced === null) return this.commitPending();
    try {
      await this.commitPending();
      traced(null);
    } catch (err) {
      traced(err);
      throw err;
    }
  }

  /** The group commit itself (see flushOutcomes). */
  private async commitPending(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    const now = Date.now();
    const items: Settling[] = batch.map((b) => ({ b, p: {
      taskId: b.outcome.taskId, attempt: b.outcome.attempt, workerId: b.workerId, status: b.outcome.status, result: b.outcome.result, error: b.outcome.error,
      retryAt: b.outcome.status === 'failed' && b.outcome.error?.retryable !== false ? now + retryDelayMs(b.outcome.attempt) : undefined,
    } }));
    const started = performance.now();
    const r = await commitInParts(items, (part) => this.store.taskFinishMany({ outcomes: part.map((i) => i.p), now }), isStoreWideError);
    if (r.done.length === 1) this.metrics.storeCommitSeconds.observe('results', (performance.now() - started) / 1000);
    for (const part of r.done) this.recorded(part.items, part.value, now);
    let released = r.done.reduce((n, part) => n + part.value.released, 0);
    if (r.poisoned.length > 0) {
      this.tracker?.poisoned(r.poisoned.length);
      const refused = await commitInParts(r.poisoned.map(({ item, error }) => this.refusal(item, error)),
        (part) => this.store.taskFinishMany({ outcomes: part.map((i) => i.p), now }), isStoreWideError);
      for (const part of refused.done) {
        this.recorded(part.items, part.value, now);
        released += part.value.released;
        for (const i of part.items) this.registry.refuseResult(i.b.workerId, { taskId: i.p.taskId, attempt: i.p.attempt }, i.p.error!);
      }
      // Not even the failure could be recorded: the worker forgets the outcome, and the task's
      // lease runs out (the worker no longer lists it), so it is handled as a lost attempt.
      for (const { item, error } of refused.poisoned) {
        this.log.error({ err: error, jobId: item.b.jobId || undefined, taskId: item.p.taskId, attempt: item.p.attempt, workerId: item.b.workerId },
          'the store refused both the outcome of a task and its failure; the outcome is dropped and the task is taken back when its lease expires');
        this.registry.refuseResult(item.b.workerId, { taskId: item.p.taskId, attempt: item.p.attempt }, item.p.error!);
      }
      if (refused.error) {
        // Back to the head of the queue as the worker sent them: they are judged again next time.
        this.pending = r.rest.map((i) => i.b).concat(refused.rest.map((i) => i.b), this.pending);
        throw refused.error;
      }
    }
    if (r.error) {
      this.pending = r.rest.map((i) => i.b).concat(this.pending);
      throw r.error;
    }
    // Graph nodes whose upstream nodes just completed may start (and may require resources).
    if (released > 0) this.announceWork({ requiring: true });
  }

  /**
   * The failure that stands in for an outcome the store refused: the task fails for good with
   * CC_ERR_RESULT_REFUSED, naming the worker and what the database said.
   */
  private refusal(item: Settling, error: unknown): Settling {
    const why = (error instanceof Error ? error.message : String(error)).slice(0, 500);
    const { taskId, workerId, status } = item.p;
    this.log.error({ err: error, jobId: item.b.jobId || undefined, taskId, attempt: item.p.attempt, workerId },
      'CC_ERR_RESULT_REFUSED: the store refused to record a task\'s outcome; the task fails instead, and the rest of its batch was recorded');
    return { b: item.b, p: { taskId, attempt: item.p.attempt, workerId, status: 'failed', retryAt: undefined,
      error: taskError('CC_ERR_RESULT_REFUSED', `task ${taskId}: the store could not record the ${status === 'completed' ? 'result' : 'outcome'} sent by worker ${workerId} (${why}); the task failed instead`,
        { retryable: false, details: { status, reason: why } }) } };
  }

  /** What a commit recorded and refused: acknowledged to the workers, counted, published. */
  private recorded(batch: Settling[], result: TaskFinishResult, now: number): void {
    this.metrics.resultsCommitted.inc(result.recorded.length);
    this.metrics.commitBatch.observe(batch.length);
    const indexOf = new Map<string, number>();
    batch.forEach((i, n) => indexOf.set(`${i.p.taskId}#${i.p.attempt}`, n));
    if (this.series) {
      let completed = 0;
      let failed = 0;
      for (const r of result.recorded) {
        const status = batch[indexOf.get(`${r.taskId}#${r.attempt}`)!].p.status;
        if (status === 'completed') completed++; else if (status === 'failed') failed++;
      }
      this.series.record(completed, failed);
    }

    // Acknowledge every outcome, recorded or refused: either way the worker can forget it.
    let capped = false;
    for (const r of result.recorded) {
      const { b, p } = batch[indexOf.get(`${r.taskId}#${r.attempt}`)!];
      if (b.jobId && this.ledger.settled(b.jobId, r.retried)) capped = true;
      this.acks.add(b.workerId, { taskId: r.taskId, attempt: r.attempt });
      this.observe(b, p.status, r.retried, now);
      if (b.jobId) this.events.taskSettled(b.jobId, r.taskId);
      if (r.retried) this.wakeAt_(p.retryAt ?? now);
      if (p.status === 'failed') {
        this.onFailure?.(b);
        this.log.info({ jobId: b.jobId || undefined, taskId: r.taskId, attempt: r.attempt, workerId: b.workerId, error: p.error?.message, retry: r.retried },
          r.retried ? 'task failed; retry scheduled' : 'task failed');
      }
    }
    for (const r of result.rejected) {
      const { b } = batch[indexOf.get(`${r.taskId}#${r.attempt}`)!];
      this.acks.add(b.workerId, { taskId: r.taskId, attempt: r.attempt });
      this.metrics.resultsRejected.inc();
      const level = r.currentState === 'cancelled' ? 'debug' : 'warn';
      this.log[level]({ jobId: b.jobId || undefined, taskId: r.taskId, attempt: r.attempt, workerId: b.workerId, currentState: r.currentState, currentAttempt: r.currentAttempt },
        'CC_ERR_STALE_ATTEMPT: result refused, the task is no longer running under this attempt');
    }
    for (const j of result.jobs) if (j.finished) this.ledger.finished(j.jobId);
    this.events.publish(result.jobs);
    // A capped job or owner has room again: workers left idle by the cap look again.
    if (capped) { this.workVersion++; this.kick(); }
  }

  /** A recorded outcome in the metrics: by type and how it ended, its run time, and (completed) its latency from submission. */
  private observe(b: SettledOutcome, status: TaskOutcomeParams['status'], retried: boolean, now: number): void {
    const type = this.metrics.typeLabel(b.type || 'unknown');
    const o = b.outcome;
    this.metrics.tasksFinished.inc({ type, outcome: retried ? 'retried' : status });
    const ran = o.durationMs ?? (b.assignedAt ? now - b.assignedAt : null);
    if (ran !== null) this.metrics.executionTime.observe(type, ran / 1000);
    if (status === 'completed' && b.createdAt) this.metrics.endToEnd.observe(type, Math.max(0, now - b.createdAt) / 1000);
  }

  /** Look again at `at`, when a retry comes due. */
  private wakeAt_(at: number): void {
    if (at >= this.wakeAt || this.stopped) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    // A timer measures from the event loop's cached clock and may fire a millisecond before
    // Date.now() reaches `at`; the claim would then find the retry not yet due. Hence + 1.
    this.wakeTimer = setTimeout(() => { this.wakeTimer = null; this.wakeAt = Infinity; this.announceWork(); }, Math.max(0, at - Date.now()) + 1);
    this.wakeTimer.unref();
  }

  private async dispatch(): Promise<void> {
    // Read who shares the workers when due, even with no worker to claim for: the statistics
    // and the dashboard show it.
    const later = await this.ledger.refreshIfDue(Date.now());
    if (later !== null) this.wakeAt_(Date.now() + later);
    const targets = this.registry.targets();
    if (targets.length === 0) return;
    if (this.emptyAt.size > 2 * targets.length + 100) { this.emptyAt.clear(); this.emptyFitAt.clear(); }
    if (!targets.some((t) => t.free > 0 && this.emptyAt.get(t.workerId) !== this.workVersion)) return;
    this.rateHeld = false;
    // Start at a different worker each tick, so scarce work is spread, not always given to the first.
    this.rotate = (this.rotate + 1) % targets.length;
    for (let i = 0; i < targets.length; i++) {
      const t = targets[(this.rotate + i) % targets.length];
      const free = t.free;
      if (free <= 0 || this.emptyAt.get(t.workerId) === this.workVersion) continue;
      const version = this.workVersion;
      const now = Date.now();
      const started = performance.now();
      const claimed = await this.claimShared(t, free, now);
      this.metrics.storeCommitSeconds.observe('claim', (performance.now() - started) / 1000);
      // Tasks that require resources, in what the worker still has free: looked for when the
      // plain claim left slots free, and not again until such tasks may have appeared.
      const fitVersion = this.fitVersion;
      if (claimed.length < free && t.hello.patterns.length > 0 && this.emptyFitAt.get(t.workerId) !== fitVersion) {
        const fitting = await this.store.taskClaimFitting({
          workerId: t.workerId, patterns: t.hello.patterns, allowCode: false, limit: free - claimed.length, leaseMs: t.leaseTtlMs, now, kind: t.kind,
          free: t.freeResources(),
        });
        if (fitting.length === 0) this.emptyFitAt.set(t.workerId, fitVersion);
        claimed.push(...fitting);
      }
      for (const c of claimed) this.metrics.queueWait.observe(this.metrics.typeLabel(c.type), Math.max(0, now - c.queuedAt) / 1000);
      if (claimed.length < free) this.emptyAt.set(t.workerId, version);
      if (claimed.length === 0) continue;
      await this.deliver(t, claimed, now);
    }
    // Work held back by a spent rate limit is looked at again when the limit has room.
    const refill = this.rateHeld ? this.ledger.nextRefillMs() : null;
    if (refill !== null) this.wakeAt_(Date.now() + refill);
  }

  /**
   * Claim up to `free` tasks for a worker, shared between jobs and owners: the ledger says how
   * many each job gets, the store takes them from each job's own queue. A job that gives fewer
   * than its number (its tasks are not this worker's types, or wait for a retry or a rate
   * limit) is left out of the next round, whose choice fills the rest.
   */
  private async claimShared(t: DispatchTarget, free: number, now: number): Promise<ClaimedTask[]> {
    const out: ClaimedTask[] = [];
    const except = new Set<string>();
    const target = { allowCode: t.hello.allowCode, codeLanguages: t.hello.codeLanguages ?? ['javascript' as const], patterns: t.hello.patterns, kind: t.kind };
    for (let round = 0; round < CLAIM_ROUNDS && out.length < free; round++) {
      const plan = this.ledger.plan(free - out.length, target, except);
      if (plan.length === 0) break;
      const got = await this.store.taskClaimMany({
        workerId: t.workerId, patterns: t.hello.patterns, allowCode: t.hello.allowCode, codeLanguages: target.codeLanguages,
        limit: free - out.length, leaseMs: t.leaseTtlMs, now, kind: t.kind, jobs: plan, ...(this.ledger.rateLimited ? { rateLimits: true } : {}),
      });
      this.ledger.claimed(got);
      const perJob = new Map<string, number>();
      for (const c of got) perJob.set(c.jobId, (perJob.get(c.jobId) ?? 0) + 1);
      for (const p of plan) if ((perJob.get(p.jobId) ?? 0) < p.limit) except.add(p.jobId);
      // Under rate limits, fewer than planned may mean tasks waiting for their rate.
      if (this.ledger.rateLimited && got.length < plan.reduce((a, p) => a + p.limit, 0)) this.rateHeld = true;
      out.push(...got);
    }
    return out;
  }

  /** A map job's source and chunk size, from the cache or the store. */
  private async codeOf(jobId: string): Promise<JobCode> {
    let entry = this.code.get(jobId);
    if (entry === undefined) {
      entry = (await this.store.jobCode(jobId)) ?? { code: '', chunkSize: 1, name: null, language: 'javascript', traceContext: null };
      this.code.set(jobId, entry);
    }
    return entry;
  }

  /** A job's graph and metadata, from the cache or the store. */
  private async infoOf(jobId: string): Promise<{ graph: GraphPlan | null; metadata: Record<string, unknown> | null; traceContext: TraceContext | null }> {
    let info = this.jobInfo.get(jobId);
    if (info === undefined) {
      const job = await this.store.jobGet(jobId);
      info = { graph: job?.kind === 'graph' ? await this.store.jobGraph(jobId) : null, metadata: job?.metadata ?? null, traceContext: job?.traceContext ?? null };
      this.jobInfo.set(jobId, info);
    }
    return info;
  }

  /**
   * Claimed tasks whose stored input could not be read fail at once, as if their worker had
   * reported it (through the next group commit); they are not sent. The others go on.
   */
  private failUnreadable(t: DispatchTarget, bad: ClaimedTask[]): void {
    this.tracker?.poisoned(bad.length);
    for (const c of bad) {
      this.log.error({ jobId: c.jobId, taskId: c.taskId, attempt: c.attempt, workerId: t.workerId, reason: c.unreadable }, 'a claimed task cannot be read from the store; it fails without being sent');
      this.pending.push({ workerId: t.workerId, jobId: c.jobId, type: c.type, createdAt: c.createdAt, assignedAt: null,
        outcome: { taskId: c.taskId, attempt: c.attempt, status: 'failed', error: taskError('CC_ERR_INTERNAL', c.unreadable!, { retryable: false, reason: 'unreadable' }) } });
    }
    this.again = true;
  }

  private async deliver(t: DispatchTarget, claimed: Awaited<ReturnType<Store['taskClaimMany']>>, claimedAt: number): Promise<void> {
    // A graph node's task says which node it is and how it reads its upstream nodes; named
    // tasks carry their job's metadata. A job that cannot be read fails its tasks here, alone.
    // Tasks of traced jobs are noted with their job's trace context, for the dispatch spans.
    let traced: Map<ClaimedTask, TraceContext> | null = null;
    let info: Awaited<ReturnType<Dispatcher['infoOf']>> | null = null;
    let infoJob = '';
    let unreadableJob: string | null = null;
    for (const c of claimed) {
      if (c.kind !== 'named' || c.unreadable !== undefined) continue;
      // Claims come mostly from one job: ask the cache once per run of tasks of the same job.
      if (c.jobId !== infoJob) {
        infoJob = c.jobId;
        try {
          info = await this.infoOf(c.jobId);
          unreadableJob = null;
        } catch (err) {
          if (isStoreWideError(err)) throw err;
          info = null;
          unreadableJob = `task ${c.taskId}: its job ${c.jobId} cannot be read from the store (${(err as Error).message})`;
        }
      }
      if (unreadableJob !== null) { c.unreadable = unreadableJob; continue; }
      if (!info) continue;
      if (info.metadata) c.metadata = info.metadata;
      if (info.traceContext) (traced ??= new Map()).set(c, info.traceContext);
      const node = info.graph?.nodes[c.index];
      if (node && node.taskId === c.taskId) {
        c.graph = { nodeId: node.nodeId, ...(node.inputAdapter ? { inputAdapter: node.inputAdapter } : {}), ...(node.inputArgs ? { inputArgs: node.inputArgs } : {}) };
      }
    }
    if (claimed.some((c) => c.unreadable !== undefined)) {
      this.failUnreadable(t, claimed.filter((c) => c.unreadable !== undefined));
      claimed = claimed.filter((c) => c.unreadable === undefined);
      if (claimed.length === 0) return;
    }
    const sources: Record<string, { code: string; name: string | null; language: CodeLanguage }> = {};
    for (const jobId of this.registry.jobsWithoutCode(t, claimed)) sources[jobId] = await this.codeOf(jobId);
    // A map chunk says where its arguments start in the job, so that an error can name the
    // argument by its index in the whole job.
    for (const c of claimed) {
      if (c.kind !== 'map') continue;
      const job = await this.codeOf(c.jobId);
      c.argOffset = c.index * job.chunkSize;
      if (job.traceContext) (traced ??= new Map()).set(c, job.traceContext);
    }
    // Files the tasks carry: their names and sizes, and links to download them.
    const fileIds = [...new Set(claimed.flatMap((c) => c.fileIds ?? []))];
    if (fileIds.length > 0) {
      const byId = new Map((await this.store.fileList(fileIds)).map((f) => [f.id, f]));
      for (const c of claimed) {
        if (!c.fileIds) continue;
        c.files = c.fileIds.map((id) => byId.get(id)).filter((f) => f !== undefined)
          .map((f) => ({ fileId: f.id, filename: f.filename, size: f.size, contentType: f.contentType, url: this.fileLink(f.id) }));
      }
    }
    // A task that ran before may have left a checkpoint and batches done: the new attempt
    // resumes from them. First attempts (nearly all) cost nothing here.
    const retried = claimed.filter((c) => c.attempt > 1 && c.kind === 'named');
    if (retried.length > 0) {
      const resume = await this.store.taskResume(retried.map((c) => c.taskId));
      for (const c of retried) { const r = resume.get(c.taskId); if (r) c.resume = r; }
    }
    this.acks.flush(t.workerId);
    const dispatched = traceDispatch(claimed, traced, t.workerId, claimedAt);
    const delivered = this.registry.deliver(t, claimed, sources);
    dispatched?.(delivered);
    if (delivered) {
      this.metrics.tasksDispatched.inc(claimed.length);
      return;
    }
    await this.registry.requeue(t.workerId, claimed.map((c) => ({ taskId: c.taskId, attempt: c.attempt })),
      taskError('CC_ERR_WORKER_LOST', `worker ${t.workerId} left before the task was delivered`, { reason: 'not_delivered' }), false);
  }
}
