/**
 * The store: where jobs, tasks and workers live. One interface, one driver per database
 * (sqlite/, postgres/), one conformance suite (conformance/) that every driver passes.
 *
 * Every state change is a conditional update guarded where the data lives
 * (`... WHERE id = ? AND state = 'running' AND attempt = ?`), so a late or duplicated
 * result can never overwrite a newer attempt: recording is exactly-once even though
 * execution is at-least-once.
 *
 * @internal This interface is not public API; it changes with the drivers.
 */
import type {
  CodeLanguage, JobCounts, JobKind, JobSpec, JobState, Priority, Scope, TaskError, TaskKind, TaskRef, TaskState, WireTask, Requirements,
  ScheduleCatchUpPolicy, ScheduleOverlap, ScheduleRunOutcome, ScheduleRunReason, TraceContext,
} from '../protocol/index.ts';

import type { GraphPlan } from '../core/graph.ts';
import type { ResourceAmounts } from '../core/resources.ts';

export type { TaskRef, GraphPlan };

/** A table the foreman vacuumed (see Store.vacuumDue). */
export interface VacuumRun {
  table: string;
  /** Its dead rows before the vacuum, as the server's statistics counted them. */
  deadRows: number;
  ms: number;
}

/** A job as the store keeps it. */
export interface JobRecord {
  id: string;
  kind: JobKind;
  name: string | null;
  state: JobState;
  priority: Priority;
  counts: JobCounts;
  /** Map jobs: number of arguments and arguments per task. */
  argCount: number | null;
  chunkSize: number | null;
  timeoutMs: number | null;
  maxAttempts: number;
  idempotencyKey: string | null;
  metadata: Record<string, unknown> | null;
  cancelRequested: boolean;
  /** The API key that submitted it; null when submitted under --insecure. */
  owner: string | null;
  /** How long it is kept once finished (null: jobs from before retention existed, kept until pruned on demand). */
  retentionMs: number | null;
  /** What it runs, for lists: its tasks' type(s), or the shipped function's name. */
  label: string | null;
  /** Tasks not started this long after submission (or after a retry) fail with CC_ERR_NO_WORKER; null: they wait. */
  queueTimeoutMs: number | null;
  /** Only this kind of worker may run its tasks; null: any. */
  runOn: WorkerKind | null;
  /** Not to run before this time (its `runAt` / `delay`); null: at once. Its tasks appended later wait for it too. */
  runAt: number | null;
  /** Map jobs: the language of the shipped function (`javascript` or `python`); null for other jobs. */
  language: CodeLanguage | null;
  /** Takes more tasks (appends) until sealed; an open job does not finish. */
  open: boolean;
  /** Its share of the workers against other jobs of its priority and owner (default 1). */
  weight: number;
  /** At most this many of its tasks run at once; null: no cap. */
  maxConcurrency: number | null;
  /** An open job that gets no part and no seal this long is closed (see `onOpenTimeout`); null: never. */
  openTimeoutMs: number | null;
  /** What its open timeout does; null when it has none. */
  onOpenTimeout: OpenTimeoutAction | null;
  /** When the open job is closed unless a part or a seal comes first; null once closed, or without an open timeout. */
  openExpiresAt: number | null;
  /** Why an open job stopped taking parts; null while open and for jobs never open. */
  closedBy: JobClosedBy | null;
  /** Past this time its unfinished tasks fail with CC_ERR_DEADLINE; null: none. */
  deadline: number | null;
  /** The URL its end is posted to; null: its key's default webhook, if the key has one. */
  webhookUrl: string | null;
  /** The span that accepted it (W3C trace context), whose trace its dispatches join; null: not traced. */
  traceContext: TraceContext | null;
  createdAt: number;
  startedAt: number | null;
  completedAt: number | null;
}

/** What an open job's open timeout does: seal it (its tasks run to the end) or cancel it. */
export type OpenTimeoutAction = 'seal' | 'cancel';

/**
 * Why an open job stopped taking parts: its producer sealed it, its open timeout closed it, it
 * was cancelled, its deadline passed, or it failed as a whole.
 */
export type JobClosedBy = 'seal' | 'open_timeout' | 'cancel' | 'deadline' | 'failure';

/** A task as the store keeps it. */
export interface TaskRecord {
  id: string;
  jobId: string;
  index: number;
  kind: TaskKind;
  type: string;
  input: unknown;
  priority: Priority;
  state: TaskState;
  /** Number of times the task has been handed to a worker; the fencing token of a result. */
  attempt: number;
  /** Number of attempts that ended in an error or a timeout. */
  failures: number;
  maxAttempts: number;
  timeoutMs: number | null;
  workerId: string | null;
  result: unknown;
  error: TaskError | null;
  /** Every failed or lost attempt, oldest first. */
  attemptErrors: AttemptError[];
  progress: number | null;
  progressMessage: string | null;
  createdAt: number;
  startedAt: number | null;
  completedAt: number | null;
  leaseExpiresAt: number | null;
  availableAt: number;
  /** A batch handler said the task will write no more artifacts. */
  artifactsComplete: boolean;
}

/** One failed or lost attempt of a task. */
export interface AttemptError {
  attempt: number;
  /** The worker that had the attempt (null if it was never handed out). */
  workerId: string | null;
  error: TaskError;
  /** When the attempt started (null if it never did). */
  startedAt?: number | null;
  /** When it ended. */
  at: number;
}

/** What a map job's tasks are sent with: its function, its arguments per task, its name, and the trace it belongs to. */
export interface JobCode {
  code: string;
  chunkSize: number;
  name: string | null;
  language: CodeLanguage;
  /** The span that accepted the job; null: not traced. */
  traceContext: TraceContext | null;
}

/** A task as claimed for a worker: what the worker needs, nothing else. */
export interface ClaimedTask {
  taskId: string;
  jobId: string;
  index: number;
  kind: TaskKind;
  type: string;
  input: unknown;
  priority: Priority;
  attempt: number;
  timeoutMs: number | null;
  /** Map tasks: the index of the chunk's first argument in the whole job (set by the dispatcher). */
  argOffset?: number;
  /** When it was submitted, and when it last became ready to run (for queue-wait and latency metrics). */
  createdAt: number;
  queuedAt: number;
  /** A retried task's checkpoint and batches done (set by the dispatcher, from `taskResume`). */
  resume?: TaskResumeState;
  /** A graph node's task: its node and input adapter (set by the dispatcher, from `jobGraph`). */
  graph?: WireTask['graph'];
  /** What it requires of its worker (claimed by `taskClaimFitting`). */
  requires?: Requirements;
  /** Its job's metadata (set by the dispatcher). */
  metadata?: Record<string, unknown>;
  /** Ids of the files it carries. */
  fileIds?: string[];
  /** Those files, as the worker receives them (set by the dispatcher). */
  files?: WireTask['files'];
  /** Set when the row's stored input could not be read: why. Such a task is failed, not sent. */
  unreadable?: string;
  /** The span that dispatched it, when its job is traced (set by the dispatcher). */
  traceContext?: TraceContext;
}

/** A worker as the store remembers it (connected or not). */
export interface WorkerRecord {
  id: string;
  state: 'online' | 'offline';
  capacity: number;
  patterns: string[];
  allowCode: boolean;
  resources: Record<string, unknown>;
  version: string | null;
  foremanId: string | null;
  connectedAt: number;
  lastSeenAt: number;
  disconnectedAt: number | null;
  tasksCompleted: number;
  tasksFailed: number;
}

/** Workers a foreman heard from, and when (see {@link Store.workerSeen}). */
export interface WorkerSeenParams {
  foremanId: string;
  workers: readonly { id: string; at: number }[];
}

/** Foremen found gone by {@link Store.foremanReapLapsed}, and what became of their workers. */
export interface ForemanReapResult {
  /** Foremen whose lease had run out (now forgotten). */
  foremen: string[];
  /** Workers that were recorded online at a foreman without a live lease, now offline. */
  workers: number;
}

/** A task to insert with its job. */
export interface NewTask {
  id: string;
  index: number;
  kind: TaskKind;
  type: string;
  input: unknown;
  priority: Priority;
  maxAttempts: number;
  timeoutMs: number | null;
  /**
   * Not to run before this time: a delayed task (stored `scheduled` until then) or a graph node
   * waiting for its upstream nodes (BLOCKED_UNTIL, stored `queued`). Default now.
   */
  availableAt?: number;
  /** Resources its worker must have free; such tasks are claimed by `taskClaimFitting` only. */
  requires?: Requirements | null;
  /** Files it carries (ids of uploaded files); they are attached to its job. */
  files?: string[];
}

/** A job and its tasks, inserted in one transaction. */
export interface JobInsertParams {
  job: {
    id: string;
    kind: JobKind;
    name: string | null;
    priority: Priority;
    argCount: number | null;
    chunkSize: number | null;
    code: string | null;
    timeoutMs: number | null;
    maxAttempts: number;
    idempotencyKey: string | null;
    metadata: Record<string, unknown> | null;
    /** The API key submitting it (null under --insecure). */
    owner: string | null;
    /** How long the job is kept once finished; then it may be pruned. */
    retentionMs: number;
    /** What it runs, for lists. */
    label: string | null;
    /** Tasks not started this long after submission fail with CC_ERR_NO_WORKER; null: no deadline. */
    queueTimeoutMs: number | null;
    /** Map jobs: only this kind of worker may run its tasks; null: any. */
    runOn: WorkerKind | null;
    /** Map jobs: the shipped function's language; null or omitted: JavaScript. */
    language?: CodeLanguage | null;
    /** Not to run before this time (the job's `runAt` / `delay`); null or omitted: at once. Its queue deadline counts from then. */
    runAt?: number | null;
    /** Graph jobs: the nodes, their tasks and dependencies. */
    graph?: GraphPlan | null;
    /** Open for appending (`jobAppend`) until sealed; it does not finish while open. */
    open?: boolean;
    /** Its share against other jobs of its priority and owner; default 1. */
    weight?: number;
    /** At most this many of its tasks run at once; null or omitted: no cap. */
    maxConcurrency?: number | null;
    /** Open jobs: closed after this long without a part or a seal (`onOpenTimeout`); null or omitted: never. */
    openTimeoutMs?: number | null;
    /** What the open timeout does; default cancel. */
    onOpenTimeout?: OpenTimeoutAction;
    /** Past this time (epoch ms) its unfinished tasks fail with CC_ERR_DEADLINE; null or omitted: none. */
    deadline?: number | null;
    /** The URL its end is posted to; null or omitted: its key's default webhook, if any. */
    webhookUrl?: string | null;
    /** The span that accepted it, whose trace its dispatches join; null or omitted: not traced. */
    traceContext?: TraceContext | null;
  };
  tasks: NewTask[];
  now: number;
  /**
   * An idempotency key matches only jobs created at or after this time; an older job keeps
   * its row but gives its key up. Omitted = keys never expire.
   */
  dedupSince?: number;
}

/** A part appended to an open job, in one transaction. */
export interface JobAppendParams {
  jobId: string;
  /** The part's tasks in order; the store numbers them after the job's last (and names them `<jobId>.<index>` unless `id` is chosen). */
  tasks: (Omit<NewTask, 'id' | 'index'> & { id?: string })[];
  /** Arguments in this part (map jobs; 0 otherwise). */
  args: number;
  /** Where the part must start (the job's task count, or argument count for a map job); null: at the end. */
  at: number | null;
  /** The last part: the job is sealed and finishes when its tasks do. */
  seal: boolean;
  /** What the part runs, for a job that had no label yet. */
  label: string | null;
  now: number;
}

/**
 * An append: done (or, with `at`, found done already: `deduplicated`), or refused with why:
 * the job is not open (`sealed`), the part does not start where the job ends (`conflict`), or
 * the last part of a map job left a partial chunk (`partial_chunk`).
 */
export type JobAppendResult =
  | { job: JobRecord; deduplicated: boolean; change: JobChange | null; firstIndex: number }
  | { job: JobRecord; refused: 'sealed' | 'conflict' | 'partial_chunk' };

/** Queued tasks ahead of a new job are counted up to this many: the count costs what it counts. */
export const POSITION_COUNT_CAP = 10_000;

/** The job inserted, or the existing one its idempotency key matched. */
export interface JobInsertResult {
  job: JobRecord;
  /** Queued tasks that run before this job's first task, counted up to POSITION_COUNT_CAP. */
  position: number;
  /** True when the idempotency key matched an existing job, which is returned instead. */
  deduplicated: boolean;
}

/** One job of a group insert: inserted (or found by its key), or the error that refused it alone. */
export type JobInsertOutcome = JobInsertResult | { error: Error };

/** A Node process (the CLI, the SDK) or a browser tab that joined through a join link. */
export type WorkerKind = 'node' | 'browser';

export type { CodeLanguage };

/** Who claims tasks, for what, and how many. */
export interface TaskClaimParams {
  workerId: string;
  patterns: readonly string[];
  allowCode: boolean;
  /** With `allowCode`: the languages of shipped functions the worker runs (default every one). */
  codeLanguages?: readonly CodeLanguage[];
  limit: number;
  leaseMs: number;
  now: number;
  /** What the worker is: tasks of jobs that run only on the other kind are not for it. Default node. */
  kind?: WorkerKind;
  /**
   * Take only from these jobs, at most `limit` tasks from each, each job's tasks in its own
   * queue order (the scheduler has chosen how many each gets). Omitted: from the whole queue,
   * best priority first, then oldest (on SQLite, whose queue index is by job, that sorts the
   * queued tasks of a priority: for small queues; the dispatcher always names the jobs). `capped`: the job or its owner has a cap on running
   * tasks, which the store holds exactly (across foremen) by counting running tasks under a lock.
   * `few`: the job has about `limit` tasks left or fewer, so the store may read all of its
   * queued tasks at once, together with other such jobs.
   */
  jobs?: readonly { jobId: string; limit: number; capped?: boolean; few?: boolean }[];
  /**
   * Apply the rate limits (`rateLimitSet`): a task whose type matches a limit's pattern (the
   * first, by pattern order) spends one of its tokens, and stays queued while it has none.
   * Exact across foremen: the buckets are read and spent under a lock.
   */
  rateLimits?: boolean;
}

/** A job the scheduler shares the workers with: not finished, and possibly with tasks to run. */
export interface ActiveJob {
  jobId: string;
  kind: JobKind;
  owner: string | null;
  priority: Priority;
  weight: number;
  maxConcurrency: number | null;
  /** Its tasks queued (some may wait for a retry or for upstream nodes): those a claim may find. */
  waiting: number;
  /** Its delayed tasks not yet due (`scheduled`): none of them can be claimed until released. */
  scheduled: number;
  /** Its tasks running now, on any foreman's workers. */
  running: number;
  /** Only this kind of worker may run its tasks; null: any. */
  runOn: WorkerKind | null;
  /** Map jobs: its function's language (only workers that run it take its tasks); null for other jobs. */
  language: CodeLanguage | null;
  /** Named jobs: its task types, when known (see `typesFromLabel`); null: any may be there. */
  types: string[] | null;
  createdAt: number;
}

/** A per-type rate limit: at most `max` tasks whose type matches `pattern` start per `perMs`. */
export interface RateLimit {
  pattern: string;
  max: number;
  perMs: number;
}

/** A rate limit with the tokens its bucket holds now: tasks that may start at once. */
export type RateLimitState = RateLimit & { available: number };

/** Where a job stands in the order of unfinished jobs (by creation, then id). */
export interface JobCursor {
  createdAt: number;
  jobId: string;
}

/** What the scheduler needs to share the workers, read in one go. */
export interface SchedulerSnapshot {
  /**
   * Unfinished jobs: the `window` (default ACTIVE_JOBS_WINDOW) oldest, and, when there are more,
   * up to `window` more after the cursor `after` (or after the oldest), each once.
   */
  jobs: ActiveJob[];
  /** Where the next look past the oldest should start; null when there is nothing past them. */
  next: JobCursor | null;
  /** API keys with a cap on their jobs' running tasks. */
  ownerCaps: { owner: string; maxConcurrency: number }[];
  rateLimits: RateLimitState[];
}

/**
 * How many unfinished jobs the scheduler reads at a time: the oldest so many, and as many more
 * in turn from the rest, so that with a deeper backlog every job is looked at now and then.
 */
export const ACTIVE_JOBS_WINDOW = 2_500;

/** One outcome a worker reported, to record if the task is still running under that attempt on that worker. */
export interface TaskOutcomeParams {
  taskId: string;
  attempt: number;
  workerId: string;
  status: 'completed' | 'failed' | 'cancelled';
  result?: unknown;
  error?: TaskError;
  /**
   * For failures: when to run again, if the task's rules allow a retry (attempts left, error not
   * permanent; see core/task-transitions.ts). Undefined = do not retry.
   */
  retryAt?: number | undefined;
}

/**
 * What a batch handler records as it goes, applied in one transaction, and only while the task
 * runs under that attempt on that worker: a batch done, artifacts, the latest checkpoint.
 */
export interface TaskRecordParams {
  taskId: string;
  attempt: number;
  workerId: string;
  now: number;
  /** A batch done, with its metrics. A batch uid already recorded for the task is kept as it was. */
  batch?: { uid: string; metrics: Record<string, number> | null };
  /** Artifacts by batch uid; the first one recorded under a uid stands, a repeat is ignored. */
  artifacts?: { batchUid: string; data: unknown }[];
  /** The state to resume from; undefined = unchanged. */
  checkpoint?: unknown;
  /** The task's artifacts are complete (nothing more will be written). */
  artifactsComplete?: boolean;
}

/** Where an attempt resumes: the last checkpoint and the batches already done. */
export interface TaskResumeState {
  checkpoint: unknown;
  batches: string[];
}

/** A batch a task recorded as done. */
export interface TaskBatchRecord {
  batchUid: string;
  attempt: number;
  metrics: Record<string, number> | null;
  createdAt: number;
}

/** An artifact a task wrote under a batch uid. `seq` orders a job's artifacts as they were recorded. */
export interface ArtifactRecord {
  seq: number;
  jobId: string;
  taskId: string;
  batchUid: string;
  data: unknown;
  /** Its JSON text's length in bytes. */
  size: number;
  attempt: number;
  createdAt: number;
}

/** Which artifacts to list: a task's or a job's, after a `seq`, in `seq` order. */
export interface ArtifactListParams {
  jobId?: string;
  taskId?: string;
  /** Only these tasks' (a graph node's upstream tasks). */
  taskIds?: string[];
  afterSeq?: number;
  limit: number;
}

/** A file uploaded for tasks, without its bytes. */
export interface FileRecord {
  id: string;
  /** The API key that uploaded it (null under --insecure). */
  owner: string | null;
  /** The job whose tasks carry it, once one does (it is pruned with that job). */
  jobId: string | null;
  filename: string;
  size: number;
  contentType: string;
  /** SHA-256 of the bytes, hex. */
  sha256: string;
  createdAt: number;
}

/** A job whose counts or state changed in a store call. */
export interface JobChange {
  jobId: string;
  state: JobState;
  counts: JobCounts;
  /** True when this call moved the job into a terminal state. */
  finished: boolean;
  /**
   * The job's results, when the call that completed it had them in hand: a job of one task (a
   * named task, or a map of one chunk) completed by its outcome. The same as `jobResults`
   * returns; its subscribers are told without reading them back.
   */
  results?: unknown[];
  /**
   * Whether the job's end wrote a webhook delivery (it names a webhook, or its key has one), when
   * the call that ended it knows; absent otherwise (a change heard from another foreman, say).
   */
  webhook?: boolean;
}

/** What became of a batch of outcomes. */
export interface TaskFinishResult {
  /** Outcomes recorded (or turned into a scheduled retry). */
  recorded: { taskId: string; attempt: number; retried: boolean }[];
  /** Outcomes refused because the task is no longer running under that attempt. */
  rejected: { taskId: string; attempt: number; currentState: TaskState | null; currentAttempt: number | null }[];
  jobs: JobChange[];
  /** Graph nodes that may start now that their upstream nodes moved. */
  released: number;
}

/** What became of running tasks taken away from their worker (lost, expired, handed back). */
export interface TaskRequeueResult {
  /** Back in the queue. */
  requeued: TaskRef[];
  /** Lost too often (`maxLost`): failed for good with CC_ERR_WORKER_LOST. */
  failed: TaskRef[];
  jobs: JobChange[];
}

/** Running tasks to take from their worker. */
export interface TaskRequeueParams {
  tasks: TaskRef[];
  now: number;
  /** Why they were taken away; recorded in the task's attempt history. */
  error: TaskError;
  /**
   * Attempts that may end without an outcome (worker lost) before the task fails; omitted =
   * no limit. A worker handing a task back on shutdown does not count (`countAsLost: false`).
   */
  maxLost?: number;
  countAsLost?: boolean;
}

/** A page of a job's results: from `offset`, at most `limit` (results are arguments of a map job, else tasks). */
export interface ResultPage { offset: number; limit: number }

/** A job's results in order, and what failed. */
export interface JobResults {
  /** One entry per argument (map) or per task (tasks), in submission order; null where it failed. */
  results: unknown[];
  failures: { taskId: string; index: number; error: TaskError | null; state: TaskState }[];
  /** The index of `results[0]`. */
  offset: number;
  /** Results the job has in all (arguments of a map job, else tasks). */
  total: number;
}

/** A cancelled job, and the running tasks whose workers must be told. */
export interface JobCancelResult {
  job: JobRecord;
  /** Tasks that were running and whose workers must be told to stop. */
  running: { taskId: string; attempt: number; workerId: string | null }[];
  change: JobChange | null;
}

/** Counts by state. */
export interface StoreStats {
  jobs: Record<JobState, number>;
  tasks: Record<TaskState, number>;
  workers: { online: number; offline: number };
  /** Finished jobs and their tasks pruned since the database was made. */
  pruned: { jobs: number; tasks: number };
  /** Space the store takes on disk (SQLite: the file and its WAL; PostgreSQL: the tables and indexes), if it can tell. */
  storageBytes: number | null;
}

/** Which jobs a listing shows, newest first. */
export interface JobListParams {
  limit: number;
  offset: number;
  state?: JobState;
  /** Only this API key's jobs. */
  owner?: string;
  /** Jobs whose label (task types, function name) or name contains this text. */
  search?: string;
  /** Created at or after / before these times (epoch ms). */
  createdAfter?: number;
  createdBefore?: number;
}

/**
 * Which failed-for-good tasks (state `failed`) a dead-letter listing or bulk retry takes. The
 * error is grouped by its code (its name when it has none) and its message's first line, at
 * most {@link FAILED_MESSAGE_CHARS} characters.
 */
export interface FailedTaskFilter {
  /** Only this API key's jobs. */
  owner?: string;
  type?: string;
  errorCode?: string;
  /** The normalized message (first line) exactly, as a group shows it. */
  message?: string;
  jobId?: string;
  /** Failed at or after this time (epoch ms). */
  since?: number;
  /** Only these tasks. */
  taskIds?: readonly string[];
}

/** Characters of an error message's first line a group keeps (computed by both drivers' migrations, which say 200). */
export const FAILED_MESSAGE_CHARS = 200;

/** Failed-for-good tasks of one type with one error. */
export interface FailedTaskGroup {
  type: string;
  errorCode: string;
  message: string;
  count: number;
  /** Distinct jobs the tasks belong to. */
  jobs: number;
  firstAt: number;
  lastAt: number;
  /** Up to three of the newest tasks, and their jobs (one entry per task). */
  taskIds: string[];
  jobIds: string[];
}

/** A failed task a bulk retry takes, with its place for paging (`seq`). */
export interface FailedTaskRef {
  seq: number;
  taskId: string;
  jobId: string;
}

/** What a retry did. */
export interface JobRetryResult {
  job: JobRecord;
  /** Tasks put back in the queue. */
  retried: number;
  change: JobChange | null;
}

/**
 * The sweeps the foreman's maintenance loops make: expired leases, queue deadlines, pruning,
 * open jobs past their open timeout, jobs past their deadline.
 */
export type Sweep = 'leases' | 'queue_deadlines' | 'prune' | 'open_timeouts' | 'deadlines';

/** An open job closed by its open timeout: sealed, or cancelled (with the running tasks whose workers must be told). */
export interface JobOpenExpiry {
  jobId: string;
  action: OpenTimeoutAction;
  /** The timeout that passed. */
  openTimeoutMs: number;
  /** Tasks that were running and were cancelled (none when sealed). */
  running: { taskId: string; attempt: number; workerId: string | null }[];
  change: JobChange | null;
}

/** A job whose deadline passed: its unfinished tasks failed, the running ones among them to be stopped. */
export interface JobDeadlinePassed {
  jobId: string;
  deadline: number;
  /** Tasks failed with CC_ERR_DEADLINE. */
  failed: number;
  running: { taskId: string; attempt: number; workerId: string | null }[];
  change: JobChange | null;
}

/**
 * Which items a sweep may take (task ids for `leases`, job ids for the others): none of
 * `except` (items a loop set aside because they fail on their own), and, when `only` is
 * given, only those (a loop committing a few at a time to find which one fails).
 */
export interface SweepFilter {
  except?: readonly string[];
  only?: readonly string[];
}

/** What one pruning step may do, and which jobs it takes. */
export interface JobPruneParams {
  now: number;
  /** Most tasks deleted in this step (the step is one short transaction). */
  maxTasks: number;
  /** Prune jobs finished before this time, whatever their retention (on demand); default: those whose retention has passed. */
  completedBefore?: number;
  /**
   * Prune jobs that have not finished (queued or running), submitted before this time, instead:
   * their tasks never run, or their results are refused. The way to empty a full database
   * without writing anything but tombstones.
   */
  unfinishedBefore?: number;
  /** Forget pruned jobs' tombstones older than this. */
  forgetPrunedBefore?: number;
}

/** What a pruning step did. */
export interface JobPruneResult {
  jobs: number;
  tasks: number;
  /** True when more is due: call again. */
  more: boolean;
}

/** Other foremen's announcements, heard through a shared database (PostgreSQL's LISTEN/NOTIFY). */
export interface StoreNotifications {
  /**
   * New or returned work exists. With `accepted`: a job another foreman just accepted, as it
   * committed it (its tasks, waiting and delayed), and whether some of its tasks require
   * resources, and (except for graphs) the metadata and trace context its tasks are sent with
   * when they fit in the announcement; without, anything may have changed.
   */
  onWork(accepted?: { job: ActiveJob; requiring: boolean; sendWith?: { metadata: Record<string, unknown> | null; traceContext: TraceContext | null } }): void;
  /** A job's counts or state changed through another foreman. */
  onJobChange(change: JobChange): void;
  /** A running task must stop (cancelled through another foreman). */
  onCancel(task: { taskId: string; attempt: number; workerId: string | null; reason: string }): void;
  /** A credential was created or revoked. */
  onCredentials?(): void;
  /** A schedule was created, changed or deleted: when the next one is due may have moved. */
  onSchedules?(): void;
  /** Delayed tasks were stored through another foreman; the earliest is due at `at` (epoch ms). */
  onRelease?(at: number): void;
}

/** Which scheduled tasks to release. */
export interface TaskReleaseParams {
  /** Release tasks due at or before this time (the releaser's clock). */
  now: number;
  limit: number;
  /**
   * The wall clock: a released task is claimable from its own time or this, whichever is
   * earlier. They differ only when a test moved the releaser's clock ahead of the claims'.
   */
  wallNow: number;
}

/** A running task taken away when its lease ran out, and the worker that held it. */
export interface ExpiredLease extends TaskRef {
  workerId: string | null;
}

/**
 * An API key or a worker token as the store keeps it: never the secret itself. A key keeps
 * the SHA-256 of its secret; a worker token keeps nothing secret (its secret is derived from
 * the foremen's secret), so a copy of the database hands out no working credential.
 */
export interface CredentialRecord {
  id: string;
  /** An API key, a worker token, or a join link (a worker token for browser tabs, map tasks only). */
  kind: 'key' | 'token' | 'join';
  name: string | null;
  /** Keys: what they may do. */
  scopes: Scope[];
  /** Tokens: the worker id they are for, or '*' for any. */
  workerId: string | null;
  /** Keys: SHA-256 of the secret, hex. */
  secretHash: string | null;
  createdAt: number;
  revokedAt: number | null;
  lastUsedAt: number | null;
  lastUsedFrom: string | null;
  /** Join links: when they stop working (null: never). */
  expiresAt: number | null;
  /** Join links: how many browsers may be connected with one at once (null: no limit). */
  maxWorkers: number | null;
  /** Keys: at most this many tasks of its jobs run at once (null: no cap). */
  maxConcurrency: number | null;
  /** Keys: the webhook of its jobs that name none (null: none). */
  webhookUrl: string | null;
}

/** A credential to store. */
export type CredentialInsertParams = Omit<CredentialRecord, 'revokedAt' | 'lastUsedAt' | 'lastUsedFrom' | 'expiresAt' | 'maxWorkers' | 'maxConcurrency' | 'webhookUrl'>
  & { expiresAt?: number | null; maxWorkers?: number | null; maxConcurrency?: number | null; webhookUrl?: string | null };

/** What became of a webhook delivery: still being tried, accepted by its receiver, or given up. */
export type WebhookDeliveryState = 'pending' | 'delivered' | 'failed';

/** One try at posting a job's end to its webhook. */
export interface WebhookAttempt {
  attempt: number;
  /** When it was sent (epoch ms). */
  at: number;
  /** The receiver's HTTP status; null when no answer came (refused, timed out). */
  status: number | null;
  /** Why it did not count as delivered; null when it did. */
  error: string | null;
  durationMs: number;
}

/**
 * The announcement of one job end to one URL. A row is written in the transaction that ends
 * the job (a database trigger), so no end is lost; the sender claims attempts from it.
 */
export interface WebhookDeliveryRecord {
  id: number;
  jobId: string;
  url: string;
  state: WebhookDeliveryState;
  /** The job's state when it ended (what the delivery announces). */
  jobState: JobState;
  /** Attempts claimed so far (an attempt in flight is counted). */
  attempts: number;
  /** When the next attempt is due; while one is in flight, when it is given up as lost. Null once finished. */
  nextAttemptAt: number | null;
  lastStatus: number | null;
  lastError: string | null;
  /** Every attempt that came back, oldest first. */
  attemptLog: WebhookAttempt[];
  createdAt: number;
  /** When it was delivered or given up; null while pending. */
  finishedAt: number | null;
}

/** An attempt claimed for sending: the delivery, with `attempts` already counting this one. */
export type WebhookClaim = Pick<WebhookDeliveryRecord, 'id' | 'jobId' | 'url' | 'attempts' | 'jobState' | 'createdAt'>;

/**
 * How an attempt ended, recorded only if that attempt is the delivery's current one and still
 * in flight (recorded once; a claim that lapsed and was claimed again does not record): delivered, tried
 * again at `retryAt`, or given up.
 */
export interface WebhookAttemptParams {
  id: number;
  attempt: WebhookAttempt;
  next: { state: 'delivered' } | { state: 'pending'; retryAt: number } | { state: 'failed' };
}

/** A recurring schedule as the store keeps it (see docs/operations.md, "Schedules"). */
export interface ScheduleRecord {
  id: string;
  /** The API key that created it (its jobs are that key's); null under --insecure. */
  owner: string | null;
  name: string | null;
  /** Exactly one of `cron` and `everyMs`. */
  cron: string | null;
  everyMs: number | null;
  timezone: string;
  /** The job each fire submits. */
  job: JobSpec;
  overlap: ScheduleOverlap;
  windowMs: number;
  policy: ScheduleCatchUpPolicy;
  jitterMs: number;
  paused: boolean;
  pauseNote: string | null;
  /** The first tick not handled yet (fired, skipped, missed or buffered); null when the rule has no more. */
  nextTick: number | null;
  /** When that tick is due: the tick plus its jitter. */
  dueAt: number | null;
  /** overlap buffer_one: the tick held until the previous run's job finishes. */
  bufferedTick: number | null;
  /** The previous run's job (what the overlap policy looks at). */
  lastJobId: string | null;
  /** That job's state, read with the schedule; null without one, or once it was pruned. */
  lastJobState: JobState | null;
  /** Goes up at every change; a fire or an update guarded by it applies only to the schedule as read. */
  version: number;
  createdAt: number;
  updatedAt: number;
}

/** A new schedule. */
export type ScheduleInsertParams = Omit<ScheduleRecord, 'bufferedTick' | 'lastJobId' | 'lastJobState' | 'version' | 'updatedAt'>;

/** What a schedule change sets (PATCH, pause, resume). */
export type ScheduleChange = Partial<Pick<ScheduleRecord, 'name' | 'cron' | 'everyMs' | 'timezone' | 'job' | 'overlap' | 'windowMs' | 'policy' | 'jitterMs'
  | 'paused' | 'pauseNote' | 'nextTick' | 'dueAt' | 'bufferedTick'>>;

/** One tick of a schedule and what became of it. */
export interface ScheduleRunRecord {
  scheduleId: string;
  tickAt: number;
  firedAt: number | null;
  reason: ScheduleRunReason;
  outcome: ScheduleRunOutcome;
  jobId: string | null;
  /** Its job's state now (null without a job, or once it was pruned). */
  jobState: JobState | null;
}

/** Runs kept per schedule; older ones are deleted as new ones are recorded (see {@link trimsRuns}). */
export const SCHEDULE_RUNS_KEPT = 100;

/**
 * Whether a step deletes its schedule's runs past the newest SCHEDULE_RUNS_KEPT: a step of
 * several runs, an unguarded one, and every tenth guarded step (by version), so that a fire of
 * one tick mostly skips the delete and a schedule holds at most 10 runs more than it keeps.
 */
export function trimsRuns(p: Pick<ScheduleFireParams, 'guard' | 'runs'>): boolean {
  return p.runs.length > 0 && (p.guard === null || p.runs.length > 1 || (p.guard.version + 1) % 10 === 0);
}

/** The job id a step makes the previous run's (the last of its runs with a job), if it sets one. */
export function lastJobOf(p: Pick<ScheduleFireParams, 'runs' | 'setsLastJob'>): string | null {
  if (!p.setsLastJob) return null;
  for (let i = p.runs.length - 1; i >= 0; i--) if (p.runs[i].job) return p.runs[i].job!.job.id;
  return null;
}

/** A run to record; one with a job inserts it in the same transaction (or finds it by its idempotency key). */
export interface ScheduleRunInsert {
  tickAt: number;
  firedAt: number | null;
  reason: ScheduleRunReason;
  outcome: ScheduleRunOutcome;
  job?: JobInsertParams;
}

/**
 * One step of one schedule, written in one transaction with the others of its group: the
 * schedule moves on, its runs are recorded and their jobs inserted, only if the schedule is
 * still as the foreman read it (`guard`). Two foremen firing the same tick: one applies, the
 * other changes nothing.
 */
export interface ScheduleFireParams {
  scheduleId: string;
  /** Applied only while the schedule has this version and next tick; null: unguarded (a trigger, a backfill, kept once by their jobs' idempotency keys). */
  guard: { version: number; nextTick: number | null } | null;
  /** Where the schedule stands after this step; omitted: where it was. */
  advance?: { nextTick: number | null; dueAt: number | null; bufferedTick: number | null };
  runs: ScheduleRunInsert[];
  /** The job of the last run with one becomes the previous run's job (what overlap looks at). */
  setsLastJob: boolean;
  now: number;
}

/** What a step did: nothing (the guard failed, or the schedule is gone), or its jobs by tick. */
export type ScheduleFireOutcome =
  | { applied: false; error?: Error }
  | { applied: true; jobs: (JobInsertResult & { tickAt: number })[] };

/** The store: one interface, one driver per database. */
export interface Store {
  readonly driver: 'sqlite' | 'postgres';
  /** Statements sent to a database server since the store opened, each a round trip (an embedded store has none). */
  readonly statementCount?: number;
  /** Create or upgrade the schema. Safe to call on every start. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  jobInsert(params: JobInsertParams): Promise<JobInsertResult>;
  /**
   * Several jobs in one transaction (group commit): each job goes in whole or not at all, and a
   * job refused (a task id taken) is returned as its error without undoing the others.
   */
  jobInsertMany(list: JobInsertParams[]): Promise<JobInsertOutcome[]>;
  /**
   * Append a part to an open job (see JobAppendParams); null when the job does not exist. A
   * chosen task id already taken fails the whole part (nothing is appended).
   */
  jobAppend(params: JobAppendParams): Promise<JobAppendResult | null>;
  jobGet(jobId: string): Promise<JobRecord | null>;
  /** Jobs, newest first; `owner` keeps only that key's jobs. */
  jobList(params: JobListParams): Promise<JobRecord[]>;
  /** A graph job's nodes (null for other jobs or none). */
  jobGraph(jobId: string): Promise<GraphPlan | null>;
  /** A map job's function source and arguments per task (null for other jobs or none). */
  jobCode(jobId: string): Promise<JobCode | null>;
  /** A job's results in order, all of them or a page (`offset`, `limit`, counted in results). */
  jobResults(jobId: string, page?: ResultPage): Promise<JobResults | null>;
  jobCancel(params: { jobId: string; now: number }): Promise<JobCancelResult | null>;
  /**
   * Fail a job as a whole: its queued and running tasks fail with `error` (running ones are
   * returned, for their workers to be told), it takes no more parts, and it ends `failed`.
   */
  jobFail(params: { jobId: string; now: number; error: TaskError }): Promise<JobCancelResult | null>;

  taskGet(taskId: string): Promise<TaskRecord | null>;
  /** A job's tasks in index order from `offset` (an index, so paging deep into a big job stays fast); `state` keeps one state. */
  taskList(params: { jobId: string; limit: number; offset: number; state?: TaskState }): Promise<TaskRecord[]>;
  /**
   * The task types among a job's first `sample` queued tasks that require nothing of their
   * worker, each once (what GET /api/jobs/{id} warns that no worker serves). Read from the
   * queue's index: it costs what `sample` says, whatever the size of the job.
   */
  jobQueuedTypes(params: { jobId: string; sample: number }): Promise<string[]>;
  /**
   * Run a job's failed and cancelled tasks again (or the one task `taskId` names, or those of `taskIds`), with fresh
   * attempts; recorded results stay. The job becomes unfinished again. Null if there is no such job.
   */
  jobRetry(params: { jobId: string; taskId?: string; taskIds?: readonly string[]; now: number }): Promise<JobRetryResult | null>;
  /**
   * Failed-for-good tasks grouped by type and error, largest group first (then by type, code
   * and message), a page of groups.
   */
  taskFailedGroups(params: FailedTaskFilter & { limit: number; offset: number }): Promise<FailedTaskGroup[]>;
  /** Failed-for-good tasks in storage order after `afterSeq`, at most `limit`: what a bulk retry walks in batches. */
  taskFailedPage(params: FailedTaskFilter & { afterSeq: number; limit: number }): Promise<FailedTaskRef[]>;
  /**
   * Move scheduled tasks whose time has come (at or before `now`) to the queue, earliest first,
   * at most `limit`; returns how many and of which jobs. Several foremen may call it at once:
   * each task is released by one of them (a guarded update).
   */
  taskReleaseDue(params: TaskReleaseParams): Promise<{ released: number; jobIds: string[] }>;
  /** When the earliest scheduled task is due (epoch ms), or null when none waits. */
  taskNextRelease(): Promise<number | null>;
  /**
   * Close open jobs that got no part and no seal before their `openExpiresAt`, each as it chose:
   * sealed (it finishes when its tasks do), or cancelled (its unfinished tasks cancelled with an
   * error naming the timeout). Either way it takes no more parts and `closedBy` is `open_timeout`.
   */
  jobExpireOpen(params: { now: number; limit: number } & SweepFilter): Promise<JobOpenExpiry[]>;
  /**
   * Fail the unfinished tasks (scheduled, queued, running) of jobs whose deadline has passed,
   * with CC_ERR_DEADLINE (the `deadline` transition); an open one is closed. Running tasks are
   * returned (and, on a shared database, announced) for their workers to be told to stop.
   */
  jobFailPastDeadline(params: { now: number; limit: number } & SweepFilter): Promise<JobDeadlinePassed[]>;
  /** The earliest open timeout or deadline still to come or overdue, of any unfinished job; null when there is none. */
  jobNextExpiry(): Promise<number | null>;
  /** Fail the tasks of jobs past their queue deadline that no worker has started (CC_ERR_NO_WORKER). */
  taskExpireQueued(params: { now: number; limit: number } & SweepFilter): Promise<{ failed: number; jobs: JobChange[] }>;
  /**
   * Atomically move up to `limit` queued tasks the worker can run to `running`, best priority
   * first. Tasks that require resources are left to `taskClaimFitting`.
   */
  taskClaimMany(params: TaskClaimParams): Promise<ClaimedTask[]>;
  /**
   * Claim named tasks that require resources, best priority first, each only if it fits in
   * what is still free of `free` once the tasks claimed before it are counted.
   */
  taskClaimFitting(params: TaskClaimParams & { free: ResourceAmounts }): Promise<ClaimedTask[]>;
  /** Unfinished jobs with their running and waiting tasks, the owners' caps and the rate limits. */
  schedulerSnapshot(params?: { after?: JobCursor | null; window?: number }): Promise<SchedulerSnapshot>;
  /** The rate limits, by pattern. */
  rateLimitList(): Promise<RateLimit[]>;
  /** Set (or replace) the rate limit of a type pattern; its bucket starts full. */
  rateLimitSet(limit: RateLimit, now: number): Promise<void>;
  /** Remove a type pattern's rate limit; false if it had none. */
  rateLimitDelete(pattern: string): Promise<boolean>;
  /**
   * Record outcomes; each only if its task is still running under that attempt and on that
   * worker. Job counters and the workers' completed/failed counters move in the same transaction.
   */
  taskFinishMany(params: { outcomes: TaskOutcomeParams[]; now: number }): Promise<TaskFinishResult>;
  /** Put running tasks back in the queue (their worker went away); conditional on the attempt. */
  taskRequeueMany(params: TaskRequeueParams): Promise<TaskRequeueResult>;
  /** Requeue (or fail, past maxLost) every running task whose lease expired before `now`. */
  taskRequeueExpired(params: { now: number; maxLost?: number; limit: number } & SweepFilter): Promise<TaskRequeueResult & { expired: ExpiredLease[] }>;
  /**
   * The ids a sweep would take now, without taking them (at most `limit`, in the order it would):
   * tasks whose lease expired (`leases`), jobs past their queue deadline (`queue_deadlines`),
   * jobs due for pruning (`prune`, with `completedBefore` as jobPrune takes it), open jobs past
   * their open timeout (`open_timeouts`), jobs past their deadline (`deadlines`).
   */
  sweepCandidates(params: { sweep: Sweep; now: number; limit: number; completedBefore?: number } & SweepFilter): Promise<string[]>;
  /** Push the lease of tasks a worker still runs to `until`; returns how many it still held. */
  taskLeaseExtend(params: { workerId: string; tasks: TaskRef[]; until: number }): Promise<number>;
  /** Cancel one task: a queued one never starts; a running one is reported so its worker can be told. */
  taskCancel(params: { taskId: string; now: number }): Promise<{ task: TaskRecord; running: { attempt: number; workerId: string | null } | null; change: JobChange | null } | null>;
  /** Tasks running on a worker, as the store sees them. */
  taskListRunningByWorker(workerId: string): Promise<TaskRef[]>;
  taskProgressSet(params: { taskId: string; attempt: number; progress: number; message: string | null }): Promise<boolean>;
  /**
   * Record what a batch handler did (a batch, artifacts, a checkpoint) in one transaction, if
   * the task still runs under that attempt on that worker (`recorded` false when it does not);
   * graph nodes waiting for those artifacts are released in the same transaction.
   */
  taskRecord(params: TaskRecordParams): Promise<{ recorded: boolean; released: number }>;
  /** The resume state of tasks that recorded a checkpoint or batches; others are absent. */
  taskResume(taskIds: string[]): Promise<Map<string, TaskResumeState>>;
  /** The batches a task recorded as done, in the order they were recorded. */
  taskBatches(taskId: string): Promise<TaskBatchRecord[]>;
  /** Artifacts in `seq` order. */
  artifactList(params: ArtifactListParams): Promise<ArtifactRecord[]>;
  /** How many artifacts each task of a job has written (tasks with none are absent). */
  artifactCounts(jobId: string): Promise<Map<string, number>>;

  /** Keep an uploaded file's bytes. */
  fileInsert(params: Omit<FileRecord, 'jobId'> & { data: Uint8Array }): Promise<void>;
  /** Files by id, without their bytes (unknown ids are absent). */
  fileList(ids: readonly string[]): Promise<FileRecord[]>;
  /** A file's bytes, or null. */
  fileData(id: string): Promise<Uint8Array | null>;
  /** The files a task carries (in the order given at submission). */
  taskFiles(taskId: string): Promise<FileRecord[]>;

  workerUpsert(params: Omit<WorkerRecord, 'tasksCompleted' | 'tasksFailed' | 'disconnectedAt'>): Promise<void>;
  workerDisconnected(params: { workerId: string; now: number }): Promise<void>;
  /**
   * Note when workers connected to `foremanId` were last heard from, in one write for many: a
   * foreman refreshes its workers' `lastSeenAt` now and then rather than at every heartbeat.
   * A row only moves forward, and only while the worker is online at that foreman.
   */
  workerSeen(params: WorkerSeenParams): Promise<void>;
  workerList(): Promise<WorkerRecord[]>;

  /*
   * Foremen's leases: how the foremen of one database know which of them are alive, so that the
   * workers of one that died without a word (SIGKILL, a lost machine) are not shown online for
   * ever. A foreman holds a lease while it runs, renews it well before it runs out, and ends it
   * when it stops; any foreman marks offline the workers of foremen whose lease ran out.
   */

  /**
   * A foreman starts: it takes its lease (until `until`), and the workers still recorded online
   * at its id go offline, since it has no connection yet (they were an earlier run's under the
   * same id). A driver that serves one foreman at a time (SQLite, whose foreman lock this
   * process holds) also drops every other lease: their holders are gone. Returns how many
   * workers went offline.
   */
  foremanLeaseTake(params: { foremanId: string; now: number; until: number }): Promise<number>;
  /**
   * Push a foreman's lease to `until`. False when it held none (it had run out and another
   * foreman reaped it): its workers may have been marked offline, and it records them again.
   */
  foremanLeaseRenew(params: { foremanId: string; until: number }): Promise<boolean>;
  /** A foreman stops: its lease ends, and its workers still recorded online go offline. */
  foremanLeaseEnd(params: { foremanId: string; now: number }): Promise<void>;
  /**
   * Forget the leases that ran out before `now`, and mark offline every worker recorded online
   * at a foreman that holds no lease (their last seen stays; they were disconnected then). One
   * reap at a time, and no lease renewed meanwhile, so a foreman's renewal and a reap of it
   * never cross (a reaped foreman learns of it at its next renewal).
   */
  foremanReapLapsed(params: { now: number }): Promise<ForemanReapResult>;

  stats(): Promise<StoreStats>;

  /** Store a new credential; the credentials version goes up. */
  credentialInsert(params: CredentialInsertParams): Promise<void>;
  credentialGet(id: string): Promise<CredentialRecord | null>;
  /** Credentials, newest first, of one kind or both. */
  credentialList(params: { kind?: CredentialRecord['kind'] }): Promise<CredentialRecord[]>;
  /** Revoke a credential (again is harmless); the credentials version goes up. Null if unknown. */
  credentialRevoke(params: { id: string; now: number }): Promise<CredentialRecord | null>;
  /** Set (or, with null, lift) an API key's cap on its jobs' running tasks; null if no key has the id. */
  credentialSetMaxConcurrency(params: { id: string; maxConcurrency: number | null }): Promise<CredentialRecord | null>;
  /** Set (or, with null, remove) an API key's default webhook; null if no key has the id. */
  credentialSetWebhook(params: { id: string; webhookUrl: string | null }): Promise<CredentialRecord | null>;
  /** Note a credential's use: when, and from which address. */
  credentialTouch(params: { id: string; now: number; from: string }): Promise<void>;
  /** A number that goes up whenever a credential is created or revoked (foremen watch it). */
  credentialsVersion(): Promise<number>;
  /**
   * Delete finished jobs past their retention, with their tasks, results and attempt history,
   * a few thousand tasks at a time; each pruned job leaves a tombstone (its id and owner).
   */
  jobPrune(params: JobPruneParams & SweepFilter): Promise<JobPruneResult>;
  /** A pruned job's tombstone, while it is kept. */
  jobPruned(jobId: string): Promise<{ owner: string | null; prunedAt: number } | null>;
  /** Set a setting unless it is set; returns the value the store holds (the first writer's). */
  metaSetIfAbsent(params: { key: string; value: string }): Promise<string>;
  /**
   * Write something that needs new space, and undo it: fails as any growing write would while
   * the database cannot grow (full disk, size limit, read-only file), succeeds once it can.
   */
  probeSpace(): Promise<void>;

  /** Create a schedule; null when its id is taken (by any owner). */
  scheduleCreate(params: ScheduleInsertParams): Promise<ScheduleRecord | null>;
  scheduleGet(id: string): Promise<ScheduleRecord | null>;
  /** Schedules by id; `owner` keeps only that key's. */
  scheduleList(params: { owner?: string }): Promise<ScheduleRecord[]>;
  /** Change a schedule (its version goes up); with `expectVersion`, only if it is still at that version. Null when not applied. */
  scheduleUpdate(params: { id: string; change: ScheduleChange; expectVersion?: number; now: number }): Promise<ScheduleRecord | null>;
  /** Delete a schedule and its run history (its jobs stay); false if there was none. */
  scheduleDelete(id: string): Promise<boolean>;
  /** When the earliest unpaused schedule is due (its next tick plus jitter); null when none is. */
  scheduleNextDue(): Promise<number | null>;
  /**
   * Schedules to look at now, at most `limit`, earliest due first: unpaused ones due at or
   * before `now`, and those holding a buffered tick whose previous job has finished (or is gone).
   */
  scheduleDue(params: { now: number; limit: number; except?: readonly string[] }): Promise<ScheduleRecord[]>;
  /** Steps of several schedules in one transaction (see ScheduleFireParams); one outcome each, in order. */
  scheduleFire(list: ScheduleFireParams[]): Promise<ScheduleFireOutcome[]>;
  /** A schedule's runs, newest first. */
  scheduleRunList(params: { scheduleId: string; limit: number }): Promise<ScheduleRunRecord[]>;

  /**
   * Claim up to `limit` webhook attempts due at or before `now`, earliest first: each is counted
   * and pushed to `now + leaseMs` (when it is tried again if its result never comes). Exactly
   * once per attempt across foremen: a claimed attempt is not due again before that time.
   */
  webhookClaimDue(params: { now: number; limit: number; leaseMs: number }): Promise<WebhookClaim[]>;
  /** Record an attempt's outcome (see WebhookAttemptParams); false when the attempt was not the delivery's current one. */
  webhookRecordAttempt(params: WebhookAttemptParams): Promise<boolean>;
  /** When the earliest pending delivery is due (or its claim lapses); null when none is pending. */
  webhookNextDue(): Promise<number | null>;
  /** A job's webhook deliveries, oldest first. */
  webhookDeliveryList(jobId: string): Promise<WebhookDeliveryRecord[]>;

  /** What an operator should know about the database's settings (logged at start), if anything. */
  setupWarnings?(): Promise<string[]>;

  /**
   * Where the server does not vacuum by itself (autovacuum off): vacuum the tables a task's
   * claim and result leave dead rows in, those whose dead rows passed `threshold` plus
   * `fraction` of their live rows; at most one foreman at a time. Returns what it vacuumed
   * (nothing where autovacuum is on). Absent on drivers that reuse the space by themselves.
   */
  vacuumDue?(params: { threshold: number; fraction: number }): Promise<VacuumRun[]>;

  /**
   * Drivers shared by several foremen (PostgreSQL) announce what the others must hear:
   * new work, job changes, running tasks to cancel. Absent on single-foreman drivers.
   */
  listen?(handlers: StoreNotifications): Promise<() => Promise<void>>;
}
