/**
 * Records to the REST API's shapes (protocol/rest.ts): snake_case, times as ISO 8601. Each
 * function is typed by its schema, so a field added to one and not the other does not compile.
 * @internal
 */
import type { ArtifactView, JobView, TaskView, WorkerView, AttemptView, WebhookDeliveryView } from '../../protocol/index.ts';
import { parseTraceparent } from '../../protocol/index.ts';
import type { ArtifactRecord, JobRecord, TaskRecord, WebhookDeliveryRecord, WorkerRecord } from '../../store/store.ts';
import { workerKind } from '../workers/worker-registry.ts';
import { BLOCKED_UNTIL } from '../../core/graph.ts';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const isoAlways = (ms: number): string => new Date(ms).toISOString();

/** A job as the REST API shows it; `runningProgress` is what its running tasks' handlers reported (0..1 of the job). */
export function jobView(j: JobRecord, runningProgress = 0): JobView {
  const done = j.counts.completed + j.counts.failed + j.counts.cancelled;
  return {
    id: j.id,
    job_id: j.id,
    kind: j.kind,
    name: j.name,
    language: j.language,
    status: j.state,
    priority: j.priority,
    total_tasks: j.counts.total,
    completed_tasks: j.counts.completed,
    failed_tasks: j.counts.failed,
    cancelled_tasks: j.counts.cancelled,
    progress: j.counts.total === 0 ? 1 : done / j.counts.total,
    arg_count: j.argCount,
    chunk_size: j.chunkSize,
    timeout_ms: j.timeoutMs,
    max_attempts: j.maxAttempts,
    idempotency_key: j.idempotencyKey,
    metadata: j.metadata,
    cancel_requested: j.cancelRequested,
    open: j.open,
    weight: j.weight,
    max_concurrency: j.maxConcurrency,
    created_at: isoAlways(j.createdAt),
    started_at: iso(j.startedAt),
    completed_at: iso(j.completedAt),
    running_progress: runningProgress,
    label: j.label,
    queue_timeout_ms: j.queueTimeoutMs,
    run_at: iso(j.runAt),
    retention_ms: j.retentionMs,
    prune_at: j.completedAt === null || j.retentionMs === null ? null : iso(j.completedAt + j.retentionMs),
    open_timeout_ms: j.openTimeoutMs,
    on_open_timeout: j.onOpenTimeout,
    open_expires_at: iso(j.openExpiresAt),
    closed_by: j.closedBy,
    deadline: iso(j.deadline),
    webhook_url: j.webhookUrl,
    trace_id: j.traceContext ? parseTraceparent(j.traceContext.traceparent)?.traceId ?? null : null,
  };
}

/** A webhook delivery as the REST API shows it. */
export function webhookDeliveryView(d: WebhookDeliveryRecord): WebhookDeliveryView {
  return {
    id: d.id, url: d.url, state: d.state, job_status: d.jobState, attempts: d.attempts,
    next_attempt_at: d.state === 'pending' ? iso(d.nextAttemptAt) : null,
    last_status: d.lastStatus, last_error: d.lastError, created_at: isoAlways(d.createdAt), finished_at: iso(d.finishedAt),
    attempt_log: d.attemptLog.map((a) => ({ attempt: a.attempt, at: isoAlways(a.at), status: a.status, error: a.error, duration_ms: Math.round(a.durationMs) })),
  };
}

/**
 * Every attempt of a task, oldest first: the ones that ended in an error or lost their worker
 * (kept in the task's history), then the current one, if it is running or ended otherwise.
 */
export function attemptsOf(t: TaskRecord): AttemptView[] {
  const out: AttemptView[] = t.attemptErrors.map((e) => ({
    attempt: e.attempt, worker_id: e.workerId,
    // A worker that went away, or handed the task back as it stopped: no failure of the task.
    status: e.error.code === 'CC_ERR_WORKER_LOST' || e.error.reason === 'released' ? 'lost' : 'failed',
    started_at: iso(e.startedAt ?? null), ended_at: isoAlways(e.at),
    duration_ms: e.startedAt ? e.at - e.startedAt : null, error: e.error,
  }));
  const recorded = t.attemptErrors.some((e) => e.attempt === t.attempt);
  if (t.attempt > 0 && !recorded && t.state !== 'queued') {
    const ended = t.state === 'running' ? null : t.completedAt;
    out.push({
      attempt: t.attempt, worker_id: t.workerId, status: t.state === 'running' ? 'running' : t.state === 'completed' ? 'completed' : t.state === 'cancelled' ? 'cancelled' : 'failed',
      started_at: iso(t.startedAt), ended_at: iso(ended), duration_ms: ended !== null && t.startedAt !== null ? ended - t.startedAt : null,
      error: t.state === 'completed' ? null : t.error,
    });
  }
  return out;
}

/** A task as the REST API shows it. */
export function taskView(t: TaskRecord): TaskView {
  return {
    task_id: t.id,
    job_id: t.jobId,
    index: t.index,
    kind: t.kind,
    type: t.type,
    status: t.state,
    priority: t.priority,
    attempt: t.attempt,
    failures: t.failures,
    max_attempts: t.maxAttempts,
    timeout_ms: t.timeoutMs,
    worker_id: t.workerId,
    input: t.input,
    result: t.result,
    error: t.error,
    attempt_errors: t.attemptErrors.map((e) => ({ attempt: e.attempt, worker_id: e.workerId, error: e.error, started_at: iso(e.startedAt ?? null), at: isoAlways(e.at) })),
    attempts: attemptsOf(t),
    progress: t.progress,
    progress_message: t.progressMessage,
    queued_at: isoAlways(t.createdAt),
    started_at: iso(t.startedAt),
    completed_at: iso(t.completedAt),
    lease_expires_at: iso(t.leaseExpiresAt),
    // 0 (at once) and a graph node's "blocked" mark are no times to show.
    available_at: t.availableAt > 0 && t.availableAt < BLOCKED_UNTIL ? iso(t.availableAt) : null,
  };
}

/**
 * A worker as the REST API shows it. `runningTasks` and `seenAt` come from its live session, if
 * it is connected here: the stored last seen is refreshed only now and then (see
 * WorkerRegistry.writeLastSeen), the session's at every heartbeat.
 */
export function workerView(w: WorkerRecord, runningTasks: number, seenAt: number | null = null): WorkerView {
  return {
    worker_id: w.id,
    status: w.state,
    capacity: w.capacity,
    running_tasks: runningTasks,
    patterns: w.patterns,
    allow_code: w.allowCode,
    resources: w.resources,
    version: w.version,
    foreman_id: w.foremanId,
    connected_at: isoAlways(w.connectedAt),
    last_seen_at: isoAlways(w.state === 'online' && seenAt !== null ? Math.max(w.lastSeenAt, seenAt) : w.lastSeenAt),
    disconnected_at: iso(w.disconnectedAt),
    tasks_completed: w.tasksCompleted,
    tasks_failed: w.tasksFailed,
    kind: workerKind(typeof w.resources.runtime === 'string' ? w.resources.runtime : undefined),
    user_agent: typeof w.resources.userAgent === 'string' ? w.resources.userAgent : null,
  };
}

/** An artifact as the REST API shows it. */
export function artifactView(a: ArtifactRecord): ArtifactView {
  return { seq: a.seq, task_id: a.taskId, batch_uid: a.batchUid, data: a.data, size: a.size, attempt: a.attempt, created_at: new Date(a.createdAt).toISOString() };
}
