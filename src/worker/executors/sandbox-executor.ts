import ivm from 'isolated-vm';
// The error class alone, not the protocol's index: sandbox processes load this file, and the
// index would load zod and every schema into each (twice the start-up CPU, 20 MiB more memory).
import { CrowdComputeError } from '../../protocol/errors.ts';
import type { CodeExecutor, CodeRun } from '../runtime/code-executor.ts';
import { WORKER_DEFAULTS } from '../runtime/worker-defaults.ts';
import { PRELUDE, RUNNER, memoryLimitMessage, readResults, sandboxLimit, stoppedError } from './sandbox-runner.ts';

/** Limits of the sandbox. */
export interface SandboxOptions {
  /** Heap limit of each isolate. Default 128 MiB. */
  memoryLimitMb: number;
  /** Wall-clock limit of a map task on this worker (`--sandbox-timeout`): a task whose own timeout is shorter stops at its own. Default 60 s. */
  defaultTimeoutMs: number;
  /** Map jobs whose idle isolates are kept warm. Default 16. */
  maxWarmJobs: number;
  /** Map jobs whose source is remembered (code arrives once per job and connection). Default 1000. */
  maxJobs: number;
  /**
   * Call into the isolate synchronously, blocking this thread while the function runs: for a
   * process that runs one chunk at a time and nothing else (a sandbox process), where it saves
   * the hop through isolated-vm's thread pool that an async call makes (measured: about 60 us
   * per call async, 12 us sync, for a function that sums 1..10,000). Default false.
   */
  blocking?: boolean;
}

interface Warm {
  isolate: ivm.Isolate;
  run: ivm.Reference<(argsJson: string) => string | Promise<string>>;
  /** The runner's synchronous entry and the awaiting of what it left pending (see sandbox-runner.ts). */
  runSync: ivm.Reference<(argsJson: string) => string | null>;
  awaitPending: ivm.Reference<() => Promise<string>>;
}

interface JobEntry {
  code: string;
  idle: Warm[];
}

/**
 * Runs shipped map functions in isolated-vm isolates: separate V8 heaps with a memory limit,
 * no Node APIs (no require, process, fs, network), killed at a wall-clock deadline.
 *
 * Code arrives once per job (`setCode`); each concurrent task of the job takes a warm isolate
 * from the job's pool, so compilation is paid once per isolate, not per task. An isolate that
 * timed out, hit its memory limit or was cancelled is disposed, never reused.
 *
 * The isolates share this process, and some heap exhaustion (an object or a Map grown without
 * end) makes V8 abort it. Workers therefore run this executor in sandbox processes of their own
 * (process-sandbox-executor.ts); use it directly only with code you trust not to do that.
 */
export class SandboxExecutor implements CodeExecutor {
  private readonly jobs = new Map<string, JobEntry>();
  private readonly o: SandboxOptions;
  private disposed = false;

  constructor(options: Partial<SandboxOptions> = {}) {
    // isolated-vm's own instruction: on Node 20 and later it needs the startup snapshot off.
    // Without it, isolates can crash the process; say so now rather than at the first map task.
    if (!process.execArgv.includes('--no-node-snapshot') && !/--no-node-snapshot\b/.test(process.env.NODE_OPTIONS ?? '')) {
      throw new Error('a SandboxExecutor needs Node started with --no-node-snapshot, which isolated-vm requires: '
        + 'run `node --no-node-snapshot your-script.ts`, or set NODE_OPTIONS=--no-node-snapshot (a ProcessSandboxExecutor, which workers use, starts its processes with it)');
    }
    this.o = {
      memoryLimitMb: options.memoryLimitMb ?? WORKER_DEFAULTS.sandboxMemoryMb,
      defaultTimeoutMs: options.defaultTimeoutMs ?? WORKER_DEFAULTS.sandboxTimeoutMs,
      maxWarmJobs: options.maxWarmJobs ?? 16,
      maxJobs: options.maxJobs ?? 1000,
      blocking: options.blocking ?? false,
    };
  }

  /** True when the job's source has arrived. */
  hasCode(jobId: string): boolean { return this.jobs.has(jobId); }

  /** Keep a job's function source (a new source for the same job replaces the old). */
  setCode(jobId: string, code: string): void {
    const existing = this.jobs.get(jobId);
    if (existing && existing.code === code) return;
    if (existing) this.dropJob(jobId);
    // Oldest first out (Map iteration is insertion order). Sources are small and kept long;
    // warm isolates are large, so only the newest jobs keep theirs.
    while (this.jobs.size >= this.o.maxJobs) this.dropJob(this.jobs.keys().next().value!);
    this.jobs.set(jobId, { code, idle: [] });
    let n = this.jobs.size;
    for (const e of this.jobs.values()) {
      if (n-- <= this.o.maxWarmJobs) break;
      for (const w of e.idle.splice(0)) if (!w.isolate.isDisposed) w.isolate.dispose();
    }
  }

  private dropJob(jobId: string): void {
    const e = this.jobs.get(jobId);
    if (!e) return;
    for (const w of e.idle) if (!w.isolate.isDisposed) w.isolate.dispose();
    this.jobs.delete(jobId);
  }

  private async warm(jobId: string, entry: JobEntry): Promise<Warm> {
    const cached = entry.idle.pop();
    if (cached && !cached.isolate.isDisposed) return cached;
    const isolate = new ivm.Isolate({ memoryLimit: this.o.memoryLimitMb });
    try {
      const context = await isolate.createContext();
      await context.eval(PRELUDE, { timeout: 1_000 });
      await context.eval(`const __ccFn = (${entry.code}\n);\n${RUNNER}`, { timeout: 5_000, filename: `job-${jobId}.js` });
      const run = await context.global.get('__ccRun', { reference: true }) as ivm.Reference<(argsJson: string) => string>;
      const runSync = await context.global.get('__ccRunSync', { reference: true }) as ivm.Reference<(argsJson: string) => string | null>;
      const awaitPending = await context.global.get('__ccAwait', { reference: true }) as ivm.Reference<() => Promise<string>>;
      return { isolate, run, runSync, awaitPending };
    } catch (err) {
      if (!isolate.isDisposed) isolate.dispose();
      throw new CrowdComputeError('CC_ERR_CODE_COMPILE', `job ${jobId}: the shipped function failed to load in the sandbox: ${(err as Error).message}`);
    }
  }

  /** Run the job's function over `args`. Rejects with a CrowdComputeError naming what went wrong. */
  start(jobId: string, args: unknown[], timeoutMs: number | null, argOffset = 0): CodeRun {
    const run = this.startJson(jobId, JSON.stringify(args), timeoutMs);
    return { result: run.result.then((text) => readResults(text, jobId, argOffset, args.length)), kill: run.kill };
  }

  /**
   * Run the job's function over a chunk given as JSON text; resolves with the runner's JSON
   * text, which {@link readResults} reads (the sandbox processes pass both strings on as they are).
   */
  startJson(jobId: string, argsJson: string, timeoutMs: number | null): { result: Promise<string>; kill(reason: 'cancelled' | 'timeout'): void } {
    let killWith: ((reason: 'cancelled' | 'timeout') => void) | null = null;
    let killedBefore: 'cancelled' | 'timeout' | null = null;
    const { ms: limit, byWorker } = sandboxLimit(timeoutMs, this.o.defaultTimeoutMs);
    const result = (async (): Promise<string> => {
      const entry = this.jobs.get(jobId);
      if (!entry) throw new CrowdComputeError('CC_ERR_INTERNAL', `job ${jobId}: no code received for this map job`);
      const w = await this.warm(jobId, entry);
      if (killedBefore) { w.isolate.dispose(); throw stoppedError(killedBefore, jobId, limit, byWorker); }
      let killed: 'cancelled' | 'timeout' | null = null;
      killWith = (reason) => { killed = reason; if (!w.isolate.isDisposed) w.isolate.dispose(); };
      // The host-side deadline covers what isolated-vm's own timeout cannot: awaited promises.
      const deadline = setTimeout(() => killWith?.('timeout'), limit + 50);
      try {
        let text: string;
        if (this.o.blocking) {
          const started = Date.now();
          const sync = w.runSync.applySync(undefined, [argsJson], { timeout: limit });
          text = sync ?? (await w.awaitPending.apply(undefined, [], { timeout: Math.max(1, limit - (Date.now() - started)), result: { promise: true } }) as string);
        } else {
          text = await w.run.apply(undefined, [argsJson], { timeout: limit, result: { promise: true } }) as string;
        }
        if (!w.isolate.isDisposed && !this.disposed && this.jobs.get(jobId) === entry) entry.idle.push(w);
        return text;
      } catch (err) {
        if (!w.isolate.isDisposed) w.isolate.dispose();
        if (killed) throw stoppedError(killed, jobId, limit, byWorker);
        const message = (err as Error).message ?? String(err);
        if (/memory limit/i.test(message)) {
          throw new CrowdComputeError('CC_ERR_MEMORY_LIMIT', memoryLimitMessage(jobId, this.o.memoryLimitMb), { limitMb: this.o.memoryLimitMb });
        }
        if (/timed out/i.test(message)) throw stoppedError('timeout', jobId, limit, byWorker);
        throw new CrowdComputeError('CC_ERR_HANDLER_FAILED', `job ${jobId}: ${message}`);
      } finally {
        clearTimeout(deadline);
      }
    })();
    return {
      result,
      kill: (reason) => { if (killWith) killWith(reason); else killedBefore = reason; },
    };
  }

  /** Forget a job: its source and its warm isolates. */
  forget(jobId: string): void { this.dropJob(jobId); }

  /** Dispose of every isolate. */
  dispose(): void {
    this.disposed = true;
    for (const id of [...this.jobs.keys()]) this.dropJob(id);
  }
}
