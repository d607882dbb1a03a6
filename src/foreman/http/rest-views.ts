/**
 * How jobs, tasks and workers look in the REST API. Field names are snake_case, as the
 * seed systems document them (`task_id`, `connected_workers`, `started_at`), and times are
 * ISO 8601 strings. The SDK turns them back into camelCase objects.
 */
import type { JobRecord, TaskRecord, WorkerRecord } from '../../store/store.ts';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function jobView(j: JobRecord) {
  const done = j.counts.completed + j.counts.failed + j.counts.cancelled;
  return {
    id: j.id,
    job_id: j.id,
    kind: j.kind,
    name: j.name,
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
    created_at: iso(j.createdAt),
    started_at: iso(j.startedAt),
    completed_at: iso(j.completedAt),
  };
}

export function taskView(t: TaskRecord, opts: { includeInput?: boolean } = {}) {
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
    ...(opts.includeInput === false ? {} : { input: t.input }),
    result: t.result,
    error: t.error,
    /** Every failed or lost attempt, oldest first. */
    attempt_errors: t.attemptErrors.map((e) => ({ attempt: e.attempt, worker_id: e.workerId, error: e.error, at: iso(e.at) })),
    progress: t.progress,
    progress_message: t.progressMessage,
    queued_at: iso(t.createdAt),
    started_at: iso(t.startedAt),
    completed_at: iso(t.completedAt),
    lease_expires_at: iso(t.leaseExpiresAt),
    available_at: iso(t.availableAt),
  };
}

export function workerView(w: WorkerRecord, live?: { runningTasks: number }) {
  return {
    worker_id: w.id,
    status: w.state,
    capacity: w.capacity,
    running_tasks: live?.runningTasks ?? 0,
    patterns: w.patterns,
    allow_code: w.allowCode,
    resources: w.resources,
    version: w.version,
    foreman_id: w.foremanId,
    connected_at: iso(w.connectedAt),
    last_seen_at: iso(w.lastSeenAt),
    disconnected_at: iso(w.disconnectedAt),
    tasks_completed: w.tasksCompleted,
    tasks_failed: w.tasksFailed,
  };
}
