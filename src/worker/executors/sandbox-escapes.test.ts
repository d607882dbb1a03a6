/**
 * Shipped code tries to get out of its isolate, or to take the worker down with it. Each
 * attempt is contained: the call fails (or returns harmlessly) with a clear reason, the
 * worker's process is unharmed, and the executor serves the next call. The executor is the
 * one workers run: isolates in sandbox processes.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ProcessSandboxExecutor } from './process-sandbox-executor.ts';
import { SandboxCrashError } from '../runtime/code-executor.ts';
import { CrowdComputeError } from '../../protocol/index.ts';
import { checkFunctionSource } from '../../foreman/jobs/job-submission.ts';

// Calls that must end at a deadline set their own; the default is for calls that must not hit one.
const sandbox = new ProcessSandboxExecutor({ memoryLimitMb: 64, defaultTimeoutMs: 60_000 });
after(() => sandbox.dispose());
let n = 0;
/**
 * Long enough for a heap to fill on a busy machine: near its limit V8 collects again and
 * again before it gives up, and a shorter timeout would stop the function first.
 */
const FILL = 180_000;

/** Run `code` over `args` in a job of its own; resolve with the results or the CrowdComputeError. */
async function attempt(code: string, args: unknown[] = [0], timeoutMs: number | null = null): Promise<unknown[] | CrowdComputeError> {
  const jobId = `escape-${++n}`;
  sandbox.setCode(jobId, code);
  try {
    return await sandbox.start(jobId, args, timeoutMs).result;
  } catch (err) {
    assert.ok(err instanceof CrowdComputeError, `a CrowdComputeError, not ${err}`);
    return err;
  }
}

/** After each escape attempt, the sandbox still runs ordinary code. */
async function stillServes(): Promise<void> {
  assert.deepEqual(await attempt('(x) => x + 1', [1, 2]), [2, 3]);
}

const failsWith = (r: unknown, code: string, pattern?: RegExp) => {
  assert.ok(r instanceof CrowdComputeError, `expected ${code}, got ${JSON.stringify(r)}`);
  assert.equal(r.code, code, r.message);
  if (pattern) assert.match(r.message, pattern);
};

test('an infinite loop is stopped at the deadline', async () => {
  failsWith(await attempt('() => { for (;;) {} }', [0], 200), 'CC_ERR_TIMEOUT', /longer than 200 ms/);
  await stillServes();
});

/** The largest resident set each live sandbox process has had (VmHWM), in bytes; Linux's /proc. */
function sandboxPeaks(): number[] {
  const pids = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
  return pids.map((pid) => {
    try { return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024; } catch { return 0; }
  });
}

test('unbounded allocation hits the memory limit, ArrayBuffers and SharedArrayBuffers included', async () => {
  const before = process.memoryUsage().rss;
  failsWith(await attempt('() => { const a = []; for (;;) a.push(new Array(1e6).fill(1)); }', [0], FILL), 'CC_ERR_MEMORY_LIMIT');
  failsWith(await attempt('() => { const a = []; for (let i = 0; ; i++) a.push(\'x\'.repeat(1000) + i); }', [0], FILL), 'CC_ERR_MEMORY_LIMIT');
  failsWith(await attempt('() => { const b = []; for (let i = 0; i < 20; i++) b.push(new ArrayBuffer(2 ** 30)); return b.length; }', [0], FILL), 'CC_ERR_HANDLER_FAILED', /allocation failed/);
  failsWith(await attempt('() => { const b = []; for (let i = 0; i < 20; i++) b.push(new SharedArrayBuffer(2 ** 30)); return b.length; }', [0], FILL), 'CC_ERR_HANDLER_FAILED', /allocation failed/);
  failsWith(await attempt('() => { const b = []; for (;;) b.push(new Float64Array(1e6)); }', [0], FILL), 'CC_ERR_HANDLER_FAILED', /allocation failed/);
  assert.ok(process.memoryUsage().rss - before < 512 * 1024 * 1024, 'the worker did not grow by the gigabytes asked for');
  const peaks = sandboxPeaks();
  assert.ok(peaks.length > 0 && peaks.every((b) => b < 512 * 1024 * 1024), `no sandbox process grew by them either (peaks ${peaks.map((b) => Math.round(b / 2 ** 20)).join(', ')} MiB)`);
  await stillServes();
});

test('objects, Maps and Sets grown without end, which make V8 abort its process, fail the call alone', async () => {
  let aborted = 0;
  for (const code of [
    `() => { const o = {}; for (let i = 0; ; i++) o['k' + i] = i; }`,
    `() => { const m = new Map(); for (let i = 0; ; i++) m.set(i, i); }`,
    `() => { const s = new Set(); for (let i = 0; ; i++) s.add('v' + i); }`,
  ]) {
    const r = await attempt(code, [0], FILL);
    failsWith(r, 'CC_ERR_MEMORY_LIMIT', /64 MiB \(--sandbox-memory\)/);
    // V8 either fails the call (isolated-vm's limit) or aborts the process: it depends on its timing.
    if (r instanceof SandboxCrashError) {
      aborted++;
      assert.match(r.message, /sandbox process was stopped \(signal SIGABRT\); the task is not retried/);
    }
    await stillServes();
  }
  assert.ok(aborted > 0, 'at least one of them aborted its sandbox process');
});

test('Atomics.wait on a SharedArrayBuffer, in plain and async functions, ends at the deadline', async () => {
  failsWith(await attempt('() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)', [0], 200), 'CC_ERR_TIMEOUT', /longer than 200 ms/);
  failsWith(await attempt('async () => { await null; return Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); }', [0], 200), 'CC_ERR_TIMEOUT');
  await stillServes();
});

test('WebAssembly, whose memory lies outside the heap limit, is not there', async () => {
  assert.deepEqual(await attempt('() => typeof WebAssembly'), ['undefined']);
  failsWith(await attempt('() => new WebAssembly.Memory({ initial: 16000 })'), 'CC_ERR_HANDLER_FAILED', /WebAssembly is not defined/);
  await stillServes();
});

test('deep recursion overflows the isolate\'s stack, not the worker\'s', async () => {
  failsWith(await attempt('function f(n) { return f(n + 1) + 1; }'), 'CC_ERR_HANDLER_FAILED', /Maximum call stack size exceeded/);
  await stillServes();
});

test('no way to the host: process, require, import(), fetch, timers; Function and globalThis walks stay inside', async () => {
  assert.deepEqual(await attempt(`() => [typeof process, typeof require, typeof fetch, typeof setTimeout, typeof module, typeof Buffer]`),
    [['undefined', 'undefined', 'undefined', 'undefined', 'undefined', 'undefined']]);
  failsWith(await attempt(`async () => { await import('node:fs'); return 'imported'; }`), 'CC_ERR_HANDLER_FAILED', /Not supported|import/i);
  // The constructor chain leads to the isolate's own Function and global object, which hold nothing of the host's.
  assert.deepEqual(await attempt(`() => {
    const g = (0, function () {}).constructor('return this')();
    const viaProto = ({}).constructor.constructor('return typeof process')();
    return [g === globalThis, viaProto, Object.getOwnPropertyNames(g).filter((k) => /process|require|fs|ivm|host/i.test(k))];
  }`), [[true, 'undefined', []]]);
  await stillServes();
});

test('a returned object cannot pollute the host\'s prototypes', async () => {
  const r = await attempt(`() => { Object.prototype.polluted = 'inside'; return JSON.parse('{"__proto__": {"polluted": "host"}, "constructor": {"prototype": {"polluted": "host"}}}'); }`);
  assert.ok(Array.isArray(r));
  assert.equal(({} as Record<string, unknown>).polluted, undefined, 'the host\'s Object.prototype is untouched');
  assert.equal(Object.getPrototypeOf(r[0]), Object.prototype, 'a "__proto__" key stays a plain key');
  // The pollution stays in that job's isolate; another job's is clean.
  assert.deepEqual(await attempt(`() => ({}).polluted === undefined`), [true]);
});

test('results with getters, cycles, or that are too big are turned into clear failures', async () => {
  assert.deepEqual(await attempt(`() => ({ get x() { return 1; } })`), [{ x: 1 }], 'getters run inside the isolate, once');
  failsWith(await attempt(`() => ({ get x() { throw new Error('gotcha'); } })`), 'CC_ERR_HANDLER_FAILED', /cannot be turned into JSON \(gotcha\)/);
  failsWith(await attempt(`() => { const a = {}; a.self = a; return a; }`), 'CC_ERR_HANDLER_FAILED', /cannot be turned into JSON.*circular/i);
  failsWith(await attempt(`() => ({ toJSON() { for (;;) {} } })`, [0], 200), 'CC_ERR_TIMEOUT');
  const big = await attempt(`() => 'x'.repeat(2 ** 29)`);
  assert.ok(big instanceof CrowdComputeError && /MEMORY_LIMIT|HANDLER_FAILED/.test(big.code), 'a half-gigabyte string does not cross');
  await stillServes();
});

test('source that is not one function is refused before it ever runs', async () => {
  for (const [code, pattern] of [
    ['1 + 1', /not a BinaryExpression/], ['process.exit(1)', /not a CallExpression/], ['(() => 1)()', /not a CallExpression/],
    ['({ toString() { return 1; } })', /not a ObjectExpression/], ['x => x; globalThis.y = 1', /more code follows the function/],
    ['function* g() {}', /generator/], ['exit', /not the name "exit"/],
  ] as const) {
    assert.throws(() => checkFunctionSource(code), (e: unknown) => e instanceof CrowdComputeError && e.code === 'CC_ERR_CODE_COMPILE' && pattern.test(e.message), code);
  }
  assert.doesNotThrow(() => checkFunctionSource('async function (x) { return x; } // a comment'));
  // A worker reached by such code anyway (not through a foreman) refuses it at load time.
  failsWith(await attempt('1 + 1'), 'CC_ERR_CODE_COMPILE', /not a function/);
  await stillServes();
});
