/**
 * The entry point of a Python sandbox process: a child of the worker that loads one Pyodide
 * interpreter (CPython compiled to WebAssembly) and runs the chunks of Python map jobs the
 * worker sends it, one at a time, speaking the same messages as the JavaScript sandbox
 * processes (sandbox-messages.ts).
 *
 * What holds the shipped code in, from the inside out:
 * - Python: an import blocker keeps out Pyodide's bridges to JavaScript (`js`, `pyodide_js`,
 *   `pyodide.ffi`, ...) and the modules for sockets, processes and native code.
 * - The interpreter's memory: the WebAssembly memory is capped (wasm-memory-cap.ts), so Python
 *   gets a MemoryError past the cap, and the process stays bounded.
 * - This process, should Python reach JavaScript anyway: `js` is an empty object, not
 *   globalThis; there is no environment; the network globals and `process.binding`,
 *   `process.dlopen` and `process.getBuiltinModule` are gone; and the worker starts it under
 *   Node's permission model (reads only of Pyodide's files and this program's, no writes, no
 *   child processes, worker threads or addons) with code generation from strings disallowed.
 *
 * Started by the worker with the limits as JSON in argv[2] and the URL of Pyodide's module in argv[3].
 */
import { constants as fsConstants } from 'node:fs';
import type { PyodideInterpreter, PyodideModule } from '../../host/pyodide-api.ts';
// The error class alone, not the protocol's index (see sandbox-child.ts).
import { CrowdComputeError } from '../../protocol/errors.ts';
import type { FromSandbox, ToSandbox } from './sandbox-messages.ts';
import { pythonRunner } from './python-runner.ts';
import { capWasmMemory, WASM_PAGE } from '../runtime/wasm-memory-cap.ts';

process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
process.on('disconnect', () => process.kill(process.pid, 'SIGKILL'));

const { memoryLimitMb } = JSON.parse(process.argv[2] ?? '{}') as { memoryLimitMb: number };
const pyodideUrl = process.argv[3]!;
const maxPages = Math.floor(memoryLimitMb * 2 ** 20 / WASM_PAGE);

function send(m: FromSandbox): void {
  process.send!(m);
}

/** Load the interpreter with its memory capped, then take away what the shipped code must not reach. */
type PyFn = (...args: string[]) => unknown;

async function load(): Promise<{ set: PyFn; forget: PyFn; run: PyFn }> {
  // Pyodide compiles its module from the bytes it read: cap the memory those bytes define.
  const wa = WebAssembly as unknown as Record<string, (...a: unknown[]) => unknown>;
  const original = { instantiate: wa.instantiate!, compile: wa.compile! };
  let capped = 0;
  const patch = (src: unknown): unknown => {
    if (!(src instanceof ArrayBuffer || ArrayBuffer.isView(src))) return src;
    const bytes = src instanceof ArrayBuffer ? new Uint8Array(src) : new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
    // Only the interpreter's module is large; small helper modules define no memory.
    if (bytes.byteLength < 1_000_000) return src;
    capped++;
    return capWasmMemory(bytes, maxPages * WASM_PAGE);
  };
  wa.instantiate = function (src: unknown, ...rest: unknown[]) { return original.instantiate.call(WebAssembly, patch(src), ...rest); };
  wa.compile = function (src: unknown, ...rest: unknown[]) { return original.compile.call(WebAssembly, patch(src), ...rest); };
  // Neither streaming form can be patched: without them Pyodide compiles from bytes.
  delete wa.instantiateStreaming;
  delete wa.compileStreaming;
  // Pyodide's Node file system asks for the file constants through process.binding, which
  // the permission model refuses; it needs nothing else of it.
  const proc = process as unknown as { binding: (name: string) => unknown };
  const binding = proc.binding;
  proc.binding = (name: string) => (name === 'constants' ? { fs: fsConstants } : binding.call(process, name));

  const { loadPyodide } = await import(pyodideUrl) as PyodideModule;
  const py: PyodideInterpreter = await loadPyodide({ jsglobals: {}, env: {}, stdout: () => {}, stderr: () => {} });
  wa.instantiate = original.instantiate;
  wa.compile = original.compile;
  if (capped !== 1) throw new Error(`expected to cap the memory of one WebAssembly module, capped ${capped}`);
  // Prove the cap holds: growing the memory past it must fail.
  const memory = (py as unknown as { _module: { wasmMemory?: WebAssembly.Memory; HEAPU8: Uint8Array } })._module;
  const mem = memory.wasmMemory;
  const pages = memory.HEAPU8.buffer.byteLength / WASM_PAGE;
  if (mem) {
    let grew = true;
    try { mem.grow(maxPages - pages + 1); } catch { grew = false; }
    if (grew) throw new Error(`the interpreter's memory grew past the cap of ${memoryLimitMb} MiB`);
  }
  py.setStdin({ error: true });

  // The runner lives in a namespace of its own, not in __main__, so the shipped code cannot
  // reach or replace it by name.
  const ns = (py.globals.get('dict') as () => { get(k: string): unknown })();
  py.runPython(pythonRunner(memoryLimitMb), { globals: ns as never });
  const take = (name: string): PyFn => ns.get(name) as PyFn;
  const fns = { set: take('_cc_set'), forget: take('_cc_forget'), run: take('_cc_run') };

  // Should the shipped code reach this process's JavaScript after all, it finds no network,
  // no environment, and no way to load native code or Node's internals.
  for (const k of ['fetch', 'WebSocket', 'EventSource', 'XMLHttpRequest', 'Request', 'Response', 'Headers', 'FormData', 'navigator']) {
    try { delete (globalThis as Record<string, unknown>)[k]; } catch { /* not configurable */ }
  }
  for (const k of Object.keys(process.env)) delete process.env[k];
  for (const k of ['binding', '_linkedBinding', 'dlopen', 'getBuiltinModule']) {
    try { delete (process as unknown as Record<string, unknown>)[k]; } catch { /* not configurable */ }
  }
  return fns;
}

function failure(err: unknown, jobId: string): FromSandbox {
  const e = err instanceof CrowdComputeError ? err : new CrowdComputeError('CC_ERR_INTERNAL', `job ${jobId}: ${(err as Error)?.message ?? String(err)}`);
  return { t: 'failed', error: { ...e.toJSON(), stack: e.stack } };
}

/** True for an error Python raised; anything else from the interpreter means it failed fatally. */
function isPythonError(err: unknown): err is Error {
  return err instanceof Error && err.constructor.name === 'PythonError';
}

const fns = await load();
/** Jobs whose source did not compile here: the error their chunks fail with. */
const compileErrors = new Map<string, CrowdComputeError>();

process.on('message', (m: ToSandbox) => {
  switch (m.t) {
    case 'code':
      compileErrors.delete(m.jobId);
      try {
        const problem = fns.set(m.jobId, m.code) as string;
        if (problem) compileErrors.set(m.jobId, new CrowdComputeError('CC_ERR_CODE_COMPILE', `job ${m.jobId}: the Python function does not compile: ${problem.slice(0, 500)}`));
      } catch (err) {
        compileErrors.set(m.jobId, new CrowdComputeError('CC_ERR_INTERNAL', `job ${m.jobId}: the Python sandbox could not take the function: ${String((err as Error)?.message).slice(-500)}`));
      }
      return;
    case 'forget':
      compileErrors.delete(m.jobId);
      fns.forget(m.jobId);
      return;
    case 'run': {
      const compileError = compileErrors.get(m.jobId);
      if (compileError) { send(failure(compileError, m.jobId)); return; }
      let text: string;
      try {
        text = fns.run(m.jobId, m.argsJson) as string;
      } catch (err) {
        if (isPythonError(err) && (err as { type?: string }).type === 'MemoryError') {
          // Memory ran out outside the function (holding its results, say). The interpreter's
          // memory never shrinks back: the worker kills this process, and the next starts afresh.
          const e = new CrowdComputeError('CC_ERR_MEMORY_LIMIT', `job ${m.jobId}: the function exceeded the sandbox memory limit of ${memoryLimitMb} MiB; the task is not retried`, { limitMb: memoryLimitMb });
          send({ ...failure(e, m.jobId), fatal: true } as FromSandbox);
          return;
        }
        if (isPythonError(err)) { send(failure(err, m.jobId)); return; }
        // Pyodide has failed fatally (a WebAssembly stack overflow, an abort): this
        // interpreter cannot run anything more. The worker kills this process on this answer.
        const e = new CrowdComputeError('CC_ERR_SANDBOX_CRASHED', `job ${m.jobId}: the Python interpreter failed fatally running the function (${String((err as Error)?.message ?? err).split('\n')[0]!.slice(0, 300)}); the task is not retried, as the function may take down every sandbox it runs in`);
        send({ ...failure(e, m.jobId), fatal: true } as FromSandbox);
        return;
      }
      send({ t: 'done', text });
    }
  }
});

send({ t: 'ready' });
