/** Each map job runs in the sandbox for its function's language. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { LanguageExecutor } from './language-executor.ts';
import { ProcessSandboxExecutor } from './process-sandbox-executor.ts';
import { PythonSandboxExecutor } from './python-sandbox-executor.ts';

let pythonMade = 0;
const executor = new LanguageExecutor(new ProcessSandboxExecutor({ maxProcesses: 1 }), () => {
  pythonMade++;
  return new PythonSandboxExecutor({ maxProcesses: 1 });
});
after(() => executor.dispose());

test('JavaScript jobs run in isolates; the Python sandbox is not made for them', async () => {
  executor.setCode('js', '(x) => typeof globalThis.process + ":" + (x * 2)');
  executor.setCode('js-default', '(x) => x + 1', 'javascript');
  assert.deepEqual(await executor.start('js', [2], null).result, ['undefined:4']);
  assert.deepEqual(await executor.start('js-default', [2], null).result, [3]);
  assert.equal(pythonMade, 0);
});

test('Python jobs run in Pyodide, next to JavaScript ones', async () => {
  executor.setCode('py', 'def f(x):\n    import sys\n    return [sys.platform, x * 2]\n', 'python');
  assert.deepEqual(await executor.start('py', [2], null).result, [['emscripten', 4]]);
  assert.deepEqual(await executor.start('js', [3], null).result, ['undefined:6']);
  // A job whose source arrives again as JavaScript runs as JavaScript.
  executor.setCode('py', '(x) => -x');
  assert.deepEqual(await executor.start('py', [2], null).result, [-2]);
  assert.equal(pythonMade, 1);
});
