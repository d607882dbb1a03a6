import type { WorkerStats, WorkerStatus } from '../runtime/worker-runtime.ts';
import type { RunningTaskInfo } from '../runtime/task-runner.ts';
import type { ConnectionEvent, ThroughputSeries } from '../runtime/status-history.ts';

/** What the status server shows and can do: a worker, seen from outside. */
export interface WorkerStatusSource {
  readonly workerId: string;
  readonly status: WorkerStatus;
  readonly connected: boolean;
  readonly runningTasks: RunningTaskInfo[];
  readonly foremanUrl: string;
  readonly capacity: number;
  readonly allowCode: boolean;
  readonly patterns: string[];
  readonly stats: WorkerStats;
  /** Recent connection changes, newest first. */
  readonly connectionHistory: { list(): ConnectionEvent[] };
  /** Tasks finished per time slot, recently. */
  readonly throughput: { series(now?: number): ThroughputSeries };
  restart(): void;
  /** Worker events; the status server listens to `taskFinished` (outcome, then `{type}`). */
  on(event: 'taskFinished', listener: (outcome: { durationMs?: number }, task?: { type?: string }) => void): unknown;
  /** Stop listening. */
  off(event: 'taskFinished', listener: (outcome: { durationMs?: number }, task?: { type?: string }) => void): unknown;
}
