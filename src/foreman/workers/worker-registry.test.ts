import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROTOCOL_VERSION, type Hello, type TaskRef } from '../../protocol/index.ts';
import { ANY, foremanParts, RecordingPeer, type ForemanParts } from '../../../test/support/foreman-parts.ts';

const hello = (workerId: string, extra: Partial<Hello> = {}): Hello =>
  ({ type: 'hello', protocol: PROTOCOL_VERSION, role: 'worker', workerId, capacity: 2, patterns: ['t.*'], allowCode: false, ...extra });

/** Submit `n` named tasks and claim them for `workerId` straight from the store (as a dispatcher would). */
async function claimed(parts: ForemanParts, workerId: string, n: number): Promise<TaskRef[]> {
  await parts.jobs.submit({ kind: 'tasks', tasks: Array.from({ length: n }, (_, i) => ({ type: 't.x', input: i })) }, ANY);
  const tasks = await parts.store.taskClaimMany({ workerId, patterns: ['t.*'], allowCode: false, limit: n, leaseMs: 10_000, now: Date.now() });
  return tasks.map((t) => ({ taskId: t.taskId, attempt: t.attempt }));
}

async function withParts(fn: (p: ForemanParts) => Promise<void>, options: Parameters<typeof foremanParts>[0] = {}): Promise<void> {
  const parts = await foremanParts({ startDispatcher: false, ...options });
  try { await fn(parts); } finally { await parts.close(); }
}

test('admit registers a worker once per connection and records it in the store', () => withParts(async ({ registry, store }) => {
  const peer = new RecordingPeer();
  assert.equal(await registry.admit(peer, hello('w1')), true);
  assert.equal(registry.size, 1);
  assert.ok(registry.isWorker(peer));
  assert.equal((await store.workerList())[0].state, 'online');
  await assert.rejects(registry.admit(peer, hello('w1')), /CC_ERR_BAD_MESSAGE: worker w1 already said hello/);
  assert.throws(() => registry.draining(new RecordingPeer()), /CC_ERR_NOT_HELLO/);
}));

test('a second connection of the same worker replaces the first; tasks its hello does not list go back to the queue', () => withParts(async (parts) => {
  const { registry, store } = parts;
  const first = new RecordingPeer();
  await registry.admit(first, hello('w1'));
  const [kept, lost] = await claimed(parts, 'w1', 2);
  const second = new RecordingPeer();
  await registry.admit(second, hello('w1', { running: [kept] }));
  assert.deepEqual(first.closedWith, { code: 4001, reason: 'replaced by a new connection from the same worker' });
  assert.equal(registry.size, 1);
  assert.equal((await store.taskGet(kept.taskId))!.state, 'running', 'the task the worker still runs stays its own');
  const back = (await store.taskGet(lost.taskId))!;
  assert.equal(back.state, 'queued');
  assert.equal(back.attemptErrors[0].error.reason, 'worker_lost');
  assert.equal(registry.snapshot().runningByWorker.get('w1'), 1, 'the adopted task counts against its capacity');
  // The old connection closing later changes nothing.
  await registry.disconnected(first, { keepAssignments: false });
  assert.equal(registry.size, 1);
}));

/** The registry's clock in the heartbeat test: it moves only when the test moves it. */
let clock = 0;

test('heartbeats renew the leases of listed tasks and take back tasks the worker stopped listing', () => withParts(async (parts) => {
  const { registry, store } = parts;
  const peer = new RecordingPeer();
  clock = Date.now();
  await registry.admit(peer, hello('w1'));
  const refs = await claimed(parts, 'w1', 2);
  const tasks = await Promise.all(refs.map((r) => store.taskGet(r.taskId)));
  assert.equal(registry.deliver(registry.targets()[0], tasks.map((t) => ({ taskId: t!.id, jobId: t!.jobId, index: t!.index, kind: t!.kind, type: t!.type, input: t!.input, priority: t!.priority, attempt: t!.attempt, timeoutMs: t!.timeoutMs, createdAt: t!.createdAt, queuedAt: t!.createdAt })), {}), true);
  const before = (await store.taskGet(refs[0].taskId))!.leaseExpiresAt!;
  // The claim's lease was measured on the real clock, however long the steps above took on a
  // busy machine: the heartbeat comes a second after it, not a second after the test began.
  clock = Math.max(clock, Date.now()) + 1_000;
  let acked = -1;
  // The first heartbeat may miss tasks assigned after the previous one; nothing is taken back.
  await registry.heartbeat(peer, [refs[0]], (held) => { acked = held; });
  assert.equal(acked, 1);
  assert.ok((await store.taskGet(refs[0].taskId))!.leaseExpiresAt! > before, 'the listed task\'s lease was renewed');
  assert.equal((await store.taskGet(refs[1].taskId))!.state, 'running');
  // The second heartbeat should have listed it: it is taken back.
  clock += 1_000;
  await registry.heartbeat(peer, [refs[0]], () => {});
  const dropped = (await store.taskGet(refs[1].taskId))!;
  assert.equal(dropped.state, 'queued');
  assert.equal(dropped.attemptErrors[0].error.reason, 'dropped');
  assert.equal(registry.snapshot().running, 1);
}, { clock: () => clock }));

test('an idle worker\'s heartbeats keep its last seen current: live at once, in the store at the next writeLastSeen', () => withParts(async ({ registry, store }) => {
  const peer = new RecordingPeer();
  clock = Date.now() - 13 * 60_000;
  const connectedAt = clock;
  await registry.admit(peer, hello('idle'));
  const stored = async () => (await store.workerList()).find((w) => w.id === 'idle')!.lastSeenAt;
  assert.equal(await stored(), connectedAt);
  // Thirteen minutes of heartbeats and nothing else: no task, no result.
  for (let i = 0; i < 13; i++) {
    clock += 60_000;
    await registry.heartbeat(peer, [], () => {});
  }
  assert.equal(registry.lastSeen('idle'), clock, 'the session knows it was heard from just now');
  assert.equal(await stored(), connectedAt, 'heartbeats alone do not write to the store');
  await registry.writeLastSeen();
  assert.equal(await stored(), clock, 'the periodic write brings the store up to date');
  // Nothing new heard: no write; and a worker not connected here has no live time here.
  let writes = 0;
  const write = store.workerSeen.bind(store);
  store.workerSeen = (p) => { writes++; return write(p); };
  await registry.writeLastSeen();
  assert.equal(writes, 0);
  assert.equal(registry.lastSeen('elsewhere'), null);
}, { clock: () => clock }));

test('deliver sends a map job\'s code once per connection, and refuses a worker that left since the claim', () => withParts(async (parts) => {
  const { registry, store, jobs } = parts;
  const peer = new RecordingPeer();
  await registry.admit(peer, hello('coder', { allowCode: true, patterns: [], capacity: 4 }));
  await jobs.submit({ kind: 'map', code: '(x) => x + 1', args: [1, 2, 3] }, ANY);
  const target = registry.targets()[0];
  const first = await store.taskClaimMany({ workerId: 'coder', patterns: [], allowCode: true, limit: 2, leaseMs: 10_000, now: Date.now() });
  assert.deepEqual(registry.jobsWithoutCode(target, first), [first[0].jobId]);
  assert.ok(registry.deliver(target, first, { [first[0].jobId]: { code: '(x) => x + 1', name: 'plus one' } }));
  const second = await store.taskClaimMany({ workerId: 'coder', patterns: [], allowCode: true, limit: 1, leaseMs: 10_000, now: Date.now() });
  assert.deepEqual(registry.jobsWithoutCode(target, second), []);
  assert.ok(registry.deliver(target, second, {}));
  const assigns = peer.of('assign_tasks');
  assert.equal(assigns.length, 2);
  assert.deepEqual(assigns[0].code, { [first[0].jobId]: '(x) => x + 1' });
  assert.equal(assigns[1].code, undefined);
  assert.equal(target.free, 1);
  await registry.disconnected(peer, { keepAssignments: false });
  assert.equal(registry.deliver(target, second, {}), false, 'a session that is gone takes nothing');
}));

test('outcomes free their slots; progress is accepted only from the attempt that holds the task', () => withParts(async (parts) => {
  const { registry } = parts;
  const peer = new RecordingPeer();
  await registry.admit(peer, hello('w1'));
  const [ref] = await claimed(parts, 'w1', 1);
  const [task] = await parts.store.taskList({ jobId: (await parts.store.taskGet(ref.taskId))!.jobId, limit: 1, offset: 0 });
  registry.deliver(registry.targets()[0], [{ taskId: task.id, jobId: task.jobId, index: 0, kind: 'named', type: 't.x', input: 0, priority: 'normal', attempt: ref.attempt, timeoutMs: null, createdAt: 0, queuedAt: 0 }], {});
  assert.equal(registry.heldJob(peer, ref.taskId, ref.attempt), task.jobId);
  assert.equal(registry.heldJob(peer, ref.taskId, ref.attempt + 1), null);
  const settled = registry.settle(peer, [{ taskId: ref.taskId, attempt: ref.attempt, status: 'completed', result: 1 }]);
  assert.deepEqual(settled.map((s) => [s.workerId, s.jobId]), [['w1', task.jobId]]);
  assert.equal(registry.targets()[0].free, 2);
  assert.equal(registry.heldJob(peer, ref.taskId, ref.attempt), null);
}));

test('a zombie loses tasks held past deadline plus lease TTL; their slots stay taken until it lets go', () => withParts(async (parts) => {
  const { registry, store } = parts;
  const peer = new RecordingPeer();
  await registry.admit(peer, hello('zombie', { capacity: 1 }));
  const [ref] = await claimed(parts, 'zombie', 1);
  const t = (await store.taskGet(ref.taskId))!;
  registry.deliver(registry.targets()[0], [{ taskId: t.id, jobId: t.jobId, index: 0, kind: 'named', type: 't.x', input: 0, priority: 'normal', attempt: ref.attempt, timeoutMs: 100, createdAt: 0, queuedAt: 0 }], {});
  await registry.revokeOverdue(Date.now());
  assert.equal(peer.of('cancel_task').length, 0, 'not yet overdue');
  await registry.revokeOverdue(Date.now() + 100 + 10_000 + 1);
  assert.deepEqual(peer.of('cancel_task').map((m) => [m.taskId, m.attempt]), [[ref.taskId, ref.attempt]]);
  assert.equal((await store.taskGet(ref.taskId))!.attemptErrors[0].error.reason, 'zombie');
  assert.equal(registry.targets()[0].free, 0, 'the revoked task still holds its slot');
  await registry.heartbeat(peer, [ref], () => {});
  assert.equal(registry.targets()[0].free, 0, 'still listed, still held');
  await registry.heartbeat(peer, [], () => {});
  assert.equal(registry.targets()[0].free, 1, 'no longer listed: the slot is free');
}, { leaseTtlMs: 10_000 }));

test('a hand-back requeues without using up the lost budget; a disconnect does use it', () => withParts(async (parts) => {
  const { registry, store } = parts;
  const peer = new RecordingPeer();
  await registry.admit(peer, hello('w1'));
  const [a, b] = await claimed(parts, 'w1', 2);
  for (const ref of [a, b]) {
    const t = (await store.taskGet(ref.taskId))!;
    registry.deliver(registry.targets()[0], [{ taskId: t.id, jobId: t.jobId, index: t.index, kind: 'named', type: 't.x', input: t.input, priority: 'normal', attempt: ref.attempt, timeoutMs: null, createdAt: 0, queuedAt: 0 }], {});
  }
  await registry.release(peer, [a], 'draining');
  const released = (await store.taskGet(a.taskId))!;
  assert.equal(released.state, 'queued');
  assert.equal(released.attemptErrors[0].error.reason, 'released');
  await registry.disconnected(peer, { keepAssignments: false });
  assert.equal((await store.taskGet(b.taskId))!.attemptErrors[0].error.reason, 'worker_lost');
  assert.equal((await store.workerList())[0].state, 'offline');
}, { maxLostAttempts: 1 }));

test('with keepAssignments (the foreman is stopping), a disconnected worker keeps its tasks', () => withParts(async (parts) => {
  const { registry, store } = parts;
  const peer = new RecordingPeer();
  await registry.admit(peer, hello('w1'));
  const [ref] = await claimed(parts, 'w1', 1);
  const t = (await store.taskGet(ref.taskId))!;
  registry.deliver(registry.targets()[0], [{ taskId: t.id, jobId: t.jobId, index: 0, kind: 'named', type: 't.x', input: 0, priority: 'normal', attempt: ref.attempt, timeoutMs: null, createdAt: 0, queuedAt: 0 }], {});
  await registry.disconnected(peer, { keepAssignments: true });
  assert.equal((await store.taskGet(ref.taskId))!.state, 'running');
  assert.equal(registry.size, 0);
}));

test('stopTask reaches only the worker that runs the task', () => withParts(async ({ registry }) => {
  const a = new RecordingPeer();
  const b = new RecordingPeer();
  await registry.admit(a, hello('a'));
  await registry.admit(b, hello('b'));
  registry.stopTask('b', { taskId: 't1', attempt: 3 }, 'job j was cancelled');
  registry.stopTask(null, { taskId: 't2', attempt: 1 }, 'nobody');
  registry.stopTask('gone', { taskId: 't3', attempt: 1 }, 'nobody');
  assert.deepEqual(a.of('cancel_task'), []);
  assert.deepEqual(b.of('cancel_task'), [{ type: 'cancel_task', taskId: 't1', attempt: 3, reason: 'job j was cancelled' }]);
}));
