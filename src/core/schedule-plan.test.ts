import { test } from 'node:test';
import assert from 'node:assert/strict';
import { catchUpPlan, dueAt, overlapAction, type PlanSchedule } from './schedule-plan.ts';

const MIN = 60_000;
const HOUR = 60 * MIN;
const GRACE = MIN;

function everyMinute(over: Partial<PlanSchedule> = {}): PlanSchedule {
  return { id: 's', rule: { cron: null, everyMs: MIN, timezone: 'UTC' }, jitterMs: 0, windowMs: HOUR, policy: 'latest', nextTick: 100 * MIN, ...over };
}
const summary = (p: ReturnType<typeof catchUpPlan>) => p.ticks.map((t) => `${t.tick / MIN}:${t.action}${t.action === 'fire' ? `:${t.reason}` : ''}`);

test('nothing is due before the next tick (and its jitter)', () => {
  const p = catchUpPlan(everyMinute(), 100 * MIN - 1, GRACE);
  assert.deepEqual(p.ticks, []);
  assert.equal(p.nextTick, 100 * MIN);
  const jittered = everyMinute({ jitterMs: 30_000 });
  const due = dueAt(jittered, 100 * MIN);
  assert.deepEqual(catchUpPlan(jittered, due - 1, GRACE).ticks, []);
  assert.deepEqual(summary(catchUpPlan(jittered, due, GRACE)), ['100:fire:schedule']);
});

test('a tick found due on time fires, whatever the policy, and the schedule moves to the next', () => {
  for (const policy of ['none', 'latest', 'all'] as const) {
    const p = catchUpPlan(everyMinute({ policy }), 100 * MIN + 500, GRACE);
    assert.deepEqual(summary(p), ['100:fire:schedule'], policy);
    assert.equal(p.nextTick, 101 * MIN);
  }
});

test('an hour stopped, window 30 minutes: all fires the ticks within it in order, latest the newest, none nothing', () => {
  const now = 160 * MIN + 1_000;
  const base = { windowMs: 30 * MIN };
  const all = catchUpPlan(everyMinute({ ...base, policy: 'all' }), now, GRACE);
  const fired = all.ticks.filter((t) => t.action === 'fire').map((t) => t.tick / MIN);
  assert.deepEqual(fired, Array.from({ length: 30 }, (_, i) => 131 + i), 'ticks 131..160 (found due at most 30 minutes late)');
  assert.equal(all.ticks.find((t) => t.tick === 131 * MIN)!.reason, 'catch_up');
  assert.equal(all.ticks.find((t) => t.tick === 160 * MIN)!.reason, 'schedule');
  // 31 ticks past the window (100..130): the newest 10 listed, the rest counted.
  assert.equal(all.ticks.filter((t) => t.action === 'missed').length + all.missedUnlisted, 31);
  assert.deepEqual(all.ticks.filter((t) => t.action === 'missed').map((t) => t.tick / MIN), Array.from({ length: 10 }, (_, i) => 121 + i));
  assert.equal(all.nextTick, 161 * MIN);

  const latest = catchUpPlan(everyMinute({ ...base, policy: 'latest' }), now, GRACE);
  assert.deepEqual(latest.ticks.filter((t) => t.action === 'fire').map((t) => [t.tick / MIN, t.reason]), [[160, 'schedule']]);
  assert.equal(latest.ticks.filter((t) => t.action === 'missed').length + latest.missedUnlisted, 60);
  assert.equal(latest.nextTick, 161 * MIN);

  const none = catchUpPlan(everyMinute({ ...base, policy: 'none' }), now + 2 * MIN, GRACE);
  // Only a tick found due within a minute fires: 162 (1 s late), not 161 (61 s late).
  assert.deepEqual(none.ticks.filter((t) => t.action === 'fire').map((t) => t.tick / MIN), [162]);
  assert.equal(none.nextTick, 163 * MIN);
});

test('latest after the window passed entirely: a tick 2 hours late is missed, nothing fires', () => {
  const p = catchUpPlan({ ...everyMinute({ rule: { cron: null, everyMs: 24 * HOUR, timezone: 'UTC' }, nextTick: 0 }) }, 2 * HOUR, GRACE);
  assert.deepEqual(summary(p), ['0:missed']);
  assert.equal(p.nextTick, 24 * HOUR);
});

test('a long outage of an every-second schedule is counted, not walked tick by tick', () => {
  const s = everyMinute({ rule: { cron: null, everyMs: 1_000, timezone: 'UTC' }, nextTick: 0, policy: 'all', windowMs: 10_000 });
  const now = 30 * 24 * HOUR;
  const p = catchUpPlan(s, now, GRACE);
  const fired = p.ticks.filter((t) => t.action === 'fire').map((t) => t.tick);
  assert.deepEqual(fired, Array.from({ length: 11 }, (_, i) => now - 10_000 + i * 1_000));
  assert.equal(p.ticks.filter((t) => t.action === 'missed').length + p.missedUnlisted, now / 1_000 - 10);
});

test('all fires at most maxFires ticks per plan; the rest wait for the next step', () => {
  const p = catchUpPlan(everyMinute({ policy: 'all' }), 159 * MIN, GRACE, { maxFires: 5, maxListedMissed: 10, maxScanned: 1_000 });
  assert.deepEqual(p.ticks.map((t) => t.tick / MIN), [100, 101, 102, 103, 104]);
  assert.equal(p.nextTick, 105 * MIN);
});

test('overlap: skip, allow, cancel_previous, buffer_one (one tick at most)', () => {
  for (const policy of ['skip', 'allow', 'cancel_previous', 'buffer_one'] as const) assert.equal(overlapAction(policy, false, false), 'fire');
  assert.equal(overlapAction('skip', true, false), 'skip');
  assert.equal(overlapAction('allow', true, false), 'fire');
  assert.equal(overlapAction('cancel_previous', true, false), 'cancel_previous_and_fire');
  assert.equal(overlapAction('buffer_one', true, false), 'buffer');
  assert.equal(overlapAction('buffer_one', true, true), 'skip');
});
