import { CrowdComputeError, type JobCounts, type JobState, type TaskError } from '../protocol/index.ts';

/** Where a job stands: its state, its counts, and the finished fraction. */
export interface JobProgress {
  jobId: string;
  state: JobState;
  counts: JobCounts;
  /** 0..1 */
  fraction: number;
}

/** A handler's progress report on one task of the job. */
export interface TaskProgressEvent {
  jobId: string;
  taskId: string;
  progress: number;
  message?: string;
  data?: Record<string, unknown>;
}

/** A task of the job that did not complete. */
export interface JobFailure {
  taskId: string;
  /** Task index (named tasks) or first argument index of the failed chunk (map jobs). */
  index: number;
  status: string;
  error: TaskError | null;
}

/** How a job ended: its state, counts, results in order (null where a task failed) and failures. */
export interface JobOutcome {
  jobId: string;
  state: JobState;
  counts: JobCounts;
  results: unknown[];
  failures: JobFailure[];
}

/** A job ended failed or cancelled. `results` holds what did finish (null elsewhere). */
export class JobFailedError extends CrowdComputeError {
  readonly jobId: string;
  readonly state: JobState;
  readonly results: unknown[];
  readonly failures: JobFailure[];
  constructor(outcome: JobOutcome) {
    const first = outcome.failures[0];
    const code = outcome.state === 'cancelled' ? 'CC_ERR_CANCELLED' : 'CC_ERR_JOB_FAILED';
    const what = outcome.state === 'cancelled'
      ? `job ${outcome.jobId} was cancelled (${outcome.counts.completed} of ${outcome.counts.total} tasks had finished)`
      : `job ${outcome.jobId} failed: ${outcome.counts.failed} of ${outcome.counts.total} tasks failed${first ? `; first, task ${first.taskId} (index ${first.index}): ${first.error?.message ?? first.status}` : ''}`;
    super(code, what, { jobId: outcome.jobId, state: outcome.state });
    this.name = 'JobFailedError';
    this.jobId = outcome.jobId;
    this.state = outcome.state;
    this.results = outcome.results;
    this.failures = outcome.failures;
  }
}

type Listener<T> = (value: T) => void;

/** Hooks the client gives a handle: how to fetch full results and how to cancel. @internal */
export interface JobHandleDeps {
  fetchOutcome(jobId: string): Promise<JobOutcome>;
  cancel(jobId: string): Promise<void>;
  retry(jobId: string): Promise<JobHandle<any>>;
}

/**
 * A submitted job: await its results, follow its progress (callback or async iterator),
 * cancel it. Completion arrives pushed over the client's WebSocket.
 */
export class JobHandle<R = unknown> {
  readonly id: string;
  readonly totalTasks: number;
  /** Queued tasks ahead of this job when it was accepted. */
  readonly position: number;
  /** True when an idempotency key matched an earlier job. */
  readonly deduplicated: boolean;
  /**
   * What the foreman wants the submitter to know, e.g. that no connected worker handles one of
   * its task types (the job waits for one, or fails after its queueTimeoutMs). For a handle from
   * `watch`, what keeps the job's queued tasks waiting when it was taken.
   */
  readonly warnings: readonly string[];
  private readonly deps: JobHandleDeps;
  private outcomePromise: Promise<JobOutcome>;
  private resolveOutcome!: (o: JobOutcome) => void;
  private rejectOutcome!: (e: Error) => void;
  private readonly progressListeners = new Set<Listener<JobProgress>>();
  private readonly taskProgressListeners = new Set<Listener<TaskProgressEvent>>();
  private lastProgress: JobProgress | null = null;
  private done = false;
  /** The outcome is wanted (result() or outcome() was called): read it when the job ends. */
  private wanted = false;
  /** Ended, with results still to read over HTTP (failures, or too many to push). */
  private unread = false;
  private readonly endPromise: Promise<{ state: JobState; counts: JobCounts }>;
  private resolveEnd!: (e: { state: JobState; counts: JobCounts }) => void;
  private rejectEnd!: (e: Error) => void;

  constructor(init: { id: string; totalTasks: number; position: number; deduplicated: boolean; warnings?: readonly string[] }, deps: JobHandleDeps) {
    this.id = init.id;
    this.warnings = init.warnings ?? [];
    this.totalTasks = init.totalTasks;
    this.position = init.position;
    this.deduplicated = init.deduplicated;
    this.deps = deps;
    this.outcomePromise = new Promise((resolve, reject) => { this.resolveOutcome = resolve; this.rejectOutcome = reject; });
    // Nobody may await the outcome (fire and forget); do not turn that into an unhandled rejection.
    this.outcomePromise.catch(() => {});
    this.endPromise = new Promise((resolve, reject) => { this.resolveEnd = resolve; this.rejectEnd = reject; });
    this.endPromise.catch(() => {});
  }

  get finished(): boolean { return this.done; }
  get progressSnapshot(): JobProgress | null { return this.lastProgress; }

  /** Ordered results. Rejects with JobFailedError if any task failed or the job was cancelled. */
  async result(): Promise<R[]> {
    const o = await this.outcome();
    if (o.state !== 'completed') throw new JobFailedError(o);
    return o.results as R[];
  }

  /** The full outcome, whatever the state: results (null where a task failed) and failures. */
  outcome(): Promise<JobOutcome> {
    this.wanted = true;
    this.readOutcome();
    return this.outcomePromise;
  }

  /**
   * Resolves when the job has ended, with its state and counts, without reading its results:
   * for a large job, read them in pages (`client.resultPages(id)`) instead of all at once.
   */
  ended(): Promise<{ state: JobState; counts: JobCounts }> { return this.endPromise; }

  /** Results not pushed are read over HTTP once, and only when someone wants them. */
  private readOutcome(): void {
    if (!this.unread || !this.wanted) return;
    this.unread = false;
    this.deps.fetchOutcome(this.id).then(this.resolveOutcome, this.rejectOutcome);
  }

  /**
   * Run the job's failed and cancelled tasks again, with fresh attempts; results already
   * recorded stay. Resolves with a new handle that follows the job to its next ending (this one
   * has ended). Rejects with CC_ERR_NOTHING_TO_RETRY when no task failed or was cancelled.
   */
  retry(): Promise<JobHandle<R>> { return this.deps.retry(this.id) as Promise<JobHandle<R>>; }

  onProgress(listener: Listener<JobProgress>): () => void {
    this.progressListeners.add(listener);
    if (this.lastProgress) listener(this.lastProgress);
    return () => this.progressListeners.delete(listener);
  }

  onTaskProgress(listener: Listener<TaskProgressEvent>): () => void {
    this.taskProgressListeners.add(listener);
    return () => this.taskProgressListeners.delete(listener);
  }

  /** Progress updates as an async iterator; ends when the job does. */
  async *progress(): AsyncGenerator<JobProgress> {
    const queue: JobProgress[] = [];
    let wake: (() => void) | null = null;
    const off = this.onProgress((p) => { queue.push(p); wake?.(); });
    const ended = this.endPromise.then(() => {}, () => {});
    try {
      while (true) {
        while (queue.length > 0) yield queue.shift()!;
        if (this.done) return;
        await Promise.race([new Promise<void>((r) => { wake = r; }), ended]);
        wake = null;
      }
    } finally {
      off();
    }
  }

  cancel(): Promise<void> { return this.deps.cancel(this.id); }

  /** @internal */
  _progress(state: JobState, counts: JobCounts): void {
    const done = counts.completed + counts.failed + counts.cancelled;
    const p: JobProgress = { jobId: this.id, state, counts, fraction: counts.total === 0 ? 1 : done / counts.total };
    this.lastProgress = p;
    for (const l of this.progressListeners) l(p);
  }

  /** @internal */
  _taskProgress(e: TaskProgressEvent): void {
    for (const l of this.taskProgressListeners) l(e);
  }

  /** @internal */
  _completed(state: JobState, counts: JobCounts, results: unknown[] | undefined): void {
    if (this.done) return;
    this.done = true;
    this._progress(state, counts);
    this.resolveEnd({ state, counts });
    if (results !== undefined && state === 'completed') {
      this.resolveOutcome({ jobId: this.id, state, counts, results, failures: [] });
      return;
    }
    // Failures, or results too large to push: read them over HTTP when wanted.
    this.unread = true;
    this.readOutcome();
  }

  /** @internal */
  _fail(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.rejectEnd(err);
    this.rejectOutcome(err);
  }
}

/** A job of one named task, as returned by `client.submit()`. */
export class TaskHandle<R = unknown> {
  readonly job: JobHandle<R>;
  readonly taskId: string;
  constructor(job: JobHandle<R>, taskId: string) {
    this.job = job;
    this.taskId = taskId;
  }
  get id(): string { return this.taskId; }
  get jobId(): string { return this.job.id; }
  get position(): number { return this.job.position; }

  /** The task's result; rejects with the task's error if it failed. */
  async result(): Promise<R> {
    const o = await this.job.outcome();
    if (o.state === 'completed') return o.results[0] as R;
    const f = o.failures[0];
    const err = new JobFailedError(o);
    if (f?.error) {
      const code = f.error.code ?? (o.state === 'cancelled' ? 'CC_ERR_CANCELLED' : 'CC_ERR_HANDLER_FAILED');
      // The task's own error often starts with its code and its id already; say each once.
      let said = f.error.message.startsWith(`${code}: `) ? f.error.message.slice(code.length + 2) : f.error.message;
      if (said.startsWith(`task ${this.taskId} `)) said = said.slice(`task ${this.taskId} `.length);
      err.message = `${code}: task ${this.taskId} ${o.state}: ${said}`;
    }
    throw err;
  }

  onProgress(listener: (e: TaskProgressEvent) => void): () => void { return this.job.onTaskProgress(listener); }
  cancel(): Promise<void> { return this.job.cancel(); }
}

/** A task graph, as returned by `client.submitGraph()`: one job, one task per node. */
export class GraphHandle<R = unknown> {
  readonly job: JobHandle<unknown>;
  /** The node ids, in the order of the spec (a node's task has its index). */
  readonly nodeIds: readonly string[];
  /** The node whose result is the graph's. */
  readonly output: string;
  constructor(job: JobHandle<unknown>, nodeIds: readonly string[], output: string) {
    this.job = job;
    this.nodeIds = nodeIds;
    this.output = output;
  }
  get id(): string { return this.job.id; }
  get jobId(): string { return this.job.id; }

  /** The output node's result; rejects with JobFailedError when a node failed or the graph was cancelled. */
  async result(): Promise<R> {
    const results = await this.job.result();
    return results[this.nodeIds.indexOf(this.output)] as R;
  }

  /** Every node's result, by node id (null where a node did not complete); never rejects for node failures. */
  async results(): Promise<Record<string, unknown>> {
    const o = await this.job.outcome();
    return Object.fromEntries(this.nodeIds.map((id, i) => [id, o.results[i] ?? null]));
  }

  /** State, results and failures, as for any job. */
  outcome(): Promise<JobOutcome> { return this.job.outcome(); }
  /** Cancel every node: queued ones never start, running ones are told to stop (their handlers see `coordinator`). */
  cancel(): Promise<void> { return this.job.cancel(); }
}
