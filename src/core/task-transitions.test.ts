import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TASK_STATES, TERMINAL_TASK_STATES } from '../protocol/index.ts';
import { TASK_TRANSITIONS, afterFailure, afterLoss, canTake } from './task-transitions.ts';

test('the state machine: only a retry by hand leaves a terminal state, and only for failed or cancelled tasks', () => {
  for (const [name, t] of Object.entries(TASK_TRANSITIONS)) {
    assert.ok((TASK_STATES as readonly string[]).includes(t.to), `${name} ends in a known state`);
    if (name === 'rerun') continue;
    for (const from of t.from) assert.ok(!TERMINAL_TASK_STATES.has(from), `${name} never leaves a terminal state`);
  }
  // A completed result is never run again; a failed or cancelled task may be, by hand, from the queue.
  assert.deepEqual([...TASK_TRANSITIONS.rerun.from].sort(), ['cancelled', 'failed']);
  assert.equal(TASK_TRANSITIONS.rerun.to, 'queued');
  // Every state is reachable (a task is inserted scheduled or queued); only claiming, cancelling, the queue deadline, the job's deadline and failing the whole job apply to a queued task.
  assert.deepEqual(new Set([...Object.values(TASK_TRANSITIONS).map((t) => t.to), 'scheduled']), new Set(TASK_STATES));
  // A scheduled task only waits: its time releases it, or it is cancelled, or its job's deadline passes, or its job fails as a whole.
  assert.deepEqual(Object.entries(TASK_TRANSITIONS).filter(([, t]) => (t.from as readonly string[]).includes('scheduled')).map(([n]) => n).sort(), ['cancel', 'deadline', 'halt', 'release']);
  assert.deepEqual(Object.entries(TASK_TRANSITIONS).filter(([, t]) => (t.from as readonly string[]).includes('queued')).map(([n]) => n).sort(), ['cancel', 'claim', 'deadline', 'expire', 'halt']);
  assert.ok(canTake('cancel', 'queued') && !canTake('complete', 'queued') && !canTake('cancel', 'completed'));
  assert.ok(canTake('rerun', 'failed') && !canTake('rerun', 'completed') && !canTake('expire', 'running'));
});

test("a job's deadline ends every unfinished task, whatever it waits for, and never a finished one", () => {
  assert.deepEqual([...TASK_TRANSITIONS.deadline.from].sort(), ['queued', 'running', 'scheduled']);
  assert.equal(TASK_TRANSITIONS.deadline.to, 'failed');
  assert.ok(!canTake('deadline', 'completed') && !canTake('deadline', 'failed') && !canTake('deadline', 'cancelled'));
});

test('a failure retries while attempts remain and the error is not permanent', () => {
  assert.equal(afterFailure({ failures: 0, maxAttempts: 3 }, {}), 'retry');
  assert.equal(afterFailure({ failures: 1, maxAttempts: 3 }, { retryable: true }), 'retry');
  assert.equal(afterFailure({ failures: 2, maxAttempts: 3 }, {}), 'fail', 'the third failure is the last');
  assert.equal(afterFailure({ failures: 0, maxAttempts: 3 }, { retryable: false }), 'fail');
  assert.equal(afterFailure({ failures: 0, maxAttempts: 1 }, {}), 'fail', 'one attempt: no retry');
});

test('a lost attempt requeues until the lost budget is spent; a hand-back does not spend it', () => {
  assert.deepEqual(afterLoss({ lost: 0 }, { maxLost: 2, countAsLost: true }), { transition: 'requeue', lost: 1 });
  assert.deepEqual(afterLoss({ lost: 1 }, { maxLost: 2, countAsLost: true }), { transition: 'abandon', lost: 2 });
  assert.deepEqual(afterLoss({ lost: 1 }, { maxLost: 2, countAsLost: false }), { transition: 'requeue', lost: 1 });
  assert.deepEqual(afterLoss({ lost: 9 }, { maxLost: undefined, countAsLost: true }), { transition: 'requeue', lost: 10 });
});
