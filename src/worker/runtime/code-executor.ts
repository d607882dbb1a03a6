/**
 * What runs shipped map functions. The runtime does not know how: in Node it is an
 * isolated-vm sandbox (executors/sandbox-executor.ts), in a browser it will be a Web Worker.
 */

/** A running call of a shipped function over a chunk of arguments. */
export interface CodeRun {
  /** The function's results, in argument order; rejects with a CrowdComputeError naming the argument that threw. */
  result: Promise<unknown[]>;
  /** Stop the call now (cancellation or deadline). */
  kill(reason: 'cancelled' | 'timeout'): void;
}

/** Runs map jobs' functions, isolated from the worker. */
export interface CodeExecutor {
  /** The source of a job's function (arrives once per job and connection). */
  setCode(jobId: string, code: string): void;
  /** Run the job's function over `args`; the executor enforces `timeoutMs` itself. */
  start(jobId: string, args: unknown[], timeoutMs: number | null): CodeRun;
  /** Release everything (the worker stops). */
  dispose(): void;
}
