/** Python map functions are checked at submission with Python's own parser. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPythonFunction } from './python-code-check.ts';
import { CrowdComputeError } from '../../protocol/index.ts';

function refused(source: string, pattern: RegExp): Promise<void> {
  return refused2(checkPythonFunction(source), pattern);
}

test('a function using builtins and its own imports passes, named', async () => {
  assert.deepEqual(await checkPythonFunction('def square(x):\n    return x * x\n'), { name: 'square' });
  assert.deepEqual(await checkPythonFunction([
    'def stats(xs):',
    '    import math, statistics as st',
    '    from collections import Counter',
    '    def inner(v):',
    '        return math.sqrt(v) + len(Counter([v]))',
    '    total = sum(inner(v) for v in xs)',
    '    return {"mean": st.mean(xs), "total": total, "fact": stats if False else None}',
  ].join('\n')), { name: 'stats' });
});

test('a syntax error is refused with its line', async () => {
  await refused('def f(x):\n    return (x\n', /SyntaxError on line 2/);
  await refused('def f(x)\n    return x\n', /SyntaxError on line 1: expected ':'/);
});

test('anything but exactly one top-level def is refused', async () => {
  await refused('x = 1\ndef f(y):\n    return y\n', /exactly one top-level 'def name\(arg\): \.\.\.'.*Assign on line 1, FunctionDef on line 2/);
  await refused('def f(x):\n    return x\ndef g(x):\n    return x\n', /exactly one top-level/);
  await refused('', /exactly one top-level.*nothing/);
  await refused('async def f(x):\n    return x\n', /an async def/);
  await refused('@staticmethod\ndef f(x):\n    return x\n', /decorators \(line 1\)/);
});

test('free names are refused, standard-library modules used without an import included', async () => {
  await refused('def f(x):\n    return math.sqrt(x) + offset\n', /uses names it neither defines nor imports: math, offset/);
  await refused('def f(x):\n    global counter\n    counter = x\n    return x\n', /: counter/);
  await refused('def f(x):\n    def g():\n        return json.dumps(x)\n    return g()\n', /: json/);
});

test('a check past its timeout is stopped with its thread, and the next check runs', async () => {
  // Two hundred thousand statements: parsing them takes far longer than 1 ms on any machine.
  const huge = `def f(x):\n${'    x = x + 1\n'.repeat(200_000)}    return x\n`;
  await refused2(checkPythonFunction(huge, 1), /could not be checked within 1 ms/);
  assert.deepEqual(await checkPythonFunction('def g(x):\n    return x\n'), { name: 'g' });
});

async function refused2(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof CrowdComputeError, String(err));
    assert.equal(err.code, 'CC_ERR_CODE_COMPILE');
    assert.match(err.message, pattern);
    return true;
  });
}
