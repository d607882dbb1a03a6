/**
 * The worker runtime: connects to a foreman, says hello, heartbeats, runs what it is given
 * (named tasks with registered handlers, map tasks with a code executor), and reports
 * outcomes, kept until acknowledged and resent after a reconnect.
 *
 * It imports no Node built-in: timers, the standard WebSocket, AbortController and
 * crypto.randomUUID are all it uses, so the same runtime runs in Node (worker.ts puts the
 * sandbox, the status server and host resources around it) and in a browser's Web Worker.
 */
import { EventEmitter } from 'eventemitter3';
import {
  CrowdComputeError, MAX_VALUE_DEPTH, PROTOCOL_VERSION, formatBytes, jsonDepthExceeds, taskError,
  type Outbound, type TaskOutcome, type WireTask, type WorkerInbound,
} from '../../protocol/index.ts';
import { ForemanLink, type WebSocketConstructor } from '../../link/foreman-link.ts';
import { silentLog, type Log } from '../../link/log.ts';
import { explainConnectFailure } from '../../link/connect-failure.ts';
import type { CodeExecutor } from './code-executor.ts';
import { HandlerRegistry, type HandlerOptions, type TaskHandler } from './handler-registry.ts';
import { batchHandlerOptions, batchTaskHandler, isBatchHandler, type BatchHandler, type PulledArtifacts, type PullQuery, type RecordParts } from './batch-handler.ts';
import { ResultOutbox } from './result-outbox.ts';
import { TaskRunner, type Ending, type RunningTaskInfo, type TaskSpan, type TaskTracer } from './task-runner.ts';
import { WORKER_DEFAULTS, checkWorkerOption } from './worker-defaults.ts';
import { checkWorkerToken, signHello } from './hello-signature.ts';
import { ConnectionHistory, Throughput } from './status-history.ts';

/** How a worker runtime connects and runs. Every option but the URL and id has a default ({@link WORKER_DEFAULTS}). */
export interface WorkerRuntimeOptions {
  /** Foreman WebSocket URL(s), e.g. ws://localhost:8000/ws. Several = fail over between them. */
  foremanUrl: string | string[];
  /** Unique id of this worker. */
  workerId: string;
  /**
   * The worker token (`cct_…`) this worker proves in every hello with an HMAC signature; the
   * token itself never crosses the wire. Needed unless the foreman runs with --insecure.
   */
  token?: string;
  /** Tasks run at once. Default 4. */
  maxConcurrentTasks?: number;
  /** Runs shipped map functions; without one, the worker refuses map jobs. */
  codeExecutor?: CodeExecutor | null;
  /** Heartbeat period; default the foreman's (5 s unless configured there). */
  heartbeatIntervalMs?: number;
  /** Base delay between reconnection attempts (doubles up to 30 s, jittered). Default 1 s. */
  reconnectIntervalMs?: number;
  /** -1 = unlimited (default). */
  maxReconnectAttempts?: number;
  /** Reconnect when the connection drops. Default true. */
  autoRestart?: boolean;
  /**
   * What to tell the foreman about this machine: `cpuCores`, `memoryMb`, `gpu` and `labels`
   * are what tasks that require resources are placed by; `platform`, `runtime`, … are shown.
   */
  resources?: Record<string, unknown>;
  /** After a timeout or cancel fires a handler's AbortSignal, how long it may take to return. Default 1 s. */
  timeoutGraceMs?: number;
  /** stop(): how long running tasks may take to finish before they are handed back. Default 30 s. */
  drainTimeoutMs?: number;
  /** Where the runtime logs. Default: nowhere. */
  log?: Log;
  /**
   * What the warning about a foreman that cannot be reached tells to check, after its reason
   * (the command line names its flag). Default: `check the foreman URL: a foreman's workers
   * connect to ws://<host>:<port>/ws`.
   */
  foremanUrlHint?: string;
  /** The WebSocket constructor. Default: the global one. */
  webSocket?: WebSocketConstructor;
  /**
   * Spans around attempts. The runtime alone makes none; the Node `Worker` makes OpenTelemetry
   * `execute` spans for the tracer provider the process registered (`null` there: none).
   */
  tracer?: TaskTracer | null;
}

/** Where a worker is in its life. */
export type WorkerStatus = 'idle' | 'connecting' | 'connected' | 'draining' | 'stopped';

/** What a worker has done since it started. */
export interface WorkerStats {
  tasksCompleted: number;
  tasksFailed: number;
  tasksCancelled: number;
  totalExecutionTimeMs: number;
  startedAt: number;
  /** Times the foreman accepted this worker's hello. */
  connects: number;
}

const DEFAULT_MAX_PAYLOAD = 8 * 1024 * 1024;

/** What a close code means, for a connection history that says why a connection ended (or never began). */
function closeReason(code: number, reason: string, accepted: boolean): string {
  if (reason) return reason;
  switch (code) {
    case 1000: return 'closed';
    case 1001: return 'foreman going away';
    case 1006: return accepted ? 'connection lost' : 'could not connect';
    default: return `closed with code ${code}`;
  }
}

/** Run `fn` once the current turn's I/O has been read (Node's check phase; a timer turn in browsers). */
const afterIo = (fn: () => void): void => {
  if (typeof globalThis.setImmediate === 'function') globalThis.setImmediate(fn);
  else setTimeout(fn, 0);
};

/**
 * A worker, without its host: see the file's comment. Events: `connected`, `disconnected`,
 * `taskStarted`, `taskFinished` (the outcome, then `{type, jobId}` of its task), `acked`,
 * `resultRefused` (`{ taskId, attempt, error }`: an outcome the foreman's store refused), `foremanError`, `error` (reconnection gave up), `stopped`.
 */
export class WorkerRuntime extends EventEmitter {
  /** This worker's id. */
  readonly workerId: string;
  /** What this worker has done since it started. */
  readonly stats: WorkerStats = { tasksCompleted: 0, tasksFailed: 0, tasksCancelled: 0, totalExecutionTimeMs: 0, startedAt: Date.now(), connects: 0 };
  /** The last 20 connections, disconnections and failed attempts, and why (for status pages). */
  readonly connectionHistory = new ConnectionHistory(20);
  /** Tasks finished per 10 s over the last 15 minutes (for status pages). */
  readonly throughput = new Throughput({ bucketMs: 10_000, buckets: 90 });
  /** The runtime's logger. */
  protected readonly logger: Log;
  private readonly handlers = new HandlerRegistry();
  private readonly link: ForemanLink;
  private readonly runner: TaskRunner;
  private readonly outbox: ResultOutbox;
  private readonly code: CodeExecutor | null;
  private readonly token: string | undefined;
  private readonly o: {
    maxConcurrentTasks: number; heartbeatIntervalMs: number | undefined; drainTimeoutMs: number; resources: Record<string, unknown>;
  };
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  /** assign_tasks messages read on this connection, told in every heartbeat (see HeartbeatSchema). */
  private assignmentsRead = 0;
  private maxPayloadBytes = DEFAULT_MAX_PAYLOAD;
  private welcomed = false;
  private state: WorkerStatus = 'idle';
  private startWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private stopPromise: Promise<void> | null = null;
  private isPaused = false;
  private readonly jobNames = new Map<string, string>();
  private readonly pendingRequests = new Map<string, {
    message: Extract<WorkerInbound, { type: 'task_record' | 'pull_artifacts' }>;
    resolve: (answer: Extract<Outbound, { type: 'task_record_ack' | 'artifacts_pulled' }>) => void;
    reject: (e: Error) => void;
  }>();
  private requestSeq = 0;
  /** Why the foreman last refused this worker's credential, for the error that stops it. */
  private lastRefusal: string | null = null;
  private readonly foremanUrlHint: string;
  /**
   * The reasons (with their URL) already warned of since the last connection: a worker retries
   * for ever, and a warning per attempt would bury everything else in its log.
   */
  private readonly warnedFailures = new Set<string>();
  /** URLs this worker was accepted at: failing there later is a foreman away, not a wrong URL. */
  private readonly reachedUrls = new Set<string>();

  constructor(options: WorkerRuntimeOptions) {
    super();
    const urls = (Array.isArray(options.foremanUrl) ? options.foremanUrl : String(options.foremanUrl ?? '').split(',')).map((u) => u.trim()).filter(Boolean);
    if (urls.length === 0) throw new TypeError('Worker: foremanUrl is required (e.g. ws://localhost:8000/ws)');
    const d = WORKER_DEFAULTS;
    this.workerId = options.workerId;
    this.logger = options.log ?? silentLog;
    this.foremanUrlHint = options.foremanUrlHint ?? 'check the foreman URL: a foreman\'s workers connect to ws://<host>:<port>/ws';
    this.code = options.codeExecutor ?? null;
    if (options.token !== undefined) checkWorkerToken(options.token);
    this.token = options.token;
    this.o = {
      maxConcurrentTasks: options.maxConcurrentTasks ?? d.maxConcurrentTasks,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      drainTimeoutMs: options.drainTimeoutMs ?? d.drainTimeoutMs,
      resources: options.resources ?? {},
    };
    for (const key of ['maxConcurrentTasks', 'heartbeatIntervalMs', 'reconnectIntervalMs', 'maxReconnectAttempts', 'timeoutGraceMs', 'drainTimeoutMs'] as const) {
      checkWorkerOption(key, options[key]);
    }
    for (const key of ['cpuCores', 'memoryMb', 'gpu'] as const) checkWorkerOption(key, this.o.resources[key]);
    const later = (fn: () => void) => { setTimeout(fn, 0); };
    // The outbox already gathered the turn's outcomes: the frame is written at once rather than
    // a turn later (the frame batcher's own turn would start only after this one).
    this.outbox = new ResultOutbox((results) => { const sent = this.welcomed && this.link.send({ type: 'task_results', results }); if (sent) this.link.flush(); return sent; },
      typeof globalThis.setImmediate === 'function' ? (fn) => { globalThis.setImmediate(fn); } : later);
    this.runner = new TaskRunner({
      workerId: this.workerId,
      handlers: this.handlers,
      code: this.code,
      log: this.logger,
      timeoutGraceMs: options.timeoutGraceMs ?? d.timeoutGraceMs,
      tracer: options.tracer ?? null,
      started: (t) => this.emit('taskStarted', { taskId: t.taskId, jobId: t.jobId, type: t.type, attempt: t.attempt }),
      progress: (t, progress, message, data) => {
        this.link.send({ type: 'task_progress', taskId: t.taskId, attempt: t.attempt, progress, ...(message !== undefined ? { message } : {}), ...(data ? { data } : {}) });
      },
      finished: (t, startedAt, ending, span) => this.report(t, startedAt, ending, span),
    });
    this.link = new ForemanLink({
      urls,
      reconnectIntervalMs: options.reconnectIntervalMs ?? d.reconnectIntervalMs,
      maxReconnectAttempts: options.maxReconnectAttempts ?? d.maxReconnectAttempts,
      autoRestart: options.autoRestart ?? d.autoRestart,
      log: this.logger,
      ...(options.webSocket ? { webSocket: options.webSocket } : {}),
      onOpen: () => void this.onOpen(),
      onMessage: (m) => this.onMessage(m),
      onProtocolError: (message) => this.logger.warn({ error: message }, 'foreman sent a message this worker cannot read'),
      onClose: (info) => this.onLinkClose(info),
      onGiveUp: (message) => this.onGiveUp(message),
    });
  }

  /**
   * Register a handler for task types matching `pattern` (`math.*`, `image.resize`): a
   * function, or a batch handler (`iterBatches`, `processBatch`, …) whose batches, artifacts
   * and checkpoints are recorded as it goes. Chainable.
   */
  handle<I = any, O = unknown>(pattern: string, handler: TaskHandler<I, O> | BatchHandler<I>, options: HandlerOptions = {}): this {
    if (isBatchHandler(handler)) {
      const io = {
        record: (task: { taskId: string; attempt: number }, parts: RecordParts) => this.record(task, parts),
        pull: (task: { taskId: string; attempt: number }, q: PullQuery) => this.pull(task, q),
      };
      this.handlers.add(pattern, batchTaskHandler(handler, io), { ...batchHandlerOptions(handler), ...options });
    } else {
      this.handlers.add(pattern, handler as TaskHandler, options);
    }
    return this;
  }

  /**
   * Send what a batch handler did to be recorded; resolves once the foreman has committed it
   * (true) or refused it because the attempt is no longer this worker's (false). Unanswered
   * records go again after a reconnect; the foreman records each batch and artifact once.
   */
  private async record(task: { taskId: string; attempt: number }, parts: RecordParts): Promise<boolean> {
    const ack = await this.request({ type: 'task_record', requestId: `rec-${++this.requestSeq}`, taskId: task.taskId, attempt: task.attempt, ...parts });
    if (ack.type !== 'task_record_ack') throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', `the foreman answered a task_record with ${ack.type}`);
    // The record in the attempt's trace: which batch, how many artifacts, whether a checkpoint.
    this.runner.spanOf(task.taskId, task.attempt)?.event('record', {
      recorded: ack.recorded, ...(parts.batch ? { batch: parts.batch.uid } : {}), ...(parts.artifacts?.length ? { artifacts: parts.artifacts.length } : {}),
      ...(parts.checkpoint !== undefined ? { checkpoint: true } : {}), ...(parts.artifactsComplete ? { artifactsComplete: true } : {}),
    });
    if (!ack.recorded) this.runner.cancel(task.taskId, task.attempt, `the foreman no longer counts task ${task.taskId} attempt ${task.attempt} as worker ${this.workerId}'s`, 'lease_lost');
    return ack.recorded;
  }

  /** Read upstream artifacts for a graph node's input adapter. */
  private async pull(task: { taskId: string; attempt: number }, q: PullQuery): Promise<PulledArtifacts> {
    const answer = await this.request({ type: 'pull_artifacts', requestId: `pull-${++this.requestSeq}`, taskId: task.taskId, attempt: task.attempt, ...q });
    if (answer.type !== 'artifacts_pulled') throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', `the foreman answered pull_artifacts with ${answer.type}`);
    return { artifacts: answer.artifacts, upstreamDone: answer.upstreamDone };
  }

  /**
   * Send a request and wait for its answer (or its error). Unanswered requests go again after
   * a reconnect: each is one the foreman may see twice without harm.
   */
  private request(message: Extract<WorkerInbound, { type: 'task_record' | 'pull_artifacts' }>): Promise<Extract<Outbound, { type: 'task_record_ack' | 'artifacts_pulled' }>> {
    return new Promise((resolve, reject) => {
      this.pendingRequests.set(message.requestId, { message, resolve, reject });
      if (this.welcomed) this.link.send(message);
    });
  }

  /** Where the worker is in its life. */
  get status(): WorkerStatus { return this.state; }
  /** True while connected and accepted by a foreman. */
  get connected(): boolean { return this.link.connected && this.welcomed; }
  /** The foreman URL in use. */
  get foremanUrl(): string { return this.link.currentUrl; }
  /** Tasks run at once. */
  get capacity(): number { return this.o.maxConcurrentTasks; }
  /** True when the worker runs shipped map functions. */
  get allowCode(): boolean { return this.code !== null; }
  /** The handler patterns registered. */
  get patterns(): string[] { return this.handlers.patterns; }
  /** Tasks running now: id, job, type, attempt, start time. */
  get runningTasks(): RunningTaskInfo[] { return this.runner.list(); }
  /** Outcomes sent but not yet acknowledged by the foreman. */
  get unackedCount(): number { return this.outbox.size; }

  /**
   * Connect and resolve once the foreman has accepted the hello. Rejects if reconnection
   * gives up first (maxReconnectAttempts). Safe to call twice.
   */
  async start(): Promise<void> {
    if (this.state === 'stopped') throw new CrowdComputeError('CC_ERR_SHUTTING_DOWN', `worker ${this.workerId} was stopped; create a new one`);
    if (this.state === 'idle') {
      if (this.handlers.patterns.length === 0 && !this.code) {
        this.logger.warn({}, 'worker has no handlers and allowCode is off: it will receive no tasks');
      }
      this.state = 'connecting';
      await this.beforeStart();
      this.link.start();
    }
    if (this.welcomed) return;
    await new Promise<void>((resolve, reject) => this.startWaiters.push({ resolve, reject }));
  }

  /** Drop the connection and reconnect. */
  restart(): void { this.link.restart(); }

  /** A map job's name as the foreman gave it with the job's code, if it has one. */
  jobName(jobId: string): string | null { return this.jobNames.get(jobId) ?? null; }

  /** True while paused: connected, but taking no tasks. */
  get paused(): boolean { return this.isPaused; }

  /**
   * Take no new tasks, and give the running ones back to the foreman now (requeued at once,
   * not counted as failures): what a person lending a browser tab expects of a pause button.
   * {@link WorkerRuntime.resume} takes work again.
   */
  pause(): void {
    if (this.isPaused || this.state === 'stopped' || this.state === 'draining') return;
    this.isPaused = true;
    if (this.connected) this.link.send({ type: 'worker_draining' });
    this.handBack(`worker ${this.workerId} was paused`);
    this.emit('paused', true);
  }

  /** Take work again after {@link WorkerRuntime.pause}. */
  resume(): void {
    if (!this.isPaused) return;
    this.isPaused = false;
    if (this.connected) this.link.send({ type: 'worker_ready', capacity: this.o.maxConcurrentTasks });
    this.emit('paused', false);
  }

  /** Run up to `n` tasks at once from now on (the foreman hears of it at once). */
  setCapacity(n: number): void {
    if (!Number.isInteger(n) || n < 1) throw new TypeError(`Worker: capacity must be a positive integer, got ${n}`);
    this.o.maxConcurrentTasks = n;
    if (this.connected && !this.isPaused && this.state !== 'draining') this.link.send({ type: 'worker_ready', capacity: n });
  }

  /**
   * Leave at once, without draining: hand the running tasks back, send what has finished, and
   * close. For a page being closed, which cannot wait for anything asynchronous.
   */
  leave(reason = 'left'): void {
    if (this.state === 'stopped') return;
    this.state = 'draining';
    if (this.connected) this.link.send({ type: 'worker_draining' });
    this.handBack(`worker ${this.workerId} ${reason}`);
    this.outbox.flush();
    void this.stop({ drainTimeoutMs: 0 });
  }

  /**
   * Graceful stop: take no new tasks, let running ones finish for up to `drainTimeoutMs`,
   * then abort the rest and hand them back, send every outcome, close. Safe to call twice,
   * and before start().
   */
  stop(options: { drainTimeoutMs?: number } = {}): Promise<void> {
    this.stopPromise ??= (async () => {
      const wasIdle = this.state === 'idle';
      this.state = 'draining';
      if (!wasIdle) {
        this.link.send({ type: 'worker_draining' });
        const deadline = options.drainTimeoutMs ?? this.o.drainTimeoutMs;
        if (this.runner.size > 0) {
          this.logger.info({ running: this.runner.size, drainTimeoutMs: deadline }, 'draining: waiting for running tasks');
          await this.runner.waitIdle(deadline);
        }
        this.handBack(`worker ${this.workerId} stopped; its drain timeout of ${deadline} ms passed`);
        this.outbox.flush();
        // Give acknowledgements a moment so the foreman does not see these results as lost.
        if (this.outbox.size > 0 && this.link.connected) await this.outbox.waitAcknowledged(2_000);
      }
      this.stopHeartbeat();
      if (this.connected) this.connectionHistory.add({ at: Date.now(), kind: 'stopped', url: this.link.currentUrl, reason: 'worker stopped' });
      await this.link.stop();
      for (const p of this.pendingRequests.values()) p.reject(new CrowdComputeError('CC_ERR_SHUTTING_DOWN', `worker ${this.workerId} stopped before the foreman answered its ${p.message.type} for task ${p.message.taskId}`));
      this.pendingRequests.clear();
      this.code?.dispose();
      await this.afterStop();
      this.state = 'stopped';
      for (const w of this.startWaiters.splice(0)) w.reject(new CrowdComputeError('CC_ERR_SHUTTING_DOWN', `worker ${this.workerId} stopped`));
      this.emit('stopped');
    })();
    return this.stopPromise;
  }

  /** Runs once before the first connection (a host starts its own servers here). */
  protected async beforeStart(): Promise<void> {}

  /** Runs once the connection is closed on stop (a host stops its own servers here). */
  protected async afterStop(): Promise<void> {}

  /** Give every running task back to the foreman unfinished: requeued without counting as a failure. */
  private handBack(reason: string): void {
    const refs = this.runner.abandonAll(reason);
    if (refs.length === 0) return;
    this.logger.warn({ tasks: refs.length, taskIds: refs.slice(0, 5).map((r) => r.taskId) }, 'handing unfinished tasks back to the foreman');
    this.link.send({ type: 'release_tasks', tasks: refs, reason });
  }

  // ------------------------------------------------------------------ connection

  private async onOpen(): Promise<void> {
    // Signed anew for every connection: a fresh timestamp and nonce, the host dialed.
    const auth = this.token ? await signHello(this.token, this.workerId, new URL(this.link.currentUrl).host) : undefined;
    // Finished-but-unacknowledged tasks are still "ours" until the foreman records them.
    const running = [...this.runner.refs(), ...this.outbox.refs()];
    this.link.send({
      type: 'hello', protocol: PROTOCOL_VERSION, role: 'worker', workerId: this.workerId,
      capacity: this.o.maxConcurrentTasks, patterns: this.handlers.patterns, allowCode: this.code !== null,
      ...(this.code ? { codeLanguages: [...(this.code.codeLanguages ?? ['javascript' as const])] } : {}),
      resources: this.o.resources as never, version: PROTOCOL_VERSION, running, ...(auth ? { auth } : {}),
    });
  }

  private onLinkClose(info: { code: number; reason: string; willReconnect: boolean; error?: string }): void {
    const { willReconnect } = info;
    const url = this.link.currentUrl;
    const failure = !this.welcomed && !this.lastRefusal && info.error ? explainConnectFailure(url, info.error) : null;
    this.connectionHistory.add({
      at: Date.now(), kind: this.welcomed ? 'disconnected' : 'failed', url,
      reason: failure?.reason ?? closeReason(info.code, this.welcomed ? info.reason : (this.lastRefusal ?? info.reason), this.welcomed), code: info.code,
    });
    if (failure && willReconnect && this.state !== 'stopped') this.warnConnectFailure(url, failure.reason, failure.suggestion, info.error!);
    this.welcomed = false;
    this.stopHeartbeat();
    if (this.state === 'connected') this.state = 'connecting';
    this.emit('disconnected', { willReconnect });
    // Refused for its credential (4401) or its credential revoked (4403): trying again with the
    // same token cannot help, so the worker says why and stops.
    if ((info.code === 4401 || info.code === 4403) && this.state !== 'stopped') {
      const message = this.lastRefusal ?? info.reason;
      this.lastRefusal = null;
      this.onGiveUp(message.startsWith('CC_ERR_') ? message : `CC_ERR_UNAUTHORIZED: ${message}`);
      return;
    }
    if (!willReconnect && this.state !== 'draining' && this.state !== 'stopped') {
      this.logger.warn({}, 'connection lost and autoRestart is off: stopping');
      void this.stop({ drainTimeoutMs: 0 });
    }
  }

  /** Say once per reason why the foreman cannot be reached, and what to do about it. */
  private warnConnectFailure(url: string, reason: string, suggestion: string | undefined, error: string): void {
    const key = `${url}\n${reason}`;
    if (this.warnedFailures.has(key)) return;
    this.warnedFailures.add(key);
    const next = this.reachedUrls.has(url) ? '' : `; ${suggestion ? `did you mean ${suggestion}? ` : ''}${this.foremanUrlHint}`;
    this.logger.warn({ url, detail: error.trim(), ...(suggestion ? { suggestion } : {}) }, `cannot connect to the foreman at ${url}: ${reason}${next}; retrying until it answers`);
  }

  private onGiveUp(message: string): void {
    this.logger.error({}, message);
    this.connectionHistory.add({ at: Date.now(), kind: 'gave_up', url: this.link.currentUrl, reason: message });
    const code = message.startsWith('CC_ERR_UNAUTHORIZED') ? 'CC_ERR_UNAUTHORIZED' : 'CC_ERR_CONNECTION';
    for (const w of this.startWaiters.splice(0)) w.reject(new CrowdComputeError(code, message));
    this.emit('error', new CrowdComputeError(code, message));
    void this.stop({ drainTimeoutMs: 0 });
  }

  private startHeartbeat(intervalMs: number): void {
    this.stopHeartbeat();
    this.heartbeatTimer = setInterval(() => {
      // Built after the turn's I/O, not in the timer itself: after a stall (a busy machine), the
      // timer fires before the messages that arrived meanwhile are read, and a heartbeat sent
      // then would leave out tasks the foreman assigned a heartbeat ago, which it takes back as
      // dropped (seen under load: a worker's whole concurrency run twice).
      afterIo(() => {
        if (!this.heartbeatTimer) return;
        // Results go first: a task that just finished must appear in its results or in this
        // heartbeat's running list, never in neither (the foreman would take it back).
        this.outbox.flush();
        this.link.send({ type: 'heartbeat', running: this.runner.refs(), assignments: this.assignmentsRead });
      });
    }, intervalMs);
    (this.heartbeatTimer as { unref?: () => void }).unref?.();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private onMessage(msg: Outbound): void {
    switch (msg.type) {
      case 'welcome': {
        this.welcomed = true;
        this.assignmentsRead = 0;
        this.stats.connects++;
        this.connectionHistory.add({ at: Date.now(), kind: 'connected', url: this.link.currentUrl, foremanId: msg.foremanId });
        this.reachedUrls.add(this.link.currentUrl);
        // The next outage is news again.
        this.warnedFailures.clear();
        this.maxPayloadBytes = msg.maxPayloadBytes;
        this.outbox.maxBatchBytes = Math.floor(msg.maxPayloadBytes / 2);
        if (this.state === 'connecting') this.state = 'connected';
        this.startHeartbeat(this.o.heartbeatIntervalMs ?? msg.heartbeatIntervalMs);
        this.link.setSilenceTimeout(msg.leaseTtlMs);
        // Come back well before the foreman gives up on our leases, or our work runs twice.
        this.link.setMaxReconnectDelay(Math.floor(msg.leaseTtlMs / 3));
        this.logger.info({ foremanId: msg.foremanId, resending: this.outbox.size, running: this.runner.size }, 'foreman accepted hello');
        // Results the previous connection did not see acknowledged go again; the foreman's
        // guarded update records each at most once.
        this.outbox.resendAll();
        for (const p of this.pendingRequests.values()) this.link.send(p.message);
        if (this.state === 'draining' || this.isPaused) this.link.send({ type: 'worker_draining' });
        for (const w of this.startWaiters.splice(0)) w.resolve();
        this.emit('connected', { foremanId: msg.foremanId });
        return;
      }
      case 'assign_tasks':
        this.assignmentsRead++;
        if (msg.code && this.code) for (const [jobId, code] of Object.entries(msg.code)) this.code.setCode(jobId, code, msg.languages?.[jobId]);
        if (msg.jobNames) {
          for (const [jobId, name] of Object.entries(msg.jobNames)) this.jobNames.set(jobId, name);
          while (this.jobNames.size > 100) this.jobNames.delete(this.jobNames.keys().next().value!);
        }
        if (this.state === 'draining' || this.state === 'stopped' || this.isPaused) {
          // Sent before the foreman heard we are draining: give them straight back.
          this.link.send({ type: 'release_tasks', tasks: msg.tasks.map((t) => ({ taskId: t.taskId, attempt: t.attempt })), reason: `worker ${this.workerId} is draining` });
          return;
        }
        for (const t of msg.tasks) {
          // File links are paths on the foreman: made absolute against the address it was reached at.
          if (t.files) t.files = t.files.map((f) => ({ ...f, url: new URL(f.url, foremanHttpBase(this.link.currentUrl)).toString() }));
          this.runner.start(t);
        }
        return;
      case 'cancel_task':
        this.runner.cancel(msg.taskId, msg.attempt, msg.reason, msg.cause ?? 'coordinator');
        return;
      case 'task_record_ack':
      case 'artifacts_pulled': {
        const p = this.pendingRequests.get(msg.requestId);
        if (!p) return;
        this.pendingRequests.delete(msg.requestId);
        p.resolve(msg);
        return;
      }
      case 'result_ack':
        this.outbox.acknowledged(msg.tasks);
        for (const r of msg.refused ?? []) {
          this.logger.warn({ taskId: r.taskId, attempt: r.attempt, code: r.error.code, error: r.error.message }, 'the foreman could not record this task\'s outcome as sent; the task failed instead');
          this.emit('resultRefused', r);
        }
        this.emit('acked');
        return;
      case 'error': {
        const p = msg.requestId ? this.pendingRequests.get(msg.requestId) : undefined;
        if (p) {
          // A request the foreman refused (a record too large, say): the batch handler's call throws it.
          this.pendingRequests.delete(msg.requestId!);
          p.reject(CrowdComputeError.fromWire(msg));
          return;
        }
        // A refused hello: why, in full, for the error the worker stops with (the close reason is cut short).
        if (msg.code === 'CC_ERR_UNAUTHORIZED' || msg.code === 'CC_ERR_RATE_LIMITED') this.lastRefusal = msg.message;
        this.logger.warn({ code: msg.code, message: msg.message }, 'foreman reported an error');
        this.emit('foremanError', msg);
        return;
      }
      default:
        // heartbeat_ack only proves the foreman hears us (the link noted it); client messages are not for workers.
        return;
    }
  }

  // ------------------------------------------------------------------ outcomes

  private report(task: WireTask, startedAt: number, ending: Ending, span: TaskSpan | null): void {
    const durationMs = Date.now() - startedAt;
    let o: TaskOutcome = { taskId: task.taskId, attempt: task.attempt, status: ending.status, durationMs };
    let bytes = 0;
    if (ending.status === 'completed') {
      const text = ending.result === undefined ? 'null' : JSON.stringify(ending.result);
      if (text === undefined) {
        o = { ...o, status: 'failed', error: taskError('CC_ERR_HANDLER_FAILED', `task ${task.taskId} returned a value that is not JSON (${typeof ending.result})`, { retryable: false }) };
      } else if (text.length > this.maxPayloadBytes) {
        o = { ...o, status: 'failed', error: taskError('CC_ERR_PAYLOAD_TOO_LARGE', `task ${task.taskId} result is ${formatBytes(text.length)}, the foreman accepts at most ${formatBytes(this.maxPayloadBytes)} (--max-payload)`, { retryable: false }) };
      } else if (jsonDepthExceeds(text, MAX_VALUE_DEPTH)) {
        // The foreman would refuse the whole frame that carried it, other results included.
        o = { ...o, status: 'failed', error: taskError('CC_ERR_TOO_DEEP', `task ${task.taskId} result nests JSON more than ${MAX_VALUE_DEPTH} levels deep, the most a value may`, { retryable: false, details: { limit: MAX_VALUE_DEPTH } }) };
      } else {
        o.result = ending.result === undefined ? null : ending.result;
        bytes = text.length;
      }
    } else if (ending.error) {
      o.error = ending.error;
      // A failed map chunk carries the results of its arguments that did not throw, if they fit.
      if (ending.result !== undefined) {
        const text = JSON.stringify(ending.result);
        if (text !== undefined && text.length <= this.maxPayloadBytes && !jsonDepthExceeds(text, MAX_VALUE_DEPTH)) { o.result = ending.result; bytes = text.length; }
      }
    }
    if (o.status === 'completed') this.stats.tasksCompleted++;
    else if (o.status === 'failed') this.stats.tasksFailed++;
    else this.stats.tasksCancelled++;
    this.stats.totalExecutionTimeMs += durationMs;
    this.throughput.record(o.status);
    if (span) {
      const traceContext = span.end(o.status, o.error);
      if (traceContext) o.traceContext = traceContext;
    } else if (task.traceContext) {
      // No tracer here (a browser tab): the context goes back as it came, so that the
      // foreman's result commit still joins the job's trace, under its dispatch.
      o.traceContext = task.traceContext;
    }
    if (o.status === 'failed') this.logger.warn({ taskId: task.taskId, jobId: task.jobId, type: task.type, attempt: task.attempt, error: o.error?.message }, 'task failed');
    this.outbox.add(o, bytes);
    this.emit('taskFinished', o, { type: task.type, jobId: task.jobId });
  }
}

/** `ws://host:8000/ws` → `http://host:8000/`; `wss://…` → `https://…`. */
function foremanHttpBase(wsUrl: string): string {
  const u = new URL(wsUrl);
  return `${u.protocol === 'wss:' ? 'https:' : 'http:'}//${u.host}/`;
}
