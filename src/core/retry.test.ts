import { test } from 'node:test';
import assert from 'node:assert/strict';
import { retryDelayMs, shouldRetry } from './retry.ts';

test('backoff doubles per failure, is jittered within [ceiling/2, ceiling], and is capped', () => {
  const opts = { baseMs: 100, maxMs: 1_000 };
  assert.equal(retryDelayMs(1, opts, () => 0), 50);
  assert.equal(retryDelayMs(1, opts, () => 1), 100);
  assert.equal(retryDelayMs(3, opts, () => 1), 400);
  assert.equal(retryDelayMs(20, opts, () => 1), 1_000);
  assert.equal(retryDelayMs(20, opts, () => 0), 500);
});

test('retry while attempts remain and the error is not permanent', () => {
  assert.equal(shouldRetry({ failures: 1, maxAttempts: 3, retryable: undefined }), true);
  assert.equal(shouldRetry({ failures: 3, maxAttempts: 3, retryable: true }), false);
  assert.equal(shouldRetry({ failures: 1, maxAttempts: 3, retryable: false }), false);
});
