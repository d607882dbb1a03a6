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
  /** Wall-clock limit of a map task without its own timeout. */
  sandboxTimeoutMs: 60_000,
  /** Log level of the default logger. */
  logLevel: 'info',
} as const;
