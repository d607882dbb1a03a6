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
import type { CodeExecutor, CodeRun } from '../runtime/code-executor.ts';
import { WORKER_DEFAULTS } from '../runtime/worker-defaults.ts';
import type { SandboxOptions } from './sandbox-executor.ts';
import { SandboxProcess } from './sandbox-process.ts';
import { readResults, sandboxLimit, stoppedError } from './sandbox-runner.ts';

/** Limits of the sandbox processes, besides those of the isolates in them. */
export interface ProcessSandboxOptions extends SandboxOptions {
  /**
   * Sandbox processes at most, each running one chunk at a time; a chunk that finds them all
   * busy waits for one. Default: the machine's cores plus one. Map functions only compute (an
   * isolate has no I/O or timers to wait on), so more would share the same cores, and each
   * costs memory, a start and, per job, an isolate to compile (`npm run bench` at concurrency
   * 50 on 2 cores: one process per task slot made map jobs slower than isolates in the worker's
   * own process, 3 processes made them faster; docs/security.md has the figures).
   */
  maxProcesses: number;
  /** How long past a chunk's timeout its process is killed if it has not answered. Default 2 s. */
  killGraceMs: number;
  /** How long a sandbox process may take to start. Default 60 s. */
  startTimeoutMs: number;
  /** Where the death of a sandbox process is told. Default: nowhere. */
  log: Log;
}

interface Waiter {
  jobId: string;
  resolve(p: SandboxProcess | null): void;
}

/**
 * Runs each chunk in a sandbox process of its own while it runs, so that a process's death is
 * charged to exactly the chunk that ran in it. Processes start when first needed, up to
 * `maxProcesses`, stay for the next chunks (each keeps warm isolates for the jobs it ran, like
 * the in-process sandbox), and are replaced when they die. A chunk's deadline and a
 * cancellation kill its process: nothing inside can outlast them.
 */
export class ProcessSandboxExecutor implements CodeExecutor {
  protected readonly o: ProcessSandboxOptions;
  private readonly jobs = new Map<string, string>();
  private readonly processes = new Set<SandboxProcess>();
  private idle: SandboxProcess[] = [];
  private waiters: Waiter[] = [];
  private disposed = false;

  constructor(options: Partial<ProcessSandboxOptions> = {}) {
    this.o = {
      memoryLimitMb: options.memoryLimitMb ?? WORKER_DEFAULTS.sandboxMemoryMb,
      defaultTimeoutMs: options.defaultTimeoutMs ?? WORKER_DEFAULTS.sandboxTimeoutMs,
      maxWarmJobs: options.maxWarmJobs ?? 16,
      maxJobs: options.maxJobs ?? 1000,
      maxProcesses: Math.max(1, options.maxProcesses ?? availableParallelism() + 1),
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
    const startedAt = Date.now();
    let proc: SandboxProcess | null = null;
    let waiter: Waiter | null = null;
    let stopped: 'cancelled' | 'timeout' | null = null;
    const stopWaiting = (reason: 'cancelled' | 'timeout') => {
      stopped ??= reason;
      if (!waiter) return;
      this.waiters = this.waiters.filter((w) => w !== waiter);
      waiter.resolve(null);
    };
    const result = (async (): Promise<unknown[]> => {
      const code = this.jobs.get(jobId);
      if (code === undefined) throw new CrowdComputeError('CC_ERR_INTERNAL', `job ${jobId}: no code received for this map job`);
      if (this.disposed) throw new CrowdComputeError('CC_ERR_SHUTTING_DOWN', `job ${jobId}: the worker is stopping`);
      const argsJson = JSON.stringify(args);
      proc = this.take(jobId);
      if (!proc) {
        const timer = setTimeout(() => stopWaiting('timeout'), limit);
        proc = await new Promise<SandboxProcess | null>((resolve) => { waiter = { jobId, resolve }; this.waiters.push(waiter); });
        waiter = null;
        clearTimeout(timer);
      }
      const left = limit - (Date.now() - startedAt);
      if (!proc || stopped || left <= 0) {
        if (proc) this.release(proc);
        throw stoppedError(stopped ?? 'timeout', jobId, limit, byWorker);
      }
      try {
        return readResults(await proc.run({ jobId, code, argsJson, timeoutMs: left }), jobId, argOffset, args.length);
      } catch (err) {
        // The process had what was left of the timeout; the error names the task's whole timeout.
        if (err instanceof CrowdComputeError && err.code === 'CC_ERR_TIMEOUT') throw stoppedError('timeout', jobId, limit, byWorker);
        throw err;
      } finally {
        this.release(proc);
      }
    })();
    return {
      result,
      kill: (reason) => {
        if (proc) proc.kill(reason);
        else stopWaiting(reason);
      },
    };
  }

  /** Kill every sandbox process. */
  dispose(): void {
    this.disposed = true;
    for (const p of this.processes) p.kill('cancelled');
    this.processes.clear();
    this.idle = [];
    for (const w of this.waiters.splice(0)) w.resolve(null);
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
    const w = this.waiters.shift();
    if (w) {
      const next = this.take(w.jobId);
      if (next) w.resolve(next);
      else this.waiters.unshift(w);
    }
  }
}
