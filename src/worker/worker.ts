/**
 * The worker runtime: connects to a foreman, says hello, heartbeats, runs what it is given
 * (named tasks with registered handlers, map tasks in the sandbox when allowCode is set),
 * and reports outcomes. Outcomes are kept until the foreman acknowledges them (after its
 * commit) and resent after a reconnect, so a result is never lost to a dropped socket.
 */
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { pino, type Logger } from 'pino';
import {
  CrowdComputeError, PROTOCOL_VERSION, formatBytes,
  type Outbound, type TaskError, type TaskOutcome, type WireTask,
} from '../protocol/index.ts';
import { hostResources } from '../host/host-usage.ts';
import { ForemanLink } from '../link/foreman-link.ts';
import { HandlerRegistry, type HandlerOptions, type TaskContext, type TaskHandler, type TaskInfo } from './handler-registry.ts';
import { SandboxExecutor, type SandboxOptions } from './executors/sandbox-executor.ts';
import { WorkerStatusServer } from './status-server.ts';

export interface WorkerOptions {
  /** Foreman WebSocket URL(s), e.g. ws://localhost:8000/ws. Several = fail over between them. */
  foremanUrl: string | string[];
  /** Unique id; default `<hostname>-<pid>-<random>`. */
  workerId?: string;
  /** Tasks run at once (seed 000's max_concurrent_tasks). Default 4. */
  maxConcurrentTasks?: number;
  /** Accept map jobs: shipped code, run in an isolated-vm sandbox. Default false. */
  allowCode?: boolean;
  /** Heartbeat period; default the foreman's (5 s unless configured there). */
  heartbeatIntervalMs?: number;
  /** Base delay between reconnection attempts (doubles up to 30 s, jittered). Default 1 s. */
  reconnectIntervalMs?: number;
  /** -1 = unlimited (default). */
  maxReconnectAttempts?: number;
  /** Reconnect when the connection drops (seed 000's auto_restart). Default true. */
  autoRestart?: boolean;
  /** Extra resource info for the hello (merged over cpu cores, memory, platform, runtime). */
  resources?: Record<string, unknown>;
  /** Sandbox limits for shipped code. */
  sandbox?: Partial<SandboxOptions>;
  /** After a timeout or cancel fires a handler's AbortSignal, how long it may take to return. Default 1 s. */
  timeoutGraceMs?: number;
  /** stop(): how long running tasks may take to finish before they are handed back. Default 30 s. */
  drainTimeoutMs?: number;
  /** Port of the status HTTP server (seed 000/001 endpoints); false = none. Default false. */
  statusPort?: number | false;
  statusHost?: string;
  logger?: Logger;
  logLevel?: string;
}

export type WorkerStatus = 'idle' | 'connecting' | 'connected' | 'draining' | 'stopped';

interface Running {
  task: WireTask;
  startedAt: number;
  controller: AbortController;
  kill?: (reason: 'cancelled' | 'timeout') => void;
  /** Set once the outcome is reported; later ones are ignored. */
  settled: boolean;
  /** The outcome a timeout or cancel decided, reported when the handler returns or its grace ends. */
  forced?: Pick<TaskOutcome, 'status' | 'result' | 'error'>;
  timer?: NodeJS.Timeout;
}

export interface WorkerStats {
  tasksCompleted: number;
  tasksFailed: number;
  tasksCancelled: number;
  totalExecutionTimeMs: number;
  startedAt: number;
  connects: number;
}

const DEFAULT_MAX_PAYLOAD = 8 * 1024 * 1024;

export class Worker extends EventEmitter {
  readonly workerId: string;
  readonly log: Logger;
  readonly stats: WorkerStats = { tasksCompleted: 0, tasksFailed: 0, tasksCancelled: 0, totalExecutionTimeMs: 0, startedAt: Date.now(), connects: 0 };
  private readonly registry = new HandlerRegistry();
  private readonly o: Required<Omit<WorkerOptions, 'logger' | 'logLevel' | 'workerId' | 'heartbeatIntervalMs' | 'sandbox' | 'resources' | 'foremanUrl' | 'statusPort' | 'statusHost'>> & {
    urls: string[]; heartbeatIntervalMs?: number; resources: Record<string, unknown>; statusPort: number | false; statusHost: string;
  };
  private readonly link: ForemanLink;
  private readonly sandbox: SandboxExecutor | null;
  private readonly running = new Map<string, Running>();
  private readonly unacked = new Map<string, TaskOutcome>();
  private pendingResults: TaskOutcome[] = [];
  /** JSON size of each outcome's result, measured once when it is reported. */
  private readonly resultBytes = new WeakMap<TaskOutcome, number>();
  private resultsScheduled = false;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private maxPayloadBytes = DEFAULT_MAX_PAYLOAD;
  private welcomed = false;
  private state: WorkerStatus = 'idle';
  private statusServer: WorkerStatusServer | null = null;
  private startWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private stopPromise: Promise<void> | null = null;
  private idleWaiters: (() => void)[] = [];

  constructor(options: WorkerOptions) {
    super();
    const urls = (Array.isArray(options.foremanUrl) ? options.foremanUrl : options.foremanUrl.split(',')).map((u) => u.trim()).filter(Boolean);
    if (urls.length === 0) throw new TypeError('Worker: foremanUrl is required (e.g. ws://localhost:8000/ws)');
    this.workerId = options.workerId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 6)}`;
    this.log = (options.logger ?? pino({ level: options.logLevel ?? 'info' }, pino.destination(2))).child({ workerId: this.workerId });
    this.o = {
      urls,
      maxConcurrentTasks: options.maxConcurrentTasks ?? 4,
      allowCode: options.allowCode ?? false,
      reconnectIntervalMs: options.reconnectIntervalMs ?? 1_000,
      maxReconnectAttempts: options.maxReconnectAttempts ?? -1,
      autoRestart: options.autoRestart ?? true,
      timeoutGraceMs: options.timeoutGraceMs ?? 1_000,
      drainTimeoutMs: options.drainTimeoutMs ?? 30_000,
      resources: { ...hostResources(), ...(options.resources ?? {}) },
      statusPort: options.statusPort ?? false,
      statusHost: options.statusHost ?? '0.0.0.0',
      ...(options.heartbeatIntervalMs ? { heartbeatIntervalMs: options.heartbeatIntervalMs } : {}),
    };
    if (!Number.isInteger(this.o.maxConcurrentTasks) || this.o.maxConcurrentTasks < 1) {
      throw new TypeError(`Worker: maxConcurrentTasks must be a positive integer, got ${options.maxConcurrentTasks}`);
    }
    this.sandbox = this.o.allowCode ? new SandboxExecutor(options.sandbox) : null;
    this.link = new ForemanLink({
      urls,
      reconnectIntervalMs: this.o.reconnectIntervalMs,
      maxReconnectAttempts: this.o.maxReconnectAttempts,
      autoRestart: this.o.autoRestart,
      log: this.log,
      onOpen: () => this.onOpen(),
      onMessage: (m) => this.onMessage(m),
      onProtocolError: (message) => this.log.warn({ error: message }, 'foreman sent a message this worker cannot read'),
      onClose: (info) => this.onLinkClose(info.willReconnect),
      onGiveUp: (message) => this.onGiveUp(message),
    });
  }

  /** Register a handler for task types matching `pattern` (`math.*`, `image.resize`). Chainable. */
  handle<I = any, O = unknown>(pattern: string, handler: TaskHandler<I, O>, options: HandlerOptions = {}): this {
    this.registry.add(pattern, handler as TaskHandler, options);
    return this;
  }

  get status(): WorkerStatus { return this.state; }
  get connected(): boolean { return this.link.connected && this.welcomed; }
  get foremanUrl(): string { return this.link.currentUrl; }
  get capacity(): number { return this.o.maxConcurrentTasks; }
  get allowCode(): boolean { return this.o.allowCode; }
  get patterns(): string[] { return this.registry.patterns; }
  /** Tasks running now: id, job, type, attempt, start time. */
  get runningTasks(): { taskId: string; jobId: string; type: string; attempt: number; startedAt: number }[] {
    return [...this.running.values()].map((r) => ({ taskId: r.task.taskId, jobId: r.task.jobId, type: r.task.type, attempt: r.task.attempt, startedAt: r.startedAt }));
  }
  get unackedCount(): number { return this.unacked.size; }

  /**
   * Connect and resolve once the foreman has accepted the hello. Rejects if reconnection
   * gives up first (maxReconnectAttempts). Safe to call twice.
   */
  async start(): Promise<void> {
    if (this.state === 'stopped') throw new CrowdComputeError('CC_ERR_SHUTTING_DOWN', `worker ${this.workerId} was stopped; create a new one`);
    if (this.state === 'idle') {
      if (this.registry.patterns.length === 0 && !this.o.allowCode) {
        this.log.warn('worker has no handlers and allowCode is off: it will receive no tasks');
      }
      this.state = 'connecting';
      if (this.o.statusPort !== false) {
        this.statusServer = new WorkerStatusServer(this, { port: this.o.statusPort, host: this.o.statusHost });
        await this.statusServer.start();
      }
      this.link.start();
    }
    if (this.welcomed) return;
    await new Promise<void>((resolve, reject) => this.startWaiters.push({ resolve, reject }));
  }

  /** The status server's port (when enabled). */
  get statusPort(): number | null { return this.statusServer?.port ?? null; }

  /** Drop the connection and reconnect (POST /restart). */
  restart(): void { this.link.restart(); }

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
        if (this.running.size > 0) {
          this.log.info({ running: this.running.size, drainTimeoutMs: deadline }, 'draining: waiting for running tasks');
          await this.waitIdle(deadline);
        }
        this.handBack(`worker ${this.workerId} stopped; its drain timeout of ${deadline} ms passed`);
        this.flushResults();
        // Give acknowledgements a moment so the foreman does not see these results as lost.
        if (this.unacked.size > 0 && this.link.connected) await this.waitAcked(2_000);
      }
      this.stopHeartbeat();
      await this.link.stop();
      this.sandbox?.dispose();
      await this.statusServer?.stop();
      this.state = 'stopped';
      for (const w of this.startWaiters.splice(0)) w.reject(new CrowdComputeError('CC_ERR_SHUTTING_DOWN', `worker ${this.workerId} stopped`));
      this.emit('stopped');
    })();
    return this.stopPromise;
  }

  /**
   * Stop every running task and give it back to the foreman unfinished: it is requeued
   * without counting as a failure (release_tasks). Handlers see their AbortSignal fire.
   */
  private handBack(reason: string): void {
    if (this.running.size === 0) return;
    const refs = [...this.running.values()].map((r) => ({ taskId: r.task.taskId, attempt: r.task.attempt }));
    for (const r of this.running.values()) {
      r.settled = true;
      if (r.timer) clearTimeout(r.timer);
      r.kill?.('cancelled');
      r.controller.abort(new CrowdComputeError('CC_ERR_SHUTTING_DOWN', reason));
    }
    this.running.clear();
    this.log.warn({ tasks: refs.length, taskIds: refs.slice(0, 5).map((r) => r.taskId) }, 'handing unfinished tasks back to the foreman');
    this.link.send({ type: 'release_tasks', tasks: refs, reason });
  }

  private waitIdle(ms: number): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() { clearTimeout(t); resolve(); }
      this.idleWaiters.push(done);
    });
  }

  private waitAcked(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(finish, ms);
      const check = () => { if (this.unacked.size === 0) finish(); };
      const self = this;
      function finish() { clearTimeout(t); self.off('acked', check); resolve(); }
      this.on('acked', check);
    });
  }

  // ------------------------------------------------------------------ connection

  private onOpen(): void {
    const running = [...this.running.values()].map((r) => ({ taskId: r.task.taskId, attempt: r.task.attempt }));
    // Finished-but-unacknowledged tasks are still "ours" until the foreman records them.
    for (const o of this.unacked.values()) running.push({ taskId: o.taskId, attempt: o.attempt });
    this.link.send({
      type: 'hello', protocol: PROTOCOL_VERSION, role: 'worker', workerId: this.workerId,
      capacity: this.o.maxConcurrentTasks, patterns: this.registry.patterns, allowCode: this.o.allowCode,
      resources: this.o.resources as never, version: PROTOCOL_VERSION, running,
    });
  }

  private onLinkClose(willReconnect: boolean): void {
    this.welcomed = false;
    this.stopHeartbeat();
    if (this.state === 'connected') this.state = 'connecting';
    this.emit('disconnected', { willReconnect });
    if (!willReconnect && this.state !== 'draining' && this.state !== 'stopped') {
      this.log.warn('connection lost and autoRestart is off: stopping');
      void this.stop({ drainTimeoutMs: 0 });
    }
  }

  private onGiveUp(message: string): void {
    this.log.error(message);
    for (const w of this.startWaiters.splice(0)) w.reject(new CrowdComputeError('CC_ERR_CONNECTION', message));
    this.emit('error', new CrowdComputeError('CC_ERR_CONNECTION', message));
    void this.stop({ drainTimeoutMs: 0 });
  }

  private startHeartbeat(intervalMs: number): void {
    this.stopHeartbeat();
    this.heartbeatTimer = setInterval(() => {
      // Results go first: a task that just finished must appear in its results or in this
      // heartbeat's running list, never in neither (the foreman would take it back).
      this.flushResults();
      this.link.send({ type: 'heartbeat', running: [...this.running.values()].map((r) => ({ taskId: r.task.taskId, attempt: r.task.attempt })) });
    }, intervalMs);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = null;
  }

  private onMessage(msg: Outbound): void {
    switch (msg.type) {
      case 'welcome': {
        this.welcomed = true;
        this.stats.connects++;
        this.maxPayloadBytes = msg.maxPayloadBytes;
        if (this.state === 'connecting') this.state = 'connected';
        this.startHeartbeat(this.o.heartbeatIntervalMs ?? msg.heartbeatIntervalMs);
        this.link.setSilenceTimeout(msg.leaseTtlMs);
        this.log.info({ foremanId: msg.foremanId, resending: this.unacked.size, running: this.running.size }, 'foreman accepted hello');
        // Results the previous connection did not see acknowledged go again; the foreman's
        // conditional update records each at most once.
        if (this.unacked.size > 0) this.pendingResults.push(...this.unacked.values());
        this.flushResults();
        if (this.state === 'draining') this.link.send({ type: 'worker_ready', capacity: this.o.maxConcurrentTasks });
        for (const w of this.startWaiters.splice(0)) w.resolve();
        this.emit('connected', { foremanId: msg.foremanId });
        return;
      }
      case 'assign_tasks':
        if (msg.code && this.sandbox) for (const [jobId, code] of Object.entries(msg.code)) this.sandbox.setCode(jobId, code);
        for (const t of msg.tasks) this.startTask(t);
        return;
      case 'cancel_task': {
        const r = this.running.get(msg.taskId);
        if (r && r.task.attempt === msg.attempt) this.interrupt(r, 'cancelled', msg.reason);
        return;
      }
      case 'result_ack':
        for (const t of msg.tasks) {
          const o = this.unacked.get(t.taskId);
          if (o && o.attempt === t.attempt) this.unacked.delete(t.taskId);
        }
        this.emit('acked');
        return;
      case 'error':
        this.log.warn({ code: msg.code, message: msg.message }, 'foreman reported an error');
        this.emit('foremanError', msg);
        return;
      default:
        // Client-side messages (job_progress and the like) are not for workers.
        return;
    }
  }

  // ------------------------------------------------------------------ execution

  private startTask(task: WireTask): void {
    const existing = this.running.get(task.taskId);
    if (existing && existing.task.attempt >= task.attempt) return; // a duplicate assignment
    if (this.state === 'draining' || this.state === 'stopped') {
      this.report(task, Date.now(), { status: 'failed', error: { message: 'CC_ERR_SHUTTING_DOWN: worker is draining', code: 'CC_ERR_SHUTTING_DOWN', retryable: true } });
      return;
    }
    const r: Running = { task, startedAt: Date.now(), controller: new AbortController(), settled: false };
    this.running.set(task.taskId, r);
    this.emit('taskStarted', { taskId: task.taskId, jobId: task.jobId, type: task.type, attempt: task.attempt });
    if (task.timeoutMs) {
      r.timer = setTimeout(() => this.interrupt(r, 'timeout', `task ${task.taskId} exceeded its timeout of ${task.timeoutMs} ms`), task.timeoutMs);
    }
    const work = task.kind === 'map' ? this.runMap(r) : this.runNamed(r);
    work.then(
      (result) => this.settle(r, { status: 'completed', result }),
      (err) => this.settle(r, { status: 'failed', error: this.describe(err, task) }),
    );
  }

  private describe(err: unknown, task: WireTask): TaskError {
    if (err instanceof CrowdComputeError) {
      const retryable = err.code === 'CC_ERR_TIMEOUT' || err.code === 'CC_ERR_MEMORY_LIMIT' ? true
        : err.code === 'CC_ERR_CODE_COMPILE' || err.code === 'CC_ERR_NO_HANDLER' ? false : undefined;
      return { message: err.message, name: err.name, code: err.code, ...(err.stack ? { stack: err.stack } : {}), ...(retryable !== undefined ? { retryable } : {}) };
    }
    return HandlerRegistry.describe(err, this.registry.find(task.type)?.options ?? {});
  }

  private async runNamed(r: Running): Promise<unknown> {
    const t = r.task;
    const entry = this.registry.find(t.type);
    if (!entry) {
      throw new CrowdComputeError('CC_ERR_NO_HANDLER', `worker ${this.workerId} has no handler for task type "${t.type}" (patterns: ${this.registry.patterns.join(', ') || 'none'})`);
    }
    const info: TaskInfo = { id: t.taskId, jobId: t.jobId, type: t.type, input: t.input, attempt: t.attempt, priority: t.priority, timeoutMs: t.timeoutMs };
    const ctx: TaskContext = {
      signal: r.controller.signal,
      workerId: this.workerId,
      attempt: t.attempt,
      progress: (percent, message, data) => {
        if (r.settled) return;
        const p = Math.max(0, Math.min(100, Number(percent) || 0));
        this.link.send({ type: 'task_progress', taskId: t.taskId, attempt: t.attempt, progress: p, ...(message !== undefined ? { message: String(message).slice(0, 1000) } : {}), ...(data ? { data } : {}) });
      },
    };
    return entry.handler(info, ctx);
  }

  private async runMap(r: Running): Promise<unknown> {
    const t = r.task;
    if (!this.sandbox) {
      throw new CrowdComputeError('CC_ERR_CODE_NOT_ALLOWED', `worker ${this.workerId} was started without allowCode and will not run shipped code (job ${t.jobId})`);
    }
    if (!Array.isArray(t.input)) throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', `map task ${t.taskId} has no argument list`);
    // The sandbox enforces the deadline itself (it can kill the isolate); the task timer
    // above only matters for named handlers, so leave it to the sandbox here.
    if (r.timer) { clearTimeout(r.timer); r.timer = undefined; }
    const run = this.sandbox.start(t.jobId, t.input, t.timeoutMs);
    r.kill = run.kill;
    return run.result;
  }

  /**
   * Stop a running task (cancel, timeout, drain): fire its AbortSignal (or kill its isolate),
   * then give the handler `timeoutGraceMs` to return before its slot is freed regardless.
   * The outcome is decided here; whatever the handler returns afterwards is ignored.
   */
  private interrupt(r: Running, reason: 'cancelled' | 'timeout', message: string): void {
    if (r.settled || r.forced) return;
    const code = reason === 'timeout' ? 'CC_ERR_TIMEOUT' : 'CC_ERR_CANCELLED';
    r.forced = reason === 'timeout'
      ? { status: 'failed', error: { message: `${code}: ${message}`, code, name: 'TimeoutError', retryable: true } }
      : { status: 'cancelled', error: { message: `${code}: ${message}`, code, name: 'AbortError' } };
    this.log.info({ taskId: r.task.taskId, jobId: r.task.jobId, reason }, message);
    r.kill?.(reason);
    r.controller.abort(new CrowdComputeError(code, message));
    if (r.timer) clearTimeout(r.timer);
    const forced = r.forced;
    r.timer = setTimeout(() => this.settle(r, forced), this.o.timeoutGraceMs);
  }

  private settle(r: Running, outcome: Pick<TaskOutcome, 'status' | 'result' | 'error'>): void {
    if (r.settled) return;
    r.settled = true;
    if (r.timer) clearTimeout(r.timer);
    this.running.delete(r.task.taskId);
    this.report(r.task, r.startedAt, r.forced ?? outcome);
    if (this.running.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  private report(task: WireTask, startedAt: number, outcome: Pick<TaskOutcome, 'status' | 'result' | 'error'>): void {
    const durationMs = Date.now() - startedAt;
    let o: TaskOutcome = { taskId: task.taskId, attempt: task.attempt, status: outcome.status, durationMs };
    if (outcome.status === 'completed') {
      const text = outcome.result === undefined ? 'null' : JSON.stringify(outcome.result);
      if (text === undefined) {
        o = { ...o, status: 'failed', error: { message: `CC_ERR_HANDLER_FAILED: task ${task.taskId} returned a value that is not JSON (${typeof outcome.result})`, code: 'CC_ERR_HANDLER_FAILED', retryable: false } };
      } else if (text.length > this.maxPayloadBytes) {
        o = { ...o, status: 'failed', error: { message: `CC_ERR_PAYLOAD_TOO_LARGE: task ${task.taskId} result is ${formatBytes(text.length)}, the foreman accepts at most ${formatBytes(this.maxPayloadBytes)} (--max-payload)`, code: 'CC_ERR_PAYLOAD_TOO_LARGE', retryable: false } };
      } else {
        o.result = outcome.result === undefined ? null : outcome.result;
        this.resultBytes.set(o, text.length);
      }
    } else if (outcome.error) {
      o.error = outcome.error;
    }
    if (o.status === 'completed') this.stats.tasksCompleted++;
    else if (o.status === 'failed') this.stats.tasksFailed++;
    else this.stats.tasksCancelled++;
    this.stats.totalExecutionTimeMs += durationMs;
    if (o.status === 'failed') this.log.warn({ taskId: task.taskId, jobId: task.jobId, type: task.type, attempt: task.attempt, error: o.error?.message }, 'task failed');
    this.unacked.set(task.taskId, o);
    this.pendingResults.push(o);
    this.emit('taskFinished', o);
    if (!this.resultsScheduled) {
      this.resultsScheduled = true;
      setImmediate(() => this.flushResults());
    }
  }

  /** Send outcomes gathered this turn as one task_results message (several per frame under load). */
  private flushResults(): void {
    this.resultsScheduled = false;
    if (this.pendingResults.length === 0 || !this.connected) { if (!this.connected) this.pendingResults = []; return; }
    const all = this.pendingResults;
    this.pendingResults = [];
    // Keep messages well under the frame limit: large map results travel a few at a time.
    let batch: TaskOutcome[] = [];
    let bytes = 0;
    const budget = Math.floor(this.maxPayloadBytes / 2);
    for (const o of all) {
      const size = (this.resultBytes.get(o) ?? 0) + 200;
      if (batch.length > 0 && bytes + size > budget) { this.link.send({ type: 'task_results', results: batch }); batch = []; bytes = 0; }
      batch.push(o);
      bytes += size;
    }
    if (batch.length > 0) this.link.send({ type: 'task_results', results: batch });
  }
}
