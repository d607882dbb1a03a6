import { test } from 'node:test';
import assert from 'node:assert/strict';
import { leaseReapingStartsAt, overdueAssignments, reconcileHeartbeat, reconcileHello, type Assignment } from './leases.ts';

const a = (attempt: number, assignedAt: number, timeoutMs: number | null = null): Assignment => ({ attempt, assignedAt, timeoutMs });

test('a heartbeat holds what it lists, misses only what it should have listed, and lets revoked tasks go', () => {
  const r = reconcileHeartbeat({
    assigned: [['held', a(1, 0)], ['old', a(2, 50)], ['new', a(1, 150)], ['other-attempt', a(3, 0)]],
    revoked: [['gone', 1], ['still', 2]],
    listed: [{ taskId: 'held', attempt: 1 }, { taskId: 'still', attempt: 2 }, { taskId: 'other-attempt', attempt: 2 }],
    previousHeartbeatAt: 100,
  });
  assert.deepEqual(r.held, [{ taskId: 'held', attempt: 1 }]);
  // 'new' was sent after the previous heartbeat: this one may have left before it arrived.
  assert.deepEqual(r.missing, [{ taskId: 'old', attempt: 2 }, { taskId: 'other-attempt', attempt: 3 }]);
  assert.deepEqual(r.letGo, ['gone']);
});

test('a worker that says how many assignments it had read is judged by them, not by when its heartbeats arrived', () => {
  // Two heartbeats written before the worker read message 2 arrive together, after it was sent.
  const assigned: [string, Assignment][] = [['first', { ...a(1, 0), message: 1 }], ['second', { ...a(1, 100), message: 2 }], ['adopted', a(1, 0)]];
  const listed = [{ taskId: 'first', attempt: 1 }];
  const beforeIt = reconcileHeartbeat({ assigned, revoked: [], listed, previousHeartbeatAt: 200, assignmentsRead: 1 });
  assert.deepEqual(beforeIt.missing, [{ taskId: 'adopted', attempt: 1 }], "message 2 not read yet: its task is not expected; a task adopted from a hello (no message) is judged by time");
  const afterIt = reconcileHeartbeat({ assigned, revoked: [], listed, previousHeartbeatAt: 200, assignmentsRead: 2 });
  assert.deepEqual(afterIt.missing.map((t) => t.taskId), ['second', 'adopted']);
  // A worker that does not say: by time, as before (both were sent before the previous heartbeat arrived).
  assert.deepEqual(reconcileHeartbeat({ assigned, revoked: [], listed, previousHeartbeatAt: 200 }).missing.map((t) => t.taskId), ['second', 'adopted']);
});

test('a returning worker keeps the tasks its hello lists under the same attempt; the rest were lost', () => {
  const r = reconcileHello({
    storeHeld: [{ taskId: 'a', attempt: 1 }, { taskId: 'b', attempt: 2 }, { taskId: 'c', attempt: 1 }],
    reported: [{ taskId: 'a', attempt: 1 }, { taskId: 'b', attempt: 1 }, { taskId: 'z', attempt: 1 }],
  });
  assert.deepEqual(r.adopt, [{ taskId: 'a', attempt: 1 }]);
  assert.deepEqual(r.lost, [{ taskId: 'b', attempt: 2 }, { taskId: 'c', attempt: 1 }]);
});

test('a task is overdue past its own deadline (or the default) plus a lease TTL', () => {
  const assigned: [string, Assignment][] = [['own', a(1, 0, 100)], ['default', a(1, 0, null)]];
  assert.deepEqual(overdueAssignments({ assigned, now: 1_100, defaultTimeoutMs: 5_000, leaseTtlMs: 1_000 }), []);
  assert.deepEqual(overdueAssignments({ assigned, now: 1_101, defaultTimeoutMs: 5_000, leaseTtlMs: 1_000 }), [{ taskId: 'own', attempt: 1 }]);
  assert.equal(overdueAssignments({ assigned, now: 6_001, defaultTimeoutMs: 5_000, leaseTtlMs: 1_000 }).length, 2);
});

test('a fresh foreman waits one lease TTL before reaping expired leases', () => {
  assert.equal(leaseReapingStartsAt(1_000, 30_000), 31_000);
});
