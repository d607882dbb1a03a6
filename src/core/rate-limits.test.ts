import { test } from 'node:test';
import assert from 'node:assert/strict';
import { withinRates } from './rate-limits.ts';

test('within rates: a type takes from its first matching limit; spent types wait, the others pass in order', () => {
  const left = [{ pattern: 'img.*', left: 1 }, { pattern: '*', left: 2 }];
  const rows = ['img.a', 'img.b', 'txt', 'txt', 'txt'].map((type, i) => ({ type, i }));
  assert.deepEqual(withinRates(rows, 10, left).map((r) => r.i), [0, 2, 3]);
  assert.deepEqual(left.map((l) => l.left), [0, 0]);
  assert.deepEqual(withinRates(rows, 1, [{ pattern: 'none', left: 0 }]).map((r) => r.i), [0], 'the count wanted holds');
});
