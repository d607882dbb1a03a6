/**
 * A browser tab as a worker: the worker runtime every Node worker runs (the same protocol,
 * heartbeats, result batching, reconnection with backoff), with map functions run in Web
 * Workers (web-worker-executor.ts). It takes map tasks only; the foreman, seeing a join-link
 * credential, sends it nothing else. The join page (ui/join.js) drives it; nothing here
 * touches the page.
 */
import { WorkerRuntime } from '../runtime/worker-runtime.ts';
import { consoleLog } from '../../link/log.ts';
import { WebWorkerExecutor } from './web-worker-executor.ts';

/** Most tasks a tab runs at once, whatever the device says it has. */
export const MAX_BROWSER_CONCURRENCY = 8;

/** What a tab has done and is doing, for the page. */
export interface BrowserWorkerState {
  workerId: string;
  connected: boolean;
  paused: boolean;
  stopped: boolean;
  /** Why it stopped, when it stopped for a reason of its own (a refused or expired link). */
  stoppedBecause: string | null;
  capacity: number;
  running: number;
  completed: number;
  failed: number;
  /** Milliseconds of work done (summed over tasks). */
  busyMs: number;
  /** The job of the task that started last, if any is running: its name if it has one, else its id. */
  currentJob: string | null;
  since: number;
}

/** How a tab joins. */
export interface BrowserWorkerOptions {
  /** The foreman's WebSocket URL (ws:// or wss://…/ws). */
  foremanUrl: string;
  /** The join link's credential (a worker token, cct_…); none for a foreman run with --insecure. */
  token?: string;
  /** Tasks at once; default: the device's cores less one, at most {@link MAX_BROWSER_CONCURRENCY}. */
  capacity?: number;
  /** Called whenever the state changes. */
  onChange?: (state: BrowserWorkerState) => void;
  /** Where the foreman serves Pyodide (`/pyodide/<version>/`, named by the join page); without it the tab runs no Python. */
  pyodideUrl?: string;
}

/** The capacity a device suggests: its logical cores less one for the page, between 1 and the cap. */
export function suggestedCapacity(cores: number | undefined): number {
  return Math.max(1, Math.min(MAX_BROWSER_CONCURRENCY, (cores ?? 2) - 1));
}

/** A tab's worker: start it, pause and resume it, change its concurrency, leave. */
export class BrowserWorker {
  readonly runtime: WorkerRuntime;
  private readonly onChange: (state: BrowserWorkerState) => void;
  private currentJob: string | null = null;
  private busyMs = 0;
  private stoppedBecause: string | null = null;
  private readonly since = Date.now();

  constructor(options: BrowserWorkerOptions) {
    const capacity = Math.min(MAX_BROWSER_CONCURRENCY, options.capacity ?? suggestedCapacity(navigator.hardwareConcurrency));
    const agent = navigator.userAgent;
    this.runtime = new WorkerRuntime({
      foremanUrl: options.foremanUrl,
      workerId: `browser-${crypto.randomUUID().slice(0, 8)}`,
      token: options.token,
      maxConcurrentTasks: capacity,
      codeExecutor: new WebWorkerExecutor(options.pyodideUrl === undefined ? {} : { pyodideUrl: options.pyodideUrl }),
      resources: { cpuCores: navigator.hardwareConcurrency, runtime: `browser ${browserName(agent)}`, platform: navigator.platform || 'unknown', userAgent: agent.slice(0, 300) },
      log: consoleLog('warn'),
    });
    this.onChange = options.onChange ?? (() => {});
    const changed = () => this.onChange(this.state);
    for (const event of ['connected', 'disconnected', 'paused', 'stopped']) this.runtime.on(event, changed);
    this.runtime.on('taskStarted', (t: { jobId: string }) => { this.currentJob = this.runtime.jobName(t.jobId) ?? `job ${t.jobId.slice(0, 8)}`; changed(); });
    this.runtime.on('taskFinished', (o: { durationMs?: number }) => {
      this.busyMs += o.durationMs ?? 0;
      if (this.runtime.runningTasks.length === 0) this.currentJob = null;
      changed();
    });
    this.runtime.on('error', (err: Error) => { this.stoppedBecause = err.message; changed(); });
  }

  /** Connect and take work. Resolves once the foreman has accepted the tab. */
  async start(): Promise<void> {
    await this.runtime.start();
  }

  pause(): void { this.runtime.pause(); }
  resume(): void { this.runtime.resume(); }
  setCapacity(n: number): void { this.runtime.setCapacity(Math.min(MAX_BROWSER_CONCURRENCY, n)); this.onChange(this.state); }

  /** Leave now: running tasks go back to the queue at once. Call it when the page goes away. */
  leave(): void { this.runtime.leave('left (the page was closed)'); }

  get state(): BrowserWorkerState {
    const r = this.runtime;
    return {
      workerId: r.workerId, connected: r.connected, paused: r.paused, stopped: r.status === 'stopped' || r.status === 'draining',
      stoppedBecause: this.stoppedBecause, capacity: r.capacity, running: r.runningTasks.length,
      completed: r.stats.tasksCompleted, failed: r.stats.tasksFailed, busyMs: this.busyMs, currentJob: this.currentJob, since: this.since,
    };
  }
}

/** "Chrome 131", "Firefox 133", "Safari 18": enough to tell browsers apart in a list. */
export function browserName(agent: string): string {
  for (const [name, re] of [['Edge', /Edg\/(\d+)/], ['Firefox', /Firefox\/(\d+)/], ['Chrome', /Chrom(?:e|ium)\/(\d+)/], ['Safari', /Version\/(\d+).*Safari/]] as const) {
    const m = re.exec(agent);
    if (m) return `${name} ${m[1]}`;
  }
  return 'unknown';
}
