/**
 * What a worker and its sandbox processes (sandbox-child.ts) say to each other over the IPC
 * channel (advanced serialization). A chunk's arguments and its results each cross as one JSON
 * string, passed into and out of the isolate as it is: one copy of one string each way.
 */
import type { WireError } from '../../protocol/index.ts';

/** The worker to a sandbox process. */
export type ToSandbox =
  /** Keep a job's function source (replacing an older one for the job). */
  | { t: 'code'; jobId: string; code: string }
  /** Drop a job's source and warm isolates. */
  | { t: 'forget'; jobId: string }
  /** Run the job's function over a chunk; one run at a time. */
  | { t: 'run'; jobId: string; argsJson: string; timeoutMs: number }
  /**
   * Run the job's function over several chunks, one after another, each with its own timeout
   * (counted from when this message arrives), and answer once with every chunk's outcome in
   * order. JavaScript sandbox processes only.
   */
  | { t: 'runs'; jobId: string; runs: { argsJson: string; timeoutMs: number }[] };

/** One chunk's outcome in a `runs` answer. */
export type RunOutcome =
  | { text: string }
  | { error: WireError & { stack?: string | undefined } };

/** A sandbox process to the worker. */
export type FromSandbox =
  /** Loaded and ready for runs. */
  | { t: 'ready' }
  /** The run's results, as the runner's JSON text. */
  | { t: 'done'; text: string }
  /** The outcomes of a `runs` message's chunks, in its order. */
  | { t: 'dones'; outcomes: RunOutcome[] }
  /**
   * The run failed as a whole (a CrowdComputeError, with its stack). `fatal`: the process can
   * run nothing more (its interpreter failed fatally); the worker kills it.
   */
  | { t: 'failed'; error: WireError & { stack?: string | undefined }; fatal?: boolean };
