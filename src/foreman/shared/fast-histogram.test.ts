import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { FastHistogram } from './fast-histogram.ts';

test('a FastHistogram comes out exactly as prom-client\'s own Histogram with the same observations', async () => {
  const buckets = [0.01, 0.1, 1, 10];
  const ours = new Registry();
  const theirs = new Registry();
  const fast = new FastHistogram({ name: 'x_seconds', help: 'how long', labelName: 'type', buckets, registers: [ours] });
  const reference = new Histogram({ name: 'x_seconds', help: 'how long', labelNames: ['type'], buckets, registers: [theirs] });
  // Values on bucket bounds too: `le` is inclusive.
  for (const [type, v] of [['a', 0.005], ['a', 0.01], ['a', 0.5], ['b', 10], ['b', 11], ['a', 1], ['b', 0]] as const) {
    fast.observe(type, v);
    reference.observe({ type }, v);
  }
  assert.equal(await ours.metrics(), await theirs.metrics());
  fast.reset();
  reference.reset();
  assert.equal(await ours.metrics(), await theirs.metrics());
});
