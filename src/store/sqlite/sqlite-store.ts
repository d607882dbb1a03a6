/**
 * The embedded store: better-sqlite3 on a WAL database file.
 *
 * better-sqlite3 is synchronous, so each method runs to completion on the event loop; that
 * is what makes it fast (no round trips) and it also means a long transaction blocks the
 * foreman. Callers therefore batch: one transaction per group of results or claims, never
 * one per task. `synchronous = NORMAL` under WAL survives a killed process (what the crash
 * tests do); only an OS crash or power loss can lose the last commits. Set
 * `durability: 'full'` to fsync every commit.
 */
import Database from 'better-sqlite3';
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  CODE_LANGUAGES, PRIORITY_BY_RANK, PRIORITY_RANK, TERMINAL_JOB_STATES, mapTaskTypes, taskError,
  type JobState, type TaskError, type TaskState, type JobCounts, type Requirements,
} from '../../protocol/index.ts';
import { deriveJobState, isJobDone } from '../../core/job-state.ts';
import { BLOCKED_UNTIL, graphState, releasable, type GraphPlan } from '../../core/graph.ts';
import { fits, take, type ResourceAmounts } from '../../core/resources.ts';
import { afterFailure, afterLoss, canTake, initialTaskState } from '../../core/task-transitions.ts';
import type {
  ClaimedTask, CredentialInsertParams, CredentialRecord, ExpiredLease, JobListParams, JobPruneParams, JobRetryResult, JobPruneResult, JobCancelResult, TaskRequeueParams, TaskRequeueResult, JobChange, JobInsertParams, JobInsertOutcome, JobInsertResult, JobAppendParams, JobAppendResult, ResultPage, JobRecord, JobResults,
  CodeLanguage, Store, StoreStats, TaskClaimParams, TaskReleaseParams, WorkerKind, TaskFinishResult, TaskOutcomeParams, TaskRecord, TaskRef, WorkerRecord, WorkerSeenParams, ForemanReapResult,
  ArtifactListParams, ArtifactRecord, FileRecord, TaskBatchRecord, TaskRecordParams, TaskResumeState, Sweep, SweepFilter,
  JobOpenExpiry, JobDeadlinePassed, OpenTimeoutAction, FailedTaskFilter, FailedTaskGroup, FailedTaskRef,
  ScheduleChange, ScheduleFireOutcome, ScheduleFireParams, ScheduleInsertParams, ScheduleRecord, ScheduleRunRecord,
  WebhookAttemptParams, WebhookClaim, WebhookDeliveryRecord,
} from '../store.ts';
import { ACTIVE_JOBS_WINDOW, POSITION_COUNT_CAP, SCHEDULE_RUNS_KEPT, lastJobOf, trimsRuns, type JobCode, type JobCursor, type RateLimit, type SchedulerSnapshot } from '../store.ts';
import { RATE_SLACK, tokensAt, withinRates } from '../../core/rate-limits.ts';
import { withinCaps, type JobCaps } from '../../core/fair-share.ts';
import { stateGuard as guard, targetState as to } from '../transition-sql.ts';
import { SQLITE_MIGRATIONS } from './migrations.ts';
import { deadlineError, openTimeoutColumns, openTimeoutError } from '../row-mapping.ts';
import { resultsInHand, failedGroupFromRow, activeJobFromRow, artifactFromRow, claimedFromRow, requirementsOf, bucketFromRow, cursorOf, windowStart, artifactQuery, batchFromRow, fileFromRow, nodeStatus, credentialFromRow, flattenResults, fromJson, jobFromRow, refusedAppend, resultTasks, taskCountsFromJobs, taskFromRow, toJson, workerFromRow, scheduleFromRow, scheduleRunFromRow, SCHEDULE_COLUMNS, webhookDeliveryFromRow, traceContextOf } from '../row-mapping.ts';
import { Checkpointer } from './checkpointer.ts';
import { preparePlanStable } from './plan-stable-sql.ts';
import { ForemanLock } from './foreman-lock.ts';
import { isStoreOutage, storeError } from '../store-errors.ts';

/** Where the embedded store keeps its file, and how hard it holds on to commits. */
export interface SqliteStoreOptions {
  /** File path, or ':memory:'. */
  path: string;
  /** 'normal' (default) survives process crashes; 'full' also survives power loss, slower. */
  durability?: 'normal' | 'full';
  /** How often the background thread checkpoints the WAL. Default 1 s. */
  checkpointIntervalMs?: number;
  /** Called with checkpoint errors (they do not stop the store). */
  onCheckpointError?: (message: string) => void;
  /** The file may not grow past this many bytes: writes beyond fail as a full disk would. */
  maxSizeBytes?: number;
  /** Hold the foreman lock on the file for this foreman (see foreman-lock.ts). */
  foremanId?: string;
}

type Row = Record<string, any>;

/**
 * Room kept above a size cap (--max-database-size) for writes that make room: a share of the
 * cap, and at least 4 MiB. Measured: cancelling grows the file by 110 to 170 bytes per queued
 * task (its state, its error), so the least headroom cancels about 25,000 tasks; a larger
 * backlog is dropped with `crowdcompute prune --unfinished`, which only deletes.
 */
const HEADROOM_SHARE = 0.05;
const HEADROOM_MIN_BYTES = 4 * 1024 * 1024;

/** Bytes the space probe writes: a few pages, as a small submission would. */
const PROBE_BYTES = 64 * 1024;

/** Keeps a sweep to its filter: `@except` and `@only` are JSON arrays of ids, or null. */
const SWEEP_FILTER = `AND (@except IS NULL OR id NOT IN (SELECT value FROM json_each(@except)))
  AND (@only IS NULL OR id IN (SELECT value FROM json_each(@only)))`;

/** True when a sweep is restricted (the unrestricted one keeps its plain statement). */
const isFiltered = (f: SweepFilter): boolean => (f.except?.length ?? 0) > 0 || f.only !== undefined;

/** The named parameters of a filtered sweep statement. */
function sweepArgs(now: number, limit: number, f: SweepFilter): { now: number; limit: number; except: string | null; only: string | null } {
  return { now, limit, except: f.except?.length ? JSON.stringify(f.except) : null, only: f.only ? JSON.stringify(f.only) : null };
}

/** Our globs use `*` and `?` only; GLOB also treats `[` specially, so a literal `[` is escaped. */
/** The FROM and WHERE of a dead-letter query, and its parameters (the jobs are joined only to filter by owner). */
function failedWhere(f: FailedTaskFilter): { where: string; bound: Record<string, unknown> } {
  const where = [`t.state = 'failed'`];
  const bound: Record<string, unknown> = {};
  const add = (sql: string, name: string, value: unknown) => { if (value !== undefined) { where.push(sql); bound[name] = value; } };
  add('j.owner = @owner', 'owner', f.owner);
  add('t.type = @type', 'type', f.type);
  add('t.error_code = @errorCode', 'errorCode', f.errorCode);
  add('t.error_line = @message', 'message', f.message);
  add('t.job_id = @jobId', 'jobId', f.jobId);
  add('t.completed_at >= @since', 'since', f.since);
  add('t.id IN (SELECT value FROM json_each(@taskIds))', 'taskIds', f.taskIds ? JSON.stringify(f.taskIds) : undefined);
  // The index of failed tasks holds every column these queries filter, group and sort on (a
  // list of task ids goes by the ids instead): named, so that a filter by owner does not walk
  // the owner's jobs' tasks, reading each task's error, instead.
  const index = f.taskIds ? '' : ' INDEXED BY tasks_failed_groups';
  return { where: `tasks t${index}${f.owner !== undefined ? ' JOIN jobs j ON j.id = t.job_id' : ''} WHERE ${where.join(' AND ')}`, bound };
}

function toSqliteGlob(pattern: string): string {
  return pattern.replace(/\[/g, '[[]');
}

/** The embedded store (see the file's comment). @internal */
export class SqliteStore implements Store {
  readonly driver = 'sqlite' as const;
  readonly db: Database.Database;
  private readonly claimStmts = new Map<string, Database.Statement>();

  constructor(options: SqliteStoreOptions) {
    this.path = options.path;
    if (options.path !== ':memory:') mkdirSync(dirname(options.path), { recursive: true });
    this.lock = options.foremanId && options.path !== ':memory:' ? ForemanLock.acquire(options.path, options.foremanId) : null;
    this.db = preparePlanStable(new Database(options.path));
    if (options.maxSizeBytes) {
      const pageSize = this.db.pragma('page_size', { simple: true }) as number;
      this.capPages = Math.max(1, Math.floor(options.maxSizeBytes / pageSize));
      this.headroomPages = Math.ceil(Math.max(HEADROOM_MIN_BYTES, options.maxSizeBytes * HEADROOM_SHARE) / pageSize);
      this.db.pragma(`max_page_count = ${this.capPages}`);
    }
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.durability === 'full' ? 'FULL' : 'NORMAL'}`);
    this.db.pragma('busy_timeout = 5000');
    // Reads and writes of one foreman share this connection. 16 MiB of page cache holds the
    // queue's hot pages (the operating system caches the rest of the file): measured no slower
    // than 64 MiB on a million-task job, and 50-70 MiB less resident memory.
    this.db.pragma('cache_size = -16384');
    if (options.path !== ':memory:') {
      // Checkpoints run on a thread of their own (see checkpointer.ts), which empties the WAL
      // whenever it passes 64 MiB; a WAL started over is cut back to that size too.
      this.db.pragma('wal_autocheckpoint = 0');
      this.db.pragma('journal_size_limit = 67108864');
      this.checkpointer = new Checkpointer(options.path, options.checkpointIntervalMs ?? 1_000, options.onCheckpointError ?? (() => {}));
    }
  }

  private checkpointer: Checkpointer | null = null;
  /** The size cap in pages (none: 0), and the headroom above it kept for writes that free space. */
  private capPages = 0;
  private headroomPages = 0;
  private readonly lock: ForemanLock | null;
  private readonly path: string;

  private s!: ReturnType<SqliteStore['prepare']>;
  /** Transaction wrappers, built once: better-sqlite3 prepares BEGIN/COMMIT per wrapper. */
  private readonly txs = new Map<string, Database.Transaction<(arg: any) => any>>();

  private tx<A, R>(name: string, body: (arg: A) => R): (arg: A) => R {
    let t = this.txs.get(name);
    if (!t) { t = this.db.transaction(body); this.txs.set(name, t); }
    return t.immediate as (arg: A) => R;
  }

  /**
   * A transaction that makes room (a cancel, a failure, a prune): under a size cap it may use
   * the headroom kept above the cap, so that a full database can always be emptied. (Cancelling
   * writes each task's new state and error; pruning its tombstone. Submissions and results
   * never reach the headroom.) The cap cannot go below the file's size, so after such a write
   * the file stays as large as it grew, and new rows reuse the space freed.
   */
  private freeing<A, R>(name: string, body: (arg: A) => R): (arg: A) => R {
    const run = this.tx(name, body);
    if (this.capPages === 0) return run;
    return (arg: A) => {
      this.db.pragma(`max_page_count = ${this.capPages + this.headroomPages}`);
      try { return run(arg); } finally { this.db.pragma(`max_page_count = ${this.capPages}`); }
    };
  }

  /** A wrapper for use inside a transaction: a savepoint, so a failure undoes only its own writes. */
  private savepoint<F extends (...args: any[]) => any>(name: string, body: F): F {
    let t = this.txs.get(name);
    if (!t) { t = this.db.transaction(body); this.txs.set(name, t); }
    return t as unknown as F;
  }

  async migrate(): Promise<void> {
    this.db.exec('CREATE TABLE IF NOT EXISTS cc_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    const applied = new Set(this.db.prepare('SELECT version FROM cc_migrations').all().map((r: any) => r.version));
    // BEGIN IMMEDIATE takes the write lock first, so two processes starting on one file do not both migrate.
    const apply = this.db.transaction((m: (typeof SQLITE_MIGRATIONS)[number]) => {
      const again = this.db.prepare('SELECT 1 FROM cc_migrations WHERE version = ?').get(m.version);
      if (again) return;
      this.db.exec(m.sql);
      this.db.prepare('INSERT INTO cc_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
    });
    for (const m of SQLITE_MIGRATIONS) if (!applied.has(m.version)) apply.immediate(m);
    this.s = this.prepare();
  }

  private prepare() {
    const db = this.db;
    return {
      jobByKey: db.prepare('SELECT * FROM jobs WHERE idempotency_key = ?'),
      jobInsert: db.prepare(`INSERT INTO jobs (id, kind, name, state, priority, total, arg_count, chunk_size, code, timeout_ms,
        max_attempts, idempotency_key, metadata, owner, retention_ms, label, queue_timeout_ms, queue_deadline, run_on, graph, open, weight, max_concurrency, language,
        open_timeout_ms, on_open_timeout, open_expires_at, deadline, run_at, webhook_url, trace_context, created_at) VALUES
        (@id, @kind, @name, 'queued', @priority, @total, @argCount, @chunkSize, @code, @timeoutMs, @maxAttempts, @idempotencyKey, @metadata, @owner, @retentionMs,
         @label, @queueTimeoutMs, max(@now, coalesce(@runAt, 0)) + @queueTimeoutMs, @runOn, @graph, @open, @weight, @maxConcurrency, @language,
         @openTimeoutMs, @onOpenTimeout, @now + @openTimeoutMs, @deadline, @runAt, @webhookUrl, @traceContext, @now) RETURNING *`),
      // A part of an open job: only if it is still open, the part starts where the job ends (when
      // it says where), and a map job's earlier parts were whole chunks. Queued tasks wait afresh,
      // and the open timeout starts again (a seal ends it).
      jobAppend: db.prepare(`UPDATE jobs SET total = total + @tasks, arg_count = CASE WHEN kind = 'map' THEN arg_count + @args ELSE arg_count END,
        open = CASE WHEN @seal = 1 THEN 0 ELSE 1 END, label = coalesce(nullif(label, ''), @label),
        open_expires_at = CASE WHEN @seal = 1 THEN NULL ELSE @now + open_timeout_ms END, closed_by = CASE WHEN @seal = 1 THEN 'seal' ELSE NULL END,
        queue_deadline = CASE WHEN queue_timeout_ms IS NULL THEN queue_deadline ELSE @now + queue_timeout_ms END
        WHERE id = @id AND open = 1 AND (@at IS NULL OR @at = CASE WHEN kind = 'map' THEN arg_count ELSE total END)
          AND (kind <> 'map' OR @args = 0 OR arg_count % chunk_size = 0) RETURNING *`),
      taskInsert: db.prepare(`INSERT INTO tasks (id, job_id, idx, kind, type, input, priority, state, max_attempts, timeout_ms, created_at, run_on, available_at, requires, files)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      fileInsert: db.prepare(`INSERT INTO files (id, owner, filename, size, content_type, sha256, data, created_at)
        VALUES (@id, @owner, @filename, @size, @contentType, @sha256, @data, @createdAt)`),
      fileAttach: db.prepare('UPDATE files SET job_id = ? WHERE id = ? AND job_id IS NULL'),
      fileData: db.prepare('SELECT data FROM files WHERE id = ?'),
      taskFilesOf: db.prepare('SELECT files FROM tasks WHERE id = ?'),
      pruneFiles: db.prepare('DELETE FROM files WHERE job_id = ?'),
      pruneLooseFiles: db.prepare('DELETE FROM files WHERE rowid IN (SELECT rowid FROM files WHERE job_id IS NULL AND created_at < ? LIMIT 1000)'),
      jobKind: db.prepare('SELECT kind FROM jobs WHERE id = ?'),
      jobGraph: db.prepare('SELECT graph FROM jobs WHERE id = ?'),
      graphTasks: db.prepare('SELECT id, state, available_at FROM tasks WHERE job_id = ?'),
      graphWriters: db.prepare('SELECT DISTINCT task_id FROM artifacts WHERE job_id = ?'),
      artifactCounts: db.prepare('SELECT task_id, count(*) AS n FROM artifacts WHERE job_id = ? GROUP BY task_id'),
      graphFailed: db.prepare(`SELECT id FROM tasks WHERE job_id = ? AND state = 'failed'`),
      graphRelease: db.prepare(`UPDATE tasks SET available_at = ? WHERE id = ? AND state = 'queued' AND available_at >= ${BLOCKED_UNTIL}`),
      taskSeqById: db.prepare('SELECT seq FROM tasks WHERE id = ?'),
      // The first queued tasks by priority (in index order): enough to count any position up to the cap.
      queuedByPriority: db.prepare(`SELECT priority, count(*) AS n FROM (SELECT priority FROM tasks WHERE state = 'queued'
        ORDER BY priority LIMIT ${POSITION_COUNT_CAP + 1}) GROUP BY priority`),
      // Whether anything wrote since the counts above were taken: rows this connection changed,
      // and commits of other connections (another process on the file).
      totalChanges: db.prepare('SELECT total_changes()').pluck(),
      dataVersion: db.prepare('PRAGMA data_version').pluck(),
      jobGet: db.prepare('SELECT * FROM jobs WHERE id = ?'),
      jobCode: db.prepare('SELECT code, chunk_size, name, label, language, trace_context FROM jobs WHERE id = ?'),
      jobStart: db.prepare(`UPDATE jobs SET state = 'running', started_at = ? WHERE id = ? AND state = 'queued'`),
      // What the scheduler shares: unfinished jobs (oldest first), running tasks by job, caps, rate limits.
      activeJobs: db.prepare(`SELECT id, kind, owner, priority, weight, max_concurrency, total, completed, failed, cancelled, run_on, label, open, language, created_at
        FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_at, id LIMIT ?`),
      activeJobsAfter: db.prepare(`SELECT id, kind, owner, priority, weight, max_concurrency, total, completed, failed, cancelled, run_on, label, open, language, created_at
        FROM jobs WHERE state IN ('queued', 'running') AND (created_at > @createdAt OR (created_at = @createdAt AND id > @jobId))
        ORDER BY created_at, id LIMIT @window`),
      runningByJob: db.prepare(`SELECT job_id, count(*) AS n FROM tasks INDEXED BY tasks_lease WHERE state = 'running' GROUP BY job_id`),
      scheduledByJob: db.prepare(`SELECT job_id, count(*) AS n FROM tasks INDEXED BY tasks_scheduled_job WHERE state = 'scheduled' GROUP BY job_id`),
      runningByJobAndOwner: db.prepare(`SELECT t.job_id, j.owner, count(*) AS n FROM tasks t INDEXED BY tasks_lease JOIN jobs j ON j.id = t.job_id
        WHERE t.state = 'running' GROUP BY t.job_id`),
      jobCaps: db.prepare(`SELECT j.owner, j.max_concurrency, c.max_concurrency AS owner_max FROM jobs j
        LEFT JOIN credentials c ON c.id = j.owner AND c.kind = 'key' AND c.revoked_at IS NULL WHERE j.id = ?`),
      ownerCaps: db.prepare(`SELECT id, max_concurrency FROM credentials WHERE kind = 'key' AND max_concurrency IS NOT NULL AND revoked_at IS NULL`),
      rateLimits: db.prepare('SELECT pattern, max, per_ms, tokens, refilled_at FROM rate_limits ORDER BY pattern'),
      rateLimitSet: db.prepare(`INSERT INTO rate_limits (pattern, max, per_ms, tokens, refilled_at) VALUES (@pattern, @max, @perMs, @max, @now)
        ON CONFLICT (pattern) DO UPDATE SET max = excluded.max, per_ms = excluded.per_ms, tokens = excluded.tokens, refilled_at = excluded.refilled_at`),
      rateLimitSpend: db.prepare('UPDATE rate_limits SET tokens = ?, refilled_at = ? WHERE pattern = ?'),
      rateLimitDelete: db.prepare('DELETE FROM rate_limits WHERE pattern = ?'),
      jobAddCounts: db.prepare(`UPDATE jobs SET completed = completed + @completed, failed = failed + @failed,
        cancelled = cancelled + @cancelled WHERE id = @id RETURNING *`),
      // A finished job may be pruned once its retention has passed (jobs from before retention: never on their own).
      // Whether the end wrote a webhook delivery: the jobs_webhook trigger's own condition.
      jobSetState: db.prepare(`UPDATE jobs SET state = @state, completed_at = @now, prune_after = @now + retention_ms WHERE id = @id
        RETURNING (webhook_url IS NOT NULL OR EXISTS (SELECT 1 FROM credentials c WHERE c.id = jobs.owner AND c.kind = 'key' AND c.revoked_at IS NULL AND c.webhook_url IS NOT NULL)) AS webhook`),
      // A cancelled job takes no more parts.
      jobCancelMark: db.prepare(`UPDATE jobs SET cancel_requested = 1, open = 0, open_expires_at = NULL,
        closed_by = CASE WHEN open = 1 THEN 'cancel' ELSE closed_by END WHERE id = ?`),
      taskGet: db.prepare('SELECT * FROM tasks WHERE id = ?'),
      taskClaimOne: db.prepare(`UPDATE tasks SET state = ${to('claim')}, attempt = attempt + 1, worker_id = ?, started_at = ?,
        lease_expires_at = ?, progress = NULL, progress_message = NULL WHERE seq = ? AND ${guard('claim')}
        RETURNING id, job_id, idx, kind, type, input, priority, attempt, timeout_ms, created_at, available_at, files`),
      // From an index, not OFFSET: page 1,000 of a 100,000-task job costs what page 1 does.
      taskList: db.prepare('SELECT * FROM tasks WHERE job_id = ? AND idx >= ? ORDER BY idx LIMIT ?'),
      taskListByState: db.prepare('SELECT * FROM tasks WHERE job_id = ? AND idx >= ? AND state = ? ORDER BY idx LIMIT ?'),
      // Every rank named, so that the queue's index (priority, job_id, seq) is read at the job's
      // entries of each rank rather than the job's tasks scanned by index.
      jobQueuedTypes: db.prepare(`SELECT DISTINCT type FROM (SELECT type FROM tasks
        WHERE state = 'queued' AND priority IN (0, 1, 2, 3) AND job_id = ? AND requires IS NULL LIMIT ?)`),
      jobForRetry: db.prepare('SELECT * FROM jobs WHERE id = ?'),
      taskRetryable: db.prepare(`SELECT state, count(*) AS n FROM tasks WHERE job_id = @jobId AND ${guard('rerun')}
        AND (@taskId IS NULL OR id = @taskId) GROUP BY state`),
      taskRerunJob: db.prepare(`UPDATE tasks SET state = ${to('rerun')}, failures = 0, lost = 0, error = NULL, result = NULL, worker_id = NULL,
        started_at = NULL, completed_at = NULL, lease_expires_at = NULL, progress = NULL, progress_message = NULL, available_at = @now
        WHERE job_id = @jobId AND ${guard('rerun')} AND (@taskId IS NULL OR id = @taskId)`),
      // A list of a job's tasks: found by their ids, not by walking the job (`+job_id` keeps the planner off the job's index).
      taskRetryableIds: db.prepare(`SELECT state, count(*) AS n FROM tasks WHERE id IN (SELECT value FROM json_each(@taskIds)) AND +job_id = @jobId
        AND ${guard('rerun')} GROUP BY state`),
      taskRerunIds: db.prepare(`UPDATE tasks SET state = ${to('rerun')}, failures = 0, lost = 0, error = NULL, result = NULL, worker_id = NULL,
        started_at = NULL, completed_at = NULL, lease_expires_at = NULL, progress = NULL, progress_message = NULL, available_at = @now
        WHERE id IN (SELECT value FROM json_each(@taskIds)) AND +job_id = @jobId AND ${guard('rerun')}`),
      jobRerun: db.prepare(`UPDATE jobs SET failed = failed - @failed, cancelled = cancelled - @cancelled,
        state = CASE WHEN started_at IS NULL THEN 'queued' ELSE 'running' END, completed_at = NULL, prune_after = NULL,
        cancel_requested = 0, queue_deadline = @now + queue_timeout_ms WHERE id = @id RETURNING *`),
      jobsPastQueueDeadline: db.prepare(`SELECT id FROM jobs INDEXED BY jobs_queue_deadline WHERE queue_deadline IS NOT NULL AND queue_deadline <= ?
        AND state IN ('queued', 'running') LIMIT ?`),
      jobsPastQueueDeadlineSweep: db.prepare(`SELECT id FROM jobs INDEXED BY jobs_queue_deadline WHERE queue_deadline IS NOT NULL AND queue_deadline <= @now
        AND state IN ('queued', 'running') ${SWEEP_FILTER} LIMIT @limit`),
      taskExpire: db.prepare(`UPDATE tasks SET state = ${to('expire')}, error = @error, completed_at = @now
        WHERE job_id = @jobId AND ${guard('expire')} AND started_at IS NULL`),
      jobClearDeadline: db.prepare('UPDATE jobs SET queue_deadline = NULL WHERE id = ?'),
      // Sorted in JS: on this schema `ORDER BY idx` made a one-row lookup 5x slower (measured).
      taskResults: db.prepare('SELECT id, idx, kind, state, result, error FROM tasks WHERE job_id = ? AND idx >= ? AND idx < ?'),
      taskState: db.prepare('SELECT state, attempt FROM tasks WHERE id = ?'),
      // Runs once per task: positional parameters bind ~12% faster than named ones (measured).
      taskComplete: db.prepare(`UPDATE tasks SET state = ${to('complete')}, result = ?, error = NULL, completed_at = ?,
        lease_expires_at = NULL WHERE id = ? AND ${guard('complete')} AND attempt = ? AND worker_id = ? RETURNING job_id`),
      // A failure reads the row first: whether it retries is decided by the rules in core/.
      taskForFailure: db.prepare(`SELECT job_id, failures, max_attempts FROM tasks
        WHERE id = ? AND ${guard('fail')} AND attempt = ? AND worker_id = ?`),
      taskRetry: db.prepare(`UPDATE tasks SET state = ${to('retry')}, error = @error, failures = failures + 1, worker_id = NULL,
        errors = json_insert(coalesce(errors, '[]'), '$[#]', json_set(json(@entry), '$.workerId', worker_id, '$.startedAt', started_at)), lease_expires_at = NULL, available_at = @retryAt
        WHERE id = @id AND ${guard('retry')} AND attempt = @attempt AND worker_id = @worker`),
      taskFail: db.prepare(`UPDATE tasks SET state = ${to('fail')}, error = @error, result = @result, failures = failures + 1, completed_at = @now,
        errors = json_insert(coalesce(errors, '[]'), '$[#]', json_set(json(@entry), '$.workerId', worker_id, '$.startedAt', started_at)), lease_expires_at = NULL
        WHERE id = @id AND ${guard('fail')} AND attempt = @attempt AND worker_id = @worker`),
      taskStop: db.prepare(`UPDATE tasks SET state = ${to('stop')}, error = @error, completed_at = @now, lease_expires_at = NULL
        WHERE id = @id AND ${guard('stop')} AND attempt = @attempt AND worker_id = @worker RETURNING job_id`),
      // A lost attempt: the row is read, core/ decides between requeue and abandon.
      taskForLoss: db.prepare(`SELECT job_id, lost FROM tasks WHERE id = ? AND ${guard('requeue')} AND attempt = ?`),
      taskRequeue: db.prepare(`UPDATE tasks SET state = ${to('requeue')}, lost = @lost, worker_id = NULL, completed_at = NULL,
          lease_expires_at = NULL, available_at = @now, errors = json_insert(coalesce(errors, '[]'), '$[#]', json_set(json(@entry), '$.workerId', worker_id, '$.startedAt', started_at))
        WHERE id = @id AND ${guard('requeue')} AND attempt = @attempt`),
      taskAbandon: db.prepare(`UPDATE tasks SET state = ${to('abandon')}, lost = @lost, error = @error, completed_at = @now,
          lease_expires_at = NULL, errors = json_insert(coalesce(errors, '[]'), '$[#]', json_set(json(@entry), '$.workerId', worker_id, '$.startedAt', started_at))
        WHERE id = @id AND ${guard('abandon')} AND attempt = @attempt`),
      taskExpired: db.prepare(`SELECT id, attempt, worker_id FROM tasks WHERE state = 'running' AND lease_expires_at < ? LIMIT ?`),
      taskExpiredSweep: db.prepare(`SELECT id, attempt, worker_id FROM tasks WHERE state = 'running' AND lease_expires_at < @now ${SWEEP_FILTER} LIMIT @limit`),
      taskLease: db.prepare(`UPDATE tasks SET lease_expires_at = @until
        WHERE id = @id AND state = 'running' AND attempt = @attempt AND worker_id = @worker`),
      taskCancelById: db.prepare(`UPDATE tasks SET state = ${to('cancel')}, completed_at = @now, lease_expires_at = NULL, error = @error
        WHERE id = @id AND ${guard('cancel')}`),
      jobForgetKey: db.prepare('UPDATE jobs SET idempotency_key = NULL WHERE id = ?'),
      taskRunningOfJob: db.prepare(`SELECT id, attempt, worker_id FROM tasks WHERE job_id = ? AND state = 'running'`),
      taskCancelJob: db.prepare(`UPDATE tasks SET state = ${to('cancel')}, completed_at = @now, lease_expires_at = NULL,
        error = @error WHERE job_id = @jobId AND ${guard('cancel')}`),
      taskHaltJob: db.prepare(`UPDATE tasks SET state = ${to('halt')}, completed_at = @now, lease_expires_at = NULL,
        error = @error WHERE job_id = @jobId AND ${guard('halt')}`),
      jobSeal: db.prepare(`UPDATE jobs SET open = 0, open_expires_at = NULL, closed_by = CASE WHEN open = 1 THEN 'failure' ELSE closed_by END WHERE id = ?`),
      // Open jobs past their open timeout, and jobs past their deadline, first due first.
      jobsOpenExpired: db.prepare(`SELECT id, open_timeout_ms, on_open_timeout FROM jobs INDEXED BY jobs_open_expires
        WHERE open_expires_at IS NOT NULL AND open_expires_at <= @now AND open = 1 ${SWEEP_FILTER} ORDER BY open_expires_at LIMIT @limit`),
      jobCloseOpen: db.prepare(`UPDATE jobs SET open = 0, open_expires_at = NULL, closed_by = 'open_timeout',
        cancel_requested = CASE WHEN @cancel = 1 THEN 1 ELSE cancel_requested END WHERE id = @id AND open = 1`),
      jobsPastDeadline: db.prepare(`SELECT id, deadline FROM jobs INDEXED BY jobs_deadline
        WHERE deadline IS NOT NULL AND deadline <= @now AND state IN ('scheduled', 'queued', 'running') ${SWEEP_FILTER} ORDER BY deadline LIMIT @limit`),
      taskFailPastDeadline: db.prepare(`UPDATE tasks SET state = ${to('deadline')}, completed_at = @now, lease_expires_at = NULL,
        error = @error WHERE job_id = @jobId AND ${guard('deadline')}`),
      jobCloseAtDeadline: db.prepare(`UPDATE jobs SET open = 0, open_expires_at = NULL, closed_by = CASE WHEN open = 1 THEN 'deadline' ELSE closed_by END WHERE id = ?`),
      jobNextExpiry: db.prepare(`SELECT min(at) AS at FROM (
        SELECT min(open_expires_at) AS at FROM jobs INDEXED BY jobs_open_expires WHERE open_expires_at IS NOT NULL
        UNION ALL SELECT min(deadline) FROM jobs INDEXED BY jobs_deadline WHERE deadline IS NOT NULL AND state IN ('scheduled', 'queued', 'running'))`),
      taskRunningByWorker: db.prepare(`SELECT id, attempt FROM tasks INDEXED BY tasks_lease WHERE state = 'running' AND lease_expires_at IS NOT NULL AND worker_id = ?`),
      taskProgress: db.prepare(`UPDATE tasks SET progress = @progress, progress_message = @message
        WHERE id = @id AND state = 'running' AND attempt = @attempt`),
      recordOwner: db.prepare(`SELECT job_id FROM tasks WHERE id = ? AND state = 'running' AND attempt = ? AND worker_id = ?`),
      recordBatch: db.prepare(`INSERT INTO task_batches (task_id, batch_uid, job_id, attempt, metrics, created_at)
        VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (task_id, batch_uid) DO NOTHING`),
      recordArtifact: db.prepare(`INSERT INTO artifacts (job_id, task_id, batch_uid, data, size, attempt, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_id, batch_uid) DO NOTHING`),
      recordCheckpoint: db.prepare('UPDATE tasks SET checkpoint = ? WHERE id = ?'),
      recordComplete: db.prepare('UPDATE tasks SET artifacts_complete = 1 WHERE id = ?'),
      resumeCheckpoint: db.prepare('SELECT checkpoint FROM tasks WHERE id = ?'),
      resumeBatches: db.prepare('SELECT batch_uid FROM task_batches WHERE task_id = ?'),
      batchesOf: db.prepare('SELECT * FROM task_batches WHERE task_id = ? ORDER BY created_at, rowid'),
      pruneBatches: db.prepare('DELETE FROM task_batches WHERE job_id = ?'),
      pruneArtifacts: db.prepare('DELETE FROM artifacts WHERE job_id = ?'),
      workerUpsert: db.prepare(`INSERT INTO workers (id, state, capacity, patterns, allow_code, resources, version, foreman_id,
        connected_at, last_seen_at) VALUES (@id, @state, @capacity, @patterns, @allowCode, @resources, @version, @foremanId,
        @connectedAt, @lastSeenAt)
        ON CONFLICT (id) DO UPDATE SET state = excluded.state, capacity = excluded.capacity, patterns = excluded.patterns,
        allow_code = excluded.allow_code, resources = excluded.resources, version = excluded.version,
        foreman_id = excluded.foreman_id, connected_at = excluded.connected_at, last_seen_at = excluded.last_seen_at,
        disconnected_at = NULL`),
      workerSeen: db.prepare(`UPDATE workers SET last_seen_at = max(last_seen_at, @at) WHERE id = @id AND state = 'online' AND foreman_id = @foremanId`),
      workerOffline: db.prepare(`UPDATE workers SET state = 'offline', disconnected_at = @now, last_seen_at = @now WHERE id = @id`),
      workerCount: db.prepare(`UPDATE workers SET tasks_completed = tasks_completed + @completed,
        tasks_failed = tasks_failed + @failed, last_seen_at = @now WHERE id = @id`),
      workerList: db.prepare('SELECT * FROM workers ORDER BY state DESC, id'),
      leaseRenew: db.prepare('UPDATE foreman_leases SET expires_at = @until WHERE foreman_id = @foremanId'),
      leaseInsert: db.prepare('INSERT INTO foreman_leases (foreman_id, expires_at) VALUES (@foremanId, @until) ON CONFLICT (foreman_id) DO UPDATE SET expires_at = excluded.expires_at'),
      leaseDelete: db.prepare('DELETE FROM foreman_leases WHERE foreman_id = ?'),
      leaseDeleteOthers: db.prepare('DELETE FROM foreman_leases WHERE foreman_id <> ?'),
      leaseLapsed: db.prepare('DELETE FROM foreman_leases WHERE expires_at < ? RETURNING foreman_id'),
      // Gone with their foreman, at some time after they were last seen: that is when they are
      // said to have disconnected (or `now`, when the foreman itself says so as it stops).
      workersOfflineAt: db.prepare(`UPDATE workers INDEXED BY workers_online SET state = 'offline', disconnected_at = coalesce(@now, last_seen_at)
        WHERE state = 'online' AND foreman_id = @foremanId`),
      workersOfflineUnleased: db.prepare(`UPDATE workers INDEXED BY workers_online SET state = 'offline', disconnected_at = last_seen_at
        WHERE state = 'online' AND NOT EXISTS (SELECT 1 FROM foreman_leases l WHERE l.foreman_id = workers.foreman_id)`),
      statsJobs: db.prepare(`SELECT CASE WHEN state = 'queued' AND run_at > ? THEN 'scheduled' ELSE state END AS state, count(*) AS n, sum(total) AS total,
        sum(completed) AS completed, sum(failed) AS failed, sum(cancelled) AS cancelled FROM jobs GROUP BY 1`),
      statsScheduled: db.prepare(`SELECT count(*) AS n FROM tasks INDEXED BY tasks_scheduled WHERE state = 'scheduled'`),
      // Earliest due first, through the index of scheduled tasks only.
      taskReleaseDue: db.prepare(`UPDATE tasks SET state = ${to('release')}, available_at = min(available_at, @wallNow) WHERE seq IN (SELECT seq FROM tasks INDEXED BY tasks_scheduled
        WHERE state = 'scheduled' AND available_at <= @now ORDER BY available_at LIMIT @limit) AND ${guard('release')} RETURNING job_id`),
      taskNextRelease: db.prepare(`SELECT min(available_at) AS at FROM tasks INDEXED BY tasks_scheduled WHERE state = 'scheduled'`),
      statsRunning: db.prepare(`SELECT count(*) AS n FROM tasks WHERE state = 'running'`),
      statsWorkers: db.prepare('SELECT state, count(*) AS n FROM workers GROUP BY state'),
      credentialInsert: db.prepare(`INSERT INTO credentials (id, kind, name, scopes, worker_id, secret_hash, created_at, expires_at, max_workers, max_concurrency, webhook_url)
        VALUES (@id, @kind, @name, @scopes, @workerId, @secretHash, @createdAt, @expiresAt, @maxWorkers, @maxConcurrency, @webhookUrl)`),
      credentialGet: db.prepare('SELECT * FROM credentials WHERE id = ?'),
      credentialList: db.prepare('SELECT * FROM credentials WHERE (@kind IS NULL OR kind = @kind) ORDER BY created_at DESC, rowid DESC'),
      credentialRevoke: db.prepare('UPDATE credentials SET revoked_at = coalesce(revoked_at, @now) WHERE id = @id'),
      credentialCap: db.prepare(`UPDATE credentials SET max_concurrency = @maxConcurrency WHERE id = @id AND kind = 'key' RETURNING *`),
      credentialTouch: db.prepare('UPDATE credentials SET last_used_at = @now, last_used_from = @from WHERE id = @id'),
      metaGet: db.prepare('SELECT value FROM cc_meta WHERE key = ?'),
      probeInsert: db.prepare(`INSERT INTO cc_meta (key, value) VALUES ('space_probe', ?)`),
      metaAdd: db.prepare(`INSERT INTO cc_meta (key, value) VALUES (@key, CAST(@n AS TEXT))
        ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + @n AS TEXT)`),
      pruneDue: db.prepare(`SELECT id, owner FROM jobs WHERE prune_after IS NOT NULL AND prune_after <= ? ORDER BY prune_after LIMIT 50`),
      pruneFinishedBefore: db.prepare(`SELECT id, owner FROM jobs WHERE completed_at IS NOT NULL AND completed_at <= ? ORDER BY completed_at LIMIT 50`),
      pruneUnfinishedBefore: db.prepare(`SELECT id, owner FROM jobs WHERE completed_at IS NULL AND created_at <= ? ORDER BY created_at LIMIT 50`),
      pruneDueSweep: db.prepare(`SELECT id, owner FROM jobs WHERE prune_after IS NOT NULL AND prune_after <= @now ${SWEEP_FILTER} ORDER BY prune_after LIMIT @limit`),
      pruneFinishedBeforeSweep: db.prepare(`SELECT id, owner FROM jobs WHERE completed_at IS NOT NULL AND completed_at <= @now ${SWEEP_FILTER} ORDER BY completed_at LIMIT @limit`),
      pruneTasks: db.prepare('DELETE FROM tasks WHERE seq IN (SELECT seq FROM tasks WHERE job_id = ? LIMIT ?)'),
      pruneHasTasks: db.prepare('SELECT 1 FROM tasks WHERE job_id = ? LIMIT 1'),
      pruneJob: db.prepare('DELETE FROM jobs WHERE id = ?'),
      pruneTombstone: db.prepare('INSERT OR REPLACE INTO pruned_jobs (id, owner, pruned_at) VALUES (?, ?, ?)'),
      pruneForget: db.prepare('DELETE FROM pruned_jobs WHERE rowid IN (SELECT rowid FROM pruned_jobs WHERE pruned_at < ? LIMIT 1000)'),
      prunedGet: db.prepare('SELECT owner, pruned_at FROM pruned_jobs WHERE id = ?'),
      metaInsert: db.prepare('INSERT INTO cc_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING'),
      versionBump: db.prepare(`INSERT INTO cc_meta (key, value) VALUES ('credentials_version', '1')
        ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)`),
    };
  }

  async close(): Promise<void> {
    await this.checkpointer?.stop();
    if (this.db.open) this.db.close();
    this.lock?.release();
  }

  async jobInsert(params: JobInsertParams): Promise<JobInsertResult> {
    const [outcome] = await this.jobInsertMany([params]);
    if ('error' in outcome) throw outcome.error;
    return outcome;
  }

  /**
   * Queued tasks per priority as the last committed group of submissions left them, with what
   * identifies that moment: this connection's count of changed rows and the file's data version
   * (which moves when another connection commits). A group that finds both unchanged knows no
   * task was queued, claimed or removed since, and takes these counts instead of counting the
   * queue again: with a backlog, the count reads up to POSITION_COUNT_CAP index entries (about
   * 2 ms), which under a burst of small submissions cost more than their inserts.
   */
  private queuedAfterInsert: { changes: number; dataVersion: number; counts: Map<number, number> } | null = null;

  async jobInsertMany(list: JobInsertParams[]): Promise<JobInsertOutcome[]> {
    // (The transaction's body is built once and kept, so it hands its counts back in its result.)
    const run = this.tx('jobInsertMany', (list: JobInsertParams[]): { outcomes: JobInsertOutcome[]; after: NonNullable<SqliteStore['queuedAfterInsert']> } => {
      // Queued tasks per priority, counted once for the group and kept up to date as it inserts:
      // a job's position is the queued tasks of its first task's priority or better. Inside the
      // transaction (BEGIN IMMEDIATE), so nobody writes between this look and the inserts.
      const dataVersion = this.s.dataVersion.get() as number;
      const last = this.queuedAfterInsert;
      this.queuedAfterInsert = null;
      let queued: Map<number, number>;
      if (last && last.dataVersion === dataVersion && last.changes === this.s.totalChanges.get()) {
        queued = last.counts;
      } else {
        queued = new Map<number, number>();
        for (const r of this.s.queuedByPriority.all() as Row[]) queued.set(r.priority, r.n);
      }
      const outcomes = list.map((params): JobInsertOutcome => {
        try {
          return this.jobInsertOne(params, queued);
        } catch (err) {
          // A constraint (a task id taken) refuses this job alone; anything else (a full disk,
          // which also ends the transaction) fails the group.
          if (!this.db.inTransaction || !String((err as { code?: string }).code).startsWith('SQLITE_CONSTRAINT')) throw err;
          return { error: err as Error };
        }
      });
      return { outcomes, after: { changes: this.s.totalChanges.get() as number, dataVersion, counts: queued } };
    });
    // Kept only once committed (a group rolled back leaves counts that were never true).
    const { outcomes, after } = run(list);
    this.queuedAfterInsert = after;
    return outcomes;
  }

  /** One job of a group, in a savepoint of its own so that its failure leaves the others. */
  private jobInsertOne(params: JobInsertParams, queued: Map<number, number>): JobInsertResult {
    // Only task ids the submitter chose can be taken already; ids made from the new job's id
    // cannot, and such a job needs no savepoint (two statements fewer per job).
    const chosenIds = params.tasks.some((t) => !t.id.startsWith(`${params.job.id}.`));
    return chosenIds ? this.savepoint('jobInsertOne', this.insertJobRows)(params, queued) : this.insertJobRows(params, queued);
  }

  private readonly insertJobRows = (params: JobInsertParams, queued: Map<number, number>): JobInsertResult => {
    const { job, tasks, now } = params;
    if (job.idempotencyKey) {
      const existing = this.s.jobByKey.get(job.idempotencyKey) as Row | undefined;
      if (existing && (params.dedupSince === undefined || existing.created_at >= params.dedupSince)) {
        return { job: jobFromRow(existing), position: 0, deduplicated: true };
      }
      // The key's time to live is over: the old job keeps its row, the key moves to the new one.
      if (existing) this.s.jobForgetKey.run(existing.id);
    }
    const row = this.s.jobInsert.get({
      id: job.id, kind: job.kind, name: job.name, priority: PRIORITY_RANK[job.priority], total: tasks.length,
      argCount: job.argCount, chunkSize: job.chunkSize, code: job.code, timeoutMs: job.timeoutMs,
      maxAttempts: job.maxAttempts, idempotencyKey: job.idempotencyKey, metadata: toJson(job.metadata ?? undefined), owner: job.owner, retentionMs: job.retentionMs,
      label: job.label, queueTimeoutMs: job.queueTimeoutMs, runOn: job.runOn, graph: job.graph ? JSON.stringify(job.graph) : null, open: job.open ? 1 : 0,
      weight: job.weight ?? 1, maxConcurrency: job.maxConcurrency ?? null, language: job.kind === 'map' ? job.language ?? 'javascript' : null,
      ...openTimeoutColumns(job), deadline: job.deadline ?? null, runAt: job.runAt ?? null, webhookUrl: job.webhookUrl ?? null, traceContext: toJson(job.traceContext ?? undefined), now,
    }) as Row;
    const firstRank = tasks.length > 0 ? PRIORITY_RANK[tasks[0].priority] : PRIORITY_RANK[job.priority];
    let position = 0;
    for (const [rank, n] of queued) if (rank <= firstRank) position += n;
    position = Math.min(position, POSITION_COUNT_CAP);
    const added = new Map<number, number>();
    for (const t of tasks) {
      const rank = PRIORITY_RANK[t.priority];
      const state = initialTaskState(t.availableAt, now);
      this.s.taskInsert.run(t.id, job.id, t.index, t.kind, t.type, toJson(t.input), rank, state, t.maxAttempts, t.timeoutMs, now, job.runOn, t.availableAt ?? 0,
        t.requires ? JSON.stringify(t.requires) : null, t.files?.length ? JSON.stringify(t.files) : null);
      for (const f of t.files ?? []) this.s.fileAttach.run(job.id, f);
      if (state === 'queued') added.set(rank, (added.get(rank) ?? 0) + 1);
    }
    // Counted only once the job is in: a failed job adds nothing.
    for (const [rank, n] of added) queued.set(rank, (queued.get(rank) ?? 0) + n);
    return { job: jobFromRow(row), position, deduplicated: false };
  };

  async jobAppend(params: JobAppendParams): Promise<JobAppendResult | null> {
    return this.tx('jobAppend', (p: JobAppendParams): JobAppendResult | null => {
      const r = this.s.jobAppend.get({ id: p.jobId, tasks: p.tasks.length, args: p.args, seal: p.seal ? 1 : 0, at: p.at, label: p.label, now: p.now }) as Row | undefined;
      if (!r) {
        const job = this.s.jobGet.get(p.jobId) as Row | undefined;
        return job ? refusedAppend(job, p) : null;
      }
      const first = r.total - p.tasks.length;
      p.tasks.forEach((t, i) => {
        this.s.taskInsert.run(t.id ?? `${p.jobId}.${first + i}`, p.jobId, first + i, t.kind, t.type, toJson(t.input), PRIORITY_RANK[t.priority], initialTaskState(t.availableAt, p.now),
          t.maxAttempts, t.timeoutMs, p.now,
          r.run_on, t.availableAt ?? 0, t.requires ? JSON.stringify(t.requires) : null, t.files?.length ? JSON.stringify(t.files) : null);
        for (const f of t.files ?? []) this.s.fileAttach.run(p.jobId, f);
      });
      // Sealing may finish a job whose tasks have all ended already.
      const change = p.seal ? this.applyCounts(p.jobId, { completed: 0, failed: 0, cancelled: 0 }, p.now) : null;
      return { job: jobFromRow(change?.finished ? this.s.jobGet.get(p.jobId) as Row : r), deduplicated: false, change, firstIndex: first };
    })(params);
  }

  async taskReleaseDue(params: TaskReleaseParams): Promise<{ released: number; jobIds: string[] }> {
    const rows = this.s.taskReleaseDue.all({ now: params.now, limit: params.limit, wallNow: params.wallNow }) as Row[];
    return { released: rows.length, jobIds: [...new Set(rows.map((r) => r.job_id as string))] };
  }

  async taskNextRelease(): Promise<number | null> {
    const at = (this.s.taskNextRelease.get() as Row).at;
    return at === null || at === undefined ? null : Number(at);
  }

  async jobGet(jobId: string): Promise<JobRecord | null> {
    const r = this.s.jobGet.get(jobId) as Row | undefined;
    return r ? jobFromRow(r) : null;
  }

  /** Listing statements by the filters they use, prepared once each. */
  private readonly listings = new Map<string, Database.Statement>();

  async jobList(params: JobListParams): Promise<JobRecord[]> {
    const where: string[] = [];
    // A scheduled job is stored queued, with its time ahead.
    if (params.state === 'scheduled') where.push(`state = 'queued' AND run_at > @now`);
    else if (params.state === 'queued') where.push(`state = 'queued' AND (run_at IS NULL OR run_at <= @now)`);
    else if (params.state !== undefined) where.push('state = @state');
    if (params.owner !== undefined) where.push('owner = @owner');
    if (params.search !== undefined) where.push(`(instr(lower(coalesce(label, '')), lower(@search)) > 0 OR instr(lower(coalesce(name, '')), lower(@search)) > 0 OR id = @search)`);
    if (params.createdAfter !== undefined) where.push('created_at >= @createdAfter');
    if (params.createdBefore !== undefined) where.push('created_at < @createdBefore');
    const sql = `SELECT * FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, rowid DESC LIMIT @limit OFFSET @offset`;
    const stmt = this.listing(sql);
    const { limit, offset, state, owner, search, createdAfter, createdBefore } = params;
    const byTime = state === 'scheduled' || state === 'queued';
    const bound = Object.fromEntries(Object.entries({ limit, offset, state: byTime ? undefined : state, now: byTime ? Date.now() : undefined, owner, search, createdAfter, createdBefore })
      .filter(([, v]) => v !== undefined));
    return (stmt.all(bound) as Row[]).map(jobFromRow);
  }

  async jobRetry(params: { jobId: string; taskId?: string; taskIds?: readonly string[]; now: number }): Promise<JobRetryResult | null> {
    return this.tx('jobRetry', (p: { jobId: string; taskId?: string; taskIds?: readonly string[]; now: number }): JobRetryResult | null => {
      const job = this.s.jobForRetry.get(p.jobId) as Row | undefined;
      if (!job) return null;
      const byIds = p.taskIds !== undefined;
      const sel = byIds ? { jobId: p.jobId, taskIds: JSON.stringify(p.taskIds) } : { jobId: p.jobId, taskId: p.taskId ?? null };
      // The counters hold failed and cancelled tasks: count them before they go back to the queue.
      const before = { failed: 0, cancelled: 0 };
      for (const r of (byIds ? this.s.taskRetryableIds : this.s.taskRetryable).all(sel) as Row[]) before[r.state as 'failed' | 'cancelled'] = r.n;
      const retried = before.failed + before.cancelled;
      if (retried === 0) return { job: jobFromRow(job), retried: 0, change: null };
      (byIds ? this.s.taskRerunIds : this.s.taskRerunJob).run({ ...sel, now: p.now });
      const r = this.s.jobRerun.get({ id: p.jobId, ...before, now: p.now }) as Row;
      const counts: JobCounts = { total: r.total, completed: r.completed, failed: r.failed, cancelled: r.cancelled };
      return { job: jobFromRow(r), retried, change: { jobId: p.jobId, state: r.state, counts, finished: false } };
    })(params);
  }

  async taskFailedGroups(params: FailedTaskFilter & { limit: number; offset: number }): Promise<FailedTaskGroup[]> {
    const { where, bound } = failedWhere(params);
    // Read from the index of failed tasks by type and error (migration 17), errors unread.
    const sql = `SELECT t.type, t.error_code AS code, t.error_line AS message, count(*) AS n, count(DISTINCT t.job_id) AS jobs,
        min(t.completed_at) AS first_at, max(t.completed_at) AS last_at
      FROM ${where} GROUP BY t.type, t.error_code, t.error_line ORDER BY n DESC, t.type, t.error_code, t.error_line LIMIT @limit OFFSET @offset`;
    const groups = this.listing(sql).all({ ...bound, limit: params.limit, offset: params.offset }) as Row[];
    // Each group's newest tasks: a few steps down the same index.
    const examples = this.listing(`SELECT t.id, t.job_id, t.completed_at FROM ${failedWhere({ ...params, type: '', errorCode: '', message: '' }).where}
      ORDER BY t.seq DESC LIMIT 3`);
    return groups.map((g) => failedGroupFromRow(g, (examples.all({ ...bound, type: g.type, errorCode: g.code, message: g.message }) as Row[])
      .map((e) => [e.id, e.job_id, e.completed_at])));
  }

  async taskFailedPage(params: FailedTaskFilter & { afterSeq: number; limit: number }): Promise<FailedTaskRef[]> {
    const { where, bound } = failedWhere(params);
    const sql = `SELECT t.seq, t.id, t.job_id FROM ${where} AND t.seq > @afterSeq ORDER BY t.seq LIMIT @limit`;
    return (this.listing(sql).all({ ...bound, afterSeq: params.afterSeq, limit: params.limit }) as Row[]).map((r) => ({ seq: r.seq, taskId: r.id, jobId: r.job_id }));
  }

  /** A statement of a listing whose text depends on its filters, prepared once per text. */
  private listing(sql: string): Database.Statement {
    let stmt = this.listings.get(sql);
    if (!stmt) { stmt = this.db.prepare(sql); this.listings.set(sql, stmt); }
    return stmt;
  }

  async taskExpireQueued(params: { now: number; limit: number } & SweepFilter): Promise<{ failed: number; jobs: JobChange[] }> {
    return this.freeing('taskExpireQueued', (p: { now: number; limit: number } & SweepFilter) => {
      const out = { failed: 0, jobs: [] as JobChange[] };
      const due = (isFiltered(p) ? this.s.jobsPastQueueDeadlineSweep.all(sweepArgs(p.now, p.limit, p)) : this.s.jobsPastQueueDeadline.all(p.now, p.limit)) as Row[];
      for (const { id } of due) {
        const error = toJson(taskError('CC_ERR_NO_WORKER', `no worker started this task of job ${id} before its queue deadline`, { reason: 'queue_timeout' }));
        const n = this.s.taskExpire.run({ jobId: id, now: p.now, error }).changes;
        // Whatever started in time runs on; the deadline is spent.
        this.s.jobClearDeadline.run(id);
        out.failed += n;
        if (n === 0) continue;
        const change = this.applyCounts(id, { completed: 0, failed: n, cancelled: 0 }, p.now);
        if (change) out.jobs.push(change);
      }
      return out;
    })(params);
  }

  async jobExpireOpen(params: { now: number; limit: number } & SweepFilter): Promise<JobOpenExpiry[]> {
    return this.freeing('jobExpireOpen', (p: { now: number; limit: number } & SweepFilter): JobOpenExpiry[] => {
      const out: JobOpenExpiry[] = [];
      for (const r of this.s.jobsOpenExpired.all(sweepArgs(p.now, p.limit, p)) as Row[]) {
        const jobId = r.id as string;
        const action: OpenTimeoutAction = r.on_open_timeout === 'seal' ? 'seal' : 'cancel';
        let running: JobOpenExpiry['running'] = [];
        let cancelled = 0;
        if (action === 'cancel') {
          running = (this.s.taskRunningOfJob.all(jobId) as Row[]).map((t) => ({ taskId: t.id as string, attempt: t.attempt as number, workerId: t.worker_id as string | null }));
          cancelled = this.s.taskCancelJob.run({ jobId, now: p.now, error: toJson(openTimeoutError(jobId, r.open_timeout_ms)) }).changes;
        }
        this.s.jobCloseOpen.run({ id: jobId, cancel: action === 'cancel' ? 1 : 0 });
        // Sealing may finish a job whose tasks have all ended already; cancelling ends it.
        const change = this.applyCounts(jobId, { completed: 0, failed: 0, cancelled }, p.now);
        out.push({ jobId, action, openTimeoutMs: r.open_timeout_ms, running, change });
      }
      return out;
    })(params);
  }

  async jobFailPastDeadline(params: { now: number; limit: number } & SweepFilter): Promise<JobDeadlinePassed[]> {
    return this.freeing('jobFailPastDeadline', (p: { now: number; limit: number } & SweepFilter): JobDeadlinePassed[] => {
      const out: JobDeadlinePassed[] = [];
      for (const r of this.s.jobsPastDeadline.all(sweepArgs(p.now, p.limit, p)) as Row[]) {
        const jobId = r.id as string;
        const running = (this.s.taskRunningOfJob.all(jobId) as Row[]).map((t) => ({ taskId: t.id as string, attempt: t.attempt as number, workerId: t.worker_id as string | null }));
        const failed = this.s.taskFailPastDeadline.run({ jobId, now: p.now, error: toJson(deadlineError(jobId, r.deadline)) }).changes;
        // An open job takes no more parts: it ends now, with what it has.
        this.s.jobCloseAtDeadline.run(jobId);
        const change = this.applyCounts(jobId, { completed: 0, failed, cancelled: 0 }, p.now);
        out.push({ jobId, deadline: r.deadline, failed, running, change });
      }
      return out;
    })(params);
  }

  async jobNextExpiry(): Promise<number | null> {
    return ((this.s.jobNextExpiry.get() as Row | undefined)?.at as number | null | undefined) ?? null;
  }

  async jobCode(jobId: string): Promise<JobCode | null> {
    const r = this.s.jobCode.get(jobId) as Row | undefined;
    return r?.code ? { code: r.code, chunkSize: r.chunk_size, name: r.name ?? r.label ?? null, language: r.language ?? 'javascript', traceContext: traceContextOf(r.trace_context) } : null;
  }

  async jobResults(jobId: string, page?: ResultPage): Promise<JobResults | null> {
    const job = this.s.jobGet.get(jobId) as Row | undefined;
    if (!job) return null;
    const { from, to } = resultTasks(job, page);
    return flattenResults(job, this.s.taskResults.all(jobId, from, to) as Row[], page);
  }

  async jobFail(params: { jobId: string; now: number; error: TaskError }): Promise<JobCancelResult | null> {
    return this.freeing('jobFail', (p: { jobId: string; now: number; error: TaskError }): JobCancelResult | null => {
      const row = this.s.jobGet.get(p.jobId) as Row | undefined;
      if (!row) return null;
      if (TERMINAL_JOB_STATES.has(row.state)) return { job: jobFromRow(row), running: [], change: null };
      const running = (this.s.taskRunningOfJob.all(p.jobId) as Row[])
        .map((r) => ({ taskId: r.id as string, attempt: r.attempt as number, workerId: r.worker_id as string | null }));
      const n = this.s.taskHaltJob.run({ jobId: p.jobId, now: p.now, error: toJson(p.error) }).changes;
      this.s.jobSeal.run(p.jobId);
      const change = this.applyCounts(p.jobId, { completed: 0, failed: n, cancelled: 0 }, p.now);
      return { job: jobFromRow(this.s.jobGet.get(p.jobId) as Row), running, change };
    })(params);
  }

  async jobCancel(params: { jobId: string; now: number }): Promise<JobCancelResult | null> {
    return this.freeing('jobCancel', (params: { jobId: string; now: number }): JobCancelResult | null => {
      const row = this.s.jobGet.get(params.jobId) as Row | undefined;
      if (!row) return null;
      if (TERMINAL_JOB_STATES.has(row.state)) return { job: jobFromRow(row), running: [], change: null };
      const running = (this.s.taskRunningOfJob.all(params.jobId) as Row[])
        .map((r) => ({ taskId: r.id as string, attempt: r.attempt as number, workerId: r.worker_id as string | null }));
      const error = toJson(taskError('CC_ERR_CANCELLED', `job ${params.jobId} was cancelled`, { reason: 'cancelled' }));
      const n = this.s.taskCancelJob.run({ jobId: params.jobId, now: params.now, error }).changes;
      this.s.jobCancelMark.run(params.jobId);
      const change = this.applyCounts(params.jobId, { completed: 0, failed: 0, cancelled: n }, params.now);
      return { job: jobFromRow(this.s.jobGet.get(params.jobId) as Row), running, change };
    })(params);
  }

  async taskGet(taskId: string): Promise<TaskRecord | null> {
    const r = this.s.taskGet.get(taskId) as Row | undefined;
    return r ? taskFromRow(r) : null;
  }

  async jobQueuedTypes(params: { jobId: string; sample: number }): Promise<string[]> {
    return (this.s.jobQueuedTypes.all(params.jobId, params.sample) as { type: string }[]).map((r) => r.type);
  }

  async taskList(params: { jobId: string; limit: number; offset: number; state?: TaskState }): Promise<TaskRecord[]> {
    const rows = params.state
      ? this.s.taskListByState.all(params.jobId, params.offset, params.state, params.limit)
      : this.s.taskList.all(params.jobId, params.offset, params.limit);
    return (rows as Row[]).map(taskFromRow);
  }

  /**
   * The queue query for one combination of patterns and allowCode, prepared once: `one`, one
   * job's queued tasks in queue order up to LIMIT, read from its ranges of the queue index
   * (priority, job_id, seq) (its first parameter is the job id); `few`, the queued tasks of
   * several jobs (its first parameter a JSON array of job ids), all of them, by job in queue
   * order; `all`, the whole queue by priority and submission, up to LIMIT (which sorts a
   * priority's queued tasks: the dispatcher always names the jobs).
   */
  private claimSelect(patterns: readonly string[], allowCode: boolean, kind: WorkerKind, requiring = false, jobs: 'all' | 'one' | 'few' = 'all', languages: readonly CodeLanguage[] = CODE_LANGUAGES): Database.Statement | null {
    const mapTypes = allowCode ? mapTaskTypes(languages) : [];
    const key = `${requiring ? 'r' : ''}${jobs}${kind}\u0000${mapTypes.join(',')}\u0000${patterns.join('\u0000')}`;
    let stmt = this.claimStmts.get(key);
    if (stmt) return stmt;
    const filters: string[] = [];
    // Map tasks of the languages the worker runs (their types are fixed words, not input).
    if (mapTypes.length > 0 && !requiring) filters.push(`(kind = 'map' AND type IN (${mapTypes.map((t) => `'${t}'`).join(', ')}))`);
    if (patterns.length > 0) {
      filters.push(`(kind = 'named' AND (${patterns.map(() => 'type GLOB ?').join(' OR ')}))`);
    }
    if (filters.length === 0) return null;
    // Tasks of jobs that run only on the other kind of worker are not this one's (kind is one of two words, not input).
    // Tasks that require resources are claimed apart, where what is free is counted.
    // A job's queue is one range of the queue index per priority: naming every priority lets
    // SQLite read them in order, with no sort.
    const ranks = `priority IN (${Object.values(PRIORITY_RANK).sort().join(', ')})`;
    const which = jobs === 'one' ? `job_id = ? AND ${ranks} AND ` : jobs === 'few' ? `job_id IN (SELECT value FROM json_each(?)) AND ${ranks} AND ` : '';
    stmt = this.db.prepare(`SELECT seq, type, job_id${requiring ? ', requires' : ''} FROM tasks WHERE ${which}${guard('claim')} AND available_at <= ? AND (${filters.join(' OR ')})
      AND (run_on IS NULL OR run_on = '${kind === 'browser' ? 'browser' : 'node'}') AND requires IS ${requiring ? 'NOT ' : ''}NULL
      ${jobs === 'few' ? 'ORDER BY job_id, priority, seq' : 'ORDER BY priority, seq LIMIT ?'}`);
    if (this.claimStmts.size > 1000) this.claimStmts.clear();
    this.claimStmts.set(key, stmt);
    return stmt;
  }

  async taskClaimMany(p: TaskClaimParams): Promise<ClaimedTask[]> {
    const select = this.claimSelect(p.patterns, p.allowCode, p.kind ?? 'node', false, p.jobs ? 'one' : 'all', p.codeLanguages);
    if (!select || p.limit <= 0) return [];
    const few = p.jobs?.some((j) => j.few) ? this.claimSelect(p.patterns, p.allowCode, p.kind ?? 'node', false, 'few', p.codeLanguages) : null;
    // Select, then update each row by its key, in one write transaction: measured 40% cheaper
    // than one UPDATE ... WHERE seq IN (subquery), and the rows come back in queue order.
    return this.tx('taskClaimMany', ([select, few, p]: [Database.Statement, Database.Statement | null, TaskClaimParams]): ClaimedTask[] => {
      const globs = p.patterns.map(toSqliteGlob);
      const buckets = p.rateLimits ? (this.s.rateLimits.all() as Row[]).map(bucketFromRow) : [];
      const left = buckets.length > 0 ? buckets.map((b) => ({ pattern: b.pattern, left: Math.floor(tokensAt(b, p.now)) })) : null;
      // Under rate limits, a few more rows are read than wanted, since some may have to wait.
      const pick = (rows: Row[], n: number): Row[] => (left ? withinRates(rows as { type: string }[], n, left) as Row[] : rows.slice(0, n));
      const read = (n: number) => (left ? n + RATE_SLACK : n);
      let seqs: Row[];
      if (p.jobs) {
        seqs = [];
        const jobs = p.jobs.some((j) => j.capped) ? this.withinCaps(p.jobs) : p.jobs;
        // Jobs with few tasks left are read in one statement (a statement per job costs about
        // ten times as much as a seek within one), the others each through its own index range.
        const fewRows = new Map<string, Row[]>();
        if (few) {
          for (const r of few.all(JSON.stringify(jobs.filter((j) => j.few).map((j) => j.jobId)), p.now, ...globs) as Row[]) {
            const list = fewRows.get(r.job_id);
            if (list) list.push(r); else fewRows.set(r.job_id, [r]);
          }
        }
        for (const j of jobs) {
          const n = Math.min(j.limit, p.limit - seqs.length);
          if (n <= 0) break;
          const rows = (j.few ? fewRows.get(j.jobId) ?? [] : select.all(j.jobId, p.now, ...globs, read(n))) as Row[];
          seqs.push(...pick(rows, n));
        }
      } else {
        seqs = pick(select.all(p.now, ...globs, read(p.limit)) as Row[], p.limit);
      }
      const out: ClaimedTask[] = [];
      let lastJob = '';
      const lease = p.now + p.leaseMs;
      for (const { seq } of seqs) {
        const r = this.s.taskClaimOne.get(p.workerId, p.now, lease, seq) as Row | undefined;
        if (!r) continue;
        if (r.job_id !== lastJob) { this.s.jobStart.run(p.now, r.job_id); lastJob = r.job_id; }
        out.push(claimedFromRow(r));
      }
      // What the claimed tasks spent of their rate limits (read above in this transaction).
      buckets.forEach((b, i) => {
        const spent = Math.floor(tokensAt(b, p.now)) - left![i].left;
        if (spent > 0) this.s.rateLimitSpend.run(tokensAt(b, p.now) - spent, p.now, b.pattern);
      });
      return out;
    })([select, few, p]);
  }

  /** Cut a plan to what its capped jobs and owners may still run (one writer: the count is exact). */
  private withinCaps<P extends { jobId: string; limit: number; capped?: boolean }>(plan: readonly P[]): P[] {
    const caps = new Map<string, JobCaps>();
    for (const j of plan) {
      if (!j.capped) continue;
      const r = this.s.jobCaps.get(j.jobId) as Row | undefined;
      if (r) caps.set(j.jobId, { owner: r.owner ?? null, maxConcurrency: r.max_concurrency ?? null, ownerMaxConcurrency: r.owner_max ?? null });
    }
    const running = (this.s.runningByJobAndOwner.all() as Row[]).map((r) => ({ jobId: r.job_id as string, owner: r.owner as string | null, n: r.n as number }));
    return withinCaps(plan, caps, running);
  }

  async schedulerSnapshot(params: { after?: JobCursor | null; window?: number } = {}): Promise<SchedulerSnapshot> {
    const window = params.window ?? ACTIVE_JOBS_WINDOW;
    const running = new Map((this.s.runningByJob.all() as Row[]).map((r) => [r.job_id as string, r.n as number]));
    const scheduled = new Map((this.s.scheduledByJob.all() as Row[]).map((r) => [r.job_id as string, r.n as number]));
    const oldest = this.s.activeJobs.all(window) as Row[];
    const more = oldest.length < window ? [] : this.s.activeJobsAfter.all({ ...windowStart(cursorOf(oldest.at(-1)!), params.after), window }) as Row[];
    return {
      jobs: [...oldest, ...more].map((r) => activeJobFromRow(r, running.get(r.id) ?? 0, scheduled.get(r.id) ?? 0)),
      next: more.length === window ? cursorOf(more.at(-1)!) : null,
      ownerCaps: (this.s.ownerCaps.all() as Row[]).map((r) => ({ owner: r.id, maxConcurrency: r.max_concurrency })),
      rateLimits: (this.s.rateLimits.all() as Row[]).map(bucketFromRow).map((b) => ({ pattern: b.pattern, max: b.max, perMs: b.perMs, available: Math.floor(tokensAt(b, Date.now())) })),
    };
  }

  async rateLimitList(): Promise<RateLimit[]> {
    return (this.s.rateLimits.all() as Row[]).map((r) => ({ pattern: r.pattern, max: r.max, perMs: r.per_ms }));
  }

  async rateLimitSet(l: RateLimit, now: number): Promise<void> {
    this.tx('rateLimitSet', (p: RateLimit & { now: number }) => { this.s.rateLimitSet.run(p); })({ pattern: l.pattern, max: l.max, perMs: l.perMs, now });
  }

  async rateLimitDelete(pattern: string): Promise<boolean> {
    return this.tx('rateLimitDelete', (pattern: string) => this.s.rateLimitDelete.run(pattern).changes > 0)(pattern);
  }

  async taskClaimFitting(p: TaskClaimParams & { free: ResourceAmounts }): Promise<ClaimedTask[]> {
    const select = this.claimSelect(p.patterns, false, p.kind ?? 'node', true);
    if (!select || p.limit <= 0) return [];
    return this.tx('taskClaimFitting', ([select, p]: [Database.Statement, TaskClaimParams & { free: ResourceAmounts }]): ClaimedTask[] => {
      const candidates = select.all(p.now, ...p.patterns.map(toSqliteGlob), 100) as Row[];
      const out: ClaimedTask[] = [];
      let free = p.free;
      for (const { seq, requires } of candidates) {
        if (out.length >= p.limit) break;
        const req = requirementsOf(requires);
        if (!req || !fits(req, free)) continue;
        const r = this.s.taskClaimOne.get(p.workerId, p.now, p.now + p.leaseMs, seq) as Row | undefined;
        if (!r) continue;
        free = take(free, req);
        this.s.jobStart.run(p.now, r.job_id);
        out.push({ ...claimedFromRow(r), requires: req });
      }
      return out;
    })([select, p]);
  }

  /** Add to a job's counters and, when every task is terminal, settle its state. Runs inside a transaction. */
  private applyCounts(jobId: string, delta: { completed: number; failed: number; cancelled: number }, now: number, inHand?: { result: unknown }): JobChange | null {
    const r = this.s.jobAddCounts.get({ id: jobId, ...delta }) as Row | undefined;
    if (!r) return null;
    const counts: JobCounts = { total: r.total, completed: r.completed, failed: r.failed, cancelled: r.cancelled };
    let state: JobState = r.state;
    let finished = false;
    let webhook = false;
    if (!TERMINAL_JOB_STATES.has(state) && r.open !== 1 && isJobDone(counts)) {
      state = r.kind === 'graph' && r.graph
        ? graphState(JSON.parse(r.graph) as GraphPlan, (this.s.graphFailed.all(jobId) as Row[]).map((x) => x.id as string), r.cancel_requested === 1)
        : deriveJobState(counts, { started: true, cancelRequested: r.cancel_requested === 1 });
      webhook = (this.s.jobSetState.get({ state, now, id: jobId }) as Row).webhook === 1;
      finished = true;
    }
    const change: JobChange = { jobId, state, counts, finished, ...(finished ? { webhook } : {}) };
    const results = inHand ? resultsInHand({ kind: r.kind as string, total: r.total as number }, change, inHand.result) : undefined;
    return results ? { ...change, results } : change;
  }

  async taskFinishMany(params: { outcomes: TaskOutcomeParams[]; now: number }): Promise<TaskFinishResult> {
    return this.tx('taskFinishMany', (params: { outcomes: TaskOutcomeParams[]; now: number }): TaskFinishResult => {
      const { outcomes, now } = params;
      const out: TaskFinishResult = { recorded: [], rejected: [], jobs: [], released: 0 };
      const deltas = new Map<string, { completed: number; failed: number; cancelled: number }>();
      const perWorker = new Map<string, { completed: number; failed: number }>();
      // A job's last completion in this batch: a one-task job's results are this (resultsInHand).
      const lastResult = new Map<string, { result: unknown }>();
      const bump = (jobId: string, key: 'completed' | 'failed' | 'cancelled') => {
        let d = deltas.get(jobId);
        if (!d) { d = { completed: 0, failed: 0, cancelled: 0 }; deltas.set(jobId, d); }
        d[key]++;
      };
      for (const o of outcomes) {
        const base = { id: o.taskId, attempt: o.attempt, worker: o.workerId, now };
        let row: Row | undefined;
        let retried = false;
        if (o.status === 'completed') {
          row = this.s.taskComplete.get(toJson(o.result) ?? 'null', now, o.taskId, o.attempt, o.workerId) as Row | undefined;
          if (row) { bump(row.job_id, 'completed'); lastResult.set(row.job_id, { result: o.result }); }
        } else if (o.status === 'failed') {
          row = this.s.taskForFailure.get(o.taskId, o.attempt, o.workerId) as Row | undefined;
          if (row) {
            const err = o.error ?? { message: 'unknown error' };
            const next = o.retryAt === undefined ? 'fail' : afterFailure({ failures: row.failures, maxAttempts: row.max_attempts }, err);
            const args = { ...base, error: toJson(err), entry: JSON.stringify({ attempt: o.attempt, workerId: o.workerId, error: err, at: now }) };
            if (next === 'retry') { this.s.taskRetry.run({ ...args, retryAt: o.retryAt }); retried = true; } else { this.s.taskFail.run({ ...args, result: toJson(o.result) ?? null }); bump(row.job_id, 'failed'); }
          }
        } else {
          row = this.s.taskStop.get({ ...base, error: toJson(o.error ?? taskError('CC_ERR_CANCELLED', `task ${o.taskId} was cancelled`)) }) as Row | undefined;
          if (row) bump(row.job_id, 'cancelled');
        }
        if (row) {
          out.recorded.push({ taskId: o.taskId, attempt: o.attempt, retried });
          const c = perWorker.get(o.workerId) ?? { completed: 0, failed: 0 };
          if (o.status === 'completed') c.completed++; else if (o.status === 'failed') c.failed++;
          perWorker.set(o.workerId, c);
        } else {
          const cur = this.s.taskState.get(o.taskId) as Row | undefined;
          out.rejected.push({ taskId: o.taskId, attempt: o.attempt, currentState: (cur?.state as TaskState) ?? null, currentAttempt: cur?.attempt ?? null });
        }
      }
      for (const [jobId, d] of deltas) {
        const change = this.applyCounts(jobId, d, now, lastResult.get(jobId));
        if (change) out.jobs.push(change);
        if (this.isGraph(jobId)) out.released += this.releaseGraph(jobId, now);
      }
      for (const [workerId, c] of perWorker) this.s.workerCount.run({ id: workerId, completed: c.completed, failed: c.failed, now });
      return out;
    })(params);
  }

  /** Requeue (or fail) running tasks inside a transaction; shared by the lost-worker and lease paths. */
  private requeueSync(p: TaskRequeueParams): TaskRequeueResult {
    const out: TaskRequeueResult = { requeued: [], failed: [], jobs: [] };
    const failedByJob = new Map<string, number>();
    const error = toJson(p.error);
    for (const t of p.tasks) {
      const r = this.s.taskForLoss.get(t.taskId, t.attempt) as Row | undefined;
      if (!r) continue;
      const next = afterLoss({ lost: r.lost }, { maxLost: p.maxLost, countAsLost: p.countAsLost !== false });
      const args = { id: t.taskId, attempt: t.attempt, now: p.now, lost: next.lost, entry: JSON.stringify({ attempt: t.attempt, workerId: null, error: p.error, at: p.now }) };
      const ref = { taskId: t.taskId, attempt: t.attempt };
      if (next.transition === 'abandon') {
        this.s.taskAbandon.run({ ...args, error });
        out.failed.push(ref);
        failedByJob.set(r.job_id, (failedByJob.get(r.job_id) ?? 0) + 1);
      } else {
        this.s.taskRequeue.run(args);
        out.requeued.push(ref);
      }
    }
    for (const [jobId, n] of failedByJob) {
      const change = this.applyCounts(jobId, { completed: 0, failed: n, cancelled: 0 }, p.now);
      if (change) out.jobs.push(change);
    }
    return out;
  }

  async taskRequeueMany(params: TaskRequeueParams): Promise<TaskRequeueResult> {
    return this.tx('taskRequeueMany', (p: TaskRequeueParams) => this.requeueSync(p))(params);
  }

  async taskRequeueExpired(params: { now: number; maxLost?: number; limit: number } & SweepFilter): Promise<TaskRequeueResult & { expired: ExpiredLease[] }> {
    return this.freeing('taskRequeueExpired', (p: { now: number; maxLost?: number; limit: number } & SweepFilter) => {
      const rows = (isFiltered(p) ? this.s.taskExpiredSweep.all(sweepArgs(p.now, p.limit, p)) : this.s.taskExpired.all(p.now, p.limit)) as Row[];
      const expired: ExpiredLease[] = rows.map((r) => ({ taskId: r.id, attempt: r.attempt, workerId: r.worker_id }));
      const res = this.requeueSync({
        tasks: expired, now: p.now, ...(p.maxLost !== undefined ? { maxLost: p.maxLost } : {}),
        error: taskError('CC_ERR_WORKER_LOST', 'the lease expired (no heartbeat from the worker in time)', { reason: 'lease_expired' }),
      });
      return { ...res, expired };
    })(params);
  }

  async taskLeaseExtend(params: { workerId: string; tasks: TaskRef[]; until: number }): Promise<number> {
    return this.tx('taskLeaseExtend', (p: { workerId: string; tasks: TaskRef[]; until: number }) => {
      let n = 0;
      for (const t of p.tasks) n += this.s.taskLease.run({ id: t.taskId, attempt: t.attempt, worker: p.workerId, until: p.until }).changes;
      return n;
    })(params);
  }

  async taskCancel(params: { taskId: string; now: number }) {
    return this.freeing('taskCancel', (p: { taskId: string; now: number }) => {
      const before = this.s.taskGet.get(p.taskId) as Row | undefined;
      if (!before) return null;
      if (!canTake('cancel', before.state)) return { task: taskFromRow(before), running: null, change: null };
      const error = toJson(taskError('CC_ERR_CANCELLED', `task ${p.taskId} was cancelled`, { reason: 'cancelled' }));
      this.s.taskCancelById.run({ id: p.taskId, now: p.now, error });
      const change = this.applyCounts(before.job_id, { completed: 0, failed: 0, cancelled: 1 }, p.now);
      const running = before.state === 'running' ? { attempt: before.attempt as number, workerId: before.worker_id as string | null } : null;
      return { task: taskFromRow(this.s.taskGet.get(p.taskId) as Row), running, change };
    })(params);
  }

  async taskListRunningByWorker(workerId: string): Promise<TaskRef[]> {
    return (this.s.taskRunningByWorker.all(workerId) as Row[]).map((r) => ({ taskId: r.id, attempt: r.attempt }));
  }

  async taskProgressSet(params: { taskId: string; attempt: number; progress: number; message: string | null }): Promise<boolean> {
    return this.s.taskProgress.run({ id: params.taskId, attempt: params.attempt, progress: params.progress, message: params.message }).changes > 0;
  }

  /** Whether a job is a graph (cached: a job's kind never changes). */
  private readonly graphJobs = new Map<string, boolean>();
  private isGraph(jobId: string): boolean {
    let g = this.graphJobs.get(jobId);
    if (g === undefined) {
      g = (this.s.jobKind.get(jobId) as Row | undefined)?.kind === 'graph';
      if (this.graphJobs.size > 10_000) this.graphJobs.clear();
      this.graphJobs.set(jobId, g);
    }
    return g;
  }

  /** Make the graph's nodes whose upstream nodes allow it available now; inside a transaction. */
  private releaseGraph(jobId: string, now: number): number {
    const text = (this.s.jobGraph.get(jobId) as Row | undefined)?.graph;
    if (!text) return 0;
    const plan = JSON.parse(text) as GraphPlan;
    const writers = new Set((this.s.graphWriters.all(jobId) as Row[]).map((r) => r.task_id as string));
    const ready = releasable(plan, nodeStatus(plan, this.s.graphTasks.all(jobId) as Row[], writers));
    let n = 0;
    for (const id of ready) n += this.s.graphRelease.run(now, id).changes;
    return n;
  }

  async jobGraph(jobId: string): Promise<GraphPlan | null> {
    const text = (this.s.jobGraph.get(jobId) as Row | undefined)?.graph;
    return text ? JSON.parse(text) as GraphPlan : null;
  }

  async taskRecord(params: TaskRecordParams): Promise<{ recorded: boolean; released: number }> {
    return this.tx('taskRecord', (p: TaskRecordParams): { recorded: boolean; released: number } => {
      const owner = this.s.recordOwner.get(p.taskId, p.attempt, p.workerId) as Row | undefined;
      if (!owner) return { recorded: false, released: 0 };
      for (const a of p.artifacts ?? []) {
        const text = toJson(a.data) ?? 'null';
        this.s.recordArtifact.run(owner.job_id, p.taskId, a.batchUid, text, Buffer.byteLength(text), p.attempt, p.now);
      }
      if (p.batch) this.s.recordBatch.run(p.taskId, p.batch.uid, owner.job_id, p.attempt, p.batch.metrics ? JSON.stringify(p.batch.metrics) : null, p.now);
      if (p.checkpoint !== undefined) this.s.recordCheckpoint.run(toJson(p.checkpoint) ?? 'null', p.taskId);
      if (p.artifactsComplete) this.s.recordComplete.run(p.taskId);
      const released = p.artifacts?.length && this.isGraph(owner.job_id) ? this.releaseGraph(owner.job_id, p.now) : 0;
      return { recorded: true, released };
    })(params);
  }

  async taskResume(taskIds: string[]): Promise<Map<string, TaskResumeState>> {
    const out = new Map<string, TaskResumeState>();
    for (const id of taskIds) {
      const cp = (this.s.resumeCheckpoint.get(id) as Row | undefined)?.checkpoint ?? null;
      const batches = (this.s.resumeBatches.all(id) as Row[]).map((r) => r.batch_uid as string);
      if (cp !== null || batches.length > 0) out.set(id, { checkpoint: cp === null ? undefined : fromJson(cp), batches });
    }
    return out;
  }

  async taskBatches(taskId: string): Promise<TaskBatchRecord[]> {
    return (this.s.batchesOf.all(taskId) as Row[]).map(batchFromRow);
  }

  async artifactList(params: ArtifactListParams): Promise<ArtifactRecord[]> {
    const { sql, args } = artifactQuery(params, '?');
    return (this.db.prepare(sql).all(...args) as Row[]).map(artifactFromRow);
  }

  async fileInsert(p: Omit<FileRecord, 'jobId'> & { data: Uint8Array }): Promise<void> {
    this.s.fileInsert.run({ ...p, data: Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength) });
  }

  async fileList(ids: readonly string[]): Promise<FileRecord[]> {
    if (ids.length === 0) return [];
    const rows = this.db.prepare(`SELECT id, owner, job_id, filename, size, content_type, sha256, created_at FROM files WHERE id IN (${ids.map(() => '?').join(', ')})`).all(...ids) as Row[];
    return rows.map(fileFromRow);
  }

  async fileData(id: string): Promise<Uint8Array | null> {
    const r = this.s.fileData.get(id) as Row | undefined;
    return r ? new Uint8Array(r.data as Buffer) : null;
  }

  async taskFiles(taskId: string): Promise<FileRecord[]> {
    const text = (this.s.taskFilesOf.get(taskId) as Row | undefined)?.files;
    if (!text) return [];
    const ids = JSON.parse(text) as string[];
    const byId = new Map((await this.fileList(ids)).map((f) => [f.id, f]));
    return ids.map((id) => byId.get(id)).filter((f): f is FileRecord => f !== undefined);
  }

  async artifactCounts(jobId: string): Promise<Map<string, number>> {
    return new Map((this.s.artifactCounts.all(jobId) as Row[]).map((r) => [r.task_id as string, Number(r.n)]));
  }

  async workerUpsert(p: Omit<WorkerRecord, 'tasksCompleted' | 'tasksFailed' | 'disconnectedAt'>): Promise<void> {
    this.s.workerUpsert.run({
      id: p.id, state: p.state, capacity: p.capacity, patterns: JSON.stringify(p.patterns), allowCode: p.allowCode ? 1 : 0,
      resources: JSON.stringify(p.resources), version: p.version, foremanId: p.foremanId, connectedAt: p.connectedAt, lastSeenAt: p.lastSeenAt,
    });
  }

  async workerDisconnected(params: { workerId: string; now: number }): Promise<void> {
    this.s.workerOffline.run({ id: params.workerId, now: params.now });
  }

  async workerSeen(params: WorkerSeenParams): Promise<void> {
    if (params.workers.length === 0) return;
    this.tx('workerSeen', (p: WorkerSeenParams) => {
      for (const w of p.workers) this.s.workerSeen.run({ id: w.id, at: w.at, foremanId: p.foremanId });
    })(params);
  }

  async workerList(): Promise<WorkerRecord[]> {
    return (this.s.workerList.all() as Row[]).map(workerFromRow);
  }

  async foremanLeaseTake(params: { foremanId: string; now: number; until: number }): Promise<number> {
    return this.tx('foremanLeaseTake', (p: { foremanId: string; until: number }) => {
      // This process holds the file's foreman lock, which goes with its holder's process: every
      // other foreman that held a lease here is gone, however it ended.
      if (this.lock) this.s.leaseDeleteOthers.run(p.foremanId);
      this.s.leaseInsert.run(p);
      return this.s.workersOfflineAt.run({ foremanId: p.foremanId, now: null }).changes;
    })(params);
  }

  async foremanLeaseRenew(params: { foremanId: string; until: number }): Promise<boolean> {
    return this.tx('foremanLeaseRenew', (p: { foremanId: string; until: number }) => {
      if (this.s.leaseRenew.run(p).changes > 0) return true;
      this.s.leaseInsert.run(p);
      return false;
    })(params);
  }

  async foremanLeaseEnd(params: { foremanId: string; now: number }): Promise<void> {
    this.tx('foremanLeaseEnd', (p: { foremanId: string; now: number }) => {
      this.s.leaseDelete.run(p.foremanId);
      this.s.workersOfflineAt.run(p);
    })(params);
  }

  async foremanReapLapsed(params: { now: number }): Promise<ForemanReapResult> {
    return this.tx('foremanReapLapsed', (now: number): ForemanReapResult => {
      const foremen = (this.s.leaseLapsed.all(now) as Row[]).map((r) => r.foreman_id as string);
      return { foremen, workers: this.s.workersOfflineUnleased.run().changes };
    })(params.now);
  }

  async credentialInsert(p: CredentialInsertParams): Promise<void> {
    this.tx('credentialInsert', (p: CredentialInsertParams) => {
      this.s.credentialInsert.run({ id: p.id, kind: p.kind, name: p.name, scopes: JSON.stringify(p.scopes), workerId: p.workerId, secretHash: p.secretHash,
        createdAt: p.createdAt, expiresAt: p.expiresAt ?? null, maxWorkers: p.maxWorkers ?? null, maxConcurrency: p.maxConcurrency ?? null, webhookUrl: p.webhookUrl ?? null });
      this.s.versionBump.run();
    })(p);
  }

  async credentialGet(id: string): Promise<CredentialRecord | null> {
    const r = this.s.credentialGet.get(id) as Row | undefined;
    return r ? credentialFromRow(r) : null;
  }

  async credentialList(params: { kind?: CredentialRecord['kind'] }): Promise<CredentialRecord[]> {
    return (this.s.credentialList.all({ kind: params.kind ?? null }) as Row[]).map(credentialFromRow);
  }

  async credentialSetMaxConcurrency(params: { id: string; maxConcurrency: number | null }): Promise<CredentialRecord | null> {
    const r = this.s.credentialCap.get(params) as Row | undefined;
    return r ? credentialFromRow(r) : null;
  }

  async credentialSetWebhook(params: { id: string; webhookUrl: string | null }): Promise<CredentialRecord | null> {
    const r = this.st(`UPDATE credentials SET webhook_url = @webhookUrl WHERE id = @id AND kind = 'key' RETURNING *`).get(params) as Row | undefined;
    return r ? credentialFromRow(r) : null;
  }

  async credentialRevoke(params: { id: string; now: number }): Promise<CredentialRecord | null> {
    return this.tx('credentialRevoke', (p: { id: string; now: number }) => {
      if (this.s.credentialRevoke.run(p).changes === 0) return null;
      this.s.versionBump.run();
      return credentialFromRow(this.s.credentialGet.get(p.id) as Row);
    })(params);
  }

  async credentialTouch(params: { id: string; now: number; from: string }): Promise<void> {
    this.s.credentialTouch.run(params);
  }

  async credentialsVersion(): Promise<number> {
    return Number((this.s.metaGet.get('credentials_version') as Row | undefined)?.value ?? 0);
  }

  async sweepCandidates(p: { sweep: Sweep; now: number; limit: number; completedBefore?: number } & SweepFilter): Promise<string[]> {
    const args = sweepArgs(p.sweep === 'prune' && p.completedBefore !== undefined ? p.completedBefore : p.now, p.limit, p);
    const st = p.sweep === 'leases' ? this.s.taskExpiredSweep : p.sweep === 'queue_deadlines' ? this.s.jobsPastQueueDeadlineSweep
      : p.sweep === 'open_timeouts' ? this.s.jobsOpenExpired : p.sweep === 'deadlines' ? this.s.jobsPastDeadline
      : p.completedBefore !== undefined ? this.s.pruneFinishedBeforeSweep : this.s.pruneDueSweep;
    return (st.all(args) as Row[]).map((r) => r.id as string);
  }

  async jobPrune(params: JobPruneParams & SweepFilter): Promise<JobPruneResult> {
    return this.freeing('jobPrune', (p: JobPruneParams & SweepFilter): JobPruneResult => {
      const due = (p.unfinishedBefore !== undefined ? this.s.pruneUnfinishedBefore.all(p.unfinishedBefore)
        : isFiltered(p)
          ? (p.completedBefore !== undefined ? this.s.pruneFinishedBeforeSweep : this.s.pruneDueSweep).all(sweepArgs(p.completedBefore ?? p.now, 50, p))
          : p.completedBefore !== undefined ? this.s.pruneFinishedBefore.all(p.completedBefore) : this.s.pruneDue.all(p.now)) as Row[];
      let budget = p.maxTasks;
      const out: JobPruneResult = { jobs: 0, tasks: 0, more: due.length === 50 };
      for (const job of due) {
        const n = this.s.pruneTasks.run(job.id, budget).changes;
        budget -= n;
        out.tasks += n;
        if (this.s.pruneHasTasks.get(job.id)) { out.more = true; break; }
        this.s.pruneJob.run(job.id);
        this.s.pruneBatches.run(job.id);
        this.s.pruneArtifacts.run(job.id);
        this.s.pruneFiles.run(job.id);
        this.st('DELETE FROM webhook_deliveries WHERE job_id = ?').run(job.id);
        this.s.pruneTombstone.run(job.id, job.owner, p.now);
        out.jobs++;
        if (budget <= 0) { out.more = true; break; }
      }
      if (p.forgetPrunedBefore !== undefined) {
        this.s.pruneForget.run(p.forgetPrunedBefore);
        // Files uploaded and never carried by a job go as old tombstones do.
        this.s.pruneLooseFiles.run(p.forgetPrunedBefore);
      }
      if (out.jobs > 0) this.s.metaAdd.run({ key: 'pruned_jobs', n: out.jobs });
      if (out.tasks > 0) this.s.metaAdd.run({ key: 'pruned_tasks', n: out.tasks });
      return out;
    })(params);
  }

  /** The file's pages and the WAL beside it; null in memory. */
  private storageBytes(): number | null {
    if (this.path === ':memory:') return null;
    const pages = (this.db.pragma('page_count', { simple: true }) as number) * (this.db.pragma('page_size', { simple: true }) as number);
    let wal = 0;
    try { wal = statSync(`${this.path}-wal`).size; } catch { /* no WAL yet */ }
    return pages + wal;
  }

  async jobPruned(jobId: string): Promise<{ owner: string | null; prunedAt: number } | null> {
    const r = this.s.prunedGet.get(jobId) as Row | undefined;
    return r ? { owner: r.owner, prunedAt: r.pruned_at } : null;
  }

  async probeSpace(): Promise<void> {
    // Pages are allocated (and the size limit checked) at the insert; the rollback frees them.
    this.db.exec('BEGIN');
    try {
      this.s.probeInsert.run('x'.repeat(PROBE_BYTES));
    } finally {
      // A failed insert may have ended the transaction already (SQLite rolls back on SQLITE_FULL).
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
    }
  }

  async metaSetIfAbsent(params: { key: string; value: string }): Promise<string> {
    this.s.metaInsert.run(params.key, params.value);
    return (this.s.metaGet.get(params.key) as Row).value;
  }

  // ------------------------------------------------------------------ webhooks

  async webhookClaimDue(params: { now: number; limit: number; leaseMs: number }): Promise<WebhookClaim[]> {
    // Nearly every job ends without a webhook: a read finds that, without a write transaction
    // (the lock, a commit) per job end. A row due but missed here is found by the next look.
    if (!this.st(`SELECT 1 FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ? LIMIT 1`).get(params.now)) return [];
    // One writer at a time (an immediate transaction), so a due row is claimed once.
    return this.tx('webhookClaimDue', (p: { now: number; limit: number; leaseMs: number }) => (this.st(`UPDATE webhook_deliveries
        SET attempts = attempts + 1, in_flight = 1, next_attempt_at = @now + @leaseMs
        WHERE id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= @now ORDER BY next_attempt_at, id LIMIT @limit)
        RETURNING id, job_id, url, attempts, job_state, created_at`).all(p) as Row[])
      .map((r) => ({ id: r.id, jobId: r.job_id, url: r.url, attempts: r.attempts, jobState: r.job_state, createdAt: r.created_at })))(params);
  }

  async webhookRecordAttempt(p: WebhookAttemptParams): Promise<boolean> {
    const done = p.next.state !== 'pending';
    return this.st(`UPDATE webhook_deliveries SET state = @state, last_status = @status, last_error = @error,
        attempt_log = json_insert(attempt_log, '$[#]', json(@entry)), next_attempt_at = @nextAt, finished_at = @finishedAt, in_flight = 0
        WHERE id = @id AND state = 'pending' AND in_flight = 1 AND attempts = @attempt`).run({
      id: p.id, state: p.next.state, status: p.attempt.status, error: p.attempt.error, entry: JSON.stringify(p.attempt), attempt: p.attempt.attempt,
      nextAt: p.next.state === 'pending' ? p.next.retryAt : null, finishedAt: done ? p.attempt.at + p.attempt.durationMs : null,
    }).changes > 0;
  }

  async webhookNextDue(): Promise<number | null> {
    const r = this.st(`SELECT next_attempt_at FROM webhook_deliveries WHERE state = 'pending' ORDER BY next_attempt_at LIMIT 1`).get() as Row | undefined;
    return r ? r.next_attempt_at : null;
  }

  async webhookDeliveryList(jobId: string): Promise<WebhookDeliveryRecord[]> {
    return (this.st('SELECT * FROM webhook_deliveries WHERE job_id = ? ORDER BY id').all(jobId) as Row[]).map(webhookDeliveryFromRow);
  }

  // ------------------------------------------------------------------ schedules

  /** Statements of the schedules, prepared once each. */
  private readonly scheduleStmts = new Map<string, Database.Statement>();
  private st(sql: string): Database.Statement {
    let stmt = this.scheduleStmts.get(sql);
    if (!stmt) { stmt = this.db.prepare(sql); this.scheduleStmts.set(sql, stmt); }
    return stmt;
  }

  /** A schedule with its last job's state. */
  private static readonly SCHEDULE_SELECT = 'SELECT s.*, j.state AS last_job_state FROM schedules s LEFT JOIN jobs j ON j.id = s.last_job_id';

  async scheduleCreate(p: ScheduleInsertParams): Promise<ScheduleRecord | null> {
    const r = this.st(`INSERT INTO schedules (id, owner, name, cron, every_ms, timezone, job, overlap, window_ms, catch_up, jitter_ms, paused, pause_note,
        next_tick, due_at, created_at, updated_at) VALUES (@id, @owner, @name, @cron, @everyMs, @timezone, @job, @overlap, @windowMs, @policy, @jitterMs,
        @paused, @pauseNote, @nextTick, @dueAt, @createdAt, @createdAt) ON CONFLICT (id) DO NOTHING`)
      .run({ ...p, job: JSON.stringify(p.job), paused: p.paused ? 1 : 0 });
    return r.changes === 0 ? null : this.scheduleGet(p.id);
  }

  async scheduleGet(id: string): Promise<ScheduleRecord | null> {
    const r = this.st(`${SqliteStore.SCHEDULE_SELECT} WHERE s.id = ?`).get(id) as Row | undefined;
    return r ? scheduleFromRow(r) : null;
  }

  async scheduleList(params: { owner?: string }): Promise<ScheduleRecord[]> {
    const rows = params.owner !== undefined
      ? this.st(`${SqliteStore.SCHEDULE_SELECT} WHERE s.owner = ? ORDER BY s.id`).all(params.owner)
      : this.st(`${SqliteStore.SCHEDULE_SELECT} ORDER BY s.id`).all();
    return (rows as Row[]).map(scheduleFromRow);
  }

  async scheduleUpdate(p: { id: string; change: ScheduleChange; expectVersion?: number; now: number }): Promise<ScheduleRecord | null> {
    const keys = (Object.keys(p.change) as (keyof ScheduleChange)[]).filter((k) => p.change[k] !== undefined);
    const set = keys.map((k) => `${SCHEDULE_COLUMNS[k]} = @${k}`).join(', ');
    const values: Record<string, unknown> = { id: p.id, now: p.now, version: p.expectVersion ?? null };
    for (const k of keys) {
      const v = p.change[k];
      values[k] = k === 'job' ? JSON.stringify(v) : typeof v === 'boolean' ? (v ? 1 : 0) : v;
    }
    const r = this.st(`UPDATE schedules SET ${set ? `${set}, ` : ''}version = version + 1, updated_at = @now
      WHERE id = @id AND (@version IS NULL OR version = @version)`).run(values);
    return r.changes === 0 ? null : this.scheduleGet(p.id);
  }

  async scheduleDelete(id: string): Promise<boolean> {
    return this.tx('scheduleDelete', (scheduleId: string) => {
      this.st('DELETE FROM schedule_runs WHERE schedule_id = ?').run(scheduleId);
      return this.st('DELETE FROM schedules WHERE id = ?').run(scheduleId).changes > 0;
    })(id);
  }

  async scheduleNextDue(): Promise<number | null> {
    return (this.st('SELECT min(due_at) AS due FROM schedules WHERE paused = 0 AND due_at IS NOT NULL').get() as Row).due ?? null;
  }

  async scheduleDue(p: { now: number; limit: number; except?: readonly string[] }): Promise<ScheduleRecord[]> {
    const except = p.except?.length ? JSON.stringify(p.except) : null;
    const notExcepted = 'AND (@except IS NULL OR s.id NOT IN (SELECT value FROM json_each(@except)))';
    // Two reads, each on its own index: ticks due, and buffered ticks whose previous job is done.
    const due = this.st(`${SqliteStore.SCHEDULE_SELECT} WHERE s.paused = 0 AND s.due_at <= @now ${notExcepted} ORDER BY s.due_at LIMIT @limit`)
      .all({ now: p.now, limit: p.limit, except }) as Row[];
    const buffered = this.st(`${SqliteStore.SCHEDULE_SELECT} WHERE s.buffered_tick IS NOT NULL AND s.paused = 0
        AND (j.state IS NULL OR j.state IN ('completed', 'failed', 'cancelled')) ${notExcepted} LIMIT @limit`)
      .all({ limit: p.limit, except }) as Row[];
    const seen = new Set(due.map((r) => r.id));
    return [...due, ...buffered.filter((r) => !seen.has(r.id))].slice(0, p.limit).map(scheduleFromRow);
  }

  async scheduleFire(list: ScheduleFireParams[]): Promise<ScheduleFireOutcome[]> {
    try {
      return this.tx('scheduleFire', (items: ScheduleFireParams[]) => items.map(this.fireOne))(list);
    } catch (err) {
      // Something the database refuses in one step: the group again, each step in a savepoint,
      // so that the one that fails fails alone and the others fire.
      if (this.db.inTransaction || isStoreOutage(storeError(err, 'firing schedules'))) throw err;
      return this.tx('scheduleFireEach', (items: ScheduleFireParams[]): ScheduleFireOutcome[] => items.map((item) => {
        try {
          return this.savepoint('scheduleFireOne', this.fireOne)(item);
        } catch (one) {
          if (!this.db.inTransaction) throw one;
          return { applied: false, error: one as Error };
        }
      }))(list);
    }
  }

  /** One schedule's step, inside scheduleFire's transaction. */
  private readonly fireOne = (p: ScheduleFireParams): ScheduleFireOutcome => {
    const last = lastJobOf(p);
    const advance = p.advance
      ? this.st(`UPDATE schedules SET next_tick = @nextTick, due_at = @dueAt, buffered_tick = @bufferedTick, last_job_id = coalesce(@last, last_job_id), version = version + 1
          WHERE id = @id AND (@guarded = 0 OR (version = @version AND next_tick IS @seen))`)
      : this.st('UPDATE schedules SET last_job_id = coalesce(@last, last_job_id), version = version + 1 WHERE id = @id AND (@guarded = 0 OR (version = @version AND next_tick IS @seen))');
    const applied = advance.run({
      id: p.scheduleId, guarded: p.guard ? 1 : 0, version: p.guard?.version ?? null, seen: p.guard?.nextTick ?? null, last,
      ...(p.advance ? { nextTick: p.advance.nextTick, dueAt: p.advance.dueAt, bufferedTick: p.advance.bufferedTick } : {}),
    }).changes > 0;
    if (!applied) return { applied: false };
    const jobs: (JobInsertResult & { tickAt: number })[] = [];
    const insertRun = this.st('INSERT INTO schedule_runs (schedule_id, tick_at, fired_at, reason, outcome, job_id) VALUES (?, ?, ?, ?, ?, ?)');
    for (const run of p.runs) {
      const res = run.job ? this.insertJobRows(run.job, new Map()) : null;
      if (res) jobs.push({ ...res, tickAt: run.tickAt });
      insertRun.run(p.scheduleId, run.tickAt, run.firedAt, run.reason, run.outcome, res?.job.id ?? null);
    }
    // A job found by its key (a tick fired already) is the previous run instead of the one built.
    const actual = p.setsLastJob ? jobs.at(-1)?.job.id ?? null : null;
    if (actual !== last) this.st('UPDATE schedules SET last_job_id = ? WHERE id = ?').run(actual, p.scheduleId);
    if (trimsRuns(p)) {
      this.st(`DELETE FROM schedule_runs WHERE schedule_id = @id AND seq < (SELECT seq FROM schedule_runs WHERE schedule_id = @id ORDER BY seq DESC LIMIT 1 OFFSET @keep)`)
        .run({ id: p.scheduleId, keep: SCHEDULE_RUNS_KEPT - 1 });
    }
    return { applied: true, jobs };
  };

  async scheduleRunList(p: { scheduleId: string; limit: number }): Promise<ScheduleRunRecord[]> {
    return (this.st(`SELECT r.*, j.state AS job_state FROM schedule_runs r LEFT JOIN jobs j ON j.id = r.job_id
      WHERE r.schedule_id = ? ORDER BY r.seq DESC LIMIT ?`).all(p.scheduleId, p.limit) as Row[]).map(scheduleRunFromRow);
  }

  async stats(): Promise<StoreStats> {
    const jobs = { scheduled: 0, queued: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
    const workers = { online: 0, offline: 0 };
    const byState = this.s.statsJobs.all(Date.now()) as Row[];
    for (const r of byState) (jobs as any)[r.state] = r.n;
    const tasks = taskCountsFromJobs(byState, (this.s.statsRunning.get() as Row).n, (this.s.statsScheduled.get() as Row).n);
    for (const r of this.s.statsWorkers.all() as Row[]) (workers as any)[r.state] = r.n;
    const counter = (key: string) => Number((this.s.metaGet.get(key) as Row | undefined)?.value ?? 0);
    return { jobs, tasks, workers, pruned: { jobs: counter('pruned_jobs'), tasks: counter('pruned_tasks') }, storageBytes: this.storageBytes() };
  }
}
