import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bestPattern, matchesAny, matchesPattern } from './pattern.ts';

test('globs: * spans any characters, ? exactly one, the rest is literal', () => {
  assert.ok(matchesPattern('math.*', 'math.add'));
  assert.ok(matchesPattern('math.*', 'math.vector.add'));
  assert.ok(!matchesPattern('math.*', 'mathadd'));
  assert.ok(!matchesPattern('math.*', 'image.resize'));
  assert.ok(matchesPattern('image.re?ize', 'image.resize'));
  assert.ok(!matchesPattern('a.b', 'axb'), 'a dot is literal');
  assert.ok(matchesPattern('*', 'anything'));
  assert.ok(matchesPattern('(x)+[y]', '(x)+[y]'), 'regex characters are literal');
  assert.ok(matchesAny(['a.*', 'b.*'], 'b.c'));
  assert.ok(!matchesAny([], 'b.c'));
});

test('the most specific pattern wins', () => {
  assert.equal(bestPattern(['image.*', 'image.resize.*', '*'], 'image.resize.fast'), 'image.resize.*');
  assert.equal(bestPattern(['*', 'image.resize'], 'image.resize'), 'image.resize');
  assert.equal(bestPattern(['a.*'], 'b.c'), undefined);
});
