/**
 * The foreman: composition root. It opens the store, builds the parts (job events, worker
 * registry, dispatcher, job service, WebSocket transport and message handlers, maintenance
 * services, HTTP API), wires them, and owns their lifecycle: services start in order and
 * stop in reverse.
 */
/// <reference types="node" preserve="true" />
import { randomUUID } from 'node:crypto';
import type { AddressInfo, Socket } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyListenOptions } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { pino, type Logger } from 'pino';
import { PROTOCOL_VERSION, isWorkerMessage, taskError } from '../protocol/index.ts';
import type { Store } from '../store/store.ts';
import { canonicalDatabaseUrl, openStore } from '../store/open-store.ts';
import { credentialsFile, databaseIdentity, localCredentialsFor, saveLocalCredentials } from '../host/local-credentials.ts';
import { resolveForemanOptions, type ForemanOptions, type ResolvedForemanOptions } from './foreman-options.ts';
import { ForemanMetrics } from './shared/foreman-metrics.ts';
import { PeriodicService, type Service } from './shared/service.ts';
import { Dispatcher } from './dispatch/dispatcher.ts';
import type { WorkAnnouncement } from './shared/work-announcement.ts';
import { JobEvents } from './shared/job-events.ts';
import { JobService } from './jobs/job-service.ts';
import { WorkerRegistry } from './workers/worker-registry.ts';
import { WsTransport } from './ws/ws-transport.ts';
import { WorkerMessages } from './ws/worker-messages.ts';
import { ClientMessages } from './ws/client-messages.ts';
import { LeaseReaper } from './maintenance/lease-reaper.ts';
import { FOREMAN_LEASE_MIN_MS, ForemanLease } from './maintenance/foreman-lease.ts';
import { Pruner } from './maintenance/pruner.ts';
import { QueueDeadlines } from './maintenance/queue-deadlines.ts';
import { TaskReleaser } from './maintenance/task-releaser.ts';
import { EXPIRY_SAFETY_SWEEP_MS, JobExpiry } from './maintenance/job-expiry.ts';
import { StoreListener } from './store-listener.ts';
import { StoreHealth } from './shared/store-health.ts';
import { PortReservation } from './port-reservation.ts';
import { LoopHealth } from './shared/loop-health.ts';
import { CrashBreaker } from './jobs/crash-breaker.ts';
import { makeErrorHandler, notFound } from './http/http-errors.ts';
import { registerJsonBodyParser } from './http/json-body.ts';
import { registerApiRoutes } from './http/api-routes.ts';
import { registerRateLimitRoutes } from './http/rate-limit-routes.ts';
import { formatRate, parseRateLimit } from './shared/rate-limit-spec.ts';
import { registerTaskRoutes } from './http/task-routes.ts';
import { fileLink, registerFileRoutes, type FileLinkSigner } from './http/file-routes.ts';
import { registerHealthRoutes } from './http/health-routes.ts';
import { registerDashboard } from './dashboard/dashboard-routes.ts';
import { registerJoinRoutes } from './http/join-routes.ts';
import { registerKeyRoutes } from './http/key-routes.ts';
import { LiveFeed } from './dashboard/live-feed.ts';
import { ThroughputSeries } from './shared/throughput-series.ts';
import { readStats } from './http/stats-view.ts';
import { registerUiAssets } from '../host/ui-assets.ts';
import { DOCS_CSP, registerPageHeaders } from '../host/page-headers.ts';
import { registerHttpAuth, registerLogin } from './http/http-auth.ts';
import { Authenticator } from './auth/authenticator.ts';
import { CredentialService } from './auth/credential-service.ts';
import { ensureLocalCredentials } from './auth/local-setup.ts';
import { newSecret, webhookSecret } from './auth/secrets.ts';
import { WEBHOOK_MAX_BACKOFF_MS, WEBHOOK_SAFETY_SWEEP_MS, WebhookSender } from './maintenance/webhook-sender.ts';
import { jobView } from './http/rest-views.ts';
import { clientAddresses } from './http/client-address.ts';
import { AddressCap } from './address-cap.ts';
import { Scheduler } from './schedules/scheduler.ts';
import { ScheduleService } from './schedules/schedule-service.ts';
import { registerScheduleRoutes } from './http/schedule-routes.ts';
import { registerFailedRoutes } from './http/failed-routes.ts';
import { FailedTasks } from './jobs/failed-tasks.ts';

const MiB = 1024 * 1024;
/**
 * How often the stored last seen of connected workers is brought up to date: what other
 * foremen (and `crowdcompute workers` through them) see of a worker connected here is at most
 * this old, for one small write a minute instead of one per heartbeat per worker.
 */
const LAST_SEEN_WRITE_MS = 60_000;
/** How often a foreman on PostgreSQL with autovacuum off looks for tables to vacuum (see ForemanOptions.vacuum). */
const VACUUM_CHECK_MS = 10_000;

/** The parts of a running foreman. */
interface Parts {
  store: Store;
  transport: WsTransport;
  app: FastifyInstance;
  scheduler: Scheduler;
  health: StoreHealth;
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
  private readonly clock: () => number;
  /** Releases delayed tasks when they are due (exposed for tests that move the clock). @internal */
  releaser: TaskReleaser | null = null;
  /** Posts job ends to their webhooks (tests may call lookAgain). @internal */
  webhooks: WebhookSender | null = null;
  private parts: Parts | null = null;
  private ownsStore = false;
  private state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new';
  private stopPromise: Promise<void> | null = null;
  private boundPort = 0;
  private local: { apiKey: string; workerToken: string } | null = null;

  constructor(options: ForemanOptions = {}) {
    this.id = options.foremanId ?? `foreman-${randomUUID().slice(0, 8)}`;
    this.options = resolveForemanOptions(options);
    this.log = (options.logger ?? pino({ level: this.options.logLevel }, pino.destination(2))).child({ foremanId: this.id });
    this.injectedStore = options.store;
    this.clock = options.clock ?? Date.now;
  }

  /** The HTTP base URL, e.g. http://127.0.0.1:8000 (https:// with TLS). */
  get url(): string {
    const host = this.options.host === '0.0.0.0' || this.options.host === '::' ? '127.0.0.1' : this.options.host;
    return `${this.options.tls ? 'https' : 'http'}://${host}:${this.boundPort}`;
  }

  /** The WebSocket URL workers and clients connect to. */
  get wsUrl(): string { return `${this.url.replace(/^http/, 'ws')}/ws`; }

  /** The port the foreman listens on (the one chosen, when started with port 0). */
  get port(): number { return this.boundPort; }

  /**
   * The admin API key and the worker token (for any worker id) this foreman keeps for its own
   * machine, also left in the local credentials file; null under --insecure and with
   * `localCredentials: false`.
   */
  get credentials(): { apiKey: string; workerToken: string } | null { return this.local; }

  /**
   * Make the scheduler look at the schedules now (tests that move the clock); resolves when
   * what was due has fired. @internal
   */
  lookAtSchedules(): Promise<void> {
    return this.parts?.scheduler.lookAgain() ?? Promise.resolve();
  }

  /**
   * Take the port, open the store, start every service and listen. Resolves once the foreman
   * serves. Safe to call twice. A port that cannot be taken fails it before the store is opened
   * or the local credentials file written.
   */
  async start(): Promise<this> {
    if (this.state !== 'new') return this;
    this.state = 'starting';
    let reservation: PortReservation;
    try {
      reservation = await PortReservation.take(this.options.port, this.options.host);
    } catch (err) {
      // Nothing was opened: stop() has nothing to do.
      this.state = 'stopped';
      throw err;
    }
    try {
      return await this.startOn(reservation);
    } finally {
      reservation.release();
    }
  }

  private async startOn(reservation: PortReservation): Promise<this> {
    const o = this.options;
    const log = this.log;
    const metrics = this.metrics;
    const startedAt = Date.now();
    // Refused before anything opens: a rate limit or a trusted proxy that does not parse names itself.
    const rateLimits = (o.rateLimits ?? []).map((r) => (typeof r === 'string' ? parseRateLimit(r) : r));
    // Who the client is: the socket's peer, or what a trusted proxy forwards (HTTP and WebSocket alike).
    const addresses = clientAddresses(o.trustedProxies);
    const cap = new AddressCap(o.maxConnectionsPerAddress, { metrics, log });
    const database = this.injectedStore ? null : canonicalDatabaseUrl(o.database);
    // Without the local credentials file there is nowhere to find the secret of a lasting store,
    // nor to keep a new one: refused before anything is opened.
    if (!o.localCredentials && !o.insecure && !o.secret && database) {
      throw new Error('--no-local-credentials (localCredentials: false) needs the deployment\'s secret, since the local credentials file is not read: '
        + 'give it with --secret-file or CROWDCOMPUTE_SECRET (secret in the SDK), the same for every foreman of the database');
    }
    let opened: Store;
    if (this.injectedStore) opened = this.injectedStore;
    else {
      // A failing checkpoint loses nothing, but the WAL then grows until one succeeds: said once a
      // minute at most, not once a second.
      let checkpointWarnedAt = -Infinity;
      const onCheckpointError = (message: string) => {
        if (Date.now() - checkpointWarnedAt < 60_000) return;
        checkpointWarnedAt = Date.now();
        log.warn({ database: 'sqlite' }, `a WAL checkpoint failed (the write-ahead log grows until one succeeds): ${message}`);
      };
      opened = await openStore(o.database, { instanceId: this.id, foremanId: this.id, thread: o.storeThread, onCheckpointError, ...(o.maxDatabaseBytes ? { maxSizeBytes: o.maxDatabaseBytes } : {}) });
      this.ownsStore = true;
    }
    // Every part talks to the store through its health tracker (outages, 503/507, /health).
    const health = new StoreHealth(metrics, log);
    const store = health.watch(opened);
    for (const warning of (await opened.setupWarnings?.()) ?? []) log.warn({ database: opened.driver }, warning);
    for (const l of rateLimits) await store.rateLimitSet(l, Date.now());
    if (rateLimits.length > 0) log.info({ rateLimits: rateLimits.map((l) => `${l.pattern}=${formatRate(l)}`) }, 'rate limits set');

    // Credentials: the deployment's secret, the local admin key and worker token, the authenticator.
    let auth: Authenticator | null = null;
    let transport: WsTransport | null = null;
    let feed: LiveFeed | null = null;
    // The deployment's secret (null under --insecure), and what this foreman leaves for its machine.
    let deploymentSecret: string | null = null;
    let local: { secret: string; apiKey: string; workerToken: string } | null = null;
    let credentialService: CredentialService | null = null;
    if (o.insecure) {
      log.warn({ insecure: true }, 'AUTHENTICATION IS OFF (--insecure): anyone who reaches this port can submit and cancel jobs, read every result, '
        + 'run code on workers that allow it, and connect workers. Use it only on a network you trust.');
    } else {
      let saved = database && o.localCredentials ? localCredentialsFor(database) : undefined;
      let secret = o.secret ?? saved?.secret ?? newSecret();
      let credentials = new CredentialService(store, secret);
      // Foremen of one database starting together on this machine, with no secret given: one
      // sets it up and saves it in the local credentials file; the others read it from there.
      for (let tries = 0; ; tries++) {
        try {
          await credentials.checkSecret({ database: database && databaseIdentity(database), credentialsFile: credentialsFile(),
            source: o.secret ? 'given' : saved ? 'saved' : 'new' });
          break;
        } catch (err) {
          if (o.secret || !database || tries >= 50) throw err;
          await new Promise((r) => setTimeout(r, 100));
          const now = localCredentialsFor(database);
          if (now && now.secret !== secret) {
            saved = now;
            secret = now.secret;
            credentials = new CredentialService(store, secret);
          }
        }
      }
      if (database && !saved && o.localCredentials) saveLocalCredentials({ database, urls: [], secret }, { persist: true });
      deploymentSecret = secret;
      credentialService = credentials;
      auth = new Authenticator({ store, credentials, secret, metrics, log, onRevoked: (ids) => {
        // Sockets and dashboard streams alike: a revoked key sees nothing more.
        const cut = (transport?.closeHolding(ids) ?? 0) + (feed?.closeHolding(ids) ?? 0);
        if (cut > 0) log.warn({ credentialIds: [...ids], connections: cut }, 'revoked credentials: their connections were closed');
      } }, { skewMs: o.authSkewMs, sessionTtlMs: o.sessionTtlMs, failureBurst: o.maxAuthFailuresPerMinute,
        failureRefillMs: 60_000 / o.maxAuthFailuresPerMinute, pollIntervalMs: 1_000 });
      const a = auth;
      // Issued only to be left for the machine: without the file nobody would find them.
      if (o.localCredentials) local = { secret, ...(await ensureLocalCredentials(credentials, saved, (event, fields) => a.audit(event, fields))) };
    }

    // The registry and the dispatcher call each other through signals, so neither imports the other.
    let dispatcher: Dispatcher | null = null;
    // Tasks handed back or retried may be of any type and require resources; a submission says what it holds.
    const workAvailable = (work: WorkAnnouncement = { requiring: true }) => dispatcher?.announceWork(work);
    const events = new JobEvents(store, log, Math.floor(o.maxPayloadBytes / 2));
    const registry = new WorkerRegistry({ store, events, metrics, log },
      { foremanId: this.id, leaseTtlMs: o.leaseTtlMs, maxLostAttempts: o.maxLostAttempts, defaultTimeoutMs: o.defaultTimeoutMs },
      { workAvailable, lookAgain: (workerId) => dispatcher?.lookAgain(workerId) });
    const series = new ThroughputSeries();
    // Download links for the files a task carries: signed with the deployment's secret.
    const fileSigner: FileLinkSigner | null = auth ? { sign: (id, exp) => auth!.signFile(id, exp), verify: (id, exp, sig) => auth!.verifyFile(id, exp, sig) } : null;
    // Whether the loops make progress: /health names one that is stuck or keeps failing.
    const loops = new LoopHealth(metrics, log, { stallMs: o.stallAfterMs });
    // A map job whose function keeps crashing sandboxes fails as a whole (see crash-breaker.ts).
    let jobService: JobService | null = null;
    const breaker = new CrashBreaker(o.maxSandboxCrashes, (jobId, crashes, last) => {
      const error = taskError('CC_ERR_SANDBOX_CRASHED', `job ${jobId} failed: its function took down ${crashes} sandboxes (--max-sandbox-crashes ${o.maxSandboxCrashes}); the last: ${last.slice(0, 300)}`,
        { retryable: false, reason: 'sandbox_crashes' });
      jobService?.failJob(jobId, error).catch((err: unknown) => log.warn({ err, jobId }, 'could not fail a job whose tasks keep crashing their sandboxes'));
    });
    dispatcher = new Dispatcher({ store, registry, events, metrics, log, series, fileLink: (id) => fileLink(id, fileSigner), tracker: loops.track('dispatcher'),
      onFailure: (settled) => breaker.observe(settled) },
      { leaseTtlMs: o.leaseTtlMs, sweepIntervalMs: o.sweepIntervalMs });
    const jobs = new JobService({ store, registry, events, metrics, log, workAvailable },
      { maxPayloadBytes: o.maxPayloadBytes, maxArgs: o.maxArgs, maxTasksPerJob: o.maxArgs, defaultTimeoutMs: o.defaultTimeoutMs, idempotencyTtlMs: o.idempotencyTtlMs,
        defaultRetentionMs: o.retentionMs, defaultQueueTimeoutMs: o.queueTimeoutMs > 0 ? o.queueTimeoutMs : null,
        defaultOpenTimeoutMs: o.openTimeoutMs > 0 ? o.openTimeoutMs : null, webhookHosts: o.webhookHosts });
    jobService = jobs;
    // Delayed tasks: one timer for the earliest, set again by every submission that holds some.
    const releaser = new TaskReleaser({ store, metrics, log, workAvailable: () => workAvailable(), tracker: loops.track('task releaser') },
      { recheckMs: Math.max(1_000, o.sweepIntervalMs * 5), now: this.clock });
    this.releaser = releaser;
    jobs.onDelayed = (at) => releaser.dueAt(at);
    // Open jobs nobody seals and jobs past their deadline: one timer, set to the next time due.
    const expiry = new JobExpiry({ store, registry, events }, { safetySweepMs: EXPIRY_SAFETY_SWEEP_MS, clock: this.clock }, log).watchedBy(loops);
    jobs.onExpiry = (at) => expiry.soon(at);
    // Webhooks: the store writes a delivery with each job end; the sender posts them off the dispatch path.
    const webhooks = new WebhookSender({
      store, metrics, log, tracker: loops.track('webhook sender'), signingSecret: deploymentSecret ? webhookSecret(deploymentSecret) : null,
      jobView: async (jobId) => { const j = await store.jobGet(jobId); return j ? jobView(j) : null; },
    }, { attempts: o.webhookAttempts, backoff: { baseMs: o.webhookBackoffMs, maxMs: Math.max(o.webhookBackoffMs, WEBHOOK_MAX_BACKOFF_MS) },
      timeoutMs: o.webhookTimeoutMs, concurrency: o.webhookConcurrency, safetySweepMs: WEBHOOK_SAFETY_SWEEP_MS, hosts: o.webhookHosts, clock: this.clock });
    this.webhooks = webhooks;
    // A job whose end is known to have written no delivery (most jobs) costs the sender nothing.
    events.onChange((change) => { if (change.finished && change.webhook !== false) webhooks.jobEnded(); });
    // A finished job (here, or through another foreman) takes no more of the workers.
    events.onChange((change) => { if (change.finished) { dispatcher?.jobFinished(change.jobId); breaker.forget(change.jobId); } });
    // A graph whose node failed for good fails as a whole: what is left of it is cancelled.
    events.onChange((change) => {
      if (change.counts.failed > 0 && !change.finished && change.state !== 'failed' && change.state !== 'cancelled' && change.state !== 'completed') {
        jobs.failGraph(change.jobId).catch((err: unknown) => log.warn({ err, jobId: change.jobId }, 'could not cancel the rest of a failed graph'));
      }
    });

    if (auth) {
      jobs.onAdminCancel = (event) => auth.audit('admin_cancel', event);
    }
    // Recurring schedules: one timer for the earliest due, fires written under a guard (see scheduler.ts).
    const clock = this.clock;
    const scheduler = new Scheduler({ store, jobs, events, metrics, log, tracker: loops.track('scheduler') }, { clock });
    const schedules = new ScheduleService({ store, jobs, log, clock, changed: () => void scheduler.lookAgain(), maxPerOwner: o.maxSchedulesPerKey });
    const workerMessages = new WorkerMessages({ store, registry, dispatcher, events, log, auth },
      { foremanId: this.id, heartbeatIntervalMs: o.heartbeatIntervalMs, leaseTtlMs: o.leaseTtlMs, maxPayloadBytes: o.maxPayloadBytes, maxArtifactBytes: o.maxArtifactBytes,
        browserHeartbeatIntervalMs: o.browserHeartbeatIntervalMs, browserLeaseTtlMs: o.browserLeaseTtlMs, maxTasksPerBrowser: o.maxTasksPerBrowser });
    const clientMessages = new ClientMessages({ store, jobs, events });
    transport = new WsTransport({
      authenticate: async (req) => {
        if (!auth) return { principal: { kind: 'insecure' } };
        const who = await auth.fromHttp({ authorization: req.headers.authorization, cookie: req.headers.cookie, address: addresses.of(req) });
        return { principal: who.principal, ...(who.principal.kind === 'key' ? { credentialId: who.principal.keyId } : {}) };
      },
      clientAddress: (req) => addresses.of(req),
      // A direct client's connection was counted when its socket opened; one through a trusted
      // proxy is counted now, against the address the proxy forwards.
      admit: (req) => (addresses.isTrustedProxy(req.socket.remoteAddress ?? '') ? cap.open(addresses.of(req)) : () => {}),
      onMessage: (peer, message) => (isWorkerMessage(message) ? workerMessages.handle(peer, message) : clientMessages.handle(peer, message)),
      onClose: async (peer) => {
        events.dropConnection(peer);
        // When this foreman is the one going away, its workers did not fail: they keep their
        // tasks and reclaim them when they reconnect, here or elsewhere.
        try {
          await registry.disconnected(peer, { keepAssignments: !transport!.isAccepting });
        } catch (err) {
          // The store is out: the worker's tasks stay running there until their leases expire.
          log.warn({ err: (err as Error).message, conn: peer.id }, 'could not put a disconnected worker\'s tasks back now; their leases will');
        }
      },
    }, { metrics, log }, {
      path: '/ws', maxPayloadBytes: o.maxPayloadBytes, maxMessagesPerSecond: o.maxMessagesPerSecond, maxConnections: o.maxConnections,
      maxConnectionsPerAddress: o.maxConnectionsPerAddress, floodCloseAfterMs: o.floodCloseAfterMs, maxBufferedBytes: Math.max(64 * MiB, 4 * o.maxPayloadBytes),
      authenticateWithinMs: auth ? o.authenticateWithinMs : 0,
    });
    const ws = transport;

    const checkEveryMs = Math.max(50, Math.min(o.heartbeatIntervalMs, o.leaseTtlMs / 3));
    // This foreman's lease: while it runs, the store shows its workers online; once it runs out
    // (a foreman killed), any foreman marks them offline.
    const foremanLease = new ForemanLease({ store, registry, health }, { foremanId: this.id, leaseMs: Math.max(o.leaseTtlMs, FOREMAN_LEASE_MIN_MS) }, log).watchedBy(loops);
    feed = new LiveFeed({ store, registry, events, series, log, tracker: loops.track('dashboard feed'),
      stats: () => readStats({ store, registry, startedAt, retentionMs: o.retentionMs, sharing: () => dispatcher!.shares() }) });
    const services: Service[] = [
      // Stopped last: the lease ends once every worker's connection has closed.
      foremanLease,
      ...(auth ? [auth] : []),
      events,
      // Stopped after the dispatcher, which commits what has arrived before the sockets close.
      ws,
      dispatcher,
      // Cuts peers silent for a lease TTL (sockets that died without a close frame) or that do
      // not read; a cut worker's tasks go back to the queue at once.
      PeriodicService.of('connection reaper', checkEveryMs, log, (now) => ws.pingAndCull(now, o.leaseTtlMs)).watchedBy(loops),
      // Zombies: workers that heartbeat but hold a task past its deadline plus a lease TTL lose it.
      PeriodicService.of('zombie reaper', checkEveryMs, log, (now) => registry.revokeOverdue(now)).watchedBy(loops),
      // Heartbeats refresh a worker's last seen in memory (the REST API shows that one); the
      // store gets it once a minute, in one write for every worker heard from meanwhile.
      PeriodicService.of('last seen writer', LAST_SEEN_WRITE_MS, log, () => registry.writeLastSeen()).watchedBy(loops),
      new LeaseReaper({ store, registry, events, metrics, workAvailable, health },
        { intervalMs: checkEveryMs, leaseTtlMs: o.leaseTtlMs, maxLostAttempts: o.maxLostAttempts }, log).watchedBy(loops),
      new Pruner({ store, metrics }, { intervalMs: o.pruneIntervalMs, retentionMs: o.retentionMs }, log).watchedBy(loops),
      new QueueDeadlines({ store, events, metrics }, o.sweepIntervalMs, log).watchedBy(loops),
      releaser,
      expiry,
      webhooks,
      feed,
      scheduler,
      // Not watched by the loops' health: a vacuum of a large table takes as long as it takes,
      // on a connection of its own, and holds up nothing else of the foreman.
      ...(store.vacuumDue && o.vacuum ? [PeriodicService.of('vacuum', VACUUM_CHECK_MS, log, async () => {
        for (const v of await store.vacuumDue!({ threshold: 1_000, fraction: 0.01 })) log.info({ table: v.table, deadRows: v.deadRows, ms: v.ms }, `vacuumed ${v.table}: ${v.deadRows} dead rows (autovacuum is off on this server)`);
      })] : []),
      // A stall is logged when it begins, even while nobody asks /health.
      PeriodicService.of('loop watch', Math.min(5_000, o.stallAfterMs / 2), log, () => { loops.stalls(); }),
    ];
    if (store.listen) {
      // Other foremen on the same database: their new work wakes our workers, their commits
      // reach our clients, their cancellations reach our workers.
      services.push(new StoreListener(store, {
        onWork: (accepted) => workAvailable(accepted
          ? { accepted: [accepted.job], requiring: accepted.requiring, ...(accepted.sendWith ? { sendWith: [{ jobId: accepted.job.jobId, ...accepted.sendWith }] } : {}) }
          : undefined),
        onJobChange: (change) => events.publish([change]),
        onCancel: (t) => registry.stopTask(t.workerId, t, t.reason),
        onCredentials: () => void auth?.checkChanges(),
        onRelease: (at) => releaser.dueAt(at),
        onSchedules: () => void scheduler.lookAgain(),
      }));
    }
    // Watched jobs are looked up now and then: a backstop for a notification lost with a dropped
    // LISTEN connection (several foremen), and how a waiter hears of a job pruned unfinished.
    services.push(PeriodicService.of('watched job recheck', 3_000, log, () => events.recheckWatched()).watchedBy(loops));

    // Slow clients hold nothing for long: headers must arrive within headersTimeoutMs and a whole
    // request within requestTimeoutMs (Node answers 408 and closes), a silent connection is
    // closed after idleTimeoutMs and an idle keep-alive one after keepAliveTimeoutMs. Node looks
    // at the first two every connectionsCheckingInterval (30 s by default): a quarter of the
    // shorter, so that a timeout is enforced within a quarter of itself.
    const timing = {
      headersTimeout: o.headersTimeoutMs, requestTimeout: o.requestTimeoutMs,
      connectionsCheckingInterval: Math.max(10, Math.min(30_000, Math.floor(Math.min(o.headersTimeoutMs, o.requestTimeoutMs) / 4))),
    };
    const common = { logger: false, bodyLimit: o.maxPayloadBytes, trustProxy: o.trustedProxies.length > 0 ? addresses.trust : false,
      requestTimeout: o.requestTimeoutMs, connectionTimeout: o.idleTimeoutMs, keepAliveTimeout: o.keepAliveTimeoutMs } as const;
    const app = (o.tls ? Fastify({ ...common, https: { cert: o.tls.cert, key: o.tls.key, ...timing } })
      : Fastify({ ...common, http: timing })) as unknown as FastifyInstance;
    app.server.headersTimeout = o.headersTimeoutMs;
    // The per-address cap, at the socket: every connection, HTTP or WebSocket, from its peer's
    // address. A trusted proxy carries many clients; its WebSocket upgrades are counted by the
    // forwarded address (the transport's admit), its HTTP requests by nobody: limit at the proxy.
    app.server.on('connection', (socket: Socket) => {
      const address = socket.remoteAddress ?? 'unknown';
      if (addresses.isTrustedProxy(address)) return;
      const release = cap.open(address);
      if (!release) { socket.destroy(); return; }
      socket.once('close', release);
    });
    // Route schemas document the API (OpenAPI); requests are parsed with zod in the handlers,
    // and answers are plain JSON, so neither is reshaped by Fastify.
    app.setValidatorCompiler(() => (data) => ({ value: data }));
    app.setSerializerCompiler(() => (data) => JSON.stringify(data));
    app.setErrorHandler(makeErrorHandler(log, o.maxPayloadBytes, o.maxFileBytes));
    app.setNotFoundHandler(notFound);
    registerJsonBodyParser(app);
    registerPageHeaders(app);
    registerHttpAuth(app, auth);
    await registerUiAssets(app);
    await app.register(swagger, {
      openapi: {
        info: { title: 'CrowdCompute foreman API', version: PROTOCOL_VERSION, description: 'Jobs, tasks and workers. Every route but /health needs `Authorization: Bearer <API key>`. Workers and clients also connect over WebSocket at /ws (see docs/protocol.md).' },
        components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key (cck_…): crowdcompute key create' } } },
        security: [{ apiKey: [] }],
        tags: [{ name: 'jobs' }, { name: 'schedules' }, { name: 'tasks' }, { name: 'workers' }, { name: 'system' }],
      },
    });
    await app.register(swaggerUi, { routePrefix: '/docs', theme: { title: 'CrowdCompute API' }, staticCSP: DOCS_CSP });
    app.get('/openapi.json', { schema: { hide: true }, config: { access: 'open' } }, async () => app.swagger());
    registerApiRoutes(app, { store, registry, jobs, events, startedAt, retentionMs: o.retentionMs, sharing: () => dispatcher!.shares() });
    registerScheduleRoutes(app, { store, schedules, clock });
    registerRateLimitRoutes(app, { store, changed: () => dispatcher!.rateLimitsChanged() });
    registerTaskRoutes(app, { store, jobs });
    registerFailedRoutes(app, { failed: new FailedTasks({ store, jobs, log }) });
    registerFileRoutes(app, { store, signer: fileSigner, maxFileBytes: o.maxFileBytes });
    registerHealthRoutes(app, { store, health, loops, registry, metrics, isStopping: () => this.state === 'stopping', metricsPublic: o.metricsPublic });
    registerDashboard(app, { store, registry, feed, series });
    registerJoinRoutes(app, { credentials: credentialService, registry, audit: (event, fields) => auth?.audit(event, fields) });
    registerKeyRoutes(app, { store, credentials: credentialService, webhookHosts: o.webhookHosts, audit: (event, fields) => auth?.audit(event, fields) });
    registerLogin(app, auth);
    ws.attach(app.server);
    this.parts = { store: opened, transport: ws, app, health, services, scheduler };

    // Before the first worker can say hello: taking the lease marks offline what an earlier run
    // under this id left online.
    await foremanLease.take();
    this.boundPort = reservation.port;
    if (local) {
      this.local = { apiKey: local.apiKey, workerToken: local.workerToken };
      // Left for the CLI and the workers of this machine (kept in this process for a throwaway store).
      // Written before the first request is served: whoever sees this foreman answer finds its
      // credentials, not those an earlier foreman on the same port left.
      saveLocalCredentials({ database: database ?? `memory:${this.id}`, urls: [this.url], ...local }, { persist: database !== null });
    }
    // The socket bound at the start (see port-reservation.ts), now served by the HTTP server.
    await app.listen({ handle: reservation.handle(), port: o.port, host: o.host } as FastifyListenOptions);
    reservation.handedOver();
    this.boundPort = (app.server.address() as AddressInfo).port;
    for (const s of services) await s.start();
    this.state = 'running';
    log.info({ url: this.url, ws: this.wsUrl, database: this.ownsStore ? o.database.replace(/\/\/[^@]*@/, '//***@') : store.driver, authentication: auth ? 'on' : 'OFF' }, 'foreman listening');
    return this;
  }

  /**
   * Stop accepting, commit the results that have arrived, close every socket (workers
   * reconnect elsewhere or later), close the store. Safe to call twice and before start.
   */
  stop(): Promise<void> {
    // Never started, or its start failed before anything was built (a port in use).
    if (this.state === 'new' || !this.parts) { this.state = 'stopped'; return Promise.resolve(); }
    this.stopPromise ??= (async () => {
      this.state = 'stopping';
      const { store, transport, app, health, services } = this.parts!;
      transport.stopAccepting();
      for (const s of [...services].reverse()) await s.stop();
      await app.close();
      health.close();
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
