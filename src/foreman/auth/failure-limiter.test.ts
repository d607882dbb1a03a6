import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FailureLimiter } from './failure-limiter.ts';

test('a failure is refused once any of its subjects is over its budget, and then counts against none', () => {
  const limiter = new FailureLimiter({ burst: 2, refillMs: 60_000 });
  assert.equal(limiter.fail(['address a', 'credential k']), null);
  assert.equal(limiter.fail(['address b', 'credential k']), null);
  assert.equal(limiter.fail(['address c', 'credential k']), 'credential k', 'the credential id is over, whatever the address');
  // That refused failure took nothing from address c: it still has its whole budget.
  assert.equal(limiter.fail(['address c']), null);
  assert.equal(limiter.fail(['address c']), null);
  assert.equal(limiter.fail(['address c']), 'address c');
});

test('a flood of fresh subjects does not grow the limiter past its bound; the longest quiet are forgotten first', () => {
  const limiter = new FailureLimiter({ burst: 1, refillMs: 60_000, maxSubjects: 100 });
  assert.equal(limiter.fail(['address keep']), null);
  for (let i = 0; i < 1_000; i++) {
    limiter.fail([`address flood-${i}`]);
    // The one being watched fails now and then, so it is never the longest quiet.
    if (i % 50 === 0) assert.equal(limiter.fail(['address keep']), 'address keep', `still remembered after ${i} others`);
  }
  assert.equal(limiter.fail(['address flood-0']), null, 'an early one was forgotten');
});
