/**
 * Runs shipped Python map functions in Pyodide (CPython compiled to WebAssembly), one
 * interpreter per sandbox process (python-sandbox-child.ts), supervised like the JavaScript
 * sandbox processes: at most `maxProcesses`, kept warm between chunks, each job's source
 * compiled once per interpreter, a process killed at its chunk's deadline (a busy Python loop
 * cannot be interrupted otherwise) or when its interpreter fails fatally, and replaced.
 */
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WORKER_DEFAULTS } from '../runtime/worker-defaults.ts';
import { ProcessSandboxExecutor, type ProcessSandboxOptions } from './process-sandbox-executor.ts';
import { SandboxProcess } from './sandbox-process.ts';

/** Limits of the Python sandbox processes. */
export interface PythonSandboxOptions extends ProcessSandboxOptions {
  /**
   * The most memory an interpreter may use, MiB: the cap of its WebAssembly memory, which
   * holds all of Python's objects (about 30 MiB of it are the interpreter's own at start).
   * Past it the function gets a MemoryError. Default 256 MiB.
   */
  memoryLimitMb: number;
}

const SELF = fileURLToPath(import.meta.url);
const CHILD = join(dirname(SELF), `python-sandbox-child${SELF.endsWith('.ts') ? '.ts' : '.js'}`);
/** This program's own files (src/ from a checkout, dist/ from the package), which the child loads. */
const CODE_ROOT = dirname(dirname(dirname(SELF)));

/** Where the pyodide package lies: its module's URL, and its directory (the interpreter, its standard library). */
function pyodideLocation(): { url: string; dir: string } {
  const url = import.meta.resolve('pyodide');
  return { url, dir: dirname(fileURLToPath(url)) };
}

/**
 * Node flags of a Python sandbox process: the permission model, reading only Pyodide's files
 * and this program's (no writes, no child processes, worker threads, addons, WASI or
 * inspector), and no code made from strings (a bridge from Python to JavaScript could not
 * compile any).
 */
function childFlags(pyodideDir: string): string[] {
  return ['--permission', `--allow-fs-read=${pyodideDir}`, `--allow-fs-read=${CODE_ROOT}`, '--disallow-code-generation-from-strings'];
}

/** Runs Python map functions in sandbox processes of their own (see the file's comment). */
export class PythonSandboxExecutor extends ProcessSandboxExecutor {
  private readonly pyodide = pyodideLocation();

  constructor(options: Partial<PythonSandboxOptions> = {}) {
    super({
      ...options,
      memoryLimitMb: options.memoryLimitMb ?? WORKER_DEFAULTS.pythonSandboxMemoryMb,
      // Chunks go one per message (below), so one process more than the cores keeps them busy
      // while a result is on its way.
      maxProcesses: options.maxProcesses ?? availableParallelism() + 1,
      // A running interpreter answers nothing before its chunk ends: the deadline kills it.
      killGraceMs: options.killGraceMs ?? 0,
    });
    // One chunk per message: the Python sandbox process answers chunks one at a time.
    this.batchCalls = 1;
  }

  protected override newProcess(): SandboxProcess {
    return new SandboxProcess({
      sandbox: { memoryLimitMb: this.o.memoryLimitMb, defaultTimeoutMs: this.o.defaultTimeoutMs, maxWarmJobs: this.o.maxWarmJobs, maxJobs: this.o.maxJobs },
      maxJobs: this.o.maxWarmJobs, killGraceMs: this.o.killGraceMs, startTimeoutMs: this.o.startTimeoutMs, log: this.o.log,
      entry: { path: CHILD, args: [this.pyodide.url], execArgv: childFlags(this.pyodide.dir) },
    });
  }
}
