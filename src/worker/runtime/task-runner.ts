import { CrowdComputeError, formatDuration, taskError, type TaskError, type TaskOutcome, type TaskRef, type TraceContext, type WireTask } from '../../protocol/index.ts';
import type { Log } from '../../link/log.ts';
import { ChunkFailedError, type CodeExecutor } from './code-executor.ts';
import { HandlerRegistry, taskInfo, type TaskContext } from './handler-registry.ts';

/** How a task ended, before the runtime measures and sends it. */
export type Ending = Pick<TaskOutcome, 'status' | 'result' | 'error'>;

/** How an attempt's span ends: its outcome's status, or `released` (handed back unfinished). */
export type SpanEnding = TaskOutcome['status'] | 'released';

/**
 * A span around one attempt: the Node worker's OpenTelemetry `execute` span
 * (worker/task-tracing.ts). The runtime knows it only through this shape, so that browser tabs,
 * which run the same runtime, load no tracing library.
 */
export interface TaskSpan {
  /** Run the handler within the span: spans the handler makes are its children. */
  run<T>(fn: () => T): T;
  /** Something that happened during the attempt: progress reported, a batch recorded. */
  event(name: string, attributes: Record<string, string | number | boolean>): void;
  /** End the span; returns its trace context for the outcome to carry, if it has one. */
  end(ending: SpanEnding, error?: TaskError): TraceContext | undefined;
}

/** Makes the span of each attempt, or null for an attempt it does not trace. */
export interface TaskTracer {
  begin(task: WireTask, workerId: string): TaskSpan | null;
}

/** What the runner needs from the worker around it. */
export interface TaskRunnerDeps {
  workerId: string;
  handlers: HandlerRegistry;
  /** Runs shipped code; null = this worker refuses map tasks. */
  code: CodeExecutor | null;
  log: Log;
  /** After a timeout or cancel fires a handler's AbortSignal, how long it may take to return. */
  timeoutGraceMs: number;
  /** Spans around attempts; none when absent. */
  tracer?: TaskTracer | null;
  started(task: WireTask): void;
  progress(task: WireTask, percent: number, message: string | undefined, data: Record<string, unknown> | undefined): void;
  /** A task ended; called once per attempt. `span` is its span, for the caller to end with the outcome it sends. */
  finished(task: WireTask, startedAt: number, ending: Ending, span: TaskSpan | null): void;
}

interface Running {
  task: WireTask;
  startedAt: number;
  controller: AbortController;
  /** Its span, when traced. */
  span: TaskSpan | null;
  kill?: (reason: 'cancelled' | 'timeout') => void;
  /** Set once the outcome is reported; later ones are ignored. */
  settled: boolean;
  /** The ending a timeout or cancel decided, reported when the handler returns or its grace ends. */
  forced?: Ending;
  timer?: ReturnType<typeof setTimeout>;
  /** The handler's last progress report, for status pages. */
  progress?: number;
  progressMessage?: string;
}

/** A task running on this worker, for status pages. */
export interface RunningTaskInfo {
  taskId: string;
  jobId: string;
  type: string;
  attempt: number;
  startedAt: number;
  /** The handler's last `ctx.progress()` percent (0..100), if it reported any. */
  progress?: number;
  /** The message of that report, if it had one. */
  progressMessage?: string;
}

/**
 * Runs the tasks a worker was given: named tasks with their handler, map tasks with the code
 * executor; enforces deadlines (a handler gets an AbortSignal and a grace period, shipped code
 * is killed) and cancellations; reports exactly one ending per attempt.
 */
export class TaskRunner {
  private readonly running = new Map<string, Running>();
  private readonly deps: TaskRunnerDeps;
  private idleWaiters: (() => void)[] = [];

  constructor(deps: TaskRunnerDeps) {
    this.deps = deps;
  }

  /** Tasks running now. */
  get size(): number { return this.running.size; }

  /** The attempts running now (what heartbeats and hellos list). */
  refs(): TaskRef[] {
    return [...this.running.values()].map((r) => ({ taskId: r.task.taskId, attempt: r.task.attempt }));
  }

  /** The span of that attempt, if it runs here and is traced. */
  spanOf(taskId: string, attempt: number): TaskSpan | null {
    const r = this.running.get(taskId);
    return r && r.task.attempt === attempt ? r.span : null;
  }

  /** What runs now, for status pages. */
  list(): RunningTaskInfo[] {
    return [...this.running.values()].map((r) => ({
      taskId: r.task.taskId, jobId: r.task.jobId, type: r.task.type, attempt: r.task.attempt, startedAt: r.startedAt,
      ...(r.progress !== undefined ? { progress: r.progress } : {}),
      ...(r.progressMessage !== undefined ? { progressMessage: r.progressMessage } : {}),
    }));
  }

  /** Start a task (a repeated assignment of an attempt already running is ignored). */
  start(task: WireTask): void {
    const existing = this.running.get(task.taskId);
    if (existing && existing.task.attempt >= task.attempt) return;
    const r: Running = { task, startedAt: Date.now(), controller: new AbortController(), span: this.deps.tracer?.begin(task, this.deps.workerId) ?? null, settled: false };
    this.running.set(task.taskId, r);
    this.deps.started(task);
    const timeoutMs = task.timeoutMs;
    if (timeoutMs && task.kind !== 'map') {
      // Shipped code is stopped by its executor, which can kill it; handlers get a signal.
      r.timer = setTimeout(() => this.interrupt(r, 'timeout', `task ${task.taskId} exceeded its timeout of ${formatDuration(timeoutMs)}`), timeoutMs);
    }
    const run = () => (task.kind === 'map' ? this.runMap(r) : this.runNamed(r));
    const work = r.span ? r.span.run(run) : run();
    work.then(
      (result) => this.settle(r, { status: 'completed', result }),
      // A map chunk in which some arguments threw keeps the results of the others.
      (err: unknown) => this.settle(r, { status: 'failed', error: this.describe(err, task), ...(err instanceof ChunkFailedError ? { result: err.partialResults } : {}) }),
    );
  }

  /**
   * Stop this attempt: the foreman cancelled it (`coordinator`), or took it back or refused to
   * record for it (`lease_lost`).
   */
  cancel(taskId: string, attempt: number, reason: string, cause: 'coordinator' | 'lease_lost' = 'coordinator'): void {
    const r = this.running.get(taskId);
    if (r && r.task.attempt === attempt) this.interrupt(r, 'cancelled', reason, cause);
  }

  /**
   * Stop every running task without reporting an ending (the worker hands them back to the
   * foreman unfinished). Handlers see their AbortSignal fire. Returns what was running.
   */
  abandonAll(reason: string): TaskRef[] {
    const refs = this.refs();
    for (const r of this.running.values()) {
      r.settled = true;
      r.span?.end('released', { message: reason });
      if (r.timer) clearTimeout(r.timer);
      r.kill?.('cancelled');
      r.controller.abort(new CrowdComputeError('CC_ERR_SHUTTING_DOWN', reason, { cancelReason: 'worker_shutdown' }));
    }
    this.running.clear();
    this.wakeIdle();
    return refs;
  }

  /** Resolves when no task runs, or after `ms`. */
  waitIdle(ms: number): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() { clearTimeout(t); resolve(); }
      this.idleWaiters.push(done);
    });
  }

  private wakeIdle(): void {
    if (this.running.size === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  private describe(err: unknown, task: WireTask): TaskError {
    if (err instanceof CrowdComputeError) {
      // Shipped code that hit the memory limit or crashed its sandbox process is not sent to
      // another worker to do it again. Which of the two a heap exhaustion is depends on V8's
      // timing (the same Map can fail its call or abort its process), so both are treated alike.
      const retryable = err.code === 'CC_ERR_TIMEOUT' ? true
        : err.code === 'CC_ERR_CODE_COMPILE' || err.code === 'CC_ERR_NO_HANDLER' || err.code === 'CC_ERR_PAYLOAD_TOO_LARGE'
          || err.code === 'CC_ERR_MEMORY_LIMIT' || err.code === 'CC_ERR_SANDBOX_CRASHED' ? false : undefined;
      return err.toTaskError(retryable !== undefined ? { retryable } : {});
    }
    return HandlerRegistry.describe(err, this.deps.handlers.find(task.type)?.options ?? {});
  }

  private async runNamed(r: Running): Promise<unknown> {
    const t = r.task;
    const { handlers, workerId } = this.deps;
    const entry = handlers.find(t.type);
    if (!entry) {
      throw new CrowdComputeError('CC_ERR_NO_HANDLER', `worker ${workerId} has no handler for task type "${t.type}" (patterns: ${handlers.patterns.join(', ') || 'none'})`);
    }
    const info = taskInfo(t);
    const ctx: TaskContext = {
      signal: r.controller.signal,
      workerId,
      attempt: t.attempt,
      progress: (percent, message, data) => {
        if (r.settled) return;
        const p = Math.max(0, Math.min(100, Number(percent) || 0));
        const text = message !== undefined ? String(message).slice(0, 1000) : undefined;
        r.progress = p;
        r.progressMessage = text;
        r.span?.event('progress', text !== undefined ? { progress: p, message: text } : { progress: p });
        this.deps.progress(t, p, text, data);
      },
    };
    return entry.handler(info, ctx);
  }

  private async runMap(r: Running): Promise<unknown> {
    const t = r.task;
    const code = this.deps.code;
    if (!code) {
      throw new CrowdComputeError('CC_ERR_CODE_NOT_ALLOWED', `worker ${this.deps.workerId} was started without allowCode and will not run shipped code (job ${t.jobId})`);
    }
    if (!Array.isArray(t.input)) throw new CrowdComputeError('CC_ERR_BAD_MESSAGE', `map task ${t.taskId} has no argument list`);
    const run = code.start(t.jobId, t.input, t.timeoutMs, t.argOffset ?? 0);
    r.kill = run.kill;
    return run.result;
  }

  /**
   * Stop a running task (cancel, timeout): fire its AbortSignal (or kill its code), then give
   * the handler `timeoutGraceMs` to return before its slot is freed regardless. The ending is
   * decided here; whatever the handler returns afterwards is ignored.
   */
  private interrupt(r: Running, reason: 'cancelled' | 'timeout', message: string, cause: 'coordinator' | 'lease_lost' = 'coordinator'): void {
    if (r.settled || r.forced) return;
    const code = reason === 'timeout' ? 'CC_ERR_TIMEOUT' : 'CC_ERR_CANCELLED';
    r.forced = reason === 'timeout'
      ? { status: 'failed', error: taskError(code, message, { name: 'TimeoutError', retryable: true }) }
      : { status: 'cancelled', error: taskError(code, message, { name: 'AbortError' }) };
    this.deps.log.info({ taskId: r.task.taskId, jobId: r.task.jobId, reason }, message);
    r.kill?.(reason);
    // Handlers read why from the signal's reason (a batch handler's ctx.cancelReason).
    r.controller.abort(new CrowdComputeError(code, message, { cancelReason: reason === 'timeout' ? 'timeout' : cause }));
    if (r.timer) clearTimeout(r.timer);
    const forced = r.forced;
    r.timer = setTimeout(() => this.settle(r, forced), this.deps.timeoutGraceMs);
  }

  private settle(r: Running, ending: Ending): void {
    if (r.settled) return;
    r.settled = true;
    if (r.timer) clearTimeout(r.timer);
    // A newer attempt of the task may have started while this one wound down (its lease was
    // lost and the foreman assigned the task again): that one stays listed, and cancellable.
    if (this.running.get(r.task.taskId) === r) this.running.delete(r.task.taskId);
    this.deps.finished(r.task, r.startedAt, r.forced ?? ending, r.span);
    this.wakeIdle();
  }
}
