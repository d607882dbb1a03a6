/**
 * One sandbox process: a child of the worker (sandbox-child.ts) that runs one chunk at a time
 * in isolated-vm isolates, supervised from here. The worker enforces the chunk's deadline by
 * killing the process, so nothing the code does inside (a loop isolated-vm's timeout misses,
 * `Atomics.wait`) outlives it; and when the process dies under a chunk, that chunk's call fails
 * with the reason (V8's heap exhausted, or a crash), while the worker carries on.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { CrowdComputeError } from '../../protocol/index.ts';
import type { Log } from '../../link/log.ts';
import { SandboxCrashError } from '../runtime/code-executor.ts';
import type { SandboxOptions } from './sandbox-executor.ts';
import type { FromSandbox, RunOutcome, ToSandbox } from './sandbox-messages.ts';
import { memoryLimitMessage, stoppedError } from './sandbox-runner.ts';

/** How a sandbox process is started and bounded. */
export interface SandboxProcessParams {
  /** The limits of the isolates inside. */
  sandbox: SandboxOptions;
  /** Job sources the process holds at once; the least recently used beyond it are forgotten. */
  maxJobs: number;
  /** How long past a chunk's own timeout the process is killed if it has not answered. */
  killGraceMs: number;
  /** How long the process may take to start. */
  startTimeoutMs: number;
  log: Log;
  /**
   * The program the process runs, when not the JavaScript sandbox (sandbox-child.ts): its
   * path, its arguments after the limits, and Node flags besides the worker's `--conditions`.
   */
  entry?: { path: string; args: string[]; execArgv: string[] } | undefined;
}

/** A chunk to run. */
export interface SandboxRunParams {
  jobId: string;
  /** The job's function source; sent first when this process does not hold it yet. */
  code: string;
  argsJson: string;
  timeoutMs: number;
}

// From source (.ts, a checkout or the tests) the child is the .ts file beside this one; from
// the package, the compiled .js.
const CHILD = fileURLToPath(new URL(`./sandbox-child${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

/**
 * V8's words when a heap cannot grow (isolated-vm's handler prints its heap statistics with
 * `is_heap_oom = 1`; Node's own says "JavaScript heap out of memory").
 */
const HEAP_OOM = /is_heap_oom = 1|heap out of memory|Fatal process out of memory|Reached heap limit/i;
/** Other fatal errors V8 reports before aborting: an abort with one of these is not a heap exhaustion. */
const OTHER_FATAL = /Check failed|Fatal error in|Debug check failed/;
/** The end of the child's stderr kept to tell why it died. */
const STDERR_TAIL = 16 * 1024;

/**
 * The flags a sandbox process starts with: isolated-vm needs the startup snapshot off, and the
 * worker's `--conditions` (e.g. running from source) resolve the same modules in the child.
 * Nothing else is passed on: a worker run under `node --test` or `--inspect` does not make
 * its sandboxes tests or debug targets.
 */
function childExecArgv(): string[] {
  const out = ['--no-node-snapshot'];
  const argv = process.execArgv;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--conditions=') || a.startsWith('-C=')) out.push(a);
    else if ((a === '--conditions' || a === '-C') && argv[i + 1] !== undefined) out.push(a, argv[++i]!);
  }
  return out;
}

/**
 * The environment of a sandbox process: what Node needs to run, not the worker's (its token,
 * database URLs, NODE_OPTIONS preloads). The shipped code cannot read it anyway (no `process`
 * in an isolate); this keeps it out of the process's memory too.
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const k of ['PATH', 'SystemRoot', 'TMPDIR', 'TEMP', 'TMP']) if (process.env[k] !== undefined) env[k] = process.env[k];
  return env;
}

interface Pending {
  jobId: string;
  limitMs: number;
  resolve(text: string): void;
  /** Set for several chunks sent at once: their outcomes. */
  resolveMany?: (outcomes: RunOutcome[]) => void;
  reject(err: Error): void;
}

/** One supervised sandbox process (see the file's comment). */
export class SandboxProcess {
  /** Job sources this process holds, least recently used first. */
  readonly codes = new Map<string, string>();
  /** When this process last finished a chunk (picks the process to reuse). */
  lastUsed = 0;
  private readonly child: ChildProcess;
  private readonly p: SandboxProcessParams;
  private state: 'starting' | 'ready' | 'dead' = 'starting';
  private readonly ready: Promise<void>;
  private pending: Pending | null = null;
  private deadline: ReturnType<typeof setTimeout> | null = null;
  private stderrTail = '';
  private killedFor: 'cancelled' | 'timeout' | null = null;
  /** Why the process did not start, when it did not. */
  private startError: string | null = null;
  private readyNow: (() => void) | null = null;
  private notReady: (() => void) | null = null;

  constructor(params: SandboxProcessParams) {
    this.p = params;
    const entry = params.entry ?? { path: CHILD, args: [], execArgv: [] };
    this.child = fork(entry.path, [JSON.stringify(params.sandbox), ...entry.args], {
      execArgv: [...childExecArgv(), ...entry.execArgv], serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: childEnv(),
    });
    // An idle sandbox process does not keep the worker's process alive; a running chunk's
    // deadline timer does.
    this.child.unref();
    this.child.channel?.unref();
    // Its stderr is a pipe, a socket: it can be unref'd.
    (this.child.stderr as Socket).unref();
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (d: string) => {
      this.stderrTail += d;
      if (this.stderrTail.length > 2 * STDERR_TAIL) this.stderrTail = this.stderrTail.slice(-STDERR_TAIL);
    });
    this.child.on('message', (m: FromSandbox) => this.onMessage(m));
    // 'close' comes after stderr has ended, so the reason for a death is all there.
    this.child.once('close', (code, signal) => this.onClose(code, signal));
    // The process could not be started or signalled: a fault of this worker, not of the code.
    this.child.once('error', (err) => {
      const message = `the sandbox process failed: ${err.message}`;
      this.p.log.error({ err, pid: this.child.pid }, message);
      if (this.state === 'starting') this.startError ??= message;
      const p = this.takePending();
      this.kill('cancelled');
      p?.reject(new CrowdComputeError('CC_ERR_INTERNAL', `job ${p.jobId}: ${message}`));
    });
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.startError = `the sandbox process did not start within ${params.startTimeoutMs} ms`;
        this.kill('cancelled');
      }, params.startTimeoutMs);
      this.readyNow = () => { clearTimeout(timer); resolve(); };
      this.notReady = () => { clearTimeout(timer); reject(new Error('not started')); };
    });
    // A start that fails before a chunk waits for it is reported to that chunk, not as unhandled.
    this.ready.catch(() => {});
  }

  /** The process's id (for logs). */
  get pid(): number | undefined { return this.child.pid; }

  /** False once the process died or was killed: it runs nothing more. */
  get alive(): boolean { return this.state !== 'dead'; }

  /**
   * Run a chunk: resolves with the runner's JSON text, rejects with a CrowdComputeError (a
   * {@link SandboxCrashError} when the process died under it). The process is killed when the
   * chunk runs `killGraceMs` past its timeout.
   */
  async run(r: SandboxRunParams): Promise<string> {
    await this.readyFor(r.jobId, r.timeoutMs);
    return new Promise<string>((resolve, reject) => {
      this.pending = { jobId: r.jobId, limitMs: r.timeoutMs, resolve, reject };
      this.sendCode(r.jobId, r.code);
      this.send({ t: 'run', jobId: r.jobId, argsJson: r.argsJson, timeoutMs: r.timeoutMs });
      this.deadline = setTimeout(() => this.kill('timeout'), r.timeoutMs + this.p.killGraceMs);
    });
  }

  /**
   * Run several chunks of one job, one after another, with one message each way: resolves with
   * each chunk's outcome in order (its runner text, or its error as sent). Each chunk's
   * timeout counts from now; the process is killed `killGraceMs` after the latest of them if it
   * has not answered, and the call then rejects as {@link SandboxProcess.run}'s does.
   * JavaScript sandbox processes only.
   */
  async runMany(r: { jobId: string; code: string; runs: { argsJson: string; timeoutMs: number }[] }): Promise<RunOutcome[]> {
    const limitMs = Math.max(...r.runs.map((x) => x.timeoutMs));
    await this.readyFor(r.jobId, limitMs);
    return new Promise<RunOutcome[]>((resolveMany, reject) => {
      this.pending = { jobId: r.jobId, limitMs, resolve: () => reject(new CrowdComputeError('CC_ERR_INTERNAL', `job ${r.jobId}: one answer for several chunks`)), resolveMany, reject };
      this.sendCode(r.jobId, r.code);
      this.send({ t: 'runs', jobId: r.jobId, runs: r.runs });
      this.deadline = setTimeout(() => this.kill('timeout'), limitMs + this.p.killGraceMs);
    });
  }

  /**
   * Kill the process now (a deadline, a cancellation, the worker stopping). The chunk running
   * in it fails at once with CC_ERR_TIMEOUT or CC_ERR_CANCELLED.
   */
  kill(reason: 'cancelled' | 'timeout'): void {
    if (this.state === 'dead') return;
    this.state = 'dead';
    this.killedFor = reason;
    this.child.kill('SIGKILL');
    this.notReady?.();
    const p = this.takePending();
    p?.reject(stoppedError(reason, p.jobId, p.limitMs));
  }

  /** Wait until the process has started and is free for a call; fail as that call would if it cannot be. */
  private async readyFor(jobId: string, limitMs: number): Promise<void> {
    try {
      await this.ready;
    } catch {
      if (this.startError) throw new CrowdComputeError('CC_ERR_INTERNAL', `job ${jobId}: ${this.startError}`);
      throw stoppedError(this.killedFor ?? 'cancelled', jobId, limitMs);
    }
    if (this.state === 'dead') throw stoppedError(this.killedFor ?? 'cancelled', jobId, limitMs);
    if (this.pending) throw new CrowdComputeError('CC_ERR_INTERNAL', `job ${jobId}: the sandbox process is already running a chunk`);
  }

  /** Send the job's source unless the process holds it; forget the least recently used beyond `maxJobs`. */
  private sendCode(jobId: string, code: string): void {
    if (this.codes.get(jobId) !== code) this.send({ t: 'code', jobId, code });
    // Least recently used first: the oldest sources are the ones forgotten.
    this.codes.delete(jobId);
    this.codes.set(jobId, code);
    while (this.codes.size > this.p.maxJobs) {
      const oldest = this.codes.keys().next().value!;
      this.codes.delete(oldest);
      this.send({ t: 'forget', jobId: oldest });
    }
  }

  private send(m: ToSandbox): void {
    // A send to a process that just died fails; its 'close' reports the death.
    this.child.send(m, (err) => { if (err && this.state !== 'dead') this.p.log.debug({ err, pid: this.child.pid }, 'sandbox process: a message was not delivered'); });
  }

  private takePending(): Pending | null {
    const p = this.pending;
    this.pending = null;
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = null;
    return p;
  }

  private onMessage(m: FromSandbox): void {
    if (m.t === 'ready') {
      if (this.state === 'starting') this.state = 'ready';
      this.readyNow?.();
      return;
    }
    const p = this.takePending();
    if (!p) return;
    this.lastUsed = Date.now();
    if (m.t === 'done') { p.resolve(m.text); return; }
    if (m.t === 'dones') {
      if (p.resolveMany) p.resolveMany(m.outcomes);
      else p.reject(new CrowdComputeError('CC_ERR_INTERNAL', `job ${p.jobId}: several answers for one chunk`));
      return;
    }
    const wire = CrowdComputeError.fromWire(m.error);
    const err = m.fatal ? new SandboxCrashError(wire.code, wire.message, wire.details) : wire;
    if (m.error.stack) err.stack = m.error.stack;
    // Dead before the chunk's caller hears of it, so that no next chunk is given this process.
    if (m.fatal) this.kill('cancelled');
    p.reject(err);
  }

  private onClose(code: number | null, signal: NodeJS.Signals | null): void {
    const was = this.state;
    this.state = 'dead';
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    const tail = this.stderrTail.slice(-STDERR_TAIL);
    if (was === 'starting') {
      // Died before it said it was ready (an unloadable isolated-vm, a bad flag): a fault of this worker, not of the code.
      this.startError ??= `the sandbox process could not start (${how}): ${tail.trim().split('\n').slice(-3).join(' ') || 'no message'}`;
      this.p.log.error({ pid: this.child.pid, exitCode: code, signal, stderr: tail.slice(-4_000) }, this.startError);
    }
    this.notReady?.();
    const p = this.takePending();
    if (!p || was === 'dead') return;
    // V8 aborts the process when a heap cannot grow and isolated-vm cannot turn that into an
    // error (objects and Maps growing without end do this): its text says so. An abort
    // without another fatal error's text is counted as the same.
    const heap = HEAP_OOM.test(tail) || (signal === 'SIGABRT' && !OTHER_FATAL.test(tail));
    const limitMb = this.p.sandbox.memoryLimitMb;
    this.p.log.warn({ jobId: p.jobId, pid: this.child.pid, exitCode: code, signal, stderr: tail.slice(-4_000) },
      `sandbox process died (${how}) running a chunk of job ${p.jobId}${heap ? `: out of heap (limit ${limitMb} MiB)` : ''}; a new one takes its place`);
    p.reject(heap
      ? new SandboxCrashError('CC_ERR_MEMORY_LIMIT', `${memoryLimitMessage(p.jobId, limitMb)}: V8 could not keep it within the limit and its sandbox process was stopped (${how}); the task is not retried`,
        { limitMb, exitCode: code, signal })
      : new SandboxCrashError('CC_ERR_SANDBOX_CRASHED', `job ${p.jobId}: the sandbox process running the function died (${how}); the task is not retried, as the function may take down every sandbox it runs in`,
        { exitCode: code, signal }));
  }
}
