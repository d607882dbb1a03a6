/**
 * Runs shipped map functions in isolated-vm isolates hosted by child processes of the worker,
 * so that nothing the code does can take the worker down.
 *
 * isolated-vm bounds an isolate's heap, but not always gracefully: a function that grows an
 * object or a Map without end usually makes V8 abort the whole process with a fatal
 * out-of-memory error, which no in-process sandbox can catch. Here the process that aborts is
 * a sandbox process, and the worker fails the one chunk that ran in it (CC_ERR_MEMORY_LIMIT,
 * not retried) and starts another process for the next.
 */
import { availableParallelism } from 'node:os';
import { CrowdComputeError } from '../../protocol/index.ts';
import { silentLog, type Log } from '../../link/log.ts';
import { SandboxCrashError, type CodeExecutor, type CodeRun } from '../runtime/code-executor.ts';
import { WORKER_DEFAULTS } from '../runtime/worker-defaults.ts';
import type { SandboxOptions } from './sandbox-executor.ts';
import { SandboxProcess } from './sandbox-process.ts';
import type { RunOutcome } from './sandbox-messages.ts';
import { readResults, sandboxLimit, stoppedError } from './sandbox-runner.ts';

/** Limits of the sandbox processes, besides those of the isolates in them. */
export interface ProcessSandboxOptions extends SandboxOptions {
  /**
   * Sandbox processes at most, each running one chunk at a time; a chunk that finds them all
   * busy waits for one. Default: the machine's cores. Map functions only compute (an isolate
   * has no I/O or timers to wait on), so more would share the same cores, and each costs
   * memory, a start and, per job, an isolate to compile (`npm run bench` at concurrency 50 on 2
   * cores: one process per task slot made map jobs slower than isolates in the worker's own
   * process, 3 processes made them faster; once chunks that queue went to a process together,
   * 2 were faster than 3, since a process no longer idles while one chunk's result is on its
   * way; docs/security.md has the figures).
   */
  maxProcesses: number;
  /** How long past a chunk's timeout its process is killed if it has not answered. Default 2 s. */
  killGraceMs: number;
  /** How long a sandbox process may take to start. Default 60 s. */
  startTimeoutMs: number;
  /** Where the death of a sandbox process is told. Default: nowhere. */
  log: Log;
}

/** A chunk's call, from `start` until it settles. */
interface Call {
  jobId: string;
  args: unknown[];
  argOffset: number;
  argsJson: string;
  /** Its limit, and whether it is the worker's (for the error's words). */
  limit: number;
  byWorker: boolean;
  /** When its limit runs out (epoch ms); waiting for a process counts. */
  deadline: number;
  /** Runs alone: it was in a batch whose process died, and its own death must be charged to it alone. */
  alone: boolean;
  /** The batch it runs in, while it runs. */
  batch: Batch | null;
  settled: boolean;
  /** Ends the wait for a process at the deadline. */
  timer: ReturnType<typeof setTimeout> | null;
  resolve(results: unknown[]): void;
  reject(err: unknown): void;
}

/** Calls of one job running together in one process. */
interface Batch {
  proc: SandboxProcess;
  calls: Call[];
  /** One of its calls was cancelled, and the process killed for it: the others go back to the queue. */
  cancelledOne: boolean;
}

/**
 * Batches: the most chunks sent to a process in one message, the most bytes of their
 * arguments, and the most time they are expected to take (from the job's chunks so far). A
 * message each way costs more than a small chunk's call (`npm run bench -- --only
 * map-unchunked`, docs/security.md), so small chunks go together; a chunk that takes longer
 * than the budget gains nothing from it, and goes alone, so that every process gets its share
 * of a job's long chunks.
 */
const BATCH_CALLS = 32;
const BATCH_BYTES = 1024 * 1024;
const BATCH_BUDGET_MS = 10;

/**
 * Runs each chunk in a sandbox process while it runs, so that a process's death is charged to
 * exactly the chunk that ran in it. Processes start when first needed, up to `maxProcesses`,
 * stay for the next chunks (each keeps warm isolates for the jobs it ran, like the in-process
 * sandbox), and are replaced when they die. A chunk's deadline and a cancellation kill its
 * process: nothing inside can outlast them.
 *
 * Chunks of one job that queue for a process are sent to it together, each with its own
 * timeout (JavaScript only, `batchCalls`): one message each way instead of one per chunk. Only
 * chunks whose deadlines lie within `killGraceMs` of each other go together, since the process
 * is killed past the latest of them. When a batch's process dies, its chunks are run again,
 * each alone, so that the death is charged to the one that caused it; when one of a batch is
 * cancelled, its process is killed and the others are run again.
 */
export class ProcessSandboxExecutor implements CodeExecutor {
  protected readonly o: ProcessSandboxOptions;
  /** The most chunks sent to a process at once (1: one at a time). */
  protected batchCalls = BATCH_CALLS;
  /** The most time a batch's chunks are expected to take together, ms. */
  protected batchBudgetMs = BATCH_BUDGET_MS;
  private readonly jobs = new Map<string, string>();
  private readonly processes = new Set<SandboxProcess>();
  private idle: SandboxProcess[] = [];
  /** Calls waiting for a process, in the order they came (calls run again go first). */
  private queue: Call[] = [];
  private disposed = false;
  /** How long a chunk of each job took to run, lately (ms; a moving average), for batching. */
  private readonly chunkMs = new Map<string, number>();
  /** Messages that carried more than one chunk, and the chunks they carried (read by tests). */
  readonly batches = { sent: 0, chunks: 0 };

  constructor(options: Partial<ProcessSandboxOptions> = {}) {
    this.o = {
      memoryLimitMb: options.memoryLimitMb ?? WORKER_DEFAULTS.sandboxMemoryMb,
      defaultTimeoutMs: options.defaultTimeoutMs ?? WORKER_DEFAULTS.sandboxTimeoutMs,
      maxWarmJobs: options.maxWarmJobs ?? 16,
      maxJobs: options.maxJobs ?? 1000,
      maxProcesses: Math.max(1, options.maxProcesses ?? availableParallelism()),
      killGraceMs: options.killGraceMs ?? 2_000,
      startTimeoutMs: options.startTimeoutMs ?? 60_000,
      log: options.log ?? silentLog,
    };
  }

  /** True when the job's source has arrived. */
  hasCode(jobId: string): boolean { return this.jobs.has(jobId); }

  /** Keep a job's function source (a new source for the same job replaces the old). */
  setCode(jobId: string, code: string): void {
    if (this.jobs.get(jobId) === code) return;
    this.jobs.delete(jobId);
    // Oldest first out; a process that held a forgotten job forgets it when it needs the room.
    while (this.jobs.size >= this.o.maxJobs) this.jobs.delete(this.jobs.keys().next().value!);
    this.jobs.set(jobId, code);
  }

  /**
   * Run the job's function over `args` in a sandbox process. Rejects with a CrowdComputeError
   * naming what went wrong. The timeout counts from now, waiting for a free process included
   * (as a task's does in the worker), not the time a new process takes to start.
   */
  start(jobId: string, args: unknown[], timeoutMs: number | null, argOffset = 0): CodeRun {
    const { ms: limit, byWorker } = sandboxLimit(timeoutMs, this.o.defaultTimeoutMs);
    let call: Call | null = null;
    const result = new Promise<unknown[]>((resolve, reject) => {
      if (!this.jobs.has(jobId)) throw new CrowdComputeError('CC_ERR_INTERNAL', `job ${jobId}: no code received for this map job`);
      if (this.disposed) throw new CrowdComputeError('CC_ERR_SHUTTING_DOWN', `job ${jobId}: the worker is stopping`);
      call = { jobId, args, argOffset, argsJson: JSON.stringify(args), limit, byWorker, deadline: Date.now() + limit, alone: false, batch: null,
        settled: false, timer: null, resolve, reject };
      this.enqueue(call, false);
      this.pump();
    });
    return { result, kill: (reason) => { if (call) this.stop(call, reason); } };
  }

  /** Queue a call for a process, timing out at its deadline while it waits. */
  private enqueue(call: Call, first: boolean): void {
    const left = call.deadline - Date.now();
    if (left <= 0) { this.settle(call, stoppedError('timeout', call.jobId, call.limit, call.byWorker)); return; }
    call.batch = null;
    call.timer = setTimeout(() => this.stop(call, 'timeout'), left);
    if (first) this.queue.unshift(call); else this.queue.push(call);
  }

  /** End a call now (cancelled, or its deadline while waiting). */
  private stop(call: Call, reason: 'cancelled' | 'timeout'): void {
    if (call.settled) return;
    const batch = call.batch;
    if (!batch) {
      this.queue = this.queue.filter((c) => c !== call);
      this.settle(call, stoppedError(reason, call.jobId, call.limit, call.byWorker));
      return;
    }
    // Running: its process is killed (nothing else stops a call inside it). Alone, the call
    // fails as the process's kill says; in a batch it fails now, and the others run again.
    if (batch.calls.length === 1) { batch.proc.kill(reason); return; }
    batch.cancelledOne = true;
    this.settle(call, stoppedError(reason, call.jobId, call.limit, call.byWorker));
    batch.proc.kill(reason);
  }

  private settle(call: Call, outcome: Error | unknown[]): void {
    if (call.settled) return;
    call.settled = true;
    call.batch = null;
    if (call.timer) clearTimeout(call.timer);
    call.timer = null;
    if (outcome instanceof Error) call.reject(outcome); else call.resolve(outcome);
  }

  /** Give waiting calls to free processes, a batch at a time. */
  private pump(): void {
    while (this.queue.length > 0 && !this.disposed) {
      const head = this.queue[0]!;
      const proc = this.take(head.jobId);
      if (!proc) return;
      let n = 1;
      let bytes = head.argsJson.length;
      // A job's chunks go together only once they are known to be short (from a run in a
      // process that had compiled its function already), and a process takes
      // no more than its share of what waits, so that the other processes get the rest.
      const perChunkMs = this.chunkMs.get(head.jobId);
      const most = perChunkMs === undefined ? 1
        : Math.min(this.batchCalls, Math.ceil(this.queue.length / this.o.maxProcesses), Math.max(1, Math.floor(this.batchBudgetMs / Math.max(perChunkMs, 0.01))));
      if (!head.alone) {
        while (n < this.queue.length && n < most) {
          const next = this.queue[n]!;
          if (next.jobId !== head.jobId || next.alone || Math.abs(next.deadline - head.deadline) > this.o.killGraceMs || bytes + next.argsJson.length > BATCH_BYTES) break;
          bytes += next.argsJson.length;
          n++;
        }
      }
      const calls = this.queue.splice(0, n);
      const batch: Batch = { proc, calls, cancelledOne: false };
      for (const c of calls) {
        if (c.timer) clearTimeout(c.timer);
        c.timer = null;
        c.batch = batch;
      }
      void this.runBatch(batch).then((ended) => {
        this.release(proc);
        for (const [c, outcome] of ended) this.settle(c, outcome);
      }, (err: unknown) => {
        this.release(proc);
        for (const c of calls) this.settle(c, err as Error);
      });
    }
  }

  /**
   * Run a batch in its process; returns how each call ended, to be settled once the process is
   * free again (so that a caller's next call finds it idle). Calls to run again are queued here.
   */
  private async runBatch(batch: Batch): Promise<[Call, Error | unknown[]][]> {
    const { proc, calls } = batch;
    const jobId = calls[0]!.jobId;
    const code = this.jobs.get(jobId);
    if (code === undefined) {
      return calls.map((c) => [c, new CrowdComputeError('CC_ERR_INTERNAL', `job ${jobId}: no code received for this map job`)]);
    }
    const now = Date.now();
    const began = performance.now();
    // A run that compiles the job's function in this process is not what its chunks cost.
    const warm = proc.codes.get(jobId) === code;
    if (calls.length === 1) {
      const c = calls[0]!;
      try {
        const text = await proc.run({ jobId, code, argsJson: c.argsJson, timeoutMs: Math.max(1, c.deadline - now) });
        if (warm) this.ran(jobId, began, 1);
        return [[c, this.read(c, text)]];
      } catch (err) {
        // The process had what was left of the timeout; the error names the task's whole timeout.
        return [[c, err instanceof CrowdComputeError && err.code === 'CC_ERR_TIMEOUT' ? stoppedError('timeout', jobId, c.limit, c.byWorker) : err as Error]];
      }
    }
    this.batches.sent++;
    this.batches.chunks += calls.length;
    let outcomes: RunOutcome[];
    try {
      outcomes = await proc.runMany({ jobId, code, runs: calls.map((c) => ({ argsJson: c.argsJson, timeoutMs: Math.max(1, c.deadline - now) })) });
      if (warm) this.ran(jobId, began, calls.length);
    } catch (err) {
      const ended: [Call, Error][] = [];
      const again: Call[] = [];
      for (const c of calls) {
        if (c.settled) continue;
        if (batch.cancelledOne || err instanceof SandboxCrashError) {
          // Killed for another call, or died under one of them (which, nobody can tell): each
          // runs again, alone after a death, so that a death is charged to the call that caused it.
          c.alone = err instanceof SandboxCrashError;
          again.push(c);
        } else {
          ended.push([c, err instanceof CrowdComputeError && err.code === 'CC_ERR_TIMEOUT' ? stoppedError('timeout', jobId, c.limit, c.byWorker) : err as Error]);
        }
      }
      // Ahead of the calls that came later, in their own order.
      for (const c of again.reverse()) this.enqueue(c, true);
      return ended;
    }
    return calls.map((c, i): [Call, Error | unknown[]] => {
      const o = outcomes[i];
      if (!o) return [c, new CrowdComputeError('CC_ERR_INTERNAL', `job ${jobId}: the sandbox process answered ${outcomes.length} of ${calls.length} chunks`)];
      if ('text' in o) return [c, this.read(c, o.text)];
      const err = CrowdComputeError.fromWire(o.error);
      if (o.error.stack) err.stack = o.error.stack;
      return [c, err.code === 'CC_ERR_TIMEOUT' ? stoppedError('timeout', jobId, c.limit, c.byWorker) : err];
    });
  }

  /** `n` chunks of the job ran since `began` (performance.now()): fold their time into its average. */
  private ran(jobId: string, began: number, n: number): void {
    const ms = (performance.now() - began) / n;
    const was = this.chunkMs.get(jobId);
    this.chunkMs.delete(jobId);
    // Oldest first out, as with the jobs' sources.
    while (this.chunkMs.size >= this.o.maxJobs) this.chunkMs.delete(this.chunkMs.keys().next().value!);
    this.chunkMs.set(jobId, was === undefined ? ms : was * 0.8 + ms * 0.2);
  }

  /** A call's results from the runner's text, or the error they amount to. */
  private read(c: Call, text: string): unknown[] | Error {
    try {
      return readResults(text, c.jobId, c.argOffset, c.args.length);
    } catch (err) {
      return err as Error;
    }
  }

  /** Kill every sandbox process. */
  dispose(): void {
    this.disposed = true;
    for (const p of this.processes) p.kill('cancelled');
    this.processes.clear();
    this.idle = [];
    for (const c of this.queue.splice(0)) this.settle(c, new CrowdComputeError('CC_ERR_SHUTTING_DOWN', `job ${c.jobId}: the worker is stopping`));
  }

  /**
   * A process for a chunk of `jobId`: an idle one that ran the job last (its isolate is warm),
   * else the idle one unused the longest, else a new one while there are fewer than
   * `maxProcesses`; null when all are busy.
   */
  private take(jobId: string): SandboxProcess | null {
    for (const p of this.idle) if (!p.alive) this.processes.delete(p);
    this.idle = this.idle.filter((p) => p.alive);
    const warm = this.idle.filter((p) => p.codes.has(jobId));
    const pick = warm.length > 0
      ? warm.reduce((a, b) => (b.lastUsed > a.lastUsed ? b : a))
      : this.idle.reduce<SandboxProcess | undefined>((a, b) => (!a || b.lastUsed < a.lastUsed ? b : a), undefined);
    if (pick) {
      this.idle.splice(this.idle.indexOf(pick), 1);
      return pick;
    }
    if (this.processes.size >= this.o.maxProcesses) return null;
    const p = this.newProcess();
    this.processes.add(p);
    return p;
  }

  /** Start a sandbox process. */
  protected newProcess(): SandboxProcess {
    return new SandboxProcess({
      sandbox: { memoryLimitMb: this.o.memoryLimitMb, defaultTimeoutMs: this.o.defaultTimeoutMs, maxWarmJobs: this.o.maxWarmJobs, maxJobs: this.o.maxJobs },
      maxJobs: this.o.maxWarmJobs, killGraceMs: this.o.killGraceMs, startTimeoutMs: this.o.startTimeoutMs, log: this.o.log,
    });
  }

  /** A chunk is done with its process: keep it for the next (or drop it if it died), and serve a waiting chunk. */
  private release(p: SandboxProcess): void {
    if (this.disposed) { p.kill('cancelled'); return; }
    if (p.alive) this.idle.push(p);
    else this.processes.delete(p);
    this.pump();
  }
}
