import type { Logger } from 'pino';
import { CrowdComputeError, TERMINAL_JOB_STATES, type JobSpec, type NamedTaskSpec, type Requirements, type TaskError } from '../../protocol/index.ts';
import { mayAccessJob, maySubmit, ownerOf, requireScope, submissionScope, unauthenticated, type Principal } from '../../core/access.ts';
import type { JobInsertParams, JobInsertResult, JobRecord, JobRetryResult, Store, TaskRecord, WorkerKind } from '../../store/store.ts';
import type { ForemanMetrics } from '../shared/foreman-metrics.ts';
import type { WorkerRegistry } from '../workers/worker-registry.ts';
import type { JobEvents } from '../shared/job-events.ts';
import { buildJob, buildPart, type SubmissionLimits } from './job-submission.ts';
import { checkPythonFunction } from './python-code-check.ts';
import { SubmissionGroup } from './submission-group.ts';
import type { WorkAnnouncement } from '../shared/work-announcement.ts';
import { matchesAny } from '../../core/pattern.ts';
import { announced, describeRequirements, fits } from '../../core/resources.ts';
import { failsGraph } from '../../core/graph.ts';
import { initialTaskState } from '../../core/task-transitions.ts';
import { workerKind } from '../workers/worker-registry.ts';
import { SpanKind, SpanStatusCode, context, type Span } from '@opentelemetry/api';
import { ATTR, contextFrom, traceContextOf, tracer } from '../../tracing/trace-api.ts';

/** How many of a waiting job's queued tasks its warnings look at: their types stand for the rest. */
const WAITING_SAMPLE = 1_000;

/** Why a job takes no more parts, for the error that refuses one. */
function whyClosed(j: JobRecord): string {
  switch (j.closedBy) {
    case 'open_timeout': return `was closed by its open timeout: no part and no seal came for ${j.openTimeoutMs ?? '?'} ms (openTimeout), and it was ${j.cancelRequested ? 'cancelled' : 'sealed'}`;
    case 'deadline': return `passed its deadline${j.deadline !== null ? ` ${new Date(j.deadline).toISOString()}` : ''}`;
    case 'cancel': return 'was cancelled';
    case 'seal': return 'was sealed';
    case 'failure': return 'failed as a whole';
    default: return j.cancelRequested ? 'was cancelled' : 'was not submitted open, or was sealed';
  }
}

/** Submission limits, plus how long an idempotency key returns the same job. */
export interface JobServiceOptions extends SubmissionLimits {
  idempotencyTtlMs: number;
}

/**
 * Submitting, reading and cancelling jobs, shared by the REST API and the WebSocket so the two
 * cannot drift apart, with the access rules of core/access.ts: a key sees and cancels its own
 * jobs (others are "not found"), admin sees all. A submission is acknowledged only after its
 * transaction commits.
 */
export class JobService {
  private readonly store: Store;
  private readonly registry: WorkerRegistry;
  private readonly events: JobEvents;
  private readonly metrics: ForemanMetrics;
  private readonly log: Logger;
  private readonly workAvailable: (work?: WorkAnnouncement) => void;
  /** A job now has an open timeout or a deadline at `at` (the expiry timer wakes by then). */
  onExpiry: ((at: number) => void) | null = null;
  /** An admin cancelled another owner's work (an audit event). */
  /** Tasks were stored that wait until `at` (the earliest of them): the releaser sets its timer by it. */
  onDelayed: ((at: number) => void) | null = null;
  onAdminCancel: ((event: { keyId: string; jobId: string; taskId?: string; owner: string | null }) => void) | null = null;
  private readonly options: JobServiceOptions;
  private readonly group: SubmissionGroup;
  /** The workers list the warnings are checked against, shared by the submissions of a burst. */
  private online: { at: number; membership: number; list: ReturnType<Store['workerList']> } | null = null;

  constructor(deps: { store: Store; registry: WorkerRegistry; events: JobEvents; metrics: ForemanMetrics; log: Logger; workAvailable: (work?: WorkAnnouncement) => void }, options: JobServiceOptions) {
    this.store = deps.store;
    this.registry = deps.registry;
    this.events = deps.events;
    this.metrics = deps.metrics;
    this.log = deps.log;
    this.workAvailable = deps.workAvailable;
    this.options = options;
    this.group = new SubmissionGroup((list) => this.store.jobInsertMany(list));
  }

  /**
   * Validate, insert in one transaction, and wake the dispatcher. `beforeInsert` runs with the
   * new job's id before the insert commits: a caller that wants the job's events subscribes
   * there, because with several foremen the job can finish before this call returns.
   */
  async submit(spec: JobSpec, principal: Principal, beforeInsert?: (jobId: string) => void): Promise<JobInsertResult & { warnings: string[]; firstTaskId: string | null }> {
    // The foreman's span of the submission, under the submitter's when it sent one. The job
    // keeps this span's context: its dispatches, and the workers' spans, join the trace.
    const span = tracer.startSpan('submit', { kind: SpanKind.SERVER, attributes: { [ATTR.jobKind]: spec.kind } }, contextFrom(spec.traceContext) ?? context.active());
    try {
      const accepted = await this.submitIn(span, spec, principal, beforeInsert);
      span.setAttribute(ATTR.jobId, accepted.job.id);
      return accepted;
    } catch (err) {
      span.recordException(err as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  }

  private async submitIn(span: Span, spec: JobSpec, principal: Principal, beforeInsert?: (jobId: string) => void): Promise<JobInsertResult & { warnings: string[]; firstTaskId: string | null }> {
    requireScope(principal, submissionScope(spec.kind), spec.kind === 'map' ? 'a map job (shipped code)' : 'submitting named tasks');
    const now = Date.now();
    const params = { ...buildJob(spec, this.options, now, ownerOf(principal)), dedupSince: now - this.options.idempotencyTtlMs };
    params.job.traceContext = traceContextOf(span) ?? null;
    if (span.isRecording()) span.setAttribute(ATTR.jobTasks, params.tasks.length);
    // A Python function is parsed and its names looked up by Python itself (in Pyodide, once the
    // shape check above has passed): what does not parse, or takes names from outside itself, is refused here.
    if (spec.kind === 'map' && spec.language === 'python') await checkPythonFunction(spec.code);
    await this.checkFiles(params.tasks.flatMap((t) => t.files ?? []), principal);
    beforeInsert?.(params.job.id);
    let accepted: JobInsertResult;
    try {
      accepted = await this.group.insert(params);
    } catch (err) {
      if (/UNIQUE|duplicate key/i.test((err as Error).message) && /tasks/.test((err as Error).message)) {
        throw new CrowdComputeError('CC_ERR_TASK_EXISTS', 'a task with one of the given taskIds already exists; task ids must be unique');
      }
      throw err;
    }
    if (accepted.deduplicated && !mayAccessJob(principal, accepted.job.owner)) {
      // Another owner's idempotency key: the same key must not leak that job.
      throw new CrowdComputeError('CC_ERR_INVALID_JOB', 'this idempotency key is taken by a job of another owner; choose another key');
    }
    if (!accepted.deduplicated) this.announceAccepted(spec, params, accepted.job);
    return { ...accepted, warnings: await this.unservedWarnings(spec), firstTaskId: accepted.deduplicated ? null : params.tasks[0]?.id ?? null };
  }

  /** Tell the releaser when the earliest of these tasks that wait is due. */
  /** Set the releaser's timer by the earliest of the delayed tasks among `tasks`; returns how many are delayed. */
  private announceDelayed(tasks: readonly { availableAt?: number }[], now: number): number {
    let earliest = Infinity;
    let delayed = 0;
    for (const t of tasks) {
      if (t.availableAt === undefined || initialTaskState(t.availableAt, now) !== 'scheduled') continue;
      delayed++;
      if (t.availableAt < earliest) earliest = t.availableAt;
    }
    if (earliest < Infinity) this.onDelayed?.(earliest);
    return delayed;
  }

  /** A new job is in the store (a submission, or a schedule's fire): count it, set its timers, and wake the dispatcher for its tasks. */
  announceAccepted(spec: JobSpec, params: JobInsertParams, job: JobRecord): void {
    this.expiresAt(job);
    this.metrics.jobsSubmitted.inc();
    this.metrics.tasksSubmitted.inc(params.tasks.length);
    this.log.debug({ jobId: job.id, kind: spec.kind, tasks: params.tasks.length }, 'job accepted');
    const jobs = [{ record: job, delayed: this.announceDelayed(params.tasks, params.now) }];
    this.workAvailable(spec.kind === 'map' ? { code: true, jobs } : {
      jobs,
      requiring: params.tasks.some((t) => t.requires),
      types: spec.kind === 'graph' ? [...new Set(spec.nodes.map((n) => n.type))] : [...new Set(spec.tasks.map((t) => t.type))],
    });
  }
  /**
   * The rows of a job a schedule fires: built by the same code as a submission (buildJob, with
   * this foreman's limits), owned by the schedule's owner.
   */
  buildFired(spec: JobSpec, owner: string | null, now: number): JobInsertParams {
    return buildJob(spec, this.options, now, owner);
  }

  /**
   * Check a job spec as a submission is checked (scope, limits, shipped code, files) without
   * submitting it: a schedule's job is checked when the schedule is created or changed.
   */
  async checkSpec(spec: JobSpec, principal: Principal): Promise<void> {
    requireScope(principal, submissionScope(spec.kind), spec.kind === 'map' ? 'a map job (shipped code)' : 'submitting named tasks');
    const params = buildJob(spec, this.options, Date.now(), ownerOf(principal));
    if (spec.kind === 'map' && spec.language === 'python') await checkPythonFunction(spec.code);
    await this.checkFiles(params.tasks.flatMap((t) => t.files ?? []), principal);
  }

  /** Cancel a job for the system (a schedule's cancel_previous): as cancel() does, without a caller to check. */
  async cancelBySystem(jobId: string, why: string): Promise<void> {
    const res = await this.store.jobCancel({ jobId, now: Date.now() });
    if (!res) return;
    for (const t of res.running) this.registry.stopTask(t.workerId, t, why);
    if (res.change) {
      this.log.info({ jobId, runningStopped: res.running.length, why }, 'job cancelled');
      this.events.publish([res.change]);
    }
  }

  /**
   * Append a part to an open job (named tasks, or a map job's arguments), in one transaction;
   * with `seal`, the last part. A part that names where it starts (`at`) and was appended
   * already is not appended again (a client retrying after a lost answer).
   */
  async append(jobId: string, part: { tasks?: NamedTaskSpec[]; args?: unknown[]; at?: number; seal?: boolean }, principal: Principal): Promise<{ job: JobRecord; deduplicated: boolean; firstIndex: number }> {
    const job = await this.visibleJob(jobId, principal);
    requireScope(principal, submissionScope(job.kind === 'map' ? 'map' : 'tasks'), 'appending to a job');
    const params = buildPart(job, part, this.options, Date.now());
    await this.checkFiles(params.tasks.flatMap((t) => t.files ?? []), principal);
    let res: Awaited<ReturnType<Store['jobAppend']>>;
    try {
      res = await this.store.jobAppend(params);
    } catch (err) {
      if (/UNIQUE|duplicate key/i.test((err as Error).message)) {
        throw new CrowdComputeError('CC_ERR_TASK_EXISTS', `a task with one of the given taskIds already exists; nothing of this part of job ${jobId} was appended`, { jobId });
      }
      throw err;
    }
    if (!res) throw new CrowdComputeError('CC_ERR_JOB_NOT_FOUND', `job ${jobId} does not exist`, { jobId });
    if ('refused' in res) {
      const j = res.job;
      const end = j.kind === 'map' ? j.argCount ?? 0 : j.counts.total;
      const unit = j.kind === 'map' ? 'arguments' : 'tasks';
      switch (res.refused) {
        case 'sealed':
          throw new CrowdComputeError('CC_ERR_JOB_SEALED', `job ${jobId} takes no more ${unit}: it ${whyClosed(j)} (it has ${end})`, { jobId, [unit]: end, ...(j.closedBy ? { closedBy: j.closedBy } : {}) });
        case 'conflict':
          throw new CrowdComputeError('CC_ERR_APPEND_CONFLICT', `this part of job ${jobId} starts at ${part.at}, but the job has ${end} ${unit}; send the part that starts at ${end}`, { jobId, at: part.at, expected: end });
        case 'partial_chunk':
          throw new CrowdComputeError('CC_ERR_INVALID_JOB', `job ${jobId} has ${end} arguments, not a multiple of its chunkSize ${j.chunkSize}: only its last part may end with a partial chunk, and that part must seal it`, { jobId, args: end, chunkSize: j.chunkSize });
      }
    }
    if (!res.deduplicated) {
      this.expiresAt(res.job);
      this.metrics.tasksSubmitted.inc(params.tasks.length);
      this.log.debug({ jobId, tasks: params.tasks.length, sealed: params.seal }, 'part appended to an open job');
      const jobs = [{ record: res.job, delayed: this.announceDelayed(params.tasks, params.now) }];
      if (params.tasks.length > 0) {
        this.workAvailable(job.kind === 'map' ? { code: true, jobs }
          : { jobs, requiring: params.tasks.some((t) => t.requires), types: [...new Set(params.tasks.map((t) => t.type))] });
      }
      if (res.change) this.events.publish([res.change]);
    }
    return { job: res.job, deduplicated: res.deduplicated, firstIndex: res.firstIndex };
  }

  /** Tell the expiry timer when this job's open timeout or deadline comes, if it has one. */
  private expiresAt(job: JobRecord): void {
    const times = [job.openExpiresAt, job.deadline].filter((t): t is number => t !== null);
    if (times.length > 0) this.onExpiry?.(Math.min(...times));
  }

  /**
   * Work nobody connected can run is accepted (a worker may come), but said so: a warning per
   * task type no online worker's patterns match (or, for a map job, when no online worker runs
   * shipped code). Workers of every foreman count.
   */
  private async unservedWarnings(spec: JobSpec): Promise<string[]> {
    if (spec.kind === 'map') return this.waitingFor({ runOn: spec.runOn ?? null }, spec.queueTimeoutMs ?? null);
    return this.waitingFor({ tasks: spec.kind === 'graph' ? spec.nodes : spec.tasks }, spec.queueTimeoutMs ?? null);
  }

  /**
   * What keeps an unfinished job's queued tasks waiting beyond their turn, as `submit` said it
   * when they were accepted, but of the workers connected now: shown with the job (GET
   * /api/jobs/{id}), so that one followed later (`crowdcompute job <id> --wait`) says why it does
   * not move. A job's first queued tasks stand for the rest (their types are few); those that
   * require resources of their worker are left out.
   */
  async waitingWarnings(job: JobRecord): Promise<string[]> {
    if (TERMINAL_JOB_STATES.has(job.state)) return [];
    const types = await this.store.jobQueuedTypes({ jobId: job.id, sample: job.kind === 'map' ? 1 : WAITING_SAMPLE });
    if (types.length === 0) return [];
    return this.waitingFor(job.kind === 'map' ? { runOn: job.runOn } : { tasks: types.map((type) => ({ type })) }, job.queueTimeoutMs);
  }

  /** The warnings for work of these task types (or shipped code to run on `runOn`) with this queue timeout. */
  private async waitingFor(work: { tasks: readonly { type: string; requires?: Requirements }[] } | { runOn: WorkerKind | 'any' | null }, queueTimeoutMs: number | null): Promise<string[]> {
    const online = (await this.onlineWorkers()).filter((w) => w.state === 'online');
    const hint = this.queueHint(queueTimeoutMs);
    if (!('tasks' in work)) {
      const where = work.runOn ?? 'any';
      const fits = (w: (typeof online)[number]) => w.allowCode && (where === 'any' || workerKind(w.resources.runtime as string | undefined) === where);
      if (online.some(fits)) return [];
      const wanted = where === 'browser' ? 'browser tab (share a join link: crowdcompute join-link create)' : where === 'node' ? 'Node worker runs shipped code (start one with --allow-code)' : 'worker runs shipped code (start one with --allow-code, or share a join link)';
      return [`no connected ${wanted}; the job waits until one does${hint}`];
    }
    const list = work.tasks;
    const types = [...new Set(list.map((t) => t.type))];
    const unserved = types.filter((t) => !online.some((w) => matchesAny(w.patterns, t)));
    // A task that requires more than any connected worker of its type has, even idle, would wait unseen.
    const unfit = new Map<string, string>();
    for (const t of list) {
      if (!t.requires || unserved.includes(t.type)) continue;
      const req = t.requires;
      if (!online.some((w) => matchesAny(w.patterns, t.type) && fits(req, announced(w.resources)))) {
        unfit.set(`${t.type} ${JSON.stringify(req)}`, `no connected worker that handles "${t.type}" has ${describeRequirements(req)} (what its tasks require); they wait until one does${hint}`);
      }
    }
    if (unserved.length === 0) return [...unfit.values()].slice(0, 20);
    const patterns = [...new Set(online.flatMap((w) => w.patterns))].slice(0, 10);
    return [...unfit.values()].slice(0, 10).concat(unserved.slice(0, 20).map((t) => `no connected worker handles task type "${t}" (${online.length} online${patterns.length ? `, handling ${patterns.join(', ')}` : ''}); its tasks wait until one does${hint}`));
  }

  /**
   * The workers list, read again when a worker connects to or leaves this foreman, and at most
   * a second old otherwise (workers of other foremen), so a burst of submissions reads it once.
   */
  private onlineWorkers(): ReturnType<Store['workerList']> {
    const now = Date.now();
    const membership = this.registry.membership;
    if (!this.online || this.online.membership !== membership || now - this.online.at > 1_000) {
      const list = this.store.workerList();
      this.online = { at: now, membership, list };
      list.catch(() => { if (this.online?.list === list) this.online = null; });
    }
    return this.online.list;
  }

  private queueHint(queueTimeoutMs: number | null): string {
    const limit = queueTimeoutMs ?? this.options.defaultQueueTimeoutMs;
    return limit ? `, or fail with CC_ERR_NO_WORKER after ${Math.round(limit / 1000)} s (queueTimeoutMs)` : '';
  }

  /**
   * Run a job's failed and cancelled tasks again, or one task of it (`taskId`), with fresh
   * attempts; results already recorded stay. CC_ERR_NOTHING_TO_RETRY when none failed or was cancelled.
   */
  async retry(jobId: string, principal: Principal, taskId?: string): Promise<{ job: JobRecord; retried: number }> {
    await this.visibleJob(jobId, principal);
    this.mayCancel(principal, 'retrying a job');
    const res = await this.store.jobRetry({ jobId, now: Date.now(), ...(taskId ? { taskId } : {}) });
    if (!res) throw new CrowdComputeError('CC_ERR_JOB_NOT_FOUND', `job ${jobId} does not exist`, { jobId });
    if (res.retried === 0) {
      throw new CrowdComputeError('CC_ERR_NOTHING_TO_RETRY', taskId
        ? `task ${taskId} is not failed or cancelled (it is ${(await this.store.taskGet(taskId))?.state ?? 'gone'}); only those can be retried`
        : `job ${jobId} has no failed or cancelled task to retry (it is ${res.job.state})`, { jobId, ...(taskId ? { taskId } : {}) });
    }
    this.log.info({ jobId, taskId, retried: res.retried }, 'failed and cancelled tasks put back in the queue');
    this.requeued(res);
    return { job: res.job, retried: res.retried };
  }

  /** What follows tasks put back in the queue (one job's, by a retry): their job's watchers, deadline and the dispatcher are told. */
  requeued(res: JobRetryResult): void {
    if (res.retried === 0) return;
    // A deadline still holds for the retried tasks.
    this.expiresAt(res.job);
    if (res.change) this.events.publish([res.change]);
    this.metrics.tasksRetried.inc(res.retried);
    this.workAvailable({ requiring: true, jobs: [{ record: res.job, delayed: 0 }] });
  }

  /** Retry one failed or cancelled task. */
  async retryTask(taskId: string, principal: Principal): Promise<{ job: JobRecord; retried: number }> {
    const task = await this.visibleTask(taskId, principal);
    return this.retry(task.jobId, principal, taskId);
  }

  /** The job, if it exists and the principal may see it; CC_ERR_JOB_PRUNED if it was theirs and was pruned; else CC_ERR_JOB_NOT_FOUND. */
  async visibleJob(jobId: string, principal: Principal): Promise<JobRecord> {
    if (principal.kind === 'anonymous') throw unauthenticated();
    const job = await this.store.jobGet(jobId);
    if (job && mayAccessJob(principal, job.owner)) return job;
    if (!job) {
      // A tombstone tells a pruned job from one that never was, to its owner only.
      const pruned = await this.store.jobPruned(jobId);
      if (pruned && mayAccessJob(principal, pruned.owner)) {
        throw new CrowdComputeError('CC_ERR_JOB_PRUNED', `job ${jobId} finished and was pruned at ${new Date(pruned.prunedAt).toISOString()} after its retention period`, { jobId });
      }
    }
    throw new CrowdComputeError('CC_ERR_JOB_NOT_FOUND', `job ${jobId} does not exist`, { jobId });
  }

  /** The task, if it exists and the principal may see its job; else CC_ERR_TASK_NOT_FOUND either way. */
  async visibleTask(taskId: string, principal: Principal): Promise<TaskRecord> {
    if (principal.kind === 'anonymous') throw unauthenticated();
    const task = await this.store.taskGet(taskId);
    const job = task ? await this.store.jobGet(task.jobId) : null;
    if (!task || !job || !mayAccessJob(principal, job.owner)) throw new CrowdComputeError('CC_ERR_TASK_NOT_FOUND', `task ${taskId} does not exist`, { taskId });
    return task;
  }

  /** Refuse a principal that may not cancel or retry (it needs a submit scope). */
  mayCancel(principal: Principal, what: string): void {
    if (maySubmit(principal)) return;
    requireScope(principal, 'submit', what);
  }

  /** Files a submission's tasks carry must exist and be the submitter's to give. */
  private async checkFiles(ids: string[], principal: Principal): Promise<void> {
    if (ids.length === 0) return;
    const unique = [...new Set(ids)];
    const found = new Map((await this.store.fileList(unique)).map((f) => [f.id, f]));
    const missing = unique.filter((id) => !found.has(id) || !mayAccessJob(principal, found.get(id)!.owner));
    if (missing.length > 0) {
      throw new CrowdComputeError('CC_ERR_INVALID_JOB', `no file has the id${missing.length > 1 ? 's' : ''} ${missing.slice(0, 5).join(', ')} (upload files first: POST /api/files, client.uploadFile)`, { fileIds: missing });
    }
  }

  /** Which jobs are graphs, as far as failures have asked (a job's kind never changes). */
  private readonly graphKinds = new Map<string, boolean>();

  /**
   * A node of a graph failed for good: the graph has failed, and what is left of it is
   * cancelled (its running nodes are told why). Other jobs, and finished graphs, are left alone.
   */
  async failGraph(jobId: string): Promise<void> {
    let graph = this.graphKinds.get(jobId);
    if (graph === undefined) {
      graph = (await this.store.jobGet(jobId))?.kind === 'graph';
      if (this.graphKinds.size > 10_000) this.graphKinds.clear();
      this.graphKinds.set(jobId, graph);
    }
    if (!graph) return;
    // An optional node may fail without failing the graph.
    const plan = await this.store.jobGraph(jobId);
    const failed = (await this.store.taskList({ jobId, limit: plan?.nodes.length ?? 1_000, offset: 0, state: 'failed' })).map((t) => t.id);
    if (!plan || !failsGraph(plan, failed)) return;
    const res = await this.store.jobCancel({ jobId, now: Date.now() });
    if (!res || !res.change) return;
    for (const t of res.running) this.registry.stopTask(t.workerId, t, `graph ${jobId} failed: one of its nodes failed`);
    this.log.info({ jobId, runningStopped: res.running.length }, 'a graph node failed: the rest of the graph is cancelled');
    this.events.publish([res.change]);
  }

  /**
   * Fail a job as a whole (its function keeps crashing sandboxes): what is queued or running
   * fails with `error`, running tasks are told to stop, finished results stay.
   */
  async failJob(jobId: string, error: TaskError): Promise<void> {
    const res = await this.store.jobFail({ jobId, now: Date.now(), error });
    if (!res || !res.change) return;
    for (const t of res.running) this.registry.stopTask(t.workerId, t, `job ${jobId} failed: ${error.message}`);
    this.log.warn({ jobId, runningStopped: res.running.length, error: error.message }, 'job failed as a whole: its tasks kept crashing their sandboxes');
    this.events.publish([res.change]);
  }

  /** Cancel a job: queued tasks never start, running ones are told to stop, finished results stay. */
  async cancel(jobId: string, principal: Principal): Promise<JobRecord> {
    const job = await this.visibleJob(jobId, principal);
    this.mayCancel(principal, 'cancelling a job');
    const res = await this.store.jobCancel({ jobId, now: Date.now() });
    if (!res) throw new CrowdComputeError('CC_ERR_JOB_NOT_FOUND', `job ${jobId} does not exist`, { jobId });
    if (principal.kind === 'key' && job.owner !== principal.keyId) this.onAdminCancel?.({ keyId: principal.keyId, jobId, owner: job.owner });
    for (const t of res.running) this.registry.stopTask(t.workerId, t, `job ${jobId} was cancelled`);
    if (res.change) {
      this.log.info({ jobId, runningStopped: res.running.length }, 'job cancelled');
      this.events.publish([res.change]);
    }
    return res.job;
  }

  /** Cancel one task: queued, it never starts; running, its worker is told to stop. */
  async cancelTask(taskId: string, principal: Principal): Promise<TaskRecord> {
    const task = await this.visibleTask(taskId, principal);
    this.mayCancel(principal, 'cancelling a task');
    const job = await this.store.jobGet(task.jobId);
    if (principal.kind === 'key' && job && job.owner !== principal.keyId) this.onAdminCancel?.({ keyId: principal.keyId, jobId: task.jobId, taskId, owner: job.owner });
    const res = await this.store.taskCancel({ taskId, now: Date.now() });
    if (!res) throw new CrowdComputeError('CC_ERR_TASK_NOT_FOUND', `task ${taskId} does not exist`, { taskId });
    if (res.running) this.registry.stopTask(res.running.workerId, { taskId, attempt: res.running.attempt }, `task ${taskId} was cancelled`);
    if (res.change) {
      this.log.info({ taskId, jobId: res.task.jobId, wasRunning: res.running !== null }, 'task cancelled');
      this.events.publish([res.change]);
    }
    return res.task;
  }
}
