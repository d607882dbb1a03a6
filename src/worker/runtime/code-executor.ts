/**
 * What runs shipped map functions. The runtime does not know how: in Node it is an
 * isolated-vm sandbox in a child process (executors/process-sandbox-executor.ts), in a
 * browser a Web Worker (browser/web-worker-executor.ts).
 */

// The error class alone, not the protocol's index: sandbox processes load this file, and the
// index would load zod and every schema into each (twice the start-up CPU, 20 MiB more memory).
import { CrowdComputeError } from '../../protocol/errors.ts';
import type { CodeLanguage } from '../../protocol/messages.ts';
export type { CodeLanguage };

/**
 * Some arguments of a chunk threw: the error names the first of them by its index in the whole
 * job (details.failedArguments lists them all, up to a hundred), and `partialResults` holds
 * the results of the others (null where an argument threw), so that they are kept.
 */
export class ChunkFailedError extends CrowdComputeError {
  /** One entry per argument of the chunk: its result, or null where it threw. */
  readonly partialResults: unknown[];

  constructor(message: string, details: Record<string, unknown>, partialResults: unknown[]) {
    super('CC_ERR_HANDLER_FAILED', message, details);
    this.partialResults = partialResults;
  }
}

/**
 * The shipped function took down the process it ran in: V8 ran out of heap in a way the
 * isolate's limit could not turn into an error (CC_ERR_MEMORY_LIMIT), or the process died
 * otherwise (CC_ERR_SANDBOX_CRASHED). Neither code is retried: the same function would take
 * down the sandbox of the next worker it reached.
 */
export class SandboxCrashError extends CrowdComputeError {}

/** An argument of a chunk that threw, as an executor reports it (its index within the chunk). */
export interface ArgumentFailure {
  index: number;
  name: string;
  message: string;
  stack?: string | undefined;
}

/**
 * The error of a chunk in which `failures` threw: it names the first failed argument by its
 * index in the whole job (`argOffset` + its index in the chunk) and keeps `results`, the
 * others' results (null where one threw). Every executor reports partial failures this way.
 */
export function chunkFailure(jobId: string, argOffset: number, argCount: number, results: unknown[], failures: readonly ArgumentFailure[]): ChunkFailedError {
  const first = failures[0]!;
  const more = failures.length > 1 ? ` (and ${failures.length - 1} more of its ${argCount} arguments)` : '';
  const err = new ChunkFailedError(`job ${jobId}: the function threw on argument ${argOffset + first.index}: ${first.name}: ${first.message}${more}`, {
    argumentIndex: argOffset + first.index,
    failedArguments: failures.slice(0, 100).map((x) => ({ index: argOffset + x.index, name: x.name, message: x.message.slice(0, 300) })),
  }, results);
  if (first.stack) err.stack = first.stack;
  return err;
}

/** A running call of a shipped function over a chunk of arguments. */
export interface CodeRun {
  /**
   * The function's results, in argument order. Rejects with a CrowdComputeError; when some
   * arguments threw and others did not, with a {@link ChunkFailedError} that keeps the others' results.
   */
  result: Promise<unknown[]>;
  /** Stop the call now (cancellation or deadline). */
  kill(reason: 'cancelled' | 'timeout'): void;
}

/** Runs map jobs' functions, isolated from the worker. */
export interface CodeExecutor {
  /** The languages of shipped functions it runs (the worker's hello says them); default JavaScript only. */
  readonly codeLanguages?: readonly CodeLanguage[];
  /**
   * The source of a job's function (arrives once per job and connection), in `language`
   * (JavaScript when absent). An executor that does not run the language fails the job's chunks.
   */
  setCode(jobId: string, code: string, language?: CodeLanguage): void;
  /**
   * Run the job's function over `args`, the chunk whose first argument is number `argOffset`
   * of the job (errors name arguments by their index in the whole job); the executor enforces
   * `timeoutMs` itself.
   */
  start(jobId: string, args: unknown[], timeoutMs: number | null, argOffset?: number): CodeRun;
  /** Release everything (the worker stops). */
  dispose(): void;
}
