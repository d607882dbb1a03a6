/**
 * Shipped Python tries to get out of its Pyodide sandbox, or to take the sandbox process down.
 * Each attempt is contained: that argument or chunk fails with a clear reason (or the attempt
 * finds nothing of the host), and the executor runs the next task.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PythonSandboxExecutor } from './python-sandbox-executor.ts';
import { ChunkFailedError, SandboxCrashError } from '../runtime/code-executor.ts';
import { CrowdComputeError } from '../../protocol/index.ts';

const MEMORY_MB = 256;
// One process at a time, so that every attempt and the check after it meet the same executor.
const py = new PythonSandboxExecutor({ maxProcesses: 1, memoryLimitMb: MEMORY_MB, defaultTimeoutMs: 60_000 });
after(() => py.dispose());
let n = 0;

/** Run a function whose body is `body` over `args` in a job of its own: its results or its CrowdComputeError. */
async function attempt(body: string, args: unknown[] = [0], timeoutMs: number | null = null): Promise<unknown[] | CrowdComputeError> {
  const jobId = `escape-${++n}`;
  py.setCode(jobId, `def f(x):\n${body.trim().split('\n').map((l) => `    ${l}`).join('\n')}\n`);
  try {
    return await py.start(jobId, args, timeoutMs).result;
  } catch (err) {
    assert.ok(err instanceof CrowdComputeError, `a CrowdComputeError, not ${err}`);
    return err;
  }
}

/** After each attempt, the executor still runs ordinary code. */
async function stillServes(): Promise<void> {
  assert.deepEqual(await attempt('return x + 1', [1, 2]), [2, 3]);
}

/** The argument's failure: the chunk failed on it alone with this exception type. */
function argumentFails(r: unknown, name: string, pattern?: RegExp): void {
  assert.ok(r instanceof ChunkFailedError, `expected ${name} for the argument, got ${r instanceof Error ? r.message : JSON.stringify(r)}`);
  const [first] = r.details!.failedArguments as { name: string; message: string }[];
  assert.equal(first!.name, name, first!.message);
  if (pattern) assert.match(first!.message, pattern);
}

for (const mod of ['js', 'pyodide_js', 'pyodide', 'pyodide.ffi', 'pyodide.code', 'pyodide.http', '_pyodide', '_pyodide_core', 'ctypes', 'socket', 'subprocess']) {
  test(`import ${mod} is refused`, async () => {
    argumentFails(await attempt(`import ${mod}\nreturn 1`), 'ModuleNotFoundError', new RegExp(`module '(${mod.replace('.', '\\.')}|${mod.split('.')[0]})' is not available in the sandbox`));
    argumentFails(await attempt(`import importlib\nreturn str(importlib.import_module(${JSON.stringify(mod)}))`), 'ModuleNotFoundError');
  });
}

test('sys.modules holds none of the bridges to JavaScript', async () => {
  assert.deepEqual(await attempt(`
import sys
return sorted(m for m in sys.modules if m.split('.')[0] in ('js', 'pyodide_js', 'pyodide', '_pyodide', '_pyodide_core'))`), [[]]);
  // Putting one back by hand gives nothing either: the name is not a module the finder will load.
  argumentFails(await attempt(`
import sys
sys.modules.pop('js', None)
return str(__import__('js'))`), 'ModuleNotFoundError');
  await stillServes();
});

test('open() sees the interpreter\'s own file system, not the host\'s', async () => {
  argumentFails(await attempt(`return open('/etc/passwd').read()`), 'FileNotFoundError');
  const [listing] = await attempt(`import os\nreturn sorted(os.listdir('/'))`) as [string[]];
  assert.ok(!listing.includes('etc') && !listing.includes('work') && !listing.includes('usr'), `root: ${listing}`);
  await stillServes();
});

test('os.system cannot start a process: the sandbox process is replaced', async () => {
  const r = await attempt(`import os\nreturn os.system('touch /tmp/cc-python-escape')`);
  // Node's permission model refuses the child process; the interpreter is not trusted after that.
  assert.ok(r instanceof SandboxCrashError, `got ${JSON.stringify(r)}`);
  assert.equal(r.code, 'CC_ERR_SANDBOX_CRASHED');
  assert.match(r.message, /allow-child-process/);
  await stillServes();
});

test('JavaScript reached through the garbage collector finds no host: no files, no code from strings', async () => {
  const r = await attempt(`
import gc
proxy = None
for o in gc.get_objects():
    if type(o).__name__ == 'module':
        for v in list(vars(o).values()):
            if type(v).__name__.startswith('JsProxy') or 'JsProxy' in [t.__name__ for t in type(v).__mro__]:
                proxy = v
                break
    if proxy is not None:
        break
if proxy is None:
    return ['no JavaScript object reachable']
out = []
for name, act in [
    ('code', lambda: proxy.constructor.constructor('return process.env')()),
    ('files', lambda: proxy.constructor.constructor('return require("fs").readFileSync("/etc/passwd", "utf8")')()),
]:
    try:
        out.append([name, 'reached', str(act())[:80]])
    except Exception as e:
        out.append([name, type(e).__name__, str(e)[:200]])
return out`);
  assert.ok(Array.isArray(r), `got ${r instanceof Error ? r.message : r}`);
  const [found] = r as [unknown[]];
  if (found[0] === 'no JavaScript object reachable') return;
  for (const row of found as string[][]) {
    assert.notEqual(row[1], 'reached', `${row[0]}: ${row[2]}`);
    assert.match(row[2]!, /Code generation from strings disallowed/);
  }
  await stillServes();
});

test('a 10 GiB and a 1 GiB bytearray fail their argument; the process stays bounded', async () => {
  const r = await attempt(`return len(bytearray(x * 2**30))`, [10, 1, 0]);
  assert.ok(r instanceof ChunkFailedError, `got ${JSON.stringify(r)}`);
  assert.deepEqual(r.partialResults, [null, null, 0]);
  const [big, gib] = r.details!.failedArguments as { name: string; message: string }[];
  // 10 GiB is past what a 32-bit interpreter can even ask for.
  assert.ok(['MemoryError', 'OverflowError'].includes(big!.name), big!.name);
  assert.equal(gib!.name, 'MemoryError');
  assert.match(gib!.message, new RegExp(`limit is ${MEMORY_MB} MiB`));
  // A list grown without end, object by object, fills the capped memory too.
  const list = await attempt(`a = []\nwhile True:\n    a.append([0] * 1000)`);
  assert.ok(list instanceof CrowdComputeError);
  assert.ok(list instanceof ChunkFailedError ? (list.details!.failedArguments as { name: string }[])[0]!.name === 'MemoryError' : list.code === 'CC_ERR_MEMORY_LIMIT', list.message);
  // The interpreter's memory is capped, so the process's resident set stays within it plus Node's own.
  for (const peak of sandboxPeaks()) assert.ok(peak < (MEMORY_MB + 300) * 2 ** 20, `a sandbox process peaked at ${peak >> 20} MiB`);
  await stillServes();
});

test('infinite recursion fails its argument with RecursionError', async () => {
  py.setCode('rec', 'def f(x):\n    return f(x + 1)\n');
  const r = await py.start('rec', [0], null).result.catch((e: unknown) => e);
  argumentFails(r, 'RecursionError');
  await stillServes();
});

test('recursion that overflows the WebAssembly stack crashes only its sandbox process', async () => {
  const r = await attempt(`v = []\nfor i in range(200000):\n    v = [v]\nreturn len(repr(v))`);
  if (r instanceof ChunkFailedError) argumentFails(r, 'RecursionError');
  else {
    assert.ok(r instanceof SandboxCrashError, `got ${JSON.stringify(r)}`);
    assert.equal(r.code, 'CC_ERR_SANDBOX_CRASHED');
  }
  await stillServes();
});

test('a busy loop is killed at the deadline', async () => {
  const r = await attempt(`while True:\n    pass`, [0], 300);
  assert.ok(r instanceof CrowdComputeError && r.code === 'CC_ERR_TIMEOUT', `got ${JSON.stringify(r)}`);
  await stillServes();
});

test('a generator or a cyclic result fails its argument', async () => {
  argumentFails(await attempt(`return (i for i in range(x))`, [3]), 'TypeError', /not a JSON value.*generator/);
  argumentFails(await attempt(`d = {}\nd['self'] = d\nreturn d`), 'ValueError', /not a JSON value.*Circular reference/);
  await stillServes();
});

/** The largest resident set each live sandbox process has had (VmHWM), in bytes; Linux's /proc. */
function sandboxPeaks(): number[] {
  const pids = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  return pids.map((pid) => {
    try { return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024; } catch { return 0; }
  });
}
