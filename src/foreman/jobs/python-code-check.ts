/**
 * Checks the source of a Python map function at submission, before any worker sees it: it must
 * parse, be exactly one top-level `def` (no decorators, nothing else), and use no names besides
 * Python's builtins, its own and those it imports inside itself (so that it runs alone in a
 * worker's sandbox, where nothing else is defined). Python's own parser does the reading, in
 * Pyodide, in a worker thread started on the first check and kept for the next.
 */
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { CrowdComputeError } from '../../protocol/index.ts';

/** How long one check may take once the checker is loaded. */
const CHECK_TIMEOUT_MS = 5_000;
/** How long the checker may take to load (Pyodide takes 1.5 to 3 s). */
const LOAD_TIMEOUT_MS = 60_000;

const SELF = fileURLToPath(import.meta.url);
const THREAD = SELF.replace(/python-code-check\.(ts|js)$/, 'python-code-check-thread.$1');

interface Answer { id: number; answer?: string; fatal?: string }

class Checker {
  readonly thread: Worker;
  readonly ready: Promise<void>;
  private readonly pending = new Map<number, { resolve(a: Answer): void; reject(e: Error): void }>();
  private nextId = 0;
  dead = false;

  constructor() {
    this.thread = new Worker(THREAD, { workerData: { pyodideUrl: import.meta.resolve('pyodide') } });
    this.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`it did not load within ${LOAD_TIMEOUT_MS} ms`)); this.end(); }, LOAD_TIMEOUT_MS);
      this.thread.on('message', (m: Answer | { ready: true }) => {
        if ('ready' in m) { clearTimeout(timer); resolve(); return; }
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        p?.resolve(m);
      });
      this.thread.once('error', (err) => { clearTimeout(timer); reject(err as Error); this.end(err as Error); });
      this.thread.once('exit', (code) => { clearTimeout(timer); reject(new Error(`it exited (code ${code})`)); this.end(new Error(`the checker exited (code ${code})`)); });
    });
    this.ready.catch(() => {});
    // A foreman that is done does not wait for its checker (after the listeners: adding one refs the thread again).
    this.thread.unref();
  }

  ask(source: string): Promise<Answer> {
    const id = ++this.nextId;
    return new Promise<Answer>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.thread.postMessage({ id, source });
    });
  }

  end(err: Error = new Error('the checker stopped')): void {
    this.dead = true;
    void this.thread.terminate();
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

let checker: Checker | null = null;

/**
 * The name of the one function `source` defines. Throws CrowdComputeError CC_ERR_CODE_COMPILE
 * naming the problem (a syntax error and its line, not exactly one top-level def, decorators,
 * free names); CC_ERR_INTERNAL when the checker itself cannot run.
 */
export async function checkPythonFunction(source: string, timeoutMs = CHECK_TIMEOUT_MS): Promise<{ name: string }> {
  if (!checker || checker.dead) checker = new Checker();
  const c = checker;
  try {
    await c.ready;
  } catch (err) {
    throw new CrowdComputeError('CC_ERR_INTERNAL', `the Python checker could not start: ${(err as Error).message}`);
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const answer = await Promise.race([
    c.ask(source),
    new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), timeoutMs); }),
  ]).catch((err: Error) => ({ id: 0, fatal: err.message }) as Answer).finally(() => clearTimeout(timer));
  if (answer === 'timeout') {
    // A check that takes this long is stopped with its thread; the next check starts another.
    c.end(new Error('a check timed out'));
    throw new CrowdComputeError('CC_ERR_CODE_COMPILE', `the Python function could not be checked within ${timeoutMs} ms; make it smaller`, { timeoutMs });
  }
  if (answer.fatal !== undefined) {
    c.end();
    throw new CrowdComputeError('CC_ERR_CODE_COMPILE', `the Python function could not be checked: ${answer.fatal}`);
  }
  const text = answer.answer!;
  if (text.startsWith('!')) throw new CrowdComputeError('CC_ERR_CODE_COMPILE', `the Python function is refused: ${text.slice(1)}`);
  return { name: text };
}
