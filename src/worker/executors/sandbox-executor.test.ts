/**
 * What every Node code executor does, run against both: the in-process sandbox and the
 * sandbox processes that workers use (process-sandbox-executor.test.ts has what only the
 * processes do).
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { SandboxExecutor } from './sandbox-executor.ts';
import { ProcessSandboxExecutor } from './process-sandbox-executor.ts';
import { ChunkFailedError, type CodeExecutor } from '../runtime/code-executor.ts';
import { CrowdComputeError } from '../../protocol/index.ts';

async function rejectsWith(p: Promise<unknown>, code: string): Promise<CrowdComputeError> {
  try { await p; } catch (err) {
    assert.ok(err instanceof CrowdComputeError, `expected CrowdComputeError, got ${err}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected rejection with ${code}`);
}

const executors: [string, () => CodeExecutor][] = [
  ['in-process sandbox', () => new SandboxExecutor({ memoryLimitMb: 32, defaultTimeoutMs: 60_000 })],
  ['sandbox processes', () => new ProcessSandboxExecutor({ memoryLimitMb: 32, defaultTimeoutMs: 60_000 })],
];

for (const [name, make] of executors) describe(name, () => {
  const sandbox = make();
  after(() => sandbox.dispose());

  test('runs a shipped function over a chunk, in order', async () => {
    sandbox.setCode('j1', '(x) => x * x');
    assert.deepEqual(await sandbox.start('j1', [1, 2, 3, 4], null).result, [1, 4, 9, 16]);
    assert.deepEqual(await sandbox.start('j1', [5], null).result, [25]);
  });

  test('async functions and function declarations work', async () => {
    sandbox.setCode('j2', 'async function double(x) { await null; return { v: x * 2 }; }');
    assert.deepEqual(await sandbox.start('j2', [1, 2], null).result, [{ v: 2 }, { v: 4 }]);
  });

  test('a throw names the argument by its index in the whole job, keeps the message and stack, and the other arguments keep their results', async () => {
    sandbox.setCode('j3', '(x) => { if (x === 3 || x === 5) throw new RangeError(`${x} is bad`); return x * 10; }');
    // This chunk holds arguments 100..105 of its job.
    const err = await rejectsWith(sandbox.start('j3', [1, 2, 3, 4, 5, 6], null, 100).result, 'CC_ERR_HANDLER_FAILED') as ChunkFailedError;
    assert.ok(err instanceof ChunkFailedError);
    assert.match(err.message, /argument 102: RangeError: 3 is bad \(and 1 more of its 6 arguments\)/);
    assert.match(err.stack ?? '', /3 is bad/);
    assert.deepEqual(err.partialResults, [10, 20, null, 40, null, 60]);
    assert.deepEqual((err.details as { failedArguments: unknown[] }).failedArguments, [
      { index: 102, name: 'RangeError', message: '3 is bad' }, { index: 104, name: 'RangeError', message: '5 is bad' }]);
    assert.deepEqual(await sandbox.start('j3', [7], null).result, [70], 'the isolate keeps serving');
  });

  test('no Node APIs inside the sandbox', async () => {
    sandbox.setCode('j4', '() => [typeof require, typeof process, typeof fetch, typeof setTimeout, typeof globalThis.Buffer]');
    assert.deepEqual(await sandbox.start('j4', [0], null).result, [['undefined', 'undefined', 'undefined', 'undefined', 'undefined']]);
  });

  test('an infinite loop is stopped at the timeout and the executor keeps serving', async () => {
    sandbox.setCode('j5', '(x) => { while (true) {} }');
    const err = await rejectsWith(sandbox.start('j5', [1], 100).result, 'CC_ERR_TIMEOUT');
    assert.match(err.message, /100 ms/);
    sandbox.setCode('j5b', '(x) => x + 1');
    assert.deepEqual(await sandbox.start('j5b', [1], null).result, [2]);
  });

  test('a promise that never settles is stopped at the timeout', async () => {
    sandbox.setCode('j6', '(x) => new Promise(() => {})');
    await rejectsWith(sandbox.start('j6', [1], 100).result, 'CC_ERR_TIMEOUT');
  });

  test('unbounded allocation hits the memory limit and the executor keeps serving', async () => {
    sandbox.setCode('j7', '(x) => { const a = []; while (true) a.push(new Array(100000).fill(x)); }');
    const err = await rejectsWith(sandbox.start('j7', [1], 180_000).result, 'CC_ERR_MEMORY_LIMIT');
    assert.match(err.message, /32 MiB/);
    assert.deepEqual(await sandbox.start('j1', [3], null).result, [9]);
  });

  test('a running call can be killed (cancellation)', async () => {
    sandbox.setCode('j8', '(x) => { while (true) {} }');
    const run = sandbox.start('j8', [1], 10_000);
    setImmediate(() => run.kill('cancelled'));
    await rejectsWith(run.result, 'CC_ERR_CANCELLED');
  });

  test('code that does not compile is a clear error', async () => {
    sandbox.setCode('j9', '(x) => {');
    await rejectsWith(sandbox.start('j9', [1], null).result, 'CC_ERR_CODE_COMPILE');
  });
});
