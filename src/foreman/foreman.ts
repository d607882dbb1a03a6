/**
 * The foreman: composition root. It opens the store, wires the dispatcher, job events,
 * job service, WebSocket gateway and HTTP API together, and owns their lifecycle.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { pino, type Logger } from 'pino';
import { PROTOCOL_VERSION } from '../protocol/index.ts';
import type { Store } from '../store/store.ts';
import { openStore } from '../store/open-store.ts';
import { Dispatcher } from './dispatch/dispatcher.ts';
import { JobEvents } from './job-events.ts';
import { JobService } from './job-service.ts';
import { ForemanMetrics } from './foreman-metrics.ts';
import { WsGateway } from './ws/ws-gateway.ts';
import { LivenessMonitor } from './maintenance/liveness-monitor.ts';
import { makeErrorHandler } from './http/http-errors.ts';
import { registerApiRoutes } from './http/api-routes.ts';
import { registerTaskRoutes } from './http/task-routes.ts';
import { registerHealthRoutes } from './http/health-routes.ts';
import { registerStatusPage } from './http/status-page.ts';

const MiB = 1024 * 1024;

export interface ForemanOptions {
  /** HTTP and WebSocket port. 0 picks a free one. Default 8000. */
  port?: number;
  /** Interface to listen on. Default 0.0.0.0 (workers come from other machines). */
  host?: string;
  /** `sqlite:./crowdcompute.db` (default), `sqlite::memory:`, `postgres://…[?schema=name]`. Ignored when `store` is given. */
  database?: string;
  /** A store opened by the caller (tests); the foreman closes it on stop only if it opened it. */
  store?: Store;
  /** Stable id of this foreman; random if omitted. */
  foremanId?: string;
  /** How often workers send heartbeats. Default 5 s. */
  heartbeatIntervalMs?: number;
  /** How long an assignment is held without a heartbeat. Default 30 s. */
  leaseTtlMs?: number;
  /** Largest WebSocket frame, HTTP body and task input or result accepted. Default 8 MiB. */
  maxPayloadBytes?: number;
  /** Most arguments in a map job, or tasks in a job. Default 100,000. */
  maxArgs?: number;
  /** Deadline of a task submitted without timeoutMs. Default 300 s (seed 001's TASK_TIMEOUT). */
  defaultTimeoutMs?: number;
  /** Attempts a task may lose to vanished workers before it fails with CC_ERR_WORKER_LOST. Default 5. */
  maxLostAttempts?: number;
  /** How long an idempotency key returns the same job. Default 1 h (FlowKit's dedup_ttl_ms). */
  idempotencyTtlMs?: number;
  /** Sustained WebSocket messages per second per connection (bursts twice that). Default 10,000. */
  maxMessagesPerSecond?: number;
  /** Most WebSocket connections at once. Default 10,000. */
  maxConnections?: number;
  /** A connection over its rate limit for this long is closed. Default 5 s. */
  floodCloseAfterMs?: number;
  /** How often idle workers look for work nobody announced (retries coming due). Default 1 s. */
  sweepIntervalMs?: number;
  /** A pino logger, or a level for the default one (stderr). Default 'info'. */
  logger?: Logger;
  logLevel?: string;
}

export class Foreman {
  readonly id: string;
  readonly log: Logger;
  readonly metrics = new ForemanMetrics();
  store!: Store;
  dispatcher!: Dispatcher;
  events!: JobEvents;
  jobs!: JobService;
  private gateway!: WsGateway;
  /** @internal exposed for tests that drive the checks directly */
  liveness!: LivenessMonitor;
  private app!: FastifyInstance;
  private ownsStore = false;
  private unlisten: (() => Promise<void>) | null = null;
  private recheckTimer: NodeJS.Timeout | null = null;
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  private stopPromise: Promise<void> | null = null;
  private readonly options: Required<Omit<ForemanOptions, 'store' | 'logger' | 'logLevel' | 'foremanId'>>;
  private readonly injectedStore: Store | undefined;
  private boundPort = 0;

  constructor(options: ForemanOptions = {}) {
    this.id = options.foremanId ?? `foreman-${randomUUID().slice(0, 8)}`;
    this.log = (options.logger ?? pino({ level: options.logLevel ?? 'info' }, pino.destination(2))).child({ foremanId: this.id });
    this.injectedStore = options.store;
    this.options = {
      port: options.port ?? 8000,
      host: options.host ?? '0.0.0.0',
      database: options.database ?? 'sqlite:./crowdcompute.db',
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 5_000,
      leaseTtlMs: options.leaseTtlMs ?? 30_000,
      maxPayloadBytes: options.maxPayloadBytes ?? 8 * MiB,
      maxArgs: options.maxArgs ?? 100_000,
      defaultTimeoutMs: options.defaultTimeoutMs ?? 300_000,
      maxLostAttempts: options.maxLostAttempts ?? 5,
      idempotencyTtlMs: options.idempotencyTtlMs ?? 3_600_000,
      maxMessagesPerSecond: options.maxMessagesPerSecond ?? 10_000,
      maxConnections: options.maxConnections ?? 10_000,
      floodCloseAfterMs: options.floodCloseAfterMs ?? 5_000,
      sweepIntervalMs: options.sweepIntervalMs ?? 1_000,
    };
  }

  /** The HTTP base URL, e.g. http://127.0.0.1:8000. */
  get url(): string {
    const host = this.options.host === '0.0.0.0' || this.options.host === '::' ? '127.0.0.1' : this.options.host;
    return `http://${host}:${this.boundPort}`;
  }

  /** The WebSocket URL workers and clients connect to. */
  get wsUrl(): string { return `${this.url.replace(/^http/, 'ws')}/ws`; }
  get port(): number { return this.boundPort; }

  async start(): Promise<this> {
    if (this.state !== 'new') return this;
    this.state = 'starting';
    const o = this.options;
    if (this.injectedStore) this.store = this.injectedStore;
    else { this.store = await openStore(o.database, { instanceId: this.id }); this.ownsStore = true; }

    this.events = new JobEvents(this.store, this.log, Math.floor(o.maxPayloadBytes / 2));
    this.dispatcher = new Dispatcher(this.store, this.events, this.metrics, this.log,
      { leaseTtlMs: o.leaseTtlMs, sweepIntervalMs: o.sweepIntervalMs, maxLostAttempts: o.maxLostAttempts });
    this.jobs = new JobService({ store: this.store, dispatcher: this.dispatcher, events: this.events, metrics: this.metrics, log: this.log },
      { maxPayloadBytes: o.maxPayloadBytes, maxArgs: o.maxArgs, maxTasksPerJob: o.maxArgs, defaultTimeoutMs: o.defaultTimeoutMs, idempotencyTtlMs: o.idempotencyTtlMs });
    this.gateway = new WsGateway(
      { store: this.store, dispatcher: this.dispatcher, events: this.events, jobs: this.jobs, metrics: this.metrics, log: this.log },
      { foremanId: this.id, path: '/ws', maxPayloadBytes: o.maxPayloadBytes, heartbeatIntervalMs: o.heartbeatIntervalMs, leaseTtlMs: o.leaseTtlMs,
        maxMessagesPerSecond: o.maxMessagesPerSecond, maxConnections: o.maxConnections, floodCloseAfterMs: o.floodCloseAfterMs, maxBufferedBytes: Math.max(64 * MiB, 4 * o.maxPayloadBytes) },
    );
    this.liveness = new LivenessMonitor(
      { store: this.store, dispatcher: this.dispatcher, events: this.events, gateway: this.gateway, metrics: this.metrics, log: this.log },
      { intervalMs: Math.max(50, Math.min(o.heartbeatIntervalMs, o.leaseTtlMs / 3)), leaseTtlMs: o.leaseTtlMs, defaultTimeoutMs: o.defaultTimeoutMs, maxLostAttempts: o.maxLostAttempts },
    );

    const app = Fastify({ logger: false, bodyLimit: o.maxPayloadBytes });
    this.app = app;
    // Bodies are validated by zod in the handlers, so REST and WebSocket share one set of
    // rules and error codes; the JSON schemas on routes are for the OpenAPI document.
    app.setValidatorCompiler(() => (data) => ({ value: data }));
    app.setErrorHandler(makeErrorHandler(this.log, o.maxPayloadBytes));
    await app.register(swagger, {
      openapi: {
        info: { title: 'CrowdCompute foreman', version: PROTOCOL_VERSION, description: 'Jobs, tasks and workers. Workers and clients also connect over WebSocket at /ws (see docs/protocol.md).' },
        tags: [{ name: 'jobs' }, { name: 'tasks' }, { name: 'workers' }, { name: 'system' }],
      },
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
    const startedAt = Date.now();
    registerApiRoutes(app, { store: this.store, dispatcher: this.dispatcher, jobs: this.jobs, startedAt });
    registerTaskRoutes(app, { store: this.store, jobs: this.jobs });
    registerHealthRoutes(app, { store: this.store, dispatcher: this.dispatcher, metrics: this.metrics, isStopping: () => this.state === 'stopping' });
    registerStatusPage(app);
    this.gateway.attach(app.server);

    await app.listen({ port: o.port, host: o.host });
    this.boundPort = (app.server.address() as AddressInfo).port;
    this.dispatcher.start();
    this.liveness.start();
    if (this.store.listen) {
      // Other foremen on the same database: their new work wakes our workers, their commits
      // reach our clients, their cancellations reach our workers.
      this.unlisten = await this.store.listen({
        onWork: () => this.dispatcher.announceWork(),
        onJobChange: (change) => this.events.publish([change]),
        onCancel: (t) => {
          const s = t.workerId ? this.dispatcher.sessions.get(t.workerId) : undefined;
          s?.conn.send({ type: 'cancel_task', taskId: t.taskId, attempt: t.attempt, reason: t.reason });
        },
      });
      this.recheckTimer = setInterval(() => void this.events.recheckWatched().catch((err) => this.log.warn({ err }, 'recheck of watched jobs failed')), 3_000);
      this.recheckTimer.unref();
    }
    this.state = 'running';
    this.log.info({ url: this.url, ws: this.wsUrl, database: this.ownsStore ? o.database.replace(/\/\/[^@]*@/, '//***@') : this.store.driver }, 'foreman listening');
    return this;
  }

  /**
   * Stop accepting, commit the results that have arrived, close every socket (workers
   * reconnect elsewhere or later), close the store. Safe to call twice and before start.
   */
  stop(): Promise<void> {
    if (this.state === 'new') { this.state = 'stopped'; return Promise.resolve(); }
    this.stopPromise ??= (async () => {
      this.state = 'stopping';
      this.gateway.stopAccepting();
      this.liveness.stop();
      if (this.recheckTimer) clearInterval(this.recheckTimer);
      await this.unlisten?.();
      await this.dispatcher.stop();
      await this.gateway.closeAll();
      this.events.stop();
      await this.app.close();
      if (this.ownsStore) await this.store.close();
      this.state = 'stopped';
      this.log.info('foreman stopped');
    })();
    return this.stopPromise;
  }
}

/** Create and start a foreman. */
export async function startForeman(options: ForemanOptions = {}): Promise<Foreman> {
  return new Foreman(options).start();
}
