import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Script } from 'node:vm';
import { functionSource } from './function-source.ts';

const compiles = (src: string) => { new Script(`(${src})`); return true; };

test('arrows, function expressions, async functions and method shorthand become expressions', () => {
  const obj = { square(x: number) { return x * x; }, async later(x: number) { return x; } };
  for (const fn of [(x: number) => x * 2, function named(x: number) { return x; }, async (x: number) => x, obj.square, obj.later]) {
    const src = functionSource(fn as (x: unknown) => unknown);
    assert.ok(compiles(src), src);
  }
  assert.match(functionSource(obj.square as never), /^function square/);
  assert.match(functionSource(obj.later as never), /^async function later/);
  assert.equal(functionSource('  (x) => x  '), '(x) => x');
});

test('native and bound functions and classes are refused with a clear error', () => {
  assert.throws(() => functionSource(Math.max as never), /CC_ERR_CODE_COMPILE: cannot ship max/);
  assert.throws(() => functionSource(((x: number) => x).bind(null) as never), /native or bound/);
  assert.throws(() => functionSource(class A {} as never), /class/);
});
