/**
 * The worker's Prometheus metrics (`GET /metrics/prometheus` on its status server), on a
 * registry of its own: several workers can share a process (tests, an embedding app) without
 * their numbers mixing. Counts that the worker already keeps (tasks finished, connects) are read
 * from its stats at scrape time, so they always agree with `GET /stats`; execution times are
 * observed as tasks finish.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { WorkerStatusSource } from './status-source.ts';

/** Distinct task types the execution-time histogram labels by name; later ones count as `other`. */
export const MAX_TYPE_LABELS = 50;

/** Execution time buckets, seconds: from quick handlers to long map chunks. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];

/** A worker's Prometheus registry; `close()` stops listening to the worker. */
export class WorkerMetrics {
  /** The registry `GET /metrics/prometheus` serializes. */
  readonly registry = new Registry();
  private readonly worker: WorkerStatusSource;
  private readonly duration: Histogram<'type'>;
  private readonly types = new Set<string>();
  private readonly onFinished: (outcome: { durationMs?: number }, task?: { type?: string }) => void;

  constructor(worker: WorkerStatusSource) {
    this.worker = worker;
    const registers = [this.registry];
    const w = worker;
    // A counter read from the worker's own count at scrape time.
    const mirrored = (name: string, help: string, read: () => number) => new Counter({
      name, help, registers,
      collect() { this.reset(); this.inc(read()); },
    });
    mirrored('crowdcompute_worker_tasks_completed_total', 'Tasks this worker completed', () => w.stats.tasksCompleted);
    mirrored('crowdcompute_worker_tasks_failed_total', 'Tasks this worker finished as failed (errors, timeouts)', () => w.stats.tasksFailed);
    mirrored('crowdcompute_worker_tasks_cancelled_total', 'Tasks this worker stopped because they were cancelled', () => w.stats.tasksCancelled);
    mirrored('crowdcompute_worker_reconnects_total', 'Times the foreman accepted this worker again after its first connection', () => Math.max(0, w.stats.connects - 1));
    new Gauge({ name: 'crowdcompute_worker_running_tasks', help: 'Tasks running on this worker now', registers, collect() { this.set(w.runningTasks.length); } });
    new Gauge({ name: 'crowdcompute_worker_capacity', help: 'Tasks this worker runs at once at most', registers, collect() { this.set(w.capacity); } });
    new Gauge({ name: 'crowdcompute_worker_connected', help: '1 while a foreman has accepted this worker, else 0', registers, collect() { this.set(w.connected ? 1 : 0); } });
    new Gauge({
      name: 'crowdcompute_worker_info', help: 'Always 1; its label names the worker', labelNames: ['worker_id'], registers,
      collect() { this.reset(); this.set({ worker_id: w.workerId }, 1); },
    });
    this.duration = new Histogram({
      name: 'crowdcompute_worker_task_duration_seconds',
      help: `Execution time of finished tasks by task type (after ${MAX_TYPE_LABELS} distinct types, further ones count as "other")`,
      labelNames: ['type'], buckets: DURATION_BUCKETS, registers,
    });
    collectDefaultMetrics({ register: this.registry });
    this.onFinished = (outcome, task) => this.observe(task?.type ?? 'unknown', outcome.durationMs ?? 0);
    worker.on('taskFinished', this.onFinished);
  }

  /** Count one finished task of `type` that ran `durationMs`. */
  observe(type: string, durationMs: number): void {
    // Task types come from submitters; a label per type without a cap would let them grow the
    // worker's memory and every scrape without bound.
    if (!this.types.has(type) && this.types.size < MAX_TYPE_LABELS) this.types.add(type);
    this.duration.observe({ type: this.types.has(type) ? type : 'other' }, durationMs / 1000);
  }

  /** The metrics as Prometheus text. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The content type of {@link text}. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Stop observing the worker. */
  close(): void {
    this.worker.off('taskFinished', this.onFinished);
  }
}
