import type { Logger } from 'pino';
import {
  CrowdComputeError, taskError, type CodeLanguage, type Hello, type TaskError, type TaskOutcome, type TaskRef, type WireTask,
} from '../../protocol/index.ts';
import { overdueAssignments, reconcileHeartbeat, reconcileHello } from '../../core/leases.ts';
import type { ResourceAmounts } from '../../core/resources.ts';
import type { ClaimedTask, WorkerKind, ExpiredLease, Store, TaskRequeueResult } from '../../store/store.ts';
import { commitInParts } from '../../core/commit-in-parts.ts';
import { isStoreWideError } from '../../store/store-errors.ts';
import type { ForemanMetrics } from '../shared/foreman-metrics.ts';
import type { JobEvents } from '../shared/job-events.ts';
import type { Peer } from '../shared/peer.ts';
import { WorkerSession } from './worker-session.ts';

/** Timings and limits the registry applies. */
export interface WorkerRegistryOptions {
  foremanId: string;
  leaseTtlMs: number;
  /** Attempts a task may lose to vanished workers before it fails (CC_ERR_WORKER_LOST). */
  maxLostAttempts: number;
  /** Deadline of a task without its own timeoutMs, for zombie detection. */
  defaultTimeoutMs: number;
  /** The clock (tests move it). Default Date.now. */
  clock?: () => number;
}

/** What the registry tells the dispatcher. */
export interface RegistrySignals {
  /** Tasks went back to the queue: every idle worker should look again. */
  workAvailable(): void;
  /** A worker (or, without an id, some worker) may have free slots: dispatch again. */
  lookAgain(workerId?: string): void;
}

/** A worker the dispatcher may hand tasks to. */
export interface DispatchTarget {
  readonly workerId: string;
  /** Slots free now. */
  readonly free: number;
  readonly hello: Pick<Hello, 'patterns' | 'allowCode' | 'codeLanguages'>;
  /** What it is: claims leave out tasks of jobs that run only on the other kind. */
  readonly kind: WorkerKind;
  /** The lease its claims take. */
  readonly leaseTtlMs: number;
  /** What it announced, less what its running tasks require. */
  freeResources(): ResourceAmounts;
}

/** What kind of worker a hello's `resources.runtime` describes: `node 24.1.0`, `browser Chrome 131`, `python 3.11.2`, … */
export function workerKind(runtime: string | undefined): 'node' | 'browser' | 'python' | 'other' {
  if (!runtime) return 'other';
  if (/^node\b/i.test(runtime)) return 'node';
  if (/^python\b/i.test(runtime)) return 'python';
  return /^browser\b/i.test(runtime) ? 'browser' : 'other';
}

/** A worker connected to or disconnected from this foreman. */
export interface ConnectionEvent {
  event: 'connected' | 'disconnected';
  at: number;
  remote: string | null;
  /** What else happened: tasks kept across a reconnect, tasks put back. */
  detail: string | null;
}

/** One outcome a worker reported, with the job it belongs to ('' if the foreman no longer knew the task). */
export interface SettledOutcome {
  workerId: string;
  /** The kind of worker that reported it (absent when the foreman itself decided the outcome). */
  kind?: WorkerKind;
  jobId: string;
  /** The task's type, when and when the foreman handed it out, if it knew the task (metrics). */
  type?: string | null;
  createdAt?: number | null;
  assignedAt?: number | null;
  outcome: TaskOutcome;
}

/** Connected workers at a glance (the REST API, metrics). */
export interface RegistrySnapshot {
  connected: number;
  capacity: number;
  running: number;
  /** Tasks each connected worker runs now. */
  runningByWorker: ReadonlyMap<string, number>;
}

/**
 * Every connected worker's session, and the only code that changes one: admitting a worker,
 * its heartbeats, handing it tasks, hearing their outcomes, taking tasks back (disconnect,
 * drain, zombie, expired lease) and telling it to stop a task. The rules of leases are pure
 * functions in core/leases.ts; the registry applies them and records the result in the store.
 */
export class WorkerRegistry {
  /** The last connections of each worker, oldest first (see connectionLog). */
  private readonly connections = new Map<string, ConnectionEvent[]>();
  /** Counts connections and departures: a reader of the workers list knows when to read it again. */
  membership = 0;
  private readonly byId = new Map<string, WorkerSession>();
  private readonly byPeer = new Map<Peer, WorkerSession>();
  private readonly store: Store;
  private readonly events: JobEvents;
  private readonly metrics: ForemanMetrics;
  private readonly log: Logger;
  private readonly options: WorkerRegistryOptions;
  private readonly signals: RegistrySignals;
  private readonly now: () => number;

  constructor(deps: { store: Store; events: JobEvents; metrics: ForemanMetrics; log: Logger }, options: WorkerRegistryOptions, signals: RegistrySignals) {
    this.store = deps.store;
    this.events = deps.events;
    this.metrics = deps.metrics;
    this.log = deps.log;
    this.options = options;
    this.signals = signals;
    this.now = options.clock ?? Date.now;
  }

  /** Connected workers. */
  get size(): number { return this.byId.size; }

  /** True when the peer has said hello. */
  isWorker(peer: Peer): boolean { return this.byPeer.has(peer); }

  private sessionOf(peer: Peer, type: string): WorkerSession {
    const s = this.byPeer.get(peer);
    if (!s) throw new CrowdComputeError('CC_ERR_NOT_HELLO', `"${type}" is a worker message; send "hello" first`);
    return s;
  }

  // ------------------------------------------------------------------ sessions

  /**
   * A worker said hello. A worker that reconnects before its old socket was noticed dead
   * replaces its old session. Tasks the store says it holds are adopted if its hello lists
   * them and requeued otherwise. Resolves false if the peer closed meanwhile.
   */
  async admit(peer: Peer, hello: Hello, who: { kind?: WorkerKind; leaseTtlMs?: number; tokenId?: string | null } = {}): Promise<boolean> {
    if (this.byPeer.has(peer)) throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', `worker ${hello.workerId} already said hello on this connection`);
    const reported = hello.running ?? [];
    const old = this.byId.get(hello.workerId);
    if (old) {
      this.log.info({ workerId: hello.workerId }, 'worker reconnected; replacing its previous connection');
      this.byPeer.delete(old.peer);
      old.peer.close(4001, 'replaced by a new connection from the same worker');
      await this.forget(old, new Set(reported.map((r) => r.taskId)));
    }
    const now = this.now();
    const session = new WorkerSession(peer, hello, now, { kind: who.kind ?? 'node', leaseTtlMs: who.leaseTtlMs ?? this.options.leaseTtlMs, tokenId: who.tokenId ?? null });
    const { adopt, lost } = reconcileHello({ storeHeld: await this.store.taskListRunningByWorker(hello.workerId), reported });
    for (const t of adopt) session.assigned.set(t.taskId, { attempt: t.attempt, jobId: '', type: '', assignedAt: now, timeoutMs: null, createdAt: 0 });
    // The worker proved it still holds the adopted tasks: renew their leases now.
    if (adopt.length > 0) await this.store.taskLeaseExtend({ workerId: hello.workerId, tasks: adopt, until: now + session.leaseTtlMs });
    await this.requeue(hello.workerId, lost, taskError('CC_ERR_WORKER_LOST', `worker ${hello.workerId} reconnected without the task`, { reason: 'worker_lost' }), true);
    await this.store.workerUpsert(this.onlineRecord(session));
    if (peer.closed) return false;
    this.byPeer.set(peer, session);
    this.byId.set(hello.workerId, session);
    this.countWorkers();
    // Tasks it says it still runs that are no longer its (taken back while it was away): it
    // must stop them, or it works on for nothing. (Finished ones it lists are not running, and
    // the stop is ignored; their results are recorded or refused as usual.)
    const held = new Set(adopt.map((t) => `${t.taskId}:${t.attempt}`));
    for (const r of reported) {
      if (!held.has(`${r.taskId}:${r.attempt}`)) this.stopTask(hello.workerId, r, `task ${r.taskId} attempt ${r.attempt} was taken back from worker ${hello.workerId} while it was away`, 'lease_lost');
    }
    this.note(hello.workerId, { event: 'connected', at: now, remote: peer.remote ?? null, detail: adopt.length ? `kept ${adopt.length} running tasks` : null });
    this.log.info({ workerId: hello.workerId, capacity: hello.capacity, patterns: hello.patterns, allowCode: hello.allowCode, remote: peer.remote, adopted: adopt.length },
      'worker connected');
    this.signals.lookAgain(hello.workerId);
    return true;
  }

  /**
   * A worker's connection closed. Its tasks go back to the queue, unless `keepAssignments`
   * (this foreman is the one stopping: the worker did not fail, and reclaims its tasks when it
   * reconnects, here or elsewhere; the lease covers a worker that never comes back).
   */
  async disconnected(peer: Peer, options: { keepAssignments: boolean }): Promise<void> {
    const s = this.byPeer.get(peer);
    if (!s) return;
    this.byPeer.delete(peer);
    this.log.info({ workerId: s.workerId, running: s.assigned.size }, 'worker disconnected');
    this.note(s.workerId, { event: 'disconnected', at: this.now(), remote: peer.remote ?? null, detail: options.keepAssignments ? 'the foreman stopped' : s.assigned.size ? `${s.assigned.size} running tasks went back to the queue` : null });
    await this.forget(s, options.keepAssignments ? new Set(s.assigned.keys()) : new Set());
    if (!this.byId.has(s.workerId)) await this.store.workerDisconnected({ workerId: s.workerId, now: this.now() });
  }

  /** Connected workers in the metrics, in all and by kind (a Node process, a browser tab, something else). */
  private countWorkers(): void {
    this.membership++;
    this.metrics.connectedWorkers.set(this.byId.size);
    const kinds = { node: 0, browser: 0 };
    for (const s of this.byId.values()) kinds[s.kind]++;
    for (const [kind, n] of Object.entries(kinds)) this.metrics.workersByKind.set({ kind }, n);
  }

  /** Drop a session; its tasks not in `keep` go back to the queue as lost. */
  private async forget(s: WorkerSession, keep: ReadonlySet<string>): Promise<void> {
    if (this.byId.get(s.workerId) === s) {
      this.byId.delete(s.workerId);
      this.countWorkers();
    }
    const lost: TaskRef[] = [];
    for (const [taskId, a] of s.assigned) if (!keep.has(taskId)) lost.push({ taskId, attempt: a.attempt });
    s.assigned.clear();
    s.revoked.clear();
    await this.requeue(s.workerId, lost, taskError('CC_ERR_WORKER_LOST', `worker ${s.workerId} disconnected while running the task`, { reason: 'worker_lost' }), true);
  }

  /**
   * A heartbeat lists what the worker runs. Its leases are renewed; revoked tasks it no
   * longer lists free their slots; tasks it should list and does not are taken back.
   * `acknowledge` is called with the number of leases held, before any store work.
   */
  async heartbeat(peer: Peer, running: readonly TaskRef[], acknowledge: (held: number) => void, assignmentsRead?: number): Promise<void> {
    const s = this.sessionOf(peer, 'heartbeat');
    const now = this.now();
    const r = reconcileHeartbeat({ assigned: s.assigned, revoked: s.revoked, listed: running, previousHeartbeatAt: s.previousHeartbeatAt, assignmentsRead });
    acknowledge(r.held.length);
    for (const taskId of r.letGo) s.revoked.delete(taskId);
    s.previousHeartbeatAt = s.lastSeenAt = now;
    if (r.held.length > 0) await this.store.taskLeaseExtend({ workerId: s.workerId, tasks: r.held, until: now + s.leaseTtlMs });
    if (r.missing.length > 0) {
      for (const t of r.missing) s.assigned.delete(t.taskId);
      this.log.warn({ workerId: s.workerId, taskIds: r.missing.slice(0, 5).map((t) => t.taskId) }, 'worker no longer lists tasks it was given; taking them back');
      await this.requeue(s.workerId, r.missing, taskError('CC_ERR_WORKER_LOST', `worker ${s.workerId} stopped reporting the task`, { reason: 'dropped' }), true);
    }
    if (s.free > 0) this.signals.lookAgain();
  }

  /** The worker is shutting down: it gets nothing new. */
  draining(peer: Peer): void {
    const s = this.sessionOf(peer, 'worker_draining');
    s.draining = true;
    this.log.info({ workerId: s.workerId, running: s.assigned.size }, 'worker draining: no new tasks for it');
  }

  /** The worker takes work again (after a drain), optionally with a new capacity. */
  ready(peer: Peer, capacity: number | undefined, maxForBrowsers = Infinity): void {
    const s = this.sessionOf(peer, 'worker_ready');
    if (capacity) s.hello = { ...s.hello, capacity: s.kind === 'browser' ? Math.min(capacity, maxForBrowsers) : capacity };
    s.draining = false;
    this.signals.lookAgain(s.workerId);
  }

  /** The worker handed tasks back unfinished (it is draining): requeued without counting a loss. */
  async release(peer: Peer, refs: readonly TaskRef[], reason: string): Promise<void> {
    const s = this.sessionOf(peer, 'release_tasks');
    const mine = refs.filter((r) => s.assigned.get(r.taskId)?.attempt === r.attempt);
    for (const r of mine) s.assigned.delete(r.taskId);
    await this.requeue(s.workerId, mine, taskError('CC_ERR_SHUTTING_DOWN', `worker ${s.workerId} handed the task back: ${reason}`, { reason: 'released' }), false);
  }

  // ------------------------------------------------------------------ tasks

  /** Workers the dispatcher may give tasks to, in a stable order. */
  targets(): DispatchTarget[] {
    return [...this.byId.values()];
  }

  /** Map jobs among `tasks` whose code the target's connection has not received. */
  jobsWithoutCode(target: DispatchTarget, tasks: readonly ClaimedTask[]): string[] {
    const s = target as WorkerSession;
    return [...new Set(tasks.filter((t) => t.kind === 'map' && !s.codeSent.has(t.jobId)).map((t) => t.jobId))];
  }

  /**
   * Hand claimed tasks to a worker, with the source of each map job its connection has not
   * seen. Returns false when the worker left (or reconnected) since the claim: the caller
   * puts the tasks back.
   */
  deliver(target: DispatchTarget, tasks: readonly ClaimedTask[], sources: Readonly<Record<string, { code: string; name: string | null; language?: CodeLanguage }>>): boolean {
    const s = target as WorkerSession;
    if (this.byId.get(s.workerId) !== s || s.peer.closed) return false;
    const now = this.now();
    const code: Record<string, string> = {};
    const languages: Record<string, CodeLanguage> = {};
    const jobNames: Record<string, string> = {};
    const message = ++s.assignMessages;
    for (const t of tasks) {
      s.assigned.set(t.taskId, t.requires
        ? { attempt: t.attempt, jobId: t.jobId, type: t.type, assignedAt: now, message, timeoutMs: t.timeoutMs, createdAt: t.createdAt, requires: t.requires }
        : { attempt: t.attempt, jobId: t.jobId, type: t.type, assignedAt: now, message, timeoutMs: t.timeoutMs, createdAt: t.createdAt });
      const source = sources[t.jobId];
      if (t.kind === 'map' && !s.codeSent.has(t.jobId) && source !== undefined) {
        code[t.jobId] = source.code;
        if (source.language && source.language !== 'javascript') languages[t.jobId] = source.language;
        if (source.name) jobNames[t.jobId] = source.name.slice(0, 200);
        s.codeSent.add(t.jobId);
      }
    }
    // What the worker needs, not the foreman's bookkeeping (createdAt, queuedAt).
    const wire: WireTask[] = tasks.map((t) => {
      const w: WireTask = { taskId: t.taskId, jobId: t.jobId, index: t.index, kind: t.kind, type: t.type, input: t.input as WireTask['input'], attempt: t.attempt, priority: t.priority, timeoutMs: t.timeoutMs };
      if (t.argOffset !== undefined) w.argOffset = t.argOffset;
      if (t.resume !== undefined) w.resume = t.resume;
      if (t.graph !== undefined) w.graph = t.graph;
      if (t.files !== undefined) w.files = t.files;
      if (t.metadata !== undefined) w.metadata = t.metadata;
      if (t.traceContext !== undefined) w.traceContext = t.traceContext;
      return w;
    });
    s.peer.send(Object.keys(code).length > 0
      ? { type: 'assign_tasks', tasks: wire, code, ...(Object.keys(languages).length > 0 ? { languages } : {}), ...(Object.keys(jobNames).length > 0 ? { jobNames } : {}) }
      : { type: 'assign_tasks', tasks: wire });
    // A worker gets one assignment per dispatch, so nothing is gained by holding it to the end
    // of the turn. Written now, it leaves ahead of what the turn queued for clients (a
    // submission's acceptance): the job's result waits on this frame, not on those.
    s.peer.flush();
    return true;
  }

  /** Outcomes arrived from a worker: free their slots now. The dispatcher records them. */
  settle(peer: Peer, outcomes: readonly TaskOutcome[]): SettledOutcome[] {
    const s = this.sessionOf(peer, 'task_results');
    s.lastSeenAt = this.now();
    return outcomes.map((o) => {
      const a = s.assigned.get(o.taskId);
      if (a && a.attempt === o.attempt) s.assigned.delete(o.taskId);
      if (s.revoked.get(o.taskId) === o.attempt) s.revoked.delete(o.taskId);
      return { workerId: s.workerId, kind: s.kind, jobId: a?.jobId ?? '', type: a?.type ?? null, createdAt: a?.createdAt || null, assignedAt: a?.assignedAt ?? null, outcome: o };
    });
  }

  /** The worker id of the session on this connection. */
  workerIdOf(peer: Peer): string {
    return this.sessionOf(peer, 'task_record').workerId;
  }

  /** The job of a task this worker holds under that attempt, or null (progress of a task it lost). */
  heldJob(peer: Peer, taskId: string, attempt: number): string | null {
    const a = this.sessionOf(peer, 'task_progress').assigned.get(taskId);
    return a && a.attempt === attempt ? a.jobId : null;
  }

  /** Acknowledge committed (or refused) outcomes: the worker may forget them. */
  acknowledge(workerId: string, tasks: TaskRef[]): void {
    this.byId.get(workerId)?.peer.send({ type: 'result_ack', tasks });
  }

  /** Tell a worker that an outcome it sent could not be recorded as sent, and what was recorded instead. */
  refuseResult(workerId: string, ref: TaskRef, error: TaskError): void {
    this.byId.get(workerId)?.peer.send({ type: 'result_ack', tasks: [ref], refused: [{ ...ref, error: { code: error.code ?? 'CC_ERR_RESULT_REFUSED', message: error.message } }] });
  }

  /** Tell a worker connected here to stop an attempt (the only place cancel_task is sent). */
  stopTask(workerId: string | null, ref: TaskRef, reason: string, cause: 'coordinator' | 'lease_lost' = 'coordinator'): void {
    if (!workerId) return;
    this.byId.get(workerId)?.peer.send(cause === 'coordinator'
      ? { type: 'cancel_task', taskId: ref.taskId, attempt: ref.attempt, reason }
      : { type: 'cancel_task', taskId: ref.taskId, attempt: ref.attempt, reason, cause });
  }

  /** Take tasks from a worker that may still run them: their slots stay counted until it lets go. */
  private revoke(s: WorkerSession, refs: readonly TaskRef[], reason: string): void {
    for (const r of refs) {
      s.assigned.delete(r.taskId);
      s.revoked.set(r.taskId, r.attempt);
      this.stopTask(s.workerId, r, reason, 'lease_lost');
    }
  }

  /**
   * Zombies: workers that heartbeat but hold tasks past their deadline plus a lease TTL lose
   * those tasks (requeued, and the worker told to stop).
   */
  async revokeOverdue(now: number): Promise<void> {
    for (const s of [...this.byId.values()]) {
      const late = overdueAssignments({ assigned: s.assigned, now, defaultTimeoutMs: this.options.defaultTimeoutMs, leaseTtlMs: s.leaseTtlMs });
      if (late.length === 0) continue;
      const reason = `worker ${s.workerId} did not finish the task within its deadline plus the lease TTL`;
      this.log.warn({ workerId: s.workerId, taskIds: late.slice(0, 5).map((t) => t.taskId), count: late.length }, 'zombie: worker holds tasks past their deadline; taking them back');
      this.revoke(s, late, reason);
      await this.requeue(s.workerId, late, taskError('CC_ERR_WORKER_LOST', reason, { reason: 'zombie' }), true);
    }
  }

  /**
   * The store requeued tasks whose leases expired. Those still held by a worker connected here
   * (its heartbeats were late) must stop there; their slots stay counted until it lets go.
   */
  leasesExpired(expired: readonly ExpiredLease[]): void {
    for (const t of expired) {
      const s = t.workerId ? this.byId.get(t.workerId) : undefined;
      if (s && s.assigned.get(t.taskId)?.attempt === t.attempt) this.revoke(s, [t], 'lease expired');
    }
  }

  /**
   * Put tasks taken from a worker back in the queue (or fail them, past maxLostAttempts), and
   * tell whoever watches their jobs. `countAsLost` is false when the worker handed them back
   * on purpose or never received them.
   */
  async requeue(workerId: string, tasks: TaskRef[], error: TaskError, countAsLost: boolean): Promise<void> {
    if (tasks.length === 0) return;
    const now = this.now();
    // A task whose row the database will not change is left to its lease (the lease reaper
    // sets it aside in turn); the others go back now.
    const r = await commitInParts(tasks, (part) => this.store.taskRequeueMany({ tasks: part, now, error, maxLost: this.options.maxLostAttempts, countAsLost }), isStoreWideError);
    for (const { item, error: err } of r.poisoned) {
      this.log.error({ err, workerId, taskId: item.taskId, attempt: item.attempt }, 'the store refused to put this task back in the queue; it is left to its lease, and the others go back now');
    }
    for (const part of r.done) this.requeued(workerId, part.value, error);
    if (r.error !== undefined) throw r.error;
  }

  private requeued(workerId: string, res: TaskRequeueResult, error: TaskError): void {
    this.metrics.tasksRequeued.inc(res.requeued.length);
    if (res.requeued.length > 0) {
      this.log.warn({ workerId, tasks: res.requeued.length, taskIds: res.requeued.slice(0, 5).map((t) => t.taskId), reason: error.reason },
        'running tasks taken back from a worker and put back in the queue');
      this.signals.workAvailable();
    }
    if (res.failed.length > 0) {
      this.log.error({ workerId, taskIds: res.failed.slice(0, 5).map((t) => t.taskId), maxLostAttempts: this.options.maxLostAttempts },
        'CC_ERR_WORKER_LOST: tasks lost their worker too many times and failed');
    }
    this.events.publish(res.jobs);
  }

  /** When a worker connected here was last heard from (epoch ms), or null when it is not connected here. */
  lastSeen(workerId: string): number | null {
    return this.byId.get(workerId)?.lastSeenAt ?? null;
  }

  /**
   * Write when each connected worker was last heard from to the store, in one write, for those
   * heard from since the last time. Heartbeats only touch memory (a write per heartbeat per
   * worker would cost the store more than the rest of an idle foreman's work); this runs now
   * and then, so that other foremen, and this one after a restart, see a connected worker's
   * last seen at most that old.
   */
  async writeLastSeen(): Promise<void> {
    const due = [...this.byId.values()].filter((s) => s.lastSeenAt > s.storedSeenAt);
    if (due.length === 0) return;
    const workers = due.map((s) => ({ id: s.workerId, at: s.lastSeenAt }));
    await this.store.workerSeen({ foremanId: this.options.foremanId, workers });
    due.forEach((s, i) => { s.storedSeenAt = Math.max(s.storedSeenAt, workers[i].at); });
  }

  /**
   * Record every worker connected here online again (another foreman took this one for gone
   * and marked them offline: see ForemanLease). Returns how many.
   */
  async recordOnlineAgain(): Promise<number> {
    const sessions = [...this.byId.values()];
    for (const s of sessions) await this.store.workerUpsert(this.onlineRecord(s));
    return sessions.length;
  }

  /** A connected worker's row in the store. */
  private onlineRecord(s: WorkerSession): Parameters<Store['workerUpsert']>[0] {
    const h = s.hello;
    return { id: h.workerId, state: 'online', capacity: h.capacity, patterns: h.patterns, allowCode: h.allowCode,
      resources: h.resources ?? {}, version: h.version ?? null, foremanId: this.options.foremanId, connectedAt: s.connectedAt, lastSeenAt: s.lastSeenAt };
  }

  /** Browser tabs connected here with this join link's credential. */
  connectedWith(tokenId: string): number {
    let n = 0;
    for (const s of this.byId.values()) if (s.tokenId === tokenId) n++;
    return n;
  }

  /** A worker's last connections and disconnections on this foreman, newest first. */
  connectionLog(workerId: string): readonly ConnectionEvent[] {
    return [...(this.connections.get(workerId) ?? [])].reverse();
  }

  /** What a worker connected here runs now. */
  runningOf(workerId: string): { taskId: string; jobId: string; type: string; attempt: number; assignedAt: number }[] {
    const s = this.byId.get(workerId);
    if (!s) return [];
    return [...s.assigned].map(([taskId, a]) => ({ taskId, jobId: a.jobId, type: a.type, attempt: a.attempt, assignedAt: a.assignedAt }));
  }

  private note(workerId: string, event: ConnectionEvent): void {
    let log = this.connections.get(workerId);
    if (!log) {
      // Bounded: the workers seen most recently keep their history.
      if (this.connections.size >= 1000) this.connections.delete(this.connections.keys().next().value!);
      log = [];
      this.connections.set(workerId, log);
    }
    log.push(event);
    if (log.length > 20) log.shift();
  }

  /** Connected workers at a glance. */
  snapshot(): RegistrySnapshot {
    const runningByWorker = new Map<string, number>();
    let capacity = 0;
    let running = 0;
    for (const s of this.byId.values()) {
      runningByWorker.set(s.workerId, s.assigned.size);
      capacity += s.capacity;
      running += s.assigned.size;
    }
    return { connected: this.byId.size, capacity, running, runningByWorker };
  }
}
