/**
 * Python map functions run in Pyodide sandbox processes: results in argument order, a failure
 * per argument with Python's exception type, message and traceback, results that are not JSON
 * values failing their own argument, each job's source compiled once per interpreter, and a
 * deadline that kills the interpreter without stopping the next chunk.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { PythonSandboxExecutor } from './python-sandbox-executor.ts';
import { ChunkFailedError } from '../runtime/code-executor.ts';
import { CrowdComputeError } from '../../protocol/index.ts';

// One interpreter for the whole file: each takes seconds to load.
const py = new PythonSandboxExecutor({ maxProcesses: 1, defaultTimeoutMs: 60_000 });
after(() => py.dispose());

async function failure(p: Promise<unknown>): Promise<CrowdComputeError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof CrowdComputeError, `a CrowdComputeError, not ${err}`);
    return err;
  }
  assert.fail('the call succeeded');
}

test('results come back in argument order, as JSON values', async () => {
  py.setCode('order', 'def f(x):\n    import math\n    return {"x": x, "root": math.isqrt(x), "tags": [str(x)] * 2, "none": None}\n');
  const out = await py.start('order', [16, 1, 9, 4], null).result;
  assert.deepEqual(out, [16, 1, 9, 4].map((x) => ({ x, root: Math.floor(Math.sqrt(x)), tags: [String(x), String(x)], none: null })));
  py.setCode('echo', 'def f(x):\n    return x\n');
  const values = [null, true, 1.5, 'é', [1, [2]], { a: { b: [] } }];
  assert.deepEqual(await py.start('echo', values, null).result, values);
});

test('an argument that raises fails alone, named by its exception type, message and traceback', async () => {
  py.setCode('div', 'def f(x):\n    return 10 // x\n');
  const err = await failure(py.start('div', [5, 0, 2, 0], null, 100).result);
  assert.ok(err instanceof ChunkFailedError);
  assert.deepEqual(err.partialResults, [2, null, 5, null]);
  assert.deepEqual(err.details!.failedArguments, [
    { index: 101, name: 'ZeroDivisionError', message: 'division by zero' },
    { index: 103, name: 'ZeroDivisionError', message: 'division by zero' },
  ]);
  assert.match(err.message, /argument 101: ZeroDivisionError: division by zero \(and 1 more of its 4 arguments\)/);
  assert.match(err.stack!, /^Traceback \(most recent call last\):\n {2}File "<map function of job div>", line 2, in f\n {4}return 10 \/\/ x/);
  assert.doesNotMatch(err.stack!, /_cc_run/, 'the runner\'s own frame is not in the traceback');
});

test('a result that is not a JSON value fails its argument, saying why', async () => {
  py.setCode('nonjson', [
    'def f(x):',
    '    if x == "gen": return (i for i in range(3))',
    '    if x == "set": return {1, 2}',
    '    if x == "cycle":',
    '        a = []',
    '        a.append(a)',
    '        return a',
    '    if x == "nan": return float("nan")',
    '    if x == "bytes": return b"x"',
    '    return x',
  ].join('\n'));
  const err = await failure(py.start('nonjson', ['ok', 'gen', 'set', 'cycle', 'nan', 'bytes'], null).result);
  assert.ok(err instanceof ChunkFailedError);
  assert.deepEqual(err.partialResults, ['ok', null, null, null, null, null]);
  const failed = err.details!.failedArguments as { index: number; name: string; message: string }[];
  assert.deepEqual(failed.map((f) => [f.index, f.name]), [[1, 'TypeError'], [2, 'TypeError'], [3, 'ValueError'], [4, 'ValueError'], [5, 'TypeError']]);
  assert.match(failed[0]!.message, /the result is not a JSON value \(Object of type generator is not JSON serializable\)/);
  assert.match(failed[1]!.message, /Object of type set/);
  assert.match(failed[2]!.message, /Circular reference/);
  assert.match(failed[3]!.message, /Out of range float/);
});

test('a job\'s source is compiled once per interpreter and kept', async () => {
  // A module-level counter would reset if the source were run again for each chunk.
  py.setCode('count', 'def f(x):\n    import builtins\n    builtins.__cc_calls = getattr(builtins, "__cc_calls", 0) + 1\n    return builtins.__cc_calls\n');
  const first = await py.start('count', [0, 0], null).result as number[];
  const second = await py.start('count', [0], null).result as number[];
  assert.equal(second[0], first[1]! + 1);
  // The interpreter keeps the function itself: a closure's state outlives the chunk.
  py.setCode('memo', 'def f(x, _seen=[]):\n    _seen.append(x)\n    return len(_seen)\n');
  assert.deepEqual(await py.start('memo', ['a', 'b'], null).result, [1, 2]);
  assert.deepEqual(await py.start('memo', ['c'], null).result, [3]);
  // A new source for the job replaces the old.
  py.setCode('memo', 'def g(x):\n    return -x\n');
  assert.deepEqual(await py.start('memo', [3], null).result, [-3]);
});

test('source that is not one function fails its chunks with CC_ERR_CODE_COMPILE, naming the problem', async () => {
  py.setCode('bad', 'def f(x)\n    return x\n');
  const err = await failure(py.start('bad', [1], null).result);
  assert.equal(err.code, 'CC_ERR_CODE_COMPILE');
  assert.match(err.message, /SyntaxError on line 1: expected ':'/);
  py.setCode('two', 'def f(x):\n    return x\ndef g(x):\n    return x\n');
  assert.match((await failure(py.start('two', [1], null).result)).message, /exactly one top-level 'def/);
});

test('a chunk past its deadline is killed with CC_ERR_TIMEOUT, and the next chunk runs', async () => {
  py.setCode('spin', 'def f(x):\n    while True:\n        pass\n');
  const err = await failure(py.start('spin', [0], 300).result);
  assert.equal(err.code, 'CC_ERR_TIMEOUT');
  assert.match(err.message, /longer than 300 ms/);
  py.setCode('after', 'def f(x):\n    return x * 2\n');
  assert.deepEqual(await py.start('after', [21], null).result, [42]);
  // The new interpreter is sent the sources it needs.
  assert.deepEqual(await py.start('div', [5], null).result, [2]);
});
