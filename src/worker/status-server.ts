import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import { cpus, totalmem } from 'node:os';
import Fastify, { type FastifyInstance } from 'fastify';
import { HostUsage } from '../host/host-usage.ts';
import { pageShell, registerUiAssets } from '../host/ui-assets.ts';
import { registerPageHeaders } from '../host/page-headers.ts';
import type { WorkerStatusSource } from './status/status-source.ts';
import { prefersHtml } from './status/accept.ts';
import { WorkerMetrics } from './status/worker-metrics.ts';
import { LiveFeed } from './status/live-feed.ts';
import { statusSnapshot, taskStats } from './status/status-snapshot.ts';
import { hostRefusal, statusHostNames } from './status/host-names.ts';

export type { WorkerStatusSource } from './status/status-source.ts';

/** When the port asked for is taken, how many following ports the status server tries. */
export const STATUS_PORT_FALLBACKS = 20;

/** Text for an HTML text node or attribute: the page's title is the only data in its shell. */
const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Where the status server listens and whom it answers. */
export interface WorkerStatusServerOptions {
  /** The port asked for (0 = any free one). */
  port: number;
  /** The interface it listens on. */
  host: string;
  /** POST /restart needs it as a bearer token; null turns POST /restart off. */
  restartToken: string | null;
  /** Host names it answers to besides localhost, IP addresses, the machine's hostname and `host`. */
  hostNames?: readonly string[];
}

/**
 * The worker's own HTTP server (default port 8001 from the CLI): `GET /` (who it is, what it
 * runs, as JSON; to a browser, a live page fed by `/ws`), `GET /stats`, `POST /restart` (drop
 * and reopen the foreman connection), `GET /health` and `GET /metrics` with the fields
 * task-service health checks read, and `GET /metrics/prometheus`.
 *
 * When its port is taken (a second worker on the same machine), it takes the next free one of
 * the {@link STATUS_PORT_FALLBACKS} after it; `port` says which.
 *
 * It has no login, so it answers only requests sent to one of its own host names (see
 * status/host-names.ts: a page on a rebound DNS name is refused, on HTTP and on /ws), and its
 * page carries the same security headers as the foreman's.
 */
export class WorkerStatusServer {
  private app: FastifyInstance | null = null;
  private starting: Promise<void> | null = null;
  private readonly worker: WorkerStatusSource;
  private readonly options: WorkerStatusServerOptions;
  private readonly usage = new HostUsage();
  private readonly metrics: WorkerMetrics;
  private readonly feed: LiveFeed;
  /** The port it listens on, once started. */
  port = 0;
  /** Ports found taken before `port` (empty when it got the one asked for). */
  readonly takenPorts: number[] = [];

  constructor(worker: WorkerStatusSource, options: WorkerStatusServerOptions) {
    this.worker = worker;
    this.options = options;
    this.metrics = new WorkerMetrics(worker);
    // Its own CPU sampler: /health's measures between health checks, this one between pushes.
    const feedUsage = new HostUsage();
    this.feed = new LiveFeed(() => statusSnapshot(worker, feedUsage));
  }

  /** The prom-client registry behind `GET /metrics/prometheus`. */
  get registry(): WorkerMetrics['registry'] { return this.metrics.registry; }

  /**
   * Listen on the port asked for or, when it is taken, on the first free one of the next
   * {@link STATUS_PORT_FALLBACKS}. Port 0 takes any free port. Safe to call twice; a server
   * once stopped stays stopped (a worker is not started twice either).
   */
  start(): Promise<void> {
    this.starting ??= this.listen();
    return this.starting;
  }

  private async listen(): Promise<void> {
    const { port: wanted, host } = this.options;
    const last = wanted === 0 ? 0 : Math.min(65535, wanted + STATUS_PORT_FALLBACKS);
    for (let port = wanted; ; port++) {
      const app = await this.build();
      try {
        await app.listen({ port, host });
        this.app = app;
        this.port = (app.server.address() as AddressInfo).port;
        return;
      } catch (err) {
        await app.close().catch(() => undefined);
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
        this.takenPorts.push(port);
        if (port >= last) {
          const which = wanted === last ? `port ${wanted}` : `ports ${wanted} to ${last}`;
          throw new Error(`worker status server: ${which} on ${host} ${wanted === last ? 'is' : 'are all'} in use; stop what holds them, choose another with --status-port <port> (statusPort; 0 = any free port), or turn the server off with --no-status (statusPort: false)`);
        }
      }
    }
  }

  /** A Fastify instance with every route, not yet listening (one per port tried). */
  private async build(): Promise<FastifyInstance> {
    const w = this.worker;
    const app = Fastify();
    const seconds = (ms: number) => Math.round(ms) / 1000;
    const names = statusHostNames(this.options.host, this.options.hostNames);
    registerPageHeaders(app);
    app.addHook('onRequest', async (req, reply) => {
      const refused = hostRefusal(req.headers.host, names);
      if (refused) return reply.code(403).send({ code: 'CC_ERR_FORBIDDEN', message: refused, detail: 'unknown host name' });
    });
    await registerUiAssets(app);
    this.feed.attach(app.server, { refusal: (req) => hostRefusal(req.headers.host, names) });

    app.get('/', async (req, reply) => {
      // Browsers get the page, everyone else the JSON they always got; caches must keep both.
      reply.header('vary', 'Accept');
      if (prefersHtml(req.headers.accept)) {
        reply.type('text/html; charset=utf-8');
        return pageShell(escapeHtml(`CrowdCompute worker ${w.workerId}`), '/ui/worker.js', '\n<link rel="stylesheet" href="/ui/vendor/uplot.css">\n<link rel="stylesheet" href="/ui/worker.css">');
      }
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
      return {
        worker_id: w.workerId,
        stats: {
          ...taskStats(s),
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

    app.get('/metrics/prometheus', async (_req, reply) => {
      reply.type(this.metrics.contentType);
      return this.metrics.text();
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

    return app;
  }

  /** Stop listening (closing the page's live connections). Safe to call twice. */
  async stop(): Promise<void> {
    await this.starting?.catch(() => undefined);
    const app = this.app;
    this.app = null;
    this.feed.close();
    this.metrics.close();
    await app?.close();
  }
}
