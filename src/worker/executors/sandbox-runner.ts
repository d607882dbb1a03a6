/**
 * What runs inside an isolate around a shipped function, and how its answer is read. Shared by
 * the in-process sandbox (sandbox-executor.ts, which loads isolated-vm) and the worker side of
 * the sandbox processes (process-sandbox-executor.ts, which must not).
 */
// The error class alone, not the protocol's index: sandbox processes load this file, and the
// index would load zod and every schema into each (twice the start-up CPU, 20 MiB more memory).
import { CrowdComputeError } from '../../protocol/errors.ts';
import { formatDuration } from '../../protocol/limits.ts';
import { chunkFailure, type ArgumentFailure } from '../runtime/code-executor.ts';

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
 *
 * `__ccRunSync` is the same for a caller that calls synchronously (a sandbox process, which
 * runs one chunk at a time): it returns the text, or null when the function went async, whose
 * promise `__ccAwait` then hands over to be awaited.
 */
export const RUNNER = `
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
};
globalThis.__ccRunSync = function (argsJson) {
  const r = __ccRun(argsJson);
  if (typeof r === 'string') return r;
  globalThis.__ccPending = r;
  return null;
};
globalThis.__ccAwait = function () {
  const p = globalThis.__ccPending;
  globalThis.__ccPending = undefined;
  return p;
};`;

/**
 * What runs in a fresh isolate before the shipped code. WebAssembly goes: its memory is
 * allocated outside the isolate's heap, so the memory limit would not hold it (measured:
 * eight 1 GiB WebAssembly.Memory objects grew the worker by 8 GB under a 64 MiB limit).
 */
export const PRELUDE = `delete globalThis.WebAssembly;`;

/**
 * The results of a chunk from the runner's JSON text: the results in argument order, or a
 * CrowdComputeError (a {@link ChunkFailedError} keeping the others' results when some
 * arguments threw; CC_ERR_HANDLER_FAILED when the results are not JSON).
 */
export function readResults(text: string, jobId: string, argOffset: number, argCount: number): unknown[] {
  const parsed = JSON.parse(text) as unknown;
  if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
    if ('__ccError' in parsed) {
      const e = (parsed as { __ccError: { message: string } }).__ccError;
      throw new CrowdComputeError('CC_ERR_HANDLER_FAILED', `job ${jobId}: ${e.message}`);
    }
    if ('__ccPartial' in parsed) {
      const { results, errors } = (parsed as { __ccPartial: { results: unknown[]; errors: ArgumentFailure[] } }).__ccPartial;
      throw chunkFailure(jobId, argOffset, argCount, results, errors);
    }
  }
  return parsed as unknown[];
}

/** The error of a call stopped at its deadline or cancelled. */
export function stoppedError(reason: 'cancelled' | 'timeout', jobId: string, limitMs: number, byWorker = false): CrowdComputeError {
  return reason === 'timeout'
    ? new CrowdComputeError('CC_ERR_TIMEOUT', byWorker
      ? `job ${jobId}: the function ran longer than ${formatDuration(limitMs)}, this worker's sandbox timeout (--sandbox-timeout), and was stopped`
      : `job ${jobId}: the function ran longer than ${formatDuration(limitMs)}, its task's timeout, and was stopped`, { timeoutMs: limitMs })
    : new CrowdComputeError('CC_ERR_CANCELLED', `job ${jobId}: the task was cancelled and its sandbox stopped`);
}

/**
 * How long a map task may run here: its task's timeout (the job's, or the foreman's default),
 * but never longer than this worker's sandbox timeout, which is the worker owner's cap on what
 * shipped code may take of the machine. `byWorker` says which of the two is the limit.
 */
export function sandboxLimit(taskTimeoutMs: number | null, workerTimeoutMs: number): { ms: number; byWorker: boolean } {
  return taskTimeoutMs === null || workerTimeoutMs < taskTimeoutMs ? { ms: workerTimeoutMs, byWorker: true } : { ms: taskTimeoutMs, byWorker: false };
}

/** What a call that went past the isolate's heap limit is told. */
export function memoryLimitMessage(jobId: string, limitMb: number): string {
  return `job ${jobId}: the function exceeded the sandbox memory limit of ${limitMb} MiB (--sandbox-memory)`;
}
