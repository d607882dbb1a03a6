/**
 * Routes each map job to the executor for its function's language: JavaScript to the
 * isolated-vm sandbox processes, Python to the Pyodide ones. The Python executor is made on
 * the first Python job, so a worker that never gets one never looks for Pyodide.
 */
import type { CodeExecutor, CodeLanguage, CodeRun } from '../runtime/code-executor.ts';

/** Runs each job's function with the executor of its language: JavaScript or Python. */
export class LanguageExecutor implements CodeExecutor {
  private readonly javascript: CodeExecutor;
  private readonly makePython: () => CodeExecutor;
  private python: CodeExecutor | null = null;
  /** Jobs whose function is Python; every other job is JavaScript. */
  private readonly pythonJobs = new Set<string>();
  /** A Node worker runs both: JavaScript in isolated-vm, Python in Pyodide. */
  readonly codeLanguages = ['javascript', 'python'] as const;

  constructor(javascript: CodeExecutor, makePython: () => CodeExecutor) {
    this.javascript = javascript;
    this.makePython = makePython;
  }

  setCode(jobId: string, code: string, language?: CodeLanguage): void {
    if (language === 'python') {
      this.pythonJobs.add(jobId);
      this.python ??= this.makePython();
      this.python.setCode(jobId, code);
    } else {
      this.pythonJobs.delete(jobId);
      this.javascript.setCode(jobId, code);
    }
  }

  start(jobId: string, args: unknown[], timeoutMs: number | null, argOffset?: number): CodeRun {
    const executor = this.pythonJobs.has(jobId) && this.python ? this.python : this.javascript;
    return executor.start(jobId, args, timeoutMs, argOffset);
  }

  dispose(): void {
    this.javascript.dispose();
    this.python?.dispose();
  }
}
