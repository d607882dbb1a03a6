import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deriveJobState, isJobDone } from './job-state.ts';

const c = (total: number, completed: number, failed = 0, cancelled = 0) => ({ total, completed, failed, cancelled });

test('a job state follows from its task counts', () => {
  assert.equal(deriveJobState(c(3, 0), { started: false, cancelRequested: false }), 'queued');
  assert.equal(deriveJobState(c(3, 0), { started: true, cancelRequested: false }), 'running');
  assert.equal(deriveJobState(c(3, 1), { started: false, cancelRequested: false }), 'running');
  assert.equal(deriveJobState(c(3, 3), { started: true, cancelRequested: false }), 'completed');
  assert.equal(deriveJobState(c(3, 2, 1), { started: true, cancelRequested: false }), 'failed');
  assert.equal(deriveJobState(c(3, 1, 0, 2), { started: true, cancelRequested: true }), 'cancelled');
  assert.ok(isJobDone(c(2, 1, 1)));
  assert.ok(!isJobDone(c(2, 1)));
});
