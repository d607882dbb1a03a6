/**
 * What runs shipped map functions. The runtime does not know how: in Node it is an
 * isolated-vm sandbox (executors/sandbox-executor.ts), in a browser it will be a Web Worker.
 */

import { CrowdComputeError } from '../../protocol/index.ts';

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
  /** The source of a job's function (arrives once per job and connection). */
  setCode(jobId: string, code: string): void;
  /**
   * Run the job's function over `args`, the chunk whose first argument is number `argOffset`
   * of the job (errors name arguments by their index in the whole job); the executor enforces
   * `timeoutMs` itself.
   */
  start(jobId: string, args: unknown[], timeoutMs: number | null, argOffset?: number): CodeRun;
  /** Release everything (the worker stops). */
  dispose(): void;
}
