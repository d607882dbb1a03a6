import ivm from 'isolated-vm';
import { CrowdComputeError } from '../../protocol/index.ts';
import { chunkFailure, type ArgumentFailure, type CodeExecutor, type CodeRun } from '../runtime/code-executor.ts';
import { WORKER_DEFAULTS } from '../runtime/worker-defaults.ts';

/** Limits of the sandbox. */
export interface SandboxOptions {
  /** Heap limit of each isolate. Default 128 MiB. */
  memoryLimitMb: number;
  /** Wall-clock limit of a task that has no timeoutMs of its own. Default 60 s. */
  defaultTimeoutMs: number;
  /** Map jobs whose idle isolates are kept warm. Default 16. */
  maxWarmJobs: number;
  /** Map jobs whose source is remembered (code arrives once per job and connection). Default 1000. */
  maxJobs: number;
}

/**
 * The code that runs inside each isolate around the shipped function. Arguments go in and
 * results come out as JSON text: one string copy each way is cheaper than structured clone
 * of many small values, and it bounds what can cross to plain data.
 *
 * An argument that throws does not stop the others: the chunk's results come back with an
 * error per argument that threw, so the arguments that did not keep their results.
 *
 * The loop stays synchronous while the function returns plain values, so isolated-vm's
 * `timeout` (which covers synchronous execution) stops an infinite loop; an async function
 * switches to an awaiting loop, bounded by the host-side deadline instead.
 */
const RUNNER = `
const __ccError = (i, e) => ({ index: i,
  message: String(e && e.message !== undefined ? e.message : e), name: e && e.name ? String(e.name) : 'Error',
  stack: e && e.stack ? String(e.stack) : undefined });
const __ccJson = (out, errors) => { try { return JSON.stringify(errors.length ? { __ccPartial: { results: out, errors } } : out); } catch (e) {
  return JSON.stringify({ __ccError: __ccError(-1, { name: 'TypeError', message: 'the results cannot be turned into JSON (' + String(e && e.message) + ')' }) }); } };
if (typeof __ccFn !== 'function') throw new TypeError('the shipped code is a ' + typeof __ccFn + ', not a function');
globalThis.__ccRun = function (argsJson) {
  const args = JSON.parse(argsJson);
  const out = new Array(args.length).fill(null);
  const errors = [];
  for (let i = 0; i < args.length; i++) {
    let v;
    try { v = __ccFn(args[i]); } catch (e) { errors.push(__ccError(i, e)); continue; }
    if (v !== null && typeof v === 'object' && typeof v.then === 'function') {
      return (async () => {
        try { out[i] = await v; } catch (e) { errors.push(__ccError(i, e)); }
        for (let j = i + 1; j < args.length; j++) {
          try { out[j] = await __ccFn(args[j]); } catch (e) { errors.push(__ccError(j, e)); }
        }
        return __ccJson(out, errors);
      })();
    }
    out[i] = v;
  }
  return __ccJson(out, errors);
};`;

/**
 * What runs in a fresh isolate before the shipped code. WebAssembly goes: its memory is
 * allocated outside the isolate's heap, so the memory limit would not hold it (measured:
 * eight 1 GiB WebAssembly.Memory objects grew the worker by 8 GB under a 64 MiB limit).
 */
const PRELUDE = `delete globalThis.WebAssembly;`;

interface Warm {
  isolate: ivm.Isolate;
  run: ivm.Reference<(argsJson: string) => string | Promise<string>>;
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
 */
export class SandboxExecutor implements CodeExecutor {
  private readonly jobs = new Map<string, JobEntry>();
  private readonly o: SandboxOptions;
  private disposed = false;

  constructor(options: Partial<SandboxOptions> = {}) {
    // isolated-vm's own instruction: on Node 20 and later it needs the startup snapshot off.
    // Without it, isolates can crash the process; say so now rather than at the first map task.
    if (!process.execArgv.includes('--no-node-snapshot') && !/--no-node-snapshot\b/.test(process.env.NODE_OPTIONS ?? '')) {
      throw new Error('running shipped code (allowCode) needs Node started with --no-node-snapshot, which isolated-vm requires: '
        + 'run `node --no-node-snapshot your-script.ts`, or set NODE_OPTIONS=--no-node-snapshot (the crowdcompute command does this itself)');
    }
    this.o = {
      memoryLimitMb: options.memoryLimitMb ?? WORKER_DEFAULTS.sandboxMemoryMb,
      defaultTimeoutMs: options.defaultTimeoutMs ?? WORKER_DEFAULTS.sandboxTimeoutMs,
      maxWarmJobs: options.maxWarmJobs ?? 16,
      maxJobs: options.maxJobs ?? 1000,
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
      return { isolate, run };
    } catch (err) {
      if (!isolate.isDisposed) isolate.dispose();
      throw new CrowdComputeError('CC_ERR_CODE_COMPILE', `job ${jobId}: the shipped function failed to load in the sandbox: ${(err as Error).message}`);
    }
  }

  /** Run the job's function over `args`. Rejects with a CrowdComputeError naming what went wrong. */
  start(jobId: string, args: unknown[], timeoutMs: number | null, argOffset = 0): CodeRun {
    let killWith: ((reason: 'cancelled' | 'timeout') => void) | null = null;
    let killedBefore: 'cancelled' | 'timeout' | null = null;
    const limit = timeoutMs ?? this.o.defaultTimeoutMs;
    const result = (async (): Promise<unknown[]> => {
      const entry = this.jobs.get(jobId);
      if (!entry) throw new CrowdComputeError('CC_ERR_INTERNAL', `job ${jobId}: no code received for this map job`);
      const w = await this.warm(jobId, entry);
      if (killedBefore) { w.isolate.dispose(); throw this.killError(killedBefore, jobId, limit); }
      let killed: 'cancelled' | 'timeout' | null = null;
      killWith = (reason) => { killed = reason; if (!w.isolate.isDisposed) w.isolate.dispose(); };
      // The host-side deadline covers what isolated-vm's own timeout cannot: awaited promises.
      const deadline = setTimeout(() => killWith?.('timeout'), limit + 50);
      try {
        const text = await w.run.apply(undefined, [JSON.stringify(args)], { timeout: limit, result: { promise: true } }) as string;
        const parsed = JSON.parse(text) as unknown;
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed) && '__ccError' in parsed) {
          const e = (parsed as { __ccError: { message: string } }).__ccError;
          throw new CrowdComputeError('CC_ERR_HANDLER_FAILED', `job ${jobId}: ${e.message}`);
        }
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed) && '__ccPartial' in parsed) {
          const { results, errors } = (parsed as { __ccPartial: { results: unknown[]; errors: ArgumentFailure[] } }).__ccPartial;
          throw chunkFailure(jobId, argOffset, args.length, results, errors);
        }
        if (!w.isolate.isDisposed && !this.disposed && this.jobs.get(jobId) === entry) entry.idle.push(w);
        return parsed as unknown[];
      } catch (err) {
        if (!w.isolate.isDisposed && !(err instanceof CrowdComputeError)) w.isolate.dispose();
        else if (!w.isolate.isDisposed && this.jobs.get(jobId) === entry) entry.idle.push(w);
        if (killed) throw this.killError(killed, jobId, limit);
        if (err instanceof CrowdComputeError) throw err;
        const message = (err as Error).message ?? String(err);
        if (/memory limit/i.test(message)) {
          throw new CrowdComputeError('CC_ERR_MEMORY_LIMIT', `job ${jobId}: the function exceeded the sandbox memory limit of ${this.o.memoryLimitMb} MiB (--sandbox-memory)`, { limitMb: this.o.memoryLimitMb });
        }
        if (/timed out/i.test(message)) throw this.killError('timeout', jobId, limit);
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

  private killError(reason: 'cancelled' | 'timeout', jobId: string, limit: number): CrowdComputeError {
    return reason === 'timeout'
      ? new CrowdComputeError('CC_ERR_TIMEOUT', `job ${jobId}: the function ran longer than ${limit} ms and was stopped`, { timeoutMs: limit })
      : new CrowdComputeError('CC_ERR_CANCELLED', `job ${jobId}: the task was cancelled and its sandbox stopped`);
  }

  /** Dispose of every isolate. */
  dispose(): void {
    this.disposed = true;
    for (const id of [...this.jobs.keys()]) this.dropJob(id);
  }
}
