/**
 * Everything the worker page shows, in one JSON object: what `/ws` pushes as
 * `{type: 'status', data}`. Field names follow the status server's JSON (snake_case, times as
 * ISO strings, durations in seconds).
 */
import { cpus, freemem, totalmem } from 'node:os';
import type { HostUsage } from '../../host/host-usage.ts';
import type { WorkerStatusSource } from './status-source.ts';

const seconds = (ms: number) => Math.round(ms) / 1000;
const iso = (ms: number) => new Date(ms).toISOString();

/** Task counts and times, as GET /stats and the page show them. */
export function taskStats(s: WorkerStatusSource['stats']) {
  const finished = s.tasksCompleted + s.tasksFailed + s.tasksCancelled;
  return {
    tasks_completed: s.tasksCompleted,
    tasks_failed: s.tasksFailed,
    tasks_cancelled: s.tasksCancelled,
    total_execution_time: seconds(s.totalExecutionTimeMs),
    average_execution_time: finished === 0 ? 0 : seconds(s.totalExecutionTimeMs / finished),
  };
}

/** The page's data for `w` now; `usage` measures CPU since its previous call. */
export function statusSnapshot(w: WorkerStatusSource, usage: HostUsage, now = Date.now()) {
  const s = w.stats;
  const history = w.connectionHistory.list();
  const t = w.throughput.series(now);
  const mem = process.memoryUsage();
  return {
    worker_id: w.workerId,
    status: w.status,
    now: iso(now),
    connection: {
      connected: w.connected,
      foreman_url: w.foremanUrl,
      foreman_id: history.find((e) => e.kind === 'connected')?.foremanId ?? null,
      connects: s.connects,
      reconnects: Math.max(0, s.connects - 1),
      history: history.map((e) => ({
        at: iso(e.at), kind: e.kind, url: e.url, reason: e.reason ?? null, code: e.code ?? null,
        foreman_id: e.foremanId ?? null, count: e.count ?? 1,
      })),
    },
    config: { max_concurrent_tasks: w.capacity, allow_code: w.allowCode, patterns: w.patterns },
    running_tasks: w.runningTasks.map((r) => ({
      task_id: r.taskId, job_id: r.jobId, type: r.type, attempt: r.attempt, started_at: iso(r.startedAt),
      progress: r.progress ?? null, progress_message: r.progressMessage ?? null,
    })),
    stats: {
      ...taskStats(s),
      started_at: iso(s.startedAt),
      uptime_seconds: seconds(now - s.startedAt),
    },
    throughput: {
      bucket_seconds: t.bucketMs / 1000,
      times: t.times.map((ms) => ms / 1000),
      completed: t.completed,
      failed: t.failed,
    },
    host: {
      cpu_percent: usage.cpuPercent(),
      memory_percent: usage.memoryPercent(),
      cpu_cores: cpus().length,
      memory_total_bytes: totalmem(),
      memory_free_bytes: freemem(),
      process_rss_bytes: mem.rss,
      process_heap_used_bytes: mem.heapUsed,
    },
  };
}

/** The shape of {@link statusSnapshot}'s result. */
export type StatusSnapshot = ReturnType<typeof statusSnapshot>;
