import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatRate, parseRate, parseRateLimit } from './rate-limit-spec.ts';

test('rates read as <count>/<window>, and errors name the problem and the limits', () => {
  assert.deepEqual(parseRate('100/s'), { max: 100, perMs: 1_000 });
  assert.deepEqual(parseRate('6000/10m'), { max: 6_000, perMs: 600_000 });
  assert.deepEqual(parseRate('5/1500ms'), { max: 5, perMs: 1_500 });
  assert.deepEqual(parseRateLimit('image.*=100/s'), { pattern: 'image.*', max: 100, perMs: 1_000 });
  assert.throws(() => parseRate('fast'), /not <count>\/<window>/);
  assert.throws(() => parseRate('0/s'), /count must be 1 to/);
  assert.throws(() => parseRate('5/1ms'), /window must be a duration from 10 ms/);
  assert.throws(() => parseRateLimit('100/s'), /not <type pattern>=<count>\/<window>/);
  assert.equal(formatRate({ max: 100, perMs: 1_000 }), '100/s');
  assert.equal(formatRate({ max: 5, perMs: 1_500 }), '5/1500ms');
  assert.equal(formatRate({ max: 5, perMs: 60_000 }), '5/1m');
});
