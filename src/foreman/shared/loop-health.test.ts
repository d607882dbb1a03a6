import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { ForemanMetrics } from './foreman-metrics.ts';
import { LoopHealth } from './loop-health.ts';

function setup() {
  let now = 1_000_000;
  const metrics = new ForemanMetrics();
  const loops = new LoopHealth(metrics, pino({ level: 'silent' }), { stallMs: 10_000, now: () => now });
  return { loops, metrics, advance: (ms: number) => { now += ms; } };
}

test('an idle loop is not stalled, however long it waits; nor is one whose rounds succeed', () => {
  const { loops, advance } = setup();
  const t = loops.track('pruner');
  advance(60_000);
  assert.deepEqual(loops.stalls(), []);
  t.began();
  advance(9_000);
  t.succeeded();
  advance(60_000);
  assert.deepEqual(loops.stalls(), []);
});

test('a round stuck past the limit is a stall, until it ends', async () => {
  const { loops, metrics, advance } = setup();
  const t = loops.track('dispatcher');
  t.began();
  advance(10_500);
  const [s] = loops.stalls();
  assert.equal(s.loop, 'dispatcher');
  assert.match(s.reason, /the dispatcher has been in one round for 10.5 s/);
  assert.match(await metrics.registry.metrics(), /crowdcompute_loop_stalled\{loop="dispatcher"\} 1/);
  t.succeeded();
  assert.deepEqual(loops.stalls(), []);
  assert.match(await metrics.registry.metrics(), /crowdcompute_loop_stalled\{loop="dispatcher"\} 0/);
});

test('rounds that all fail past the limit are a stall naming the last error; one success ends it', () => {
  const { loops, advance } = setup();
  const t = loops.track('lease reaper');
  for (let i = 0; i < 12; i++) { t.began(); t.failed(new Error(`round ${i} failed`)); advance(1_000); }
  const [s] = loops.stalls();
  assert.match(s.reason, /every round of the lease reaper has failed for 12 s: round 11 failed/);
  t.began();
  t.succeeded();
  assert.deepEqual(loops.stalls(), []);
});

test('poisoned items are counted per loop', async () => {
  const { loops, metrics } = setup();
  loops.track('pruner').poisoned(2);
  assert.match(await metrics.registry.metrics(), /crowdcompute_loop_poisoned_items_total\{loop="pruner"\} 2/);
});
