import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseChunkSize, chunk, ONE_PER_TASK_UP_TO, TARGET_TASKS_PER_JOB } from './chunking.ts';

test('small jobs get one task per argument, large ones about TARGET_TASKS_PER_JOB tasks', () => {
  assert.equal(chooseChunkSize(1), 1);
  assert.equal(chooseChunkSize(ONE_PER_TASK_UP_TO), 1);
  const size = chooseChunkSize(10_000);
  assert.equal(size, Math.ceil(10_000 / TARGET_TASKS_PER_JOB));
  assert.ok(Math.ceil(10_000 / size) <= TARGET_TASKS_PER_JOB);
  assert.equal(chooseChunkSize(10_000, 7), 7, 'an explicit size wins');
});

test('chunks keep order and cover every argument once', () => {
  assert.deepEqual(chunk([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
  assert.deepEqual(chunk([], 3), []);
  const args = Array.from({ length: 1001 }, (_, i) => i);
  assert.deepEqual(chunk(args, 100).flat(), args);
});
