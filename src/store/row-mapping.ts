/**
 * Rows to records, shared by the store drivers: both keep the same columns (JSON as text,
 * times as epoch milliseconds), so one mapping serves both. Booleans arrive as 0/1 from
 * SQLite and as true/false from PostgreSQL.
 * @internal
 */
import { typesFromLabel } from '../core/fair-share.ts';
import type { RateBucket } from '../core/rate-limits.ts';
import { PRIORITY_BY_RANK, describeAmount, taskError, type Requirements, type TaskError, type TraceContext } from '../protocol/index.ts';
import { BLOCKED_UNTIL, type GraphPlan, type NodeStatus } from '../core/graph.ts';
import type { ActiveJob, FailedTaskGroup, ClaimedTask, JobCursor, ArtifactListParams, ArtifactRecord, AttemptError, FileRecord, CredentialRecord, JobAppendResult, JobChange, JobRecord, JobResults, OpenTimeoutAction, ResultPage, ScheduleChange, ScheduleRecord, ScheduleRunRecord, TaskBatchRecord, TaskRecord, WebhookAttempt, WebhookDeliveryRecord, WorkerRecord } from './store.ts';

/** A row as a driver returns it. */
export type Row = Record<string, any>;

const bool = (v: unknown): boolean => v === 1 || v === true;


/** A value as JSON text for a column (undefined stays NULL). */
export const toJson = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));
/**
 * JSON text that PostgreSQL's jsonb accepts: jsonb refuses the NUL character and unpaired
 * surrogates in strings, which JSON (and a worker's error message) may hold; they become U+FFFD.
 * For the attempt history, which is appended to as jsonb.
 */
export const jsonbText = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'string' ? x.toWellFormed().replaceAll('\0', '\ufffd') : x));
/** A JSON column back to its value. */
export const fromJson = (s: string | null): unknown => (s == null ? null : JSON.parse(s));

/**
 * A job's stored trace context, or null. A value that does not read as one is taken as none:
 * tracing is never a reason for a job not to run.
 */
export function traceContextOf(s: string | null | undefined): TraceContext | null {
  if (s == null) return null;
  try {
    const v = JSON.parse(s) as Partial<TraceContext> | null;
    if (!v || typeof v.traceparent !== 'string') return null;
    return typeof v.tracestate === 'string' ? { traceparent: v.traceparent, tracestate: v.tracestate } : { traceparent: v.traceparent };
  } catch {
    return null;
  }
}

/**
 * A claimed task row as the worker gets it. A row whose stored JSON does not parse (damaged
 * outside the foreman) comes back marked `unreadable` instead of failing the claim: otherwise
 * every claim that reached it would fail, and with it the dispatcher.
 */
export function claimedFromRow(r: Row): ClaimedTask {
  let input: unknown = null;
  let fileIds: string[] | undefined;
  let unreadable: string | undefined;
  try {
    input = fromJson(r.input);
    if (r.files) fileIds = JSON.parse(r.files) as string[];
  } catch (err) {
    unreadable = `task ${r.id}: its stored input cannot be read (${(err as Error).message})`;
  }
  return {
    taskId: r.id, jobId: r.job_id, index: r.idx, kind: r.kind, type: r.type, input,
    priority: PRIORITY_BY_RANK[r.priority], attempt: r.attempt, timeoutMs: r.timeout_ms,
    createdAt: r.created_at, queuedAt: Math.max(r.created_at, r.available_at),
    ...(fileIds ? { fileIds } : {}), ...(unreadable ? { unreadable } : {}),
  };
}

/** A task's stored requirements; null when they cannot be read (such a task fits no worker, and stalls no claim). */
export function requirementsOf(text: string): Requirements | null {
  try { return JSON.parse(text) as Requirements; } catch { return null; }
}

/** A dead-letter group from its row and its example tasks (`[taskId, jobId, at]`), newest example first. */
export function failedGroupFromRow(r: Row, examples: [string, string, number | string][]): FailedTaskGroup {
  const sorted = [...examples].sort((a, b) => Number(b[2]) - Number(a[2]) || (a[0] < b[0] ? 1 : -1));
  return {
    type: r.type, errorCode: r.code, message: r.message, count: Number(r.n), jobs: Number(r.jobs),
    firstAt: Number(r.first_at), lastAt: Number(r.last_at), taskIds: sorted.map((e) => e[0]), jobIds: sorted.map((e) => e[1]),
  };
}

/** A jobs row as a record. */
export function jobFromRow(r: Row): JobRecord {
  return {
    id: r.id,
    kind: r.kind,
    name: r.name,
    // Scheduled: still queued (nothing started) and its time to run has not come.
    state: r.state === 'queued' && r.run_at != null && Number(r.run_at) > Date.now() ? 'scheduled' : r.state,
    priority: PRIORITY_BY_RANK[r.priority],
    counts: { total: r.total, completed: r.completed, failed: r.failed, cancelled: r.cancelled },
    argCount: r.arg_count,
    chunkSize: r.chunk_size,
    timeoutMs: r.timeout_ms,
    maxAttempts: r.max_attempts,
    idempotencyKey: r.idempotency_key,
    metadata: fromJson(r.metadata) as Record<string, unknown> | null,
    cancelRequested: bool(r.cancel_requested),
    owner: r.owner ?? null,
    retentionMs: r.retention_ms ?? null,
    label: r.label ?? null,
    queueTimeoutMs: r.queue_timeout_ms ?? null,
    runOn: r.run_on ?? null,
    runAt: r.run_at == null ? null : Number(r.run_at),
    language: r.kind === 'map' ? (r.language ?? 'javascript') : null,
    open: bool(r.open),
    weight: r.weight ?? 1,
    maxConcurrency: r.max_concurrency ?? null,
    openTimeoutMs: r.open_timeout_ms ?? null,
    onOpenTimeout: r.open_timeout_ms == null ? null : (r.on_open_timeout ?? 'cancel'),
    openExpiresAt: r.open_expires_at ?? null,
    closedBy: r.closed_by ?? null,
    deadline: r.deadline ?? null,
    webhookUrl: r.webhook_url ?? null,
    traceContext: traceContextOf(r.trace_context),
    createdAt: r.created_at,
    startedAt: r.started_at,
    completedAt: r.completed_at,
  };
}

/**
 * An append that changed nothing, from the job row as it is: a part already appended (a retry
 * that names the same `at`: deduplicated), or why it is refused.
 */
export function refusedAppend(row: Row, p: { tasks: unknown[]; args: number; at: number | null }): JobAppendResult {
  const job = jobFromRow(row);
  const map = job.kind === 'map';
  const end = map ? job.argCount ?? 0 : job.counts.total;
  const size = map ? p.args : p.tasks.length;
  if (p.at !== null && end >= p.at + size && (size > 0 || !job.open)) {
    return { job, deduplicated: true, change: null, firstIndex: map ? Math.floor(p.at / (job.chunkSize ?? 1)) : p.at };
  }
  if (!job.open) return { job, refused: 'sealed' };
  if (p.at !== null && p.at !== end) return { job, refused: 'conflict' };
  return { job, refused: 'partial_chunk' };
}

/** A tasks row as a record. */
export function taskFromRow(r: Row): TaskRecord {
  return {
    id: r.id,
    jobId: r.job_id,
    index: r.idx,
    kind: r.kind,
    type: r.type,
    input: fromJson(r.input),
    priority: PRIORITY_BY_RANK[r.priority],
    state: r.state,
    attempt: r.attempt,
    failures: r.failures,
    maxAttempts: r.max_attempts,
    timeoutMs: r.timeout_ms,
    workerId: r.worker_id,
    result: fromJson(r.result),
    error: fromJson(r.error) as TaskError | null,
    attemptErrors: (fromJson(r.errors) as AttemptError[] | null) ?? [],
    progress: r.progress,
    progressMessage: r.progress_message,
    createdAt: r.created_at,
    startedAt: r.started_at,
    completedAt: r.completed_at,
    leaseExpiresAt: r.lease_expires_at,
    availableAt: r.available_at,
    artifactsComplete: bool(r.artifacts_complete),
  };
}

/** Where a look past the oldest unfinished jobs starts: after `after`, but never inside the oldest window. */
export function windowStart(lastOfOldest: JobCursor, after: JobCursor | null | undefined): JobCursor {
  if (!after) return lastOfOldest;
  const later = after.createdAt > lastOfOldest.createdAt || (after.createdAt === lastOfOldest.createdAt && after.jobId > lastOfOldest.jobId);
  return later ? after : lastOfOldest;
}

/** A job row's place in the order of unfinished jobs. */
export function cursorOf(r: Row): JobCursor {
  return { createdAt: Number(r.created_at), jobId: r.id };
}

/** A rate_limits row: a limit and its bucket. */
export function bucketFromRow(r: Row): RateBucket {
  return { pattern: r.pattern, max: Number(r.max), perMs: Number(r.per_ms), tokens: Number(r.tokens), refilledAt: Number(r.refilled_at) };
}

/**
 * An unfinished job's row, with its running and its scheduled (delayed, not yet due) tasks, as
 * the scheduler sees it. What is neither ended, running nor scheduled is queued: only those
 * tasks can be claimed, so only they count as waiting.
 */
export function activeJobFromRow(r: Row, running: number, scheduled: number): ActiveJob {
  return {
    jobId: r.id, kind: r.kind, owner: r.owner ?? null, priority: PRIORITY_BY_RANK[r.priority], weight: Number(r.weight ?? 1),
    maxConcurrency: r.max_concurrency ?? null, running, scheduled,
    waiting: Math.max(0, Number(r.total) - Number(r.completed) - Number(r.failed) - Number(r.cancelled) - running - scheduled),
    runOn: r.run_on ?? null, language: r.kind === 'map' ? r.language ?? 'javascript' : null, createdAt: Number(r.created_at),
    types: typesFromLabel({ kind: r.kind, label: r.label ?? null, open: bool(r.open) }),
  };
}

/** A credentials row as a record. */
export function credentialFromRow(r: Row): CredentialRecord {
  return {
    id: r.id,
    kind: r.kind,
    name: r.name,
    scopes: r.scopes ? JSON.parse(r.scopes) : [],
    workerId: r.worker_id,
    secretHash: r.secret_hash,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
    lastUsedAt: r.last_used_at,
    lastUsedFrom: r.last_used_from,
    expiresAt: r.expires_at ?? null,
    maxWorkers: r.max_workers ?? null,
    maxConcurrency: r.max_concurrency ?? null,
    webhookUrl: r.webhook_url ?? null,
  };
}

/** A webhook_deliveries row as a record. */
export function webhookDeliveryFromRow(r: Row): WebhookDeliveryRecord {
  return {
    id: Number(r.id), jobId: r.job_id, url: r.url, state: r.state, jobState: r.job_state, attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at == null ? null : Number(r.next_attempt_at),
    lastStatus: r.last_status ?? null, lastError: r.last_error ?? null,
    attemptLog: (typeof r.attempt_log === 'string' ? JSON.parse(r.attempt_log) : r.attempt_log) as WebhookAttempt[],
    createdAt: Number(r.created_at), finishedAt: r.finished_at == null ? null : Number(r.finished_at),
  };
}

/** A workers row as a record. */
export function workerFromRow(r: Row): WorkerRecord {
  return {
    id: r.id,
    state: r.state,
    capacity: r.capacity,
    patterns: JSON.parse(r.patterns),
    allowCode: bool(r.allow_code),
    resources: JSON.parse(r.resources),
    version: r.version,
    foremanId: r.foreman_id,
    connectedAt: r.connected_at,
    lastSeenAt: r.last_seen_at,
    disconnectedAt: r.disconnected_at,
    tasksCompleted: r.tasks_completed,
    tasksFailed: r.tasks_failed,
  };
}


/**
 * A job's ordered results from its task rows (any order): map chunks are flattened back to
 * one entry per argument, and a failed task leaves nulls where its arguments were.
 */
export function flattenResults(job: Row, taskRows: Row[], page?: ResultPage): JobResults {
  const rows = [...taskRows].sort((a, b) => a.idx - b.idx);
  const results: unknown[] = [];
  const failures: JobResults['failures'] = [];
  for (const r of rows) {
    if (job.kind === 'map') {
      const start = r.idx * job.chunk_size;
      const len = Math.min(job.chunk_size, job.arg_count - start);
      if (r.state === 'completed') {
        for (const v of JSON.parse(r.result) as unknown[]) results.push(v);
        continue;
      }
      const error = fromJson(r.error) as TaskError | null;
      const partial = fromJson(r.result);
      const failed = (error?.details as { failedArguments?: { index: number; name: string; message: string }[] } | undefined)?.failedArguments;
      if (Array.isArray(partial) && partial.length === len && Array.isArray(failed) && failed.length > 0) {
        // Some arguments threw: the others keep their results; each one that threw is a failure of its own.
        for (const v of partial) results.push(v);
        for (const f of failed) {
          failures.push({ taskId: r.id, index: f.index, error: { ...error!, message: `argument ${f.index}: ${f.name}: ${f.message}`, details: { argumentIndex: f.index } }, state: r.state });
        }
      } else {
        for (let i = 0; i < len; i++) results.push(null);
        failures.push({ taskId: r.id, index: start, error, state: r.state });
      }
    } else if (r.state === 'completed') {
      results.push(fromJson(r.result));
    } else {
      results.push(null);
      failures.push({ taskId: r.id, index: r.idx, error: fromJson(r.error) as TaskError | null, state: r.state });
    }
  }
  const total = resultCount(job);
  if (!page) return { results, failures, offset: 0, total };
  // The rows began at the task holding `offset`: keep the page's results and failures.
  const { from } = resultTasks(job, page);
  const first = from * (job.kind === 'map' ? job.chunk_size : 1);
  const end = Math.min(total, page.offset + page.limit);
  return {
    results: results.slice(page.offset - first, Math.max(0, end - first)),
    failures: failures.filter((f) => f.index >= page.offset && f.index < end),
    offset: page.offset, total,
  };
}

/** How many results a job has: one per argument (map), else one per task. */
const resultCount = (job: Row): number => (job.kind === 'map' ? job.arg_count : job.total);

/**
 * A finished job's results from the one outcome that completed it, when that is all of them:
 * a job of one task that completed, of kind `tasks` (its results are that task's result) or
 * `map` (that chunk's array). Otherwise undefined: they are read from the store.
 */
export function resultsInHand(job: { kind: string; total: number }, change: JobChange, result: unknown): unknown[] | undefined {
  if (!change.finished || change.state !== 'completed' || job.total !== 1 || change.counts.completed !== 1) return undefined;
  if (job.kind === 'tasks') return [result ?? null];
  if (job.kind === 'map' && Array.isArray(result)) return result;
  return undefined;
}

/** The tasks (by index, `to` excluded) that hold a page of results. */
export function resultTasks(job: Row, page?: ResultPage): { from: number; to: number } {
  if (!page) return { from: 0, to: 2_147_483_647 };
  const per = job.kind === 'map' ? job.chunk_size : 1;
  const end = Math.min(resultCount(job), page.offset + page.limit);
  return { from: Math.floor(page.offset / per), to: Math.max(Math.floor(page.offset / per), Math.ceil(end / per)) };
}

/**
 * Tasks by state from the jobs' counters, without reading the tasks table: each job counts its
 * tasks (total) and those that ended (completed, failed, cancelled); the running ones are
 * counted apart (few, through a partial index); the rest are queued. So the figures cost
 * O(jobs), not O(tasks), however many tasks are kept.
 */
export function taskCountsFromJobs(rows: Row[], running: number, scheduled = 0): { scheduled: number; queued: number; running: number; completed: number; failed: number; cancelled: number } {
  let total = 0, completed = 0, failed = 0, cancelled = 0;
  for (const r of rows) {
    total += Number(r.total ?? 0);
    completed += Number(r.completed ?? 0);
    failed += Number(r.failed ?? 0);
    cancelled += Number(r.cancelled ?? 0);
  }
  return { scheduled, queued: Math.max(0, total - completed - failed - cancelled - running - scheduled), running, completed, failed, cancelled };
}

/** A recorded batch from its row. */
export function batchFromRow(r: Row): TaskBatchRecord {
  return { batchUid: r.batch_uid, attempt: Number(r.attempt), metrics: fromJson(r.metrics) as Record<string, number> | null, createdAt: Number(r.created_at) };
}

/** An artifact from its row. */
export function artifactFromRow(r: Row): ArtifactRecord {
  return {
    seq: Number(r.seq), jobId: r.job_id, taskId: r.task_id, batchUid: r.batch_uid, data: fromJson(r.data),
    size: Number(r.size), attempt: Number(r.attempt), createdAt: Number(r.created_at),
  };
}

/**
 * The artifact listing's query, the same on both drivers but for the placeholder: `?` for
 * SQLite, `$` for PostgreSQL's numbered ones.
 */
export function artifactQuery(p: ArtifactListParams, placeholder: '?' | '$'): { sql: string; args: unknown[] } {
  const args: unknown[] = [];
  const next = (v: unknown) => { args.push(v); return placeholder === '?' ? '?' : `$${args.length}`; };
  const where: string[] = [];
  if (p.jobId !== undefined) where.push(`job_id = ${next(p.jobId)}`);
  if (p.taskId !== undefined) where.push(`task_id = ${next(p.taskId)}`);
  if (p.taskIds !== undefined) where.push(p.taskIds.length === 0 ? 'false' : `task_id IN (${p.taskIds.map(next).join(', ')})`);
  if (p.afterSeq !== undefined) where.push(`seq > ${next(p.afterSeq)}`);
  const sql = `SELECT * FROM artifacts${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq LIMIT ${next(p.limit)}`;
  return { sql, args };
}

/** Each graph node's status, from its job's task rows (id, state, available_at) and the tasks that wrote artifacts. */
export function nodeStatus(plan: GraphPlan, rows: Row[], writers: ReadonlySet<string>): Map<string, NodeStatus> {
  const byTask = new Map(rows.map((r) => [r.id as string, r]));
  const out = new Map<string, NodeStatus>();
  for (const n of plan.nodes) {
    const r = byTask.get(n.taskId);
    if (r) out.set(n.nodeId, { state: r.state, blocked: Number(r.available_at) >= BLOCKED_UNTIL, hasArtifacts: writers.has(n.taskId) });
  }
  return out;
}

/** A file's row, without its bytes. */
export function fileFromRow(r: Row): FileRecord {
  return {
    id: r.id, owner: r.owner, jobId: r.job_id, filename: r.filename, size: Number(r.size), contentType: r.content_type,
    sha256: r.sha256, createdAt: Number(r.created_at),
  };
}

/**
 * A new job's open-timeout columns: a timeout and what it does, for an open job that has a
 * timeout (a job not open, or with 0, never expires; the default action is to cancel).
 */
export function openTimeoutColumns(job: { open?: boolean; openTimeoutMs?: number | null; onOpenTimeout?: OpenTimeoutAction }): { openTimeoutMs: number | null; onOpenTimeout: OpenTimeoutAction | null } {
  const ms = job.open && job.openTimeoutMs ? job.openTimeoutMs : null;
  return { openTimeoutMs: ms, onOpenTimeout: ms === null ? null : job.onOpenTimeout ?? 'cancel' };
}

/** The error a task of a job cancelled by its open timeout carries. */
export function openTimeoutError(jobId: string, openTimeoutMs: number): TaskError {
  return taskError('CC_ERR_CANCELLED', `job ${jobId} was cancelled: it was open and got no part and no seal for ${describeAmount(openTimeoutMs, 'ms')} (its openTimeout)`,
    { retryable: false, reason: 'open_timeout' });
}

/** The error a task of a job past its deadline carries. */
export function deadlineError(jobId: string, deadline: number): TaskError {
  return taskError('CC_ERR_DEADLINE', `job ${jobId} passed its deadline ${new Date(deadline).toISOString()} before this task finished`,
    { retryable: false, reason: 'deadline' });
}
/** A schedules row (joined with its last job's state as `last_job_state`) as a record. */
export function scheduleFromRow(r: Row): ScheduleRecord {
  return {
    id: r.id, owner: r.owner ?? null, name: r.name ?? null, cron: r.cron ?? null, everyMs: r.every_ms ?? null, timezone: r.timezone,
    job: JSON.parse(r.job) as ScheduleRecord['job'], overlap: r.overlap, windowMs: r.window_ms, policy: r.catch_up, jitterMs: r.jitter_ms,
    paused: bool(r.paused), pauseNote: r.pause_note ?? null, nextTick: r.next_tick ?? null, dueAt: r.due_at ?? null,
    bufferedTick: r.buffered_tick ?? null, lastJobId: r.last_job_id ?? null, lastJobState: r.last_job_state ?? null,
    version: r.version, createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

/** A schedule_runs row (joined with its job's state as `job_state`) as a record. */
export function scheduleRunFromRow(r: Row): ScheduleRunRecord {
  return { scheduleId: r.schedule_id, tickAt: r.tick_at, firedAt: r.fired_at ?? null, reason: r.reason, outcome: r.outcome, jobId: r.job_id ?? null, jobState: r.job_state ?? null };
}

/** The columns a schedule change sets, by record field. */
export const SCHEDULE_COLUMNS: Record<keyof ScheduleChange, string> = {
  name: 'name', cron: 'cron', everyMs: 'every_ms', timezone: 'timezone', job: 'job', overlap: 'overlap', windowMs: 'window_ms', policy: 'catch_up',
  jitterMs: 'jitter_ms', paused: 'paused', pauseNote: 'pause_note', nextTick: 'next_tick', dueAt: 'due_at', bufferedTick: 'buffered_tick',
};
