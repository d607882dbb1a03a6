import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { cpus, totalmem } from 'node:os';
import Fastify, { type FastifyInstance } from 'fastify';
import { HostUsage } from '../host/host-usage.ts';
import type { WorkerStats, WorkerStatus } from './runtime/worker-runtime.ts';
import type { RunningTaskInfo } from './runtime/task-runner.ts';

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
  restart(): void;
}

/**
 * The worker's own HTTP server (default port 8001 from the CLI): `GET /` (who it is, what it
 * runs), `GET /stats`, `POST /restart` (drop and reopen the foreman connection), and
 * `GET /health` and `GET /metrics` with the fields task-service health checks read.
 */
export class WorkerStatusServer {
  private app: FastifyInstance | null = null;
  private readonly worker: WorkerStatusSource;
  private readonly options: { port: number; host: string; restartToken: string | null };
  private readonly usage = new HostUsage();
  /** The port it listens on, once started. */
  port = 0;

  /** `restartToken`: POST /restart needs it as a bearer token; null turns POST /restart off. */
  constructor(worker: WorkerStatusSource, options: { port: number; host: string; restartToken: string | null }) {
    this.worker = worker;
    this.options = options;
  }

  /** Listen. Safe to call twice. */
  async start(): Promise<void> {
    if (this.app) return;
    const w = this.worker;
    const app = Fastify();
    this.app = app;
    const seconds = (ms: number) => Math.round(ms) / 1000;

    app.get('/', async () => {
      const running = w.runningTasks;
      return {
        worker_id: w.workerId,
        status: w.status,
        connected: w.connected,
        current_task: running[0]?.taskId ?? null,
        running_tasks: running.map((r) => ({ task_id: r.taskId, job_id: r.jobId, type: r.type, attempt: r.attempt, started_at: new Date(r.startedAt).toISOString() })),
        foreman_url: w.foremanUrl,
        config: { max_concurrent_tasks: w.capacity, allow_code: w.allowCode, patterns: w.patterns },
      };
    });

    app.get('/stats', async () => {
      const s = w.stats;
      const finished = s.tasksCompleted + s.tasksFailed + s.tasksCancelled;
      return {
        worker_id: w.workerId,
        stats: {
          tasks_completed: s.tasksCompleted,
          tasks_failed: s.tasksFailed,
          tasks_cancelled: s.tasksCancelled,
          total_execution_time: seconds(s.totalExecutionTimeMs),
          average_execution_time: finished === 0 ? 0 : seconds(s.totalExecutionTimeMs / finished),
          active_tasks: w.runningTasks.length,
          connects: s.connects,
          uptime_seconds: seconds(Date.now() - s.startedAt),
        },
      };
    });

    app.post('/restart', async (req, reply) => {
      const expected = this.options.restartToken;
      if (expected === null) {
        reply.status(403);
        return { code: 'CC_ERR_FORBIDDEN', message: 'CC_ERR_FORBIDDEN: POST /restart is off: this worker has no token to check callers against', detail: 'restart is off' };
      }
      const given = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
      const a = Buffer.from(given);
      const b = Buffer.from(expected);
      if (a.length !== b.length || !timingSafeEqual(a, b)) {
        reply.status(401);
        return { code: 'CC_ERR_UNAUTHORIZED', message: "CC_ERR_UNAUTHORIZED: POST /restart needs this worker's own token: Authorization: Bearer <worker token>", detail: 'unauthorized' };
      }
      w.restart();
      return { status: 'restarting', worker_id: w.workerId };
    });

    app.get('/health', async (_req, reply) => {
      const healthy = w.connected;
      reply.status(healthy ? 200 : 503);
      return {
        status: healthy ? 'healthy' : 'disconnected',
        active_tasks: w.runningTasks.length,
        // Tasks are pushed by the foreman only up to free capacity, so nothing waits locally.
        queue_size: 0,
        cpu_percent: this.usage.cpuPercent(),
        memory_percent: this.usage.memoryPercent(),
        timestamp: new Date().toISOString(),
      };
    });

    app.get('/metrics', async () => {
      const s = w.stats;
      const finished = s.tasksCompleted + s.tasksFailed + s.tasksCancelled;
      return {
        tasks_completed: s.tasksCompleted,
        tasks_failed: s.tasksFailed,
        tasks_queued: 0,
        average_execution_time: finished === 0 ? 0 : seconds(s.totalExecutionTimeMs / finished),
        uptime_seconds: seconds(Date.now() - s.startedAt),
        cpu_cores: cpus().length,
        memory_total_gb: Math.round((totalmem() / 1024 ** 3) * 100) / 100,
      };
    });

    await app.listen({ port: this.options.port, host: this.options.host });
    this.port = (app.server.address() as AddressInfo).port;
  }

  /** Stop listening. Safe to call twice. */
  async stop(): Promise<void> {
    const app = this.app;
    this.app = null;
    await app?.close();
  }
}
