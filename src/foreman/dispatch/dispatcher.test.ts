import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROTOCOL_VERSION, type Hello, type TaskOutcome } from '../../protocol/index.ts';
import { ANY, foremanParts, RecordingPeer, type ForemanParts } from '../../../test/support/foreman-parts.ts';
import { waitFor } from '../../testing/index.ts';

const hello = (workerId: string, extra: Partial<Hello> = {}): Hello =>
  ({ type: 'hello', protocol: PROTOCOL_VERSION, role: 'worker', workerId, capacity: 2, patterns: ['t.*'], allowCode: false, ...extra });

async function withParts(fn: (p: ForemanParts) => Promise<void>): Promise<void> {
  const parts = await foremanParts();
  try { await fn(parts); } finally { await parts.close(); }
}

/** Every task assigned to the peer so far. */
const assigned = (peer: RecordingPeer) => peer.of('assign_tasks').flatMap((m) => m.tasks);

test('a worker gets no more tasks than its free capacity, best priority first, and more as its slots free up', () => withParts(async ({ registry, dispatcher, jobs }) => {
  const peer = new RecordingPeer();
  await registry.admit(peer, hello('w1'));
  await jobs.submit({ kind: 'tasks', tasks: [{ type: 't.low', input: 1, priority: 'low' }, { type: 't.a', input: 2 }, { type: 't.b', input: 3 }, { type: 't.top', input: 4, priority: 'critical' }] }, ANY);
  await waitFor(() => assigned(peer).length === 2 || null, { message: 'two tasks assigned' });
  await dispatcher.drained();
  assert.deepEqual(assigned(peer).map((t) => t.type), ['t.top', 't.a'], 'critical first, then in submission order');
  assert.equal(peer.of('assign_tasks').length, 1, 'in one message');
  const first = assigned(peer)[0];
  dispatcher.acceptOutcomes(peer, [{ taskId: first.taskId, attempt: first.attempt, status: 'completed', result: 'ok' }]);
  await waitFor(() => assigned(peer).length === 3 || null, { message: 'a freed slot is filled' });
  assert.equal(assigned(peer)[2].type, 't.b');
}));

test('outcomes are recorded in a group commit and acknowledged once committed', () => withParts(async ({ registry, dispatcher, jobs, store, metrics }) => {
  const peer = new RecordingPeer();
  await registry.admit(peer, hello('w1', { capacity: 3 }));
  const accepted = await jobs.submit({ kind: 'tasks', tasks: [1, 2, 3].map((v) => ({ type: 't.x', input: v })) }, ANY);
  await waitFor(() => assigned(peer).length === 3 || null);
  const outcomes: TaskOutcome[] = assigned(peer).map((t) => ({ taskId: t.taskId, attempt: t.attempt, status: 'completed', result: (t.input as number) * 10 }));
  dispatcher.acceptOutcomes(peer, outcomes);
  // The same outcome again (a worker resending after a reconnect) is refused and acknowledged too.
  dispatcher.acceptOutcomes(peer, [outcomes[0]]);
  await dispatcher.drained();
  assert.deepEqual((await store.jobResults(accepted.job.id))!.results, [10, 20, 30]);
  assert.equal((await store.jobGet(accepted.job.id))!.counts.completed, 3, 'recorded once each');
  const acked = await waitFor(() => { const refs = peer.of('result_ack').flatMap((m) => m.tasks); return refs.length === 4 ? refs : null; }, { message: 'every outcome acknowledged' });
  assert.deepEqual(new Set(acked.map((r) => r.taskId)), new Set(outcomes.map((o) => o.taskId)));
  const commits = (await metrics.commitBatch.get()).values.find((v) => (v as { metricName?: string }).metricName === 'crowdcompute_commit_batch_size_count');
  assert.ok(commits && commits.value <= 2, `two group commits at most (${commits?.value})`);
}));

test('a map job\'s code goes to a worker once, with its first task of that job', () => withParts(async ({ registry, dispatcher, jobs }) => {
  const peer = new RecordingPeer();
  await registry.admit(peer, hello('coder', { patterns: [], allowCode: true, capacity: 1 }));
  await jobs.submit({ kind: 'map', code: '(x) => x * 2', args: [1, 2, 3] }, ANY);
  for (let i = 0; i < 3; i++) {
    const t = await waitFor(() => assigned(peer)[i] ?? null, { message: `task ${i} assigned` });
    dispatcher.acceptOutcomes(peer, [{ taskId: t.taskId, attempt: t.attempt, status: 'completed', result: [0] }]);
  }
  const withCode = peer.of('assign_tasks').filter((m) => m.code);
  assert.equal(withCode.length, 1);
  assert.equal(Object.values(withCode[0].code!)[0], '(x) => x * 2');
  assert.equal(peer.of('assign_tasks')[0], withCode[0]);
}));

test('a failed attempt with attempts left comes back after its backoff, without anyone announcing it', () => withParts(async ({ registry, dispatcher, jobs, store }) => {
  const peer = new RecordingPeer();
  await registry.admit(peer, hello('w1', { capacity: 1 }));
  const accepted = await jobs.submit({ kind: 'tasks', tasks: [{ type: 't.flaky', input: 0 }], maxAttempts: 2 }, ANY);
  const first = await waitFor(() => assigned(peer)[0] ?? null);
  dispatcher.acceptOutcomes(peer, [{ taskId: first.taskId, attempt: 1, status: 'failed', error: { message: 'boom' } }]);
  const second = await waitFor(() => assigned(peer)[1] ?? null, { message: 'the retry is dispatched' });
  assert.equal(second.taskId, first.taskId);
  assert.equal(second.attempt, 2);
  dispatcher.acceptOutcomes(peer, [{ taskId: first.taskId, attempt: 2, status: 'failed', error: { message: 'boom again' } }]);
  await waitFor(async () => (await store.jobGet(accepted.job.id))!.state === 'failed' || null, { message: 'no attempt left: the job fails' });
  assert.equal(assigned(peer).length, 2);
}));

test('tasks claimed for a worker that left during the claim go back without counting as lost', () => withParts(async ({ registry, jobs, store }) => {
  const peer = new RecordingPeer();
  await registry.admit(peer, hello('w1'));
  // The connection drops while the claim is in flight: the session is gone by delivery time.
  const claim = store.taskClaimMany.bind(store);
  store.taskClaimMany = async (params) => {
    const claimed = await claim(params);
    if (claimed.length > 0) peer.close(1006, 'network gone');
    return claimed;
  };
  const accepted = await jobs.submit({ kind: 'tasks', tasks: [{ type: 't.x', input: 0 }] }, ANY);
  const [task] = await store.taskList({ jobId: accepted.job.id, limit: 1, offset: 0 });
  const back = await waitFor(async () => { const t = (await store.taskGet(task.id))!; return t.state === 'queued' && t.attemptErrors.length > 0 ? t : null; }, { message: 'the claimed task is put back' });
  assert.equal(back.attemptErrors[0].error.reason, 'not_delivered');
  assert.deepEqual(assigned(peer), [], 'nothing was sent to the closed connection');
  store.taskClaimMany = claim;
  await registry.disconnected(peer, { keepAssignments: false });
  const late = new RecordingPeer();
  await registry.admit(late, hello('w2'));
  const t = await waitFor(() => assigned(late)[0] ?? null, { message: 'the task reaches the next worker' });
  assert.equal(t.taskId, task.id);
  assert.equal(t.attempt, 2);
}));

test('an idle worker does not claim again for work it cannot run', () => withParts(async ({ registry, jobs, store }) => {
  const peer = new RecordingPeer();
  await registry.admit(peer, hello('w1'));
  let claims = 0;
  const claim = store.taskClaimMany.bind(store);
  store.taskClaimMany = async (params) => { claims++; return claim(params); };
  await waitFor(async () => (await store.workerList()).length === 1);
  await new Promise((r) => setImmediate(r));
  const before = claims;
  for (let i = 0; i < 5; i++) await jobs.submit({ kind: 'tasks', tasks: [{ type: 'other.x', input: i }] }, ANY);
  await jobs.submit({ kind: 'map', code: 'function f(x) { return x; }', args: [1] }, ANY);
  const accepted = await jobs.submit({ kind: 'tasks', tasks: [{ type: 't.y', input: 0 }] }, ANY);
  const t = await waitFor(() => assigned(peer)[0] ?? null, { message: 'the task it can run reaches it' });
  assert.equal(t.jobId, accepted.job.id);
  assert.equal(claims - before, 1, 'one claim: for the t.y task, none for other.x or the map job (the worker runs no shipped code)');
}));

test('stop() records what has arrived before it returns', async () => {
  const parts = await foremanParts();
  const peer = new RecordingPeer();
  try {
    await parts.registry.admit(peer, hello('w1', { capacity: 1 }));
    const accepted = await parts.jobs.submit({ kind: 'tasks', tasks: [{ type: 't.x', input: 0 }] }, ANY);
    const t = await waitFor(() => assigned(peer)[0] ?? null);
    parts.dispatcher.acceptOutcomes(peer, [{ taskId: t.taskId, attempt: t.attempt, status: 'completed', result: 7 }]);
    await parts.dispatcher.stop();
    assert.equal((await parts.store.jobGet(accepted.job.id))!.state, 'completed');
    assert.equal(peer.of('result_ack').length, 1, 'and acknowledged');
  } finally {
    await parts.close();
  }
});
