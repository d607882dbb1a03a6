import { CAPACITY_LIMIT, JOB_LIMITS, RESOURCE_LIMITS, UNITS, boundProblem, type Bound } from '../../protocol/index.ts';

/**
 * The default of every worker option that has one, shared by the Worker API and the
 * `crowdcompute worker` command, so each is written once.
 */
export const WORKER_DEFAULTS = {
  /** Tasks run at once. */
  maxConcurrentTasks: 4,
  /** Run shipped map functions. */
  allowCode: false,
  /** Base delay between reconnection attempts (doubles, jittered). */
  reconnectIntervalMs: 1_000,
  /** Give up reconnecting after this many failures; -1 = never. */
  maxReconnectAttempts: -1,
  /** Reconnect when the connection drops. */
  autoRestart: true,
  /** After a timeout or cancel fires a handler's AbortSignal, how long it may take to return. */
  timeoutGraceMs: 1_000,
  /** On stop, how long running tasks may take to finish before they are handed back. */
  drainTimeoutMs: 30_000,
  /** Port of the worker's status server when started from the CLI. */
  statusPort: 8001,
  /** Heap limit of each sandbox isolate, MiB. */
  sandboxMemoryMb: 128,
  /**
   * Memory of each Python interpreter (its WebAssembly memory), MiB. Pyodide takes about 30 MiB
   * of it at start, and Python objects are larger than JavaScript's: 256 leaves a map function
   * about 220 MiB.
   */
  pythonSandboxMemoryMb: 256,
  /** Wall-clock limit of a map task without its own timeout. */
  sandboxTimeoutMs: 60_000,
  /** Log level of the default logger. */
  logLevel: 'info',
} as const;

const { HOUR, DAY } = UNITS;

/**
 * The range of every numeric worker option, with its flag on `crowdcompute worker`, so that an
 * option out of range is refused naming the option, the flag and the limit. The limits are far
 * beyond real use; a timer longer than 24 days would fire at once.
 */
export const WORKER_BOUNDS = {
  maxConcurrentTasks: { flag: '--concurrency', ...CAPACITY_LIMIT },
  heartbeatIntervalMs: { flag: '--heartbeat-interval', min: 1, max: HOUR, unit: 'ms' },
  reconnectIntervalMs: { flag: '--reconnect-interval', min: 1, max: HOUR, unit: 'ms' },
  maxReconnectAttempts: { flag: '--max-reconnect-attempts', min: -1, max: 1_000_000_000 },
  timeoutGraceMs: { min: 0, max: HOUR, unit: 'ms' },
  drainTimeoutMs: { flag: '--drain-timeout', min: 0, max: DAY, unit: 'ms' },
  statusPort: { flag: '--status-port', min: 0, max: 65_535 },
  // isolated-vm takes no less than 8 MiB; 64 GiB is more than one task's heap should ever be.
  sandboxMemoryMb: { flag: '--sandbox-memory', min: 8, max: 65_536, unit: 'MiB' },
  // Pyodide starts with about 30 MiB of its own; WebAssembly (32-bit) addresses at most 4 GiB.
  pythonSandboxMemoryMb: { flag: '--python-memory', min: 64, max: 4_096, unit: 'MiB' },
  sandboxTimeoutMs: { flag: '--sandbox-timeout', ...JOB_LIMITS.timeoutMs },
  // Each sandbox process is a Node process of its own (about 14 MiB and 0.2 s of CPU to start).
  sandboxProcesses: { flag: '--sandbox-processes', min: 1, max: 1_024 },
  cpuCores: { flag: '--cpus', ...RESOURCE_LIMITS.cpu, fractional: false },
  memoryMb: { flag: '--memory', ...RESOURCE_LIMITS.memoryMb },
  gpu: { flag: '--gpus', ...RESOURCE_LIMITS.gpu },
} as const satisfies Record<string, Bound & { flag?: string }>;

/** Refuse a worker option out of its range: `Worker: drainTimeoutMs (--drain-timeout) must be at most 86400000 ms (24 h)`. */
export function checkWorkerOption(key: keyof typeof WORKER_BOUNDS, value: unknown): void {
  if (value === undefined) return;
  const bound: Bound & { flag?: string } = WORKER_BOUNDS[key];
  const problem = boundProblem(value, bound);
  if (problem) throw new RangeError(`Worker: ${key}${bound.flag ? ` (${bound.flag})` : ''} ${problem}`);
}
