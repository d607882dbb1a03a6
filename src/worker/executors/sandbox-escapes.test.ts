/**
 * Shipped code tries to get out of its isolate, or to take the worker down with it. Each
 * attempt is contained: the call fails (or returns harmlessly) with a clear reason, the
 * worker's process is unharmed, and the same sandbox serves the next call.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { SandboxExecutor } from './sandbox-executor.ts';
import { CrowdComputeError } from '../../protocol/index.ts';
import { checkFunctionSource } from '../../foreman/jobs/job-submission.ts';

const sandbox = new SandboxExecutor({ memoryLimitMb: 64, defaultTimeoutMs: 1_500 });
after(() => sandbox.dispose());
let n = 0;

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

test('unbounded allocation hits the memory limit, ArrayBuffers and SharedArrayBuffers included', async () => {
  const before = process.memoryUsage().rss;
  failsWith(await attempt('() => { const a = []; for (;;) a.push(new Array(1e6).fill(1)); }'), 'CC_ERR_MEMORY_LIMIT');
  failsWith(await attempt('() => { const b = []; for (let i = 0; i < 20; i++) b.push(new ArrayBuffer(2 ** 30)); return b.length; }'), 'CC_ERR_HANDLER_FAILED', /allocation failed/);
  failsWith(await attempt('() => { const b = []; for (let i = 0; i < 20; i++) b.push(new SharedArrayBuffer(2 ** 30)); return b.length; }'), 'CC_ERR_HANDLER_FAILED', /allocation failed/);
  assert.ok(process.memoryUsage().rss - before < 512 * 1024 * 1024, 'the worker did not grow by the gigabytes asked for');
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
