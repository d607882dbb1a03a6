/**
 * The Node worker: the runtime (runtime/worker-runtime.ts) with what a Node host adds around
 * it: isolated-vm sandboxes in child processes for shipped code, a status HTTP server, the machine's resources
 * in its hello, a default id from the host name, and pino logs.
 */
/// <reference types="node" preserve="true" />
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { pino, type Logger } from 'pino';
import { WebSocket as WsWebSocket } from 'ws';
import { withOptions } from '../host/ws-options.ts';
import { hostResources } from '../host/host-usage.ts';
import { ProcessSandboxExecutor, type ProcessSandboxOptions } from './executors/process-sandbox-executor.ts';
import { PythonSandboxExecutor } from './executors/python-sandbox-executor.ts';
import { LanguageExecutor } from './executors/language-executor.ts';
import { WorkerRuntime, type WorkerRuntimeOptions } from './runtime/worker-runtime.ts';
import { WORKER_DEFAULTS, checkWorkerOption } from './runtime/worker-defaults.ts';
import { WorkerStatusServer } from './status-server.ts';
import { otelTaskTracer } from './task-tracing.ts';
import { localCredentialsAt } from '../host/local-credentials.ts';

/** What runs shipped code: each job's function in the sandbox for its language. */
function codeExecutor(sandbox: NonNullable<WorkerOptions['sandbox']>, log: ProcessSandboxOptions['log']): LanguageExecutor {
  const { pythonMemoryMb, ...limits } = sandbox;
  return new LanguageExecutor(
    new ProcessSandboxExecutor({ ...limits, log }),
    () => new PythonSandboxExecutor({ ...limits, memoryLimitMb: pythonMemoryMb ?? WORKER_DEFAULTS.pythonSandboxMemoryMb, log }),
  );
}

/** How to run a Node worker. Every option but `foremanUrl` has a default ({@link WORKER_DEFAULTS}). */
export interface WorkerOptions extends Omit<WorkerRuntimeOptions, 'workerId' | 'codeExecutor' | 'log'> {
  /** Unique id; default `CROWDCOMPUTE_WORKER_ID`, else `<hostname>-<pid>-<random>`. */
  workerId?: string;
  /**
   * The worker token (`cct_…`). Default: `CROWDCOMPUTE_WORKER_TOKEN`, else the one a foreman
   * on this machine left in the local credentials file for its URL.
   */
  token?: string;
  /**
   * Accept map jobs: shipped code, run in sandboxes in child processes of this one (JavaScript
   * in isolated-vm isolates, Python in Pyodide interpreters). Default false.
   */
  allowCode?: boolean;
  /**
   * Sandbox limits for shipped code. `memoryLimitMb` is a JavaScript isolate's heap;
   * `pythonMemoryMb` a Python interpreter's whole memory (default 256). JavaScript and Python
   * jobs each have up to `maxProcesses` sandbox processes.
   */
  sandbox?: Partial<Omit<ProcessSandboxOptions, 'log'>> & { pythonMemoryMb?: number };
  /**
   * Port of the status HTTP server (GET / as JSON or, to a browser, a live page; /stats, /health,
   * /metrics, /metrics/prometheus; POST /restart); false = none. Default false. When it is taken,
   * the next free one of the 20 after it is used ({@link Worker.statusPort} says which); 0 = any.
   */
  statusPort?: number | false;
  /** Interface of the status server. Default 127.0.0.1 (this machine only). */
  statusHost?: string;
  /**
   * Host names the status server answers to besides localhost, IP addresses, this machine's
   * hostname and `statusHost` (a DNS name or alias it is reached by). Requests naming any other
   * host are refused with 403, so that a web page cannot read it through DNS rebinding.
   */
  statusHostNames?: string[];
  /** Trust this CA certificate (PEM) for a wss:// foreman with a private certificate. */
  ca?: string | Buffer;
  /** A pino logger; default: one on stderr at `logLevel`. */
  logger?: Logger;
  /** Level of the default logger. Default info. */
  logLevel?: string;
}

/**
 * A worker process's worker: connect it to a foreman, register handlers, start it.
 *
 * ```ts
 * const worker = new Worker({ foremanUrl: 'ws://localhost:8000/ws', allowCode: true });
 * worker.handle('math.*', async (task) => ({ result: task.input.a + task.input.b }));
 * await worker.start();
 * ```
 */
export class Worker extends WorkerRuntime {
  /** The worker's logger. */
  readonly log: Logger;
  private readonly statusOptions: { port: number | false; host: string; hostNames: string[] };
  private statusServer: WorkerStatusServer | null = null;
  private readonly restartToken: string | undefined;

  constructor(options: WorkerOptions) {
    const workerId = options.workerId ?? process.env.CROWDCOMPUTE_WORKER_ID ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 6)}`;
    const urls = Array.isArray(options.foremanUrl) ? options.foremanUrl : String(options.foremanUrl ?? '').split(',');
    const token = options.token ?? process.env.CROWDCOMPUTE_WORKER_TOKEN ?? urls.map((u) => localCredentialsAt(u.trim())?.workerToken).find(Boolean);
    const log = (options.logger ?? pino({ level: options.logLevel ?? WORKER_DEFAULTS.logLevel }, pino.destination(2))).child({ workerId });
    const { allowCode, sandbox, statusPort, statusHost, statusHostNames, logger: _l, logLevel: _ll, ca: _ca, ...runtime } = options;
    if (statusPort !== false) checkWorkerOption('statusPort', statusPort);
    checkWorkerOption('sandboxMemoryMb', sandbox?.memoryLimitMb);
    checkWorkerOption('pythonSandboxMemoryMb', sandbox?.pythonMemoryMb);
    checkWorkerOption('sandboxTimeoutMs', sandbox?.defaultTimeoutMs);
    checkWorkerOption('sandboxProcesses', sandbox?.maxProcesses);
    super({
      ...(token ? { token } : {}),
      // The runtime speaks the standard WebSocket API; in Node, the ws package's implementation
      // of it is faster than Node's global WebSocket (npm run bench, latency p50 0.92 vs 1.00 ms,
      // p99 2.8 vs 3.7 ms, medians of 3 interleaved rounds).
      webSocket: options.ca ? withOptions({ ca: options.ca }) : WsWebSocket as unknown as typeof WebSocket,
      ...runtime,
      workerId,
      log,
      codeExecutor: (allowCode ?? WORKER_DEFAULTS.allowCode) ? codeExecutor(sandbox ?? {}, log) : null,
      resources: { ...hostResources(), ...(options.resources ?? {}) },
      // Spans for whatever OpenTelemetry tracer provider the process registered (none: no cost).
      tracer: options.tracer === undefined ? otelTaskTracer : options.tracer,
    });
    this.log = log;
    this.statusOptions = { port: statusPort ?? false, host: statusHost ?? '127.0.0.1', hostNames: statusHostNames ?? [] };
    this.restartToken = token;
  }

  /** The status server's port (when enabled and started): the one asked for, or the free one found after it. */
  get statusPort(): number | null { return this.statusServer?.port ?? null; }

  protected override async beforeStart(): Promise<void> {
    if (this.statusOptions.port === false) return;
    this.statusServer = new WorkerStatusServer(this, { port: this.statusOptions.port, host: this.statusOptions.host, hostNames: this.statusOptions.hostNames, restartToken: this.restartToken ?? null });
    await this.statusServer.start();
    const taken = this.statusServer.takenPorts;
    if (taken.length > 0) {
      const which = taken.length === 1 ? `port ${taken[0]} was` : `ports ${taken[0]} to ${taken[taken.length - 1]} were`;
      this.log.warn({ requestedPort: this.statusOptions.port, port: this.statusServer.port }, `status server: ${which} taken; listening on ${this.statusServer.port} instead`);
    }
  }

  protected override async afterStop(): Promise<void> {
    await this.statusServer?.stop();
  }
}
