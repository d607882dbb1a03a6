/**
 * Runs shipped map functions in a browser, each call in a dedicated Web Worker: the page
 * stays responsive while it runs, and the function cannot reach the page (no DOM in a worker).
 * The workers are made from a `data:` URL, so they have an opaque origin: no access to the
 * page's cookies or storage, and a request they send carries none of the page's credentials.
 * The network and storage globals are taken away besides. A call that overruns its time limit
 * (or is cancelled) is stopped by terminating its worker; the next call gets a fresh one.
 * Browsers give a worker no heap limit of its own: a JavaScript function that allocates
 * without end is stopped by the time limit, or by the tab's own. Python functions run in
 * Pyodide in the same kind of worker (python-sandbox.ts), whose WebAssembly memory is capped:
 * past the cap, Python raises MemoryError.
 */
import { CrowdComputeError, formatDuration } from '../../protocol/index.ts';
import { chunkFailure, SandboxCrashError, type ArgumentFailure, type CodeExecutor, type CodeRun } from '../runtime/code-executor.ts';
import type { CodeLanguage } from '../../protocol/messages.ts';
import { loadPyodideFiles, type PyodideFiles } from './pyodide-files.ts';
import { PYTHON_SANDBOX_URL, PYTHON_SETUP } from './python-sandbox.ts';

/** What runs inside each Web Worker: load a function, then run it over chunks of arguments. */
const SANDBOX = `
'use strict';
for (const name of ['fetch', 'XMLHttpRequest', 'WebSocket', 'EventSource', 'importScripts', 'indexedDB', 'caches',
  'BroadcastChannel', 'Worker', 'SharedWorker', 'WebTransport', 'Request', 'navigator']) {
  try { Object.defineProperty(self, name, { value: undefined, configurable: false, writable: false }); } catch (e) {}
}
let fn = null;
const describe = (i, e) => ({ index: i, name: e && e.name ? String(e.name) : 'Error',
  message: String(e && e.message !== undefined ? e.message : e), stack: e && e.stack ? String(e.stack) : undefined });
self.onmessage = async (event) => {
  const m = event.data;
  if (m.type === 'load') {
    try {
      fn = (0, eval)('(' + m.code + '\\n)');
      if (typeof fn !== 'function') throw new TypeError('the shipped code is a ' + typeof fn + ', not a function');
      self.postMessage({ type: 'loaded' });
    } catch (e) { self.postMessage({ type: 'load-error', error: describe(-1, e) }); }
    return;
  }
  const out = new Array(m.args.length).fill(null);
  const errors = [];
  for (let i = 0; i < m.args.length; i++) {
    try {
      let v = fn(m.args[i]);
      if (v !== null && typeof v === 'object' && typeof v.then === 'function') v = await v;
      out[i] = v;
    } catch (e) { errors.push(describe(i, e)); }
  }
  let json;
  try { json = JSON.stringify(out); } catch (e) {
    self.postMessage({ type: 'error', error: describe(-1, { name: 'TypeError', message: 'the results cannot be turned into JSON (' + (e && e.message) + ')' }) });
    return;
  }
  self.postMessage({ type: 'done', json, errors });
};`;

const SANDBOX_URL = `data:text/javascript;charset=utf-8,${encodeURIComponent(SANDBOX)}`;

/** A Web Worker with a job's function loaded, ready for a call. */
interface Loaded {
  worker: Worker;
  jobId: string;
}

/** How calls are bounded. */
export interface WebWorkerExecutorOptions {
  /** Wall-clock limit of a call whose task has no timeoutMs. Default 60 s. */
  defaultTimeoutMs?: number;
  /** Loaded workers kept for reuse, across jobs. Default 4. */
  maxIdle?: number;
  /** Where the foreman serves Pyodide's files (`/pyodide/<version>/`); without it, Python jobs fail. */
  pyodideUrl?: string;
  /** The most memory one Python worker's interpreter may take. Default 512 MiB. */
  pythonMemoryBytes?: number;
}

type Language = CodeLanguage;

/** Runs map jobs' functions in Web Workers (see the file's comment). */
export class WebWorkerExecutor implements CodeExecutor {
  private readonly code = new Map<string, string>();
  private readonly languages = new Map<string, Language>();
  /** Tabs run JavaScript and Python functions alike. */
  readonly codeLanguages = ['javascript', 'python'] as const;
  private readonly idle: Loaded[] = [];
  private readonly busy = new Set<Worker>();
  private readonly defaultTimeoutMs: number;
  private readonly maxIdle: number;
  private disposed = false;
  private readonly pyodideUrl: string | undefined;
  private readonly pythonMemoryBytes: number;
  /** Pyodide's files, fetched when the first Python task comes. */
  private pyodideFiles: Promise<PyodideFiles> | null = null;
  /** A Python worker booted ahead of need (after one was stopped), for the next Python task. */
  private spare: Promise<Worker> | null = null;

  constructor(options: WebWorkerExecutorOptions = {}) {
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? 60_000;
    this.maxIdle = options.maxIdle ?? 4;
    this.pyodideUrl = options.pyodideUrl;
    this.pythonMemoryBytes = options.pythonMemoryBytes ?? 512 * 1_048_576;
  }

  /** Keep a job's function source (a new source for the same job replaces the old). */
  setCode(jobId: string, code: string, language?: Language): void {
    const lang = language ?? 'javascript';
    if (this.code.get(jobId) === code && (this.languages.get(jobId) ?? 'javascript') === lang) return;
    this.code.set(jobId, code);
    if (lang === 'javascript') this.languages.delete(jobId); else this.languages.set(jobId, lang);
    for (const l of this.idle.filter((x) => x.jobId === jobId)) this.retire(l);
    // A long session sees many jobs: keep the latest sources only.
    while (this.code.size > 100) {
      const oldest = this.code.keys().next().value!;
      this.code.delete(oldest);
      this.languages.delete(oldest);
    }
  }

  /** Run the job's function over `args` (the chunk starting at argument `argOffset` of the job). */
  start(jobId: string, args: unknown[], timeoutMs: number | null, argOffset = 0): CodeRun {
    const limit = timeoutMs ?? this.defaultTimeoutMs;
    let stop: ((reason: 'cancelled' | 'timeout') => void) | null = null;
    let stoppedBefore: 'cancelled' | 'timeout' | null = null;
    const result = (async (): Promise<unknown[]> => {
      const code = this.code.get(jobId);
      if (code === undefined) throw new CrowdComputeError('CC_ERR_INTERNAL', `job ${jobId}: no code received for this map job`);
      if (this.disposed) throw new CrowdComputeError('CC_ERR_SHUTTING_DOWN', 'the worker is stopping');
      const python = this.languages.get(jobId) === 'python';
      const loaded = await this.take(jobId, code, python);
      this.busy.add(loaded.worker);
      return new Promise<unknown[]>((resolve, reject) => {
        let settled = false;
        const finish = (keep: boolean, f: () => void) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          this.busy.delete(loaded.worker);
          if (keep) this.release(loaded);
          else {
            loaded.worker.terminate();
            // Booting Pyodide takes seconds: have the next Python task find a worker ready.
            if (python && !this.disposed) this.warmSpare();
          }
          f();
        };
        stop = (reason) => finish(false, () => reject(reason === 'timeout'
          ? new CrowdComputeError('CC_ERR_TIMEOUT', `job ${jobId}: the function ran longer than ${formatDuration(limit)} and its Web Worker was stopped`, { timeoutMs: limit })
          : new CrowdComputeError('CC_ERR_CANCELLED', `job ${jobId}: the task was cancelled and its Web Worker stopped`)));
        const timer = setTimeout(() => stop?.('timeout'), limit);
        loaded.worker.onmessage = (event: MessageEvent) => {
          const m = event.data as { type: string; json?: string; errors?: ArgumentFailure[]; error?: ArgumentFailure };
          if (m.type === 'error') { finish(true, () => reject(new CrowdComputeError('CC_ERR_HANDLER_FAILED', `job ${jobId}: ${m.error!.message}`))); return; }
          if (m.type === 'crash') {
            // The interpreter itself failed (it aborted, or its memory is spent where Python could not raise): not retried.
            const memory = /memory|Cannot enlarge/i.test(m.error!.message);
            finish(false, () => reject(new SandboxCrashError(memory ? 'CC_ERR_MEMORY_LIMIT' : 'CC_ERR_SANDBOX_CRASHED',
              `job ${jobId}: the Python interpreter in the browser failed${memory ? ` (its memory is capped at ${this.pythonMemoryBytes / 1_048_576} MiB)` : ''}: ${m.error!.message}`)));
            return;
          }
          const results = JSON.parse(m.json!) as unknown[];
          if (m.errors && m.errors.length > 0) finish(true, () => reject(chunkFailure(jobId, argOffset, args.length, results, m.errors!)));
          else finish(true, () => resolve(results));
        };
        loaded.worker.onerror = (event: ErrorEvent) => {
          event.preventDefault();
          finish(false, () => reject(new CrowdComputeError('CC_ERR_HANDLER_FAILED', `job ${jobId}: ${event.message || 'the Web Worker failed'}`)));
        };
        if (stoppedBefore) { stop(stoppedBefore); return; }
        loaded.worker.postMessage({ type: 'run', args });
      });
    })();
    return { result, kill: (reason) => { if (stop) stop(reason); else stoppedBefore = reason; } };
  }

  /** Stop every Web Worker. */
  dispose(): void {
    this.disposed = true;
    for (const l of this.idle.splice(0)) l.worker.terminate();
    for (const w of this.busy) w.terminate();
    this.busy.clear();
    void this.spare?.then((w) => w.terminate(), () => {});
    this.spare = null;
  }

  /** A worker with the job's function loaded: an idle one, or a new one. */
  private async take(jobId: string, code: string, python: boolean): Promise<Loaded> {
    const i = this.idle.findIndex((l) => l.jobId === jobId);
    if (i >= 0) return this.idle.splice(i, 1)[0]!;
    let worker: Worker;
    if (python) {
      const spare = this.spare;
      this.spare = null;
      worker = await (spare ? spare.catch(() => this.bootPython(jobId)) : this.bootPython(jobId));
    } else worker = new Worker(SANDBOX_URL);
    await new Promise<void>((resolve, reject) => {
      worker.onmessage = (event: MessageEvent) => {
        const m = event.data as { type: string; error?: ArgumentFailure };
        if (m.type === 'loaded') { resolve(); return; }
        worker.terminate();
        const why = `${m.error?.name && m.error.name !== 'Error' ? `${m.error.name}: ` : ''}${m.error?.message ?? 'unknown error'}`;
        reject(m.type === 'crash'
          ? new SandboxCrashError('CC_ERR_SANDBOX_CRASHED', `job ${jobId}: the Python interpreter in the browser failed while loading the function: ${why}`)
          : new CrowdComputeError('CC_ERR_CODE_COMPILE', `job ${jobId}: the shipped function failed to load in the browser: ${why}`));
      };
      worker.onerror = (event: ErrorEvent) => {
        event.preventDefault();
        worker.terminate();
        reject(new CrowdComputeError('CC_ERR_INTERNAL', `job ${jobId}: the browser could not start a Web Worker: ${event.message || 'unknown error'}`));
      };
      worker.postMessage({ type: 'load', code });
    });
    return { worker, jobId };
  }

  /** A Web Worker with Pyodide booted in it, no function loaded yet. */
  private async bootPython(jobId: string): Promise<Worker> {
    if (this.pyodideUrl === undefined) throw new CrowdComputeError('CC_ERR_INTERNAL', `job ${jobId}: this tab cannot run Python (the page did not say where Pyodide is served)`);
    if (this.pyodideFiles === null) {
      this.pyodideFiles = loadPyodideFiles(this.pyodideUrl, this.pythonMemoryBytes);
      // A failed download is tried again by the next Python task.
      this.pyodideFiles.catch(() => { this.pyodideFiles = null; });
    }
    let assets: PyodideFiles;
    try { assets = await this.pyodideFiles; } catch (err) {
      throw new CrowdComputeError('CC_ERR_INTERNAL', `job ${jobId}: the tab could not load Pyodide: ${(err as Error).message}`);
    }
    const worker = new Worker(PYTHON_SANDBOX_URL);
    await new Promise<void>((resolve, reject) => {
      const fail = (why: string) => { worker.terminate(); reject(new CrowdComputeError('CC_ERR_SANDBOX_CRASHED', `job ${jobId}: Pyodide did not start in a Web Worker: ${why}`)); };
      worker.onmessage = (event: MessageEvent) => {
        const m = event.data as { type: string; error?: ArgumentFailure };
        if (m.type === 'ready') resolve(); else fail(m.error?.message ?? 'unknown error');
      };
      worker.onerror = (event: ErrorEvent) => { event.preventDefault(); fail(event.message || 'the Web Worker failed'); };
      // Copies of the files (the page keeps its own for the next worker); the compiled module is shared.
      worker.postMessage({ type: 'boot', indexURL: assets.indexURL, files: assets.files, wasm: assets.wasm, setup: PYTHON_SETUP });
    });
    if (this.disposed) { worker.terminate(); throw new CrowdComputeError('CC_ERR_SHUTTING_DOWN', 'the worker is stopping'); }
    return worker;
  }

  private warmSpare(): void {
    if (this.spare) return;
    const spare = this.bootPython('(spare)');
    spare.catch(() => { if (this.spare === spare) this.spare = null; });
    this.spare = spare;
  }

  private release(l: Loaded): void {
    if (this.disposed || this.code.get(l.jobId) === undefined) { l.worker.terminate(); return; }
    this.idle.push(l);
    while (this.idle.length > this.maxIdle) this.retire(this.idle[0]!);
  }

  private retire(l: Loaded): void {
    const i = this.idle.indexOf(l);
    if (i >= 0) this.idle.splice(i, 1);
    l.worker.terminate();
  }
}
