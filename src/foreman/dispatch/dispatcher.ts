import type { Logger } from 'pino';
import type { TaskError, TaskOutcome, WireTask } from '../../protocol/index.ts';
import { retryDelayMs } from '../../core/retry.ts';
import type { Store, TaskOutcomeParams, TaskRef } from '../../store/store.ts';
import type { JobEvents } from '../job-events.ts';
import type { ForemanMetrics } from '../foreman-metrics.ts';
import type { WorkerSession } from './worker-session.ts';

export interface DispatcherOptions {
  leaseTtlMs: number;
  /** Attempts a task may lose to vanished workers before it fails (CC_ERR_WORKER_LOST). */
  maxLostAttempts: number;
  /** How often idle workers look for work even when nothing announced any (retries coming due, other foremen). */
  sweepIntervalMs: number;
}

interface PendingOutcome {
  workerId: string;
  /** From the worker's session, for the logs ('' when the foreman no longer knew the task). */
  jobId: string;
  outcome: TaskOutcome;
}

/** How long a result acknowledgement may wait for a frame to ride in. */
const ACK_DELAY_MS = 25;

/** Bounded cache of map-job sources, so code is read from the store once per job, not per assignment. */
class CodeCache {
  private readonly map = new Map<string, string>();
  private readonly max: number;
  constructor(max: number) { this.max = max; }
  get(jobId: string): string | undefined { return this.map.get(jobId); }
  set(jobId: string, code: string): void {
    if (this.map.size >= this.max) this.map.delete(this.map.keys().next().value!);
    this.map.set(jobId, code);
  }
}

/**
 * Moves work between the store and the workers.
 *
 * One loop (`tick`) does both halves, and never runs twice at once:
 *  1. group commit: every result that arrived since the last tick is recorded in one store
 *     call (one transaction), then acknowledged to its worker;
 *  2. dispatch: every worker with free capacity claims up to that many tasks in one store
 *     call, and receives them in one frame.
 * A tick is scheduled with setImmediate whenever something happens, so under light load a
 * result is committed within the same event-loop turn, and under heavy load many results
 * share one commit. This is what lets one SQLite file carry tens of thousands of tasks per
 * second: the cost per transaction is paid per batch, not per task.
 *
 * Workers whose last claim came back short are skipped until new work is announced
 * (`workVersion`), so idle workers cost nothing while the queue is empty.
 */
export class Dispatcher {
  readonly sessions = new Map<string, WorkerSession>();
  private pending: PendingOutcome[] = [];
  private workVersion = 0;
  private scheduled = false;
  private running = false;
  private again = false;
  private stopped = false;
  private rotate = 0;
  private wakeTimer: NodeJS.Timeout | null = null;
  private wakeAt = Infinity;
  private sweepTimer: NodeJS.Timeout | null = null;
  private readonly code = new CodeCache(1000);
  private readonly pendingAcks = new Map<string, TaskRef[]>();
  private ackTimer: NodeJS.Timeout | null = null;
  private idleResolvers: (() => void)[] = [];

  private readonly store: Store;
  private readonly events: JobEvents;
  private readonly metrics: ForemanMetrics;
  private readonly log: Logger;
  private readonly options: DispatcherOptions;

  constructor(store: Store, events: JobEvents, metrics: ForemanMetrics, log: Logger, options: DispatcherOptions) {
    this.store = store;
    this.events = events;
    this.metrics = metrics;
    this.log = log;
    this.options = options;
  }

  start(): void {
    if (this.sweepTimer || this.stopped) return;
    this.sweepTimer = setInterval(() => this.announceWork(), this.options.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** Stop dispatching; commit what has arrived. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.sweepTimer = this.wakeTimer = null;
    await this.drained();
    await this.flushOutcomes();
    if (this.ackTimer) clearTimeout(this.ackTimer);
    this.ackTimer = null;
    this.sendAcks();
  }

  /** New or returning work exists: every idle worker should look again. */
  announceWork(): void {
    this.workVersion++;
    this.kick();
  }

  kick(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => void this.tick());
  }

  addSession(session: WorkerSession): void {
    this.sessions.set(session.workerId, session);
    this.metrics.connectedWorkers.set(this.sessions.size);
    this.kick();
  }

  /**
   * Forget a worker's session and put its in-flight tasks back in the queue, except those
   * listed in `keep` (a reconnecting worker said it still runs them).
   */
  async removeSession(session: WorkerSession, keep: ReadonlySet<string> = new Set()): Promise<void> {
    if (this.sessions.get(session.workerId) === session) this.sessions.delete(session.workerId);
    this.metrics.connectedWorkers.set(this.sessions.size);
    const lost: TaskRef[] = [];
    for (const [taskId, f] of session.inFlight) if (!keep.has(taskId)) lost.push({ taskId, attempt: f.attempt });
    session.inFlight.clear();
    session.revoked.clear();
    await this.takeBack(session.workerId, lost, {
      message: `CC_ERR_WORKER_LOST: worker ${session.workerId} disconnected while running the task`, code: 'CC_ERR_WORKER_LOST', reason: 'worker_lost',
    }, true);
  }

  /**
   * Put tasks taken from a worker back in the queue (or fail them, past maxLostAttempts),
   * and tell whoever watches their jobs. `countAsLost` is false when the worker handed them
   * back on purpose (drain) or never received them.
   */
  async takeBack(workerId: string, tasks: TaskRef[], error: TaskError, countAsLost: boolean): Promise<void> {
    if (tasks.length === 0) return;
    const res = await this.store.taskRequeueMany({ tasks, now: Date.now(), error, maxLost: this.options.maxLostAttempts, countAsLost });
    this.metrics.tasksRequeued.inc(res.requeued.length);
    if (res.requeued.length > 0) {
      this.log.warn({ workerId, tasks: res.requeued.length, taskIds: res.requeued.slice(0, 5).map((t) => t.taskId), reason: error.reason },
        'running tasks taken back from a worker and put back in the queue');
      this.announceWork();
    }
    if (res.failed.length > 0) {
      this.log.error({ workerId, taskIds: res.failed.slice(0, 5).map((t) => t.taskId), maxLostAttempts: this.options.maxLostAttempts },
        'CC_ERR_WORKER_LOST: tasks lost their worker too many times and failed');
    }
    this.events.publish(res.jobs);
  }

  /**
   * Take tasks away from a connected worker that is not making progress on them (a zombie):
   * requeue them and tell the worker to stop. Their slots stay counted until the worker lets go.
   */
  async revoke(session: WorkerSession, taskIds: string[], reason: string): Promise<void> {
    const refs: TaskRef[] = [];
    for (const id of taskIds) {
      const f = session.inFlight.get(id);
      if (!f) continue;
      session.inFlight.delete(id);
      session.revoked.set(id, f.attempt);
      refs.push({ taskId: id, attempt: f.attempt });
      session.conn.send({ type: 'cancel_task', taskId: id, attempt: f.attempt, reason });
    }
    await this.takeBack(session.workerId, refs, { message: `CC_ERR_WORKER_LOST: ${reason}`, code: 'CC_ERR_WORKER_LOST', reason: 'zombie' }, true);
  }

  /** A worker handed tasks back unfinished (it is draining): requeue them without counting a loss. */
  async release(session: WorkerSession, refs: readonly TaskRef[], reason: string): Promise<void> {
    const mine: TaskRef[] = [];
    for (const r of refs) {
      const f = session.inFlight.get(r.taskId);
      if (f && f.attempt === r.attempt) { session.inFlight.delete(r.taskId); mine.push(r); }
    }
    await this.takeBack(session.workerId, mine, { message: `CC_ERR_SHUTTING_DOWN: worker ${session.workerId} handed the task back: ${reason}`, code: 'CC_ERR_SHUTTING_DOWN', reason: 'released' }, false);
  }

  /** Results arrived from a worker: free its slots now, record them in the next group commit. */
  acceptOutcomes(session: WorkerSession, outcomes: readonly TaskOutcome[]): void {
    for (const o of outcomes) {
      const f = session.inFlight.get(o.taskId);
      if (f && f.attempt === o.attempt) session.inFlight.delete(o.taskId);
      if (session.revoked.get(o.taskId) === o.attempt) session.revoked.delete(o.taskId);
      this.pending.push({ workerId: session.workerId, jobId: f?.jobId ?? '', outcome: o });
    }
    this.kick();
  }

  /** Resolves when no tick is running or scheduled and no result waits to be committed. */
  drained(): Promise<void> {
    if (!this.running && !this.scheduled && this.pending.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleResolvers.push(resolve));
  }

  private async tick(): Promise<void> {
    this.scheduled = false;
    if (this.running) { this.again = true; return; }
    this.running = true;
    try {
      await this.flushOutcomes();
      if (!this.stopped) await this.dispatch();
    } catch (err) {
      this.log.error({ err }, 'dispatch tick failed; will retry on the next event');
    } finally {
      this.running = false;
      if (this.again || this.pending.length > 0) { this.again = false; this.kick(); }
      else if (!this.scheduled) for (const r of this.idleResolvers.splice(0)) r();
    }
  }

  private async flushOutcomes(): Promise<void> {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    const now = Date.now();
    const params: TaskOutcomeParams[] = batch.map(({ workerId, outcome: o }) => ({
      taskId: o.taskId, attempt: o.attempt, workerId, status: o.status, result: o.result, error: o.error,
      retryAt: o.status === 'failed' && o.error?.retryable !== false ? now + retryDelayMs(o.attempt) : undefined,
    }));
    const result = await this.store.taskFinishMany({ outcomes: params, now });
    this.metrics.resultsCommitted.inc(result.recorded.length);
    this.metrics.commitBatch.observe(batch.length);
    const indexOf = new Map<string, number>();
    batch.forEach((b, i) => indexOf.set(`${b.outcome.taskId}#${b.outcome.attempt}`, i));

    // Acknowledge every outcome, recorded or refused: either way the worker can forget it.
    // Acks are not urgent (they only let the worker free memory), so they ride along with the
    // next assignment to that worker, or leave on a short timer: one write fewer per task.
    for (const r of result.recorded) {
      const i = indexOf.get(`${r.taskId}#${r.attempt}`)!;
      const b = batch[i];
      this.queueAck(b.workerId, { taskId: r.taskId, attempt: r.attempt });
      if (r.retried) this.wakeAt_(params[i].retryAt ?? now);
      if (b.outcome.status === 'failed') {
        this.log.info({ jobId: b.jobId || undefined, taskId: r.taskId, attempt: r.attempt, workerId: b.workerId, error: b.outcome.error?.message, retry: r.retried },
          r.retried ? 'task failed; retry scheduled' : 'task failed');
      }
    }
    for (const r of result.rejected) {
      const b = batch[indexOf.get(`${r.taskId}#${r.attempt}`)!];
      this.queueAck(b.workerId, { taskId: r.taskId, attempt: r.attempt });
      this.metrics.resultsRejected.inc();
      const level = r.currentState === 'cancelled' ? 'debug' : 'warn';
      this.log[level]({ jobId: b.jobId || undefined, taskId: r.taskId, attempt: r.attempt, workerId: b.workerId, currentState: r.currentState, currentAttempt: r.currentAttempt },
        'CC_ERR_STALE_ATTEMPT: result refused, the task is no longer running under this attempt');
    }
    this.events.publish(result.jobs);
  }

  private queueAck(workerId: string, ref: TaskRef): void {
    let list = this.pendingAcks.get(workerId);
    if (!list) { list = []; this.pendingAcks.set(workerId, list); }
    list.push(ref);
    if (!this.ackTimer) {
      this.ackTimer = setTimeout(() => { this.ackTimer = null; this.sendAcks(); }, ACK_DELAY_MS);
      this.ackTimer.unref();
    }
  }

  /** Send pending acks: all of them, or one worker's (when something else goes to it anyway). */
  private sendAcks(workerId?: string): void {
    const ids = workerId === undefined ? [...this.pendingAcks.keys()] : [workerId];
    for (const id of ids) {
      const tasks = this.pendingAcks.get(id);
      if (!tasks) continue;
      this.pendingAcks.delete(id);
      this.sessions.get(id)?.conn.send({ type: 'result_ack', tasks });
    }
  }

  private wakeAt_(at: number): void {
    if (at >= this.wakeAt || this.stopped) return;
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(() => { this.wakeTimer = null; this.wakeAt = Infinity; this.announceWork(); }, Math.max(0, at - Date.now()));
    this.wakeTimer.unref();
  }

  private async dispatch(): Promise<void> {
    const sessions = [...this.sessions.values()];
    if (sessions.length === 0) return;
    // Start at a different worker each tick, so scarce work is spread, not always given to the first.
    this.rotate = (this.rotate + 1) % sessions.length;
    for (let i = 0; i < sessions.length; i++) {
      const s = sessions[(this.rotate + i) % sessions.length];
      const free = s.free;
      if (free <= 0 || s.emptyAtVersion === this.workVersion) continue;
      const version = this.workVersion;
      const claimed = await this.store.taskClaimMany({
        workerId: s.workerId, patterns: s.hello.patterns, allowCode: s.hello.allowCode,
        limit: free, leaseMs: this.options.leaseTtlMs, now: Date.now(),
      });
      if (claimed.length < free) s.emptyAtVersion = version;
      if (claimed.length === 0) continue;
      if (s.conn.closed || this.sessions.get(s.workerId) !== s) {
        await this.takeBack(s.workerId, claimed.map((t) => ({ taskId: t.taskId, attempt: t.attempt })),
          { message: `worker ${s.workerId} left before the task was delivered`, code: 'CC_ERR_WORKER_LOST', reason: 'not_delivered' }, false);
        continue;
      }
      const now = Date.now();
      const code: Record<string, string> = {};
      for (const t of claimed) {
        s.inFlight.set(t.taskId, { attempt: t.attempt, jobId: t.jobId, type: t.type, assignedAt: now, timeoutMs: t.timeoutMs });
        if (t.kind === 'map' && !s.codeSent.has(t.jobId)) {
          let source = this.code.get(t.jobId);
          if (source === undefined) {
            source = (await this.store.jobCode(t.jobId)) ?? '';
            this.code.set(t.jobId, source);
          }
          code[t.jobId] = source;
          s.codeSent.add(t.jobId);
        }
      }
      const tasks: WireTask[] = claimed;
      this.sendAcks(s.workerId);
      s.conn.send(Object.keys(code).length > 0 ? { type: 'assign_tasks', tasks, code } : { type: 'assign_tasks', tasks });
      this.metrics.tasksDispatched.inc(claimed.length);
    }
  }
}
