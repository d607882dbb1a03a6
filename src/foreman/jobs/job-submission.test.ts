import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROTOCOL_VERSION } from '../../protocol/index.ts';
import { buildJob } from './job-submission.ts';
import { ANY, foremanParts, RecordingPeer } from '../../../test/support/foreman-parts.ts';

const limits = { maxPayloadBytes: 1024, maxArgs: 1000, maxTasksPerJob: 5, defaultTimeoutMs: 30_000, defaultRetentionMs: 60_000, defaultQueueTimeoutMs: null };

test('a map job is chunked in argument order; defaults fill in priority, attempts and deadline', () => {
  const p = buildJob({ kind: 'map', code: '(x) => x', args: Array.from({ length: 10 }, (_, i) => i), chunkSize: 4 }, limits, 1);
  assert.deepEqual(p.tasks.map((t) => t.input), [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
  assert.deepEqual(p.tasks.map((t) => t.id), [0, 1, 2].map((i) => `${p.job.id}.${i}`));
  assert.deepEqual([p.job.priority, p.job.maxAttempts, p.job.timeoutMs, p.job.argCount, p.job.chunkSize], ['normal', 1, 30_000, 10, 4]);
});

test('named tasks keep their own options over the job\'s', () => {
  const p = buildJob({ kind: 'tasks', priority: 'high', maxAttempts: 3, tasks: [{ type: 'a', input: 1 }, { type: 'b', taskId: 'mine', priority: 'low', timeoutMs: 5, maxAttempts: 1 }] }, limits, 1);
  assert.deepEqual(p.tasks.map((t) => [t.id, t.type, t.priority, t.maxAttempts, t.timeoutMs, t.input]),
    [[`${p.job.id}.0`, 'a', 'high', 3, 30_000, 1], ['mine', 'b', 'low', 1, 5, null]]);
});

test('limits are refused with errors that name them', () => {
  assert.throws(() => buildJob({ kind: 'map', code: '(x) => x', args: [] }, limits, 1), /CC_ERR_INVALID_JOB: a map job needs at least one argument/);
  assert.throws(() => buildJob({ kind: 'map', code: '(x) => x', args: Array.from({ length: 1001 }, () => 0) }, limits, 1), /1001 arguments, the foreman accepts at most 1000 in one message \(--max-args\); submit the job open and append the rest in parts/);
  assert.throws(() => buildJob({ kind: 'tasks', tasks: Array.from({ length: 6 }, () => ({ type: 'a' })) }, limits, 1), /6 tasks, the foreman accepts at most 5 in one message/);
  assert.throws(() => buildJob({ kind: 'tasks', tasks: [{ type: 'a', input: 'x'.repeat(2000) }] }, limits, 1), /CC_ERR_PAYLOAD_TOO_LARGE: task 0 \(a\) input is 2\.0 KiB, the foreman accepts at most 1\.0 KiB/);
  assert.throws(() => buildJob({ kind: 'map', code: '(x) => x', args: ['x'.repeat(600), 'y'.repeat(600)], chunkSize: 2 }, limits, 1), /arguments 0\.\.1\) is 1\.2 KiB.*use a smaller chunkSize/);
  assert.throws(() => buildJob({ kind: 'map', code: 'function (', args: [1] }, limits, 1), /CC_ERR_CODE_COMPILE: the shipped function does not compile/);
  assert.throws(() => buildJob({ kind: 'tasks', tasks: [] }, limits, 1), /CC_ERR_INVALID_JOB: a job needs at least one task \(or submit it open/);
  assert.throws(() => buildJob({ kind: 'graph', nodes: [{ id: 'a', type: 'a' }], open: true }, limits, 1), /a graph is submitted whole: it cannot be open/);
  // Open jobs may start empty; a map job's chunk size is fixed then (100 unless given).
  assert.equal(buildJob({ kind: 'tasks', tasks: [], open: true }, limits, 1).tasks.length, 0);
  assert.equal(buildJob({ kind: 'map', code: '(x) => x', args: [], open: true }, limits, 1).job.chunkSize, 100);
});

test('submitting: one commit, work announced once; an idempotency key returns the same job; a taken task id is refused', async () => {
  const parts = await foremanParts({ startDispatcher: false });
  try {
    const first = await parts.jobs.submit({ kind: 'tasks', tasks: [{ type: 'a' }, { type: 'b' }], idempotencyKey: 'k1' }, ANY);
    assert.equal(first.deduplicated, false);
    assert.equal(first.job.counts.total, 2);
    assert.equal(parts.announced(), 1);
    const again = await parts.jobs.submit({ kind: 'tasks', tasks: [{ type: 'a' }], idempotencyKey: 'k1' }, ANY);
    assert.equal(again.deduplicated, true);
    assert.equal(again.job.id, first.job.id);
    assert.equal(parts.announced(), 1, 'a deduplicated submission announces nothing');
    await parts.jobs.submit({ kind: 'tasks', tasks: [{ type: 'a', taskId: 'fixed' }] }, ANY);
    await assert.rejects(parts.jobs.submit({ kind: 'tasks', tasks: [{ type: 'a', taskId: 'fixed' }] }, ANY), /CC_ERR_TASK_EXISTS/);
  } finally {
    await parts.close();
  }
});

test('cancelling a job stops its running task on the worker that holds it, and settles the job', async () => {
  const parts = await foremanParts({ startDispatcher: false });
  try {
    const peer = new RecordingPeer();
    await parts.registry.admit(peer, { type: 'hello', protocol: PROTOCOL_VERSION, role: 'worker', workerId: 'w1', capacity: 1, patterns: ['*'], allowCode: false });
    const accepted = await parts.jobs.submit({ kind: 'tasks', tasks: [{ type: 'a' }, { type: 'b' }] }, ANY);
    const [running] = await parts.store.taskClaimMany({ workerId: 'w1', patterns: ['*'], allowCode: false, limit: 1, leaseMs: 10_000, now: Date.now() });
    const changes: string[] = [];
    parts.events.onChange((c) => changes.push(c.state));
    const job = await parts.jobs.cancel(accepted.job.id, ANY);
    assert.equal(job.state, 'cancelled');
    assert.deepEqual(peer.of('cancel_task').map((m) => [m.taskId, m.attempt]), [[running.taskId, running.attempt]]);
    assert.deepEqual(changes, ['cancelled']);
    await assert.rejects(parts.jobs.cancel('nope', ANY), /CC_ERR_JOB_NOT_FOUND: job nope does not exist/);
  } finally {
    await parts.close();
  }
});
