/**
 * The foreman: composition root. It opens the store, builds the parts (job events, worker
 * registry, dispatcher, job service, WebSocket transport and message handlers, maintenance
 * services, HTTP API), wires them, and owns their lifecycle: services start in order and
 * stop in reverse.
 */
/// <reference types="node" preserve="true" />
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { pino, type Logger } from 'pino';
import { PROTOCOL_VERSION, isWorkerMessage } from '../protocol/index.ts';
import type { Store } from '../store/store.ts';
import { openStore } from '../store/open-store.ts';
import { resolveForemanOptions, type ForemanOptions, type ResolvedForemanOptions } from './foreman-options.ts';
import { ForemanMetrics } from './foreman-metrics.ts';
import { PeriodicService, type Service } from './service.ts';
import { Dispatcher } from './dispatch/dispatcher.ts';
import { JobEvents } from './jobs/job-events.ts';
import { JobService } from './jobs/job-service.ts';
import { WorkerRegistry } from './workers/worker-registry.ts';
import { WsTransport } from './ws/ws-transport.ts';
import { WorkerMessages } from './ws/worker-messages.ts';
import { ClientMessages } from './ws/client-messages.ts';
import { LeaseReaper } from './maintenance/lease-reaper.ts';
import { StoreListener } from './store-listener.ts';
import { makeErrorHandler } from './http/http-errors.ts';
import { registerApiRoutes } from './http/api-routes.ts';
import { registerTaskRoutes } from './http/task-routes.ts';
import { registerHealthRoutes } from './http/health-routes.ts';
import { registerStatusPage } from './http/status-page.ts';

const MiB = 1024 * 1024;

/** The parts of a running foreman. */
interface Parts {
  store: Store;
  transport: WsTransport;
  app: FastifyInstance;
  /** In start order; stopped in reverse. */
  services: Service[];
}

/**
 * A foreman: accepts jobs, splits them into tasks, pushes tasks to the workers connected to
 * it over WebSocket, records every result once, and serves the REST API, the status page
 * and metrics on one port.
 */
export class Foreman {
  /** This foreman's id (in logs, in the store's worker rows, in welcome messages). */
  readonly id: string;
  /** The foreman's logger. */
  readonly log: Logger;
  private readonly metrics = new ForemanMetrics();
  private readonly options: ResolvedForemanOptions;
  private readonly injectedStore: Store | undefined;
  private parts: Parts | null = null;
  private ownsStore = false;
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  private stopPromise: Promise<void> | null = null;
  private boundPort = 0;

  constructor(options: ForemanOptions = {}) {
    this.id = options.foremanId ?? `foreman-${randomUUID().slice(0, 8)}`;
    this.options = resolveForemanOptions(options);
    this.log = (options.logger ?? pino({ level: this.options.logLevel }, pino.destination(2))).child({ foremanId: this.id });
    this.injectedStore = options.store;
  }

  /** The HTTP base URL, e.g. http://127.0.0.1:8000. */
  get url(): string {
    const host = this.options.host === '0.0.0.0' || this.options.host === '::' ? '127.0.0.1' : this.options.host;
    return `http://${host}:${this.boundPort}`;
  }

  /** The WebSocket URL workers and clients connect to. */
  get wsUrl(): string { return `${this.url.replace(/^http/, 'ws')}/ws`; }

  /** The port the foreman listens on (the one chosen, when started with port 0). */
  get port(): number { return this.boundPort; }

  /** Open the store, start every service and listen. Resolves once the foreman serves. Safe to call twice. */
  async start(): Promise<this> {
    if (this.state !== 'new') return this;
    this.state = 'starting';
    const o = this.options;
    const log = this.log;
    const metrics = this.metrics;
    const startedAt = Date.now();
    let store: Store;
    if (this.injectedStore) store = this.injectedStore;
    else { store = await openStore(o.database, { instanceId: this.id }); this.ownsStore = true; }

    // The registry and the dispatcher call each other through signals, so neither imports the other.
    let dispatcher: Dispatcher | null = null;
    const workAvailable = () => dispatcher?.announceWork();
    const events = new JobEvents(store, log, Math.floor(o.maxPayloadBytes / 2));
    const registry = new WorkerRegistry({ store, events, metrics, log },
      { foremanId: this.id, leaseTtlMs: o.leaseTtlMs, maxLostAttempts: o.maxLostAttempts, defaultTimeoutMs: o.defaultTimeoutMs },
      { workAvailable, lookAgain: (workerId) => dispatcher?.lookAgain(workerId) });
    dispatcher = new Dispatcher({ store, registry, events, metrics, log }, { leaseTtlMs: o.leaseTtlMs, sweepIntervalMs: o.sweepIntervalMs });
    const jobs = new JobService({ store, registry, events, metrics, log, workAvailable },
      { maxPayloadBytes: o.maxPayloadBytes, maxArgs: o.maxArgs, maxTasksPerJob: o.maxArgs, defaultTimeoutMs: o.defaultTimeoutMs, idempotencyTtlMs: o.idempotencyTtlMs });

    const workerMessages = new WorkerMessages({ store, registry, dispatcher, events, log },
      { foremanId: this.id, heartbeatIntervalMs: o.heartbeatIntervalMs, leaseTtlMs: o.leaseTtlMs, maxPayloadBytes: o.maxPayloadBytes });
    const clientMessages = new ClientMessages({ store, jobs, events });
    const transport: WsTransport = new WsTransport({
      onMessage: (peer, message) => (isWorkerMessage(message) ? workerMessages.handle(peer, message) : clientMessages.handle(peer, message)),
      onClose: async (peer) => {
        events.dropConnection(peer);
        // When this foreman is the one going away, its workers did not fail: they keep their
        // tasks and reclaim them when they reconnect, here or elsewhere.
        await registry.disconnected(peer, { keepAssignments: !transport.isAccepting });
      },
    }, { metrics, log }, {
      path: '/ws', maxPayloadBytes: o.maxPayloadBytes, maxMessagesPerSecond: o.maxMessagesPerSecond, maxConnections: o.maxConnections,
      floodCloseAfterMs: o.floodCloseAfterMs, maxBufferedBytes: Math.max(64 * MiB, 4 * o.maxPayloadBytes),
    });

    const checkEveryMs = Math.max(50, Math.min(o.heartbeatIntervalMs, o.leaseTtlMs / 3));
    const services: Service[] = [
      events,
      // Stopped after the dispatcher, which commits what has arrived before the sockets close.
      transport,
      dispatcher,
      // Cuts peers silent for a lease TTL (sockets that died without a close frame) or that do
      // not read; a cut worker's tasks go back to the queue at once.
      PeriodicService.of('connection reaper', checkEveryMs, log, (now) => transport.pingAndCull(now, o.leaseTtlMs)),
      // Zombies: workers that heartbeat but hold a task past its deadline plus a lease TTL lose it.
      PeriodicService.of('zombie reaper', checkEveryMs, log, (now) => registry.revokeOverdue(now)),
      new LeaseReaper({ store, registry, events, metrics, workAvailable },
        { intervalMs: checkEveryMs, leaseTtlMs: o.leaseTtlMs, maxLostAttempts: o.maxLostAttempts, startedAt }, log),
    ];
    if (store.listen) {
      // Other foremen on the same database: their new work wakes our workers, their commits
      // reach our clients, their cancellations reach our workers.
      services.push(new StoreListener(store, {
        onWork: workAvailable,
        onJobChange: (change) => events.publish([change]),
        onCancel: (t) => registry.stopTask(t.workerId, t, t.reason),
      }),
      // A backstop for a notification lost with a dropped LISTEN connection: watched jobs that
      // finished through another foreman are looked up now and then.
      PeriodicService.of('watched job recheck', 3_000, log, () => events.recheckWatched()));
    }

    const app = Fastify({ logger: false, bodyLimit: o.maxPayloadBytes });
    // Route schemas document the API (OpenAPI); requests are parsed with zod in the handlers,
    // and answers are plain JSON, so neither is reshaped by Fastify.
    app.setValidatorCompiler(() => (data) => ({ value: data }));
    app.setSerializerCompiler(() => (data) => JSON.stringify(data));
    app.setErrorHandler(makeErrorHandler(log, o.maxPayloadBytes));
    await app.register(swagger, {
      openapi: {
        info: { title: 'CrowdCompute foreman', version: PROTOCOL_VERSION, description: 'Jobs, tasks and workers. Workers and clients also connect over WebSocket at /ws (see docs/protocol.md).' },
        tags: [{ name: 'jobs' }, { name: 'tasks' }, { name: 'workers' }, { name: 'system' }],
      },
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
    app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
    registerApiRoutes(app, { store, registry, jobs, startedAt });
    registerTaskRoutes(app, { store, jobs });
    registerHealthRoutes(app, { store, registry, metrics, isStopping: () => this.state === 'stopping' });
    registerStatusPage(app);
    transport.attach(app.server);
    this.parts = { store, transport, app, services };

    await app.listen({ port: o.port, host: o.host });
    this.boundPort = (app.server.address() as AddressInfo).port;
    for (const s of services) await s.start();
    this.state = 'running';
    log.info({ url: this.url, ws: this.wsUrl, database: this.ownsStore ? o.database.replace(/\/\/[^@]*@/, '//***@') : store.driver }, 'foreman listening');
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
      const { store, transport, app, services } = this.parts!;
      transport.stopAccepting();
      for (const s of [...services].reverse()) await s.stop();
      await app.close();
      if (this.ownsStore) await store.close();
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
