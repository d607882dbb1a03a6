import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocateSlots, fairShares, type ShareJob } from './fair-share.ts';

let order = 0;
const job = (jobId: string, over: Partial<ShareJob> = {}): ShareJob => ({
  jobId, owner: '', rank: 2, weight: 1, order: order++, running: 0, waiting: 1_000, maxConcurrency: Infinity, ...over,
});
const asObject = (plan: { jobId: string; limit: number }[]) => Object.fromEntries(plan.map((p) => [p.jobId, p.limit]));

test('equal jobs of one priority split the slots evenly, whatever their size and age', () => {
  assert.deepEqual(asObject(allocateSlots(10, [job('big', { waiting: 100_000 }), job('small', { waiting: 10 })], new Map())), { big: 5, small: 5 });
  // Counted with what runs already: the job running more gets fewer new slots.
  assert.deepEqual(asObject(allocateSlots(10, [job('a', { running: 8 }), job('b')], new Map())), { a: 1, b: 9 });
  // A job with fewer waiting tasks than its share leaves the rest to the others.
  assert.deepEqual(asObject(allocateSlots(10, [job('a', { waiting: 2 }), job('b')], new Map())), { a: 2, b: 8 });
});

test('weights divide the slots in proportion', () => {
  assert.deepEqual(asObject(allocateSlots(40, [job('w3', { weight: 3 }), job('w1', { weight: 1 })], new Map())), { w3: 30, w1: 10 });
});

test('owners share first: an owner with many jobs gets one owner\'s share, split between its jobs', () => {
  const many = Array.from({ length: 10 }, (_, i) => job(`m${i}`, { owner: 'many' }));
  const plan = asObject(allocateSlots(20, [...many, job('solo', { owner: 'one' })], new Map()));
  assert.equal(plan.solo, 10);
  assert.equal(many.reduce((a, j) => a + (plan[j.jobId] ?? 0), 0), 10);
  for (const j of many) assert.equal(plan[j.jobId], 1);
});

test('caps: a job or an owner at its maxConcurrency takes no slot, and its slots go to the others', () => {
  assert.deepEqual(asObject(allocateSlots(10, [job('capped', { maxConcurrency: 3, running: 1 }), job('free')], new Map())), { capped: 2, free: 8 });
  const owners = new Map([['k', { running: 4, maxConcurrency: 5 }]]);
  assert.deepEqual(asObject(allocateSlots(10, [job('a', { owner: 'k', running: 4 }), job('b')], owners)), { a: 1, b: 9 });
  // Every job capped: nothing is handed out, the slots stay free.
  assert.deepEqual(allocateSlots(10, [job('c', { maxConcurrency: 2, running: 2 })], new Map()), []);
});

test('priority comes before sharing; a capped better priority leaves its slots to the next', () => {
  assert.deepEqual(asObject(allocateSlots(10, [job('normal', { rank: 2 }), job('high', { rank: 1 })], new Map())), { high: 10 });
  assert.deepEqual(asObject(allocateSlots(10, [job('normal', { rank: 2 }), job('high', { rank: 1, maxConcurrency: 4 })], new Map())), { high: 4, normal: 6 });
});

test('among equals the oldest job goes first; the plan lists jobs in the order they were first chosen', () => {
  const plan = allocateSlots(3, [job('old'), job('mid'), job('new')], new Map());
  assert.deepEqual(plan, [{ jobId: 'old', limit: 1 }, { jobId: 'mid', limit: 1 }, { jobId: 'new', limit: 1 }]);
  assert.deepEqual(allocateSlots(1, [job('new2', { order: 99 }), job('old2', { order: -1 })], new Map()), [{ jobId: 'old2', limit: 1 }]);
});

test('fair shares for display: owners equal, jobs within an owner by weight, other priorities none', () => {
  const shares = fairShares([job('a', { owner: 'x', weight: 3 }), job('b', { owner: 'x' }), job('c', { owner: 'y' }), job('low', { rank: 3 })]);
  assert.deepEqual(Object.fromEntries(shares), { a: 0.375, b: 0.125, c: 0.5, low: 0 });
  assert.deepEqual(Object.fromEntries(fairShares([job('idle', { waiting: 0 })])), { idle: 0 });
});
