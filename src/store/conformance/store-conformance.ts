/**
 * One suite, every driver: each store driver's test file calls `runStoreConformance` with a
 * factory that returns a fresh, migrated, empty store. What the foreman relies on is
 * asserted here and nowhere else.
 */
import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import type {
  JobListParams, NewTask, Store, JobInsertParams } from '../store.ts';
import { POSITION_COUNT_CAP } from '../store.ts';
import type { Priority } from '../../protocol/index.ts';
import { BLOCKED_UNTIL, planGraph } from '../../core/graph.ts';
import { scheduleConformance } from './schedule-conformance.ts';
import { webhookConformance } from './webhook-conformance.ts';

let counter = 0;
const uid = (p: string) => `${p}-${process.pid}-${++counter}`;

function namedJob(types: string[], opts: { priority?: Priority; maxAttempts?: number; key?: string; owner?: string; retentionMs?: number; queueTimeoutMs?: number; weight?: number; maxConcurrency?: number } = {}): JobInsertParams {
  const jobId = uid('job');
  const tasks: NewTask[] = types.map((type, index) => ({
    id: `${jobId}.${index}`, index, kind: 'named', type, input: { index },
    priority: opts.priority ?? 'normal', maxAttempts: opts.maxAttempts ?? 1, timeoutMs: null,
  }));
  return {
    job: { id: jobId, kind: 'tasks', name: null, priority: opts.priority ?? 'normal', argCount: null, chunkSize: null, code: null,
      timeoutMs: null, maxAttempts: opts.maxAttempts ?? 1, idempotencyKey: opts.key ?? null, metadata: null, owner: opts.owner ?? null, retentionMs: opts.retentionMs ?? 60_000,
      label: types[0] ?? null, queueTimeoutMs: opts.queueTimeoutMs ?? null, runOn: null,
      ...(opts.weight !== undefined ? { weight: opts.weight } : {}), ...(opts.maxConcurrency !== undefined ? { maxConcurrency: opts.maxConcurrency } : {}) },
    tasks, now: Date.now(),
  };
}

function mapJob(args: unknown[], chunkSize: number, runOn: 'node' | 'browser' | null = null): JobInsertParams {
  const jobId = uid('map');
  const tasks: NewTask[] = [];
  for (let i = 0; i * chunkSize < args.length; i++) {
    tasks.push({ id: `${jobId}.${i}`, index: i, kind: 'map', type: 'map', input: args.slice(i * chunkSize, (i + 1) * chunkSize),
      priority: 'normal', maxAttempts: 1, timeoutMs: null });
  }
  return {
    job: { id: jobId, kind: 'map', name: 'squares', priority: 'normal', argCount: args.length, chunkSize, code: '(x) => x * x',
      timeoutMs: null, maxAttempts: 1, idempotencyKey: null, metadata: { a: 1 }, owner: null, retentionMs: 60_000, label: 'square', queueTimeoutMs: null, runOn },
    tasks, now: Date.now(),
  };
}

const claim = (store: Store, workerId: string, patterns: string[], limit: number, allowCode = false) =>
  store.taskClaimMany({ workerId, patterns, allowCode, limit, leaseMs: 30_000, now: Date.now() });

/** Register the suite's tests for a driver; `makeStore` opens a fresh, migrated store for each. */
export function runStoreConformance(label: string, makeStore: () => Promise<Store>): void {
  describe(`store conformance: ${label}`, () => {
    let store: Store;
    beforeEach(async () => { store = await makeStore(); });
    afterEach(async () => { await store.close(); });

    scheduleConformance(() => store);
    webhookConformance(() => store);

    test('a job and its tasks are stored and read back', async () => {
      const p = namedJob(['a.x', 'a.y']);
      const { job, deduplicated } = await store.jobInsert(p);
      assert.equal(deduplicated, false);
      assert.equal(job.state, 'queued');
      assert.deepEqual(job.counts, { total: 2, completed: 0, failed: 0, cancelled: 0 });
      const tasks = await store.taskList({ jobId: job.id, limit: 10, offset: 0 });
      assert.deepEqual(tasks.map((t) => [t.index, t.type, t.state, t.attempt]), [[0, 'a.x', 'queued', 0], [1, 'a.y', 'queued', 0]]);
      assert.deepEqual((await store.taskGet(p.tasks[1].id))?.input, { index: 1 });
      assert.equal(await store.jobGet('nope'), null);
      assert.equal(await store.taskGet('nope'), null);
    });

    test('a job\'s queued task types: each once, of its queued tasks that require nothing, from a sample of the size asked', async () => {
      const p = namedJob(['qt.a', 'qt.b', 'qt.a', 'qt.c', 'qt.needs', 'qt.d'], { priority: 'high' });
      p.tasks[3].priority = 'low';
      p.tasks[4].requires = { gpu: 1 };
      const { job } = await store.jobInsert(p);
      await store.jobInsert(namedJob(['qt.other']));
      assert.deepEqual((await store.jobQueuedTypes({ jobId: job.id, sample: 100 })).sort(), ['qt.a', 'qt.b', 'qt.c', 'qt.d']);
      assert.equal((await store.jobQueuedTypes({ jobId: job.id, sample: 2 })).length <= 2, true, 'no more than the sample');
      // Claimed tasks are no longer queued.
      await claim(store, 'w-qt', ['qt.a', 'qt.b', 'qt.d'], 10);
      assert.deepEqual(await store.jobQueuedTypes({ jobId: job.id, sample: 100 }), ['qt.c']);
      await store.jobCancel({ jobId: job.id, now: Date.now() });
      assert.deepEqual(await store.jobQueuedTypes({ jobId: job.id, sample: 100 }), []);
      assert.deepEqual(await store.jobQueuedTypes({ jobId: 'nope', sample: 100 }), []);
    });

    test('a job keeps the trace context it was accepted under; one without has none', async () => {
      const traced = namedJob(['t.a']);
      const traceContext = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', tracestate: 'vendor=a1' };
      traced.job.traceContext = traceContext;
      const { job } = await store.jobInsert(traced);
      assert.deepEqual(job.traceContext, traceContext);
      assert.deepEqual((await store.jobGet(job.id))?.traceContext, traceContext);
      const plain = await store.jobInsert(namedJob(['t.b']));
      assert.equal(plain.job.traceContext, null);
      assert.equal((await store.jobGet(plain.job.id))?.traceContext, null);
      // A map job's tasks are sent with it, read with the function.
      const map = mapJob([1, 2], 1);
      map.job.traceContext = { traceparent: traceContext.traceparent };
      await store.jobInsert(map);
      assert.deepEqual((await store.jobCode(map.job.id))?.traceContext, { traceparent: traceContext.traceparent });
      const untraced = mapJob([1], 1);
      await store.jobInsert(untraced);
      assert.equal((await store.jobCode(untraced.job.id))?.traceContext, null);
    });

    test('delayed tasks wait as scheduled out of the queue, and each is released once, at its time', async () => {
      const now = Date.now();
      const p = namedJob(['d.a', 'd.b', 'd.c']);
      p.tasks[0].availableAt = now + 60_000;
      p.tasks[1].availableAt = now + 30_000;
      const { job } = await store.jobInsert(p);
      assert.equal(job.state, 'queued', 'one task runs at once: the job is not scheduled as a whole');
      assert.deepEqual((await store.taskList({ jobId: job.id, limit: 10, offset: 0 })).map((t) => t.state), ['scheduled', 'scheduled', 'queued']);
      assert.equal(await store.taskNextRelease(), now + 30_000);
      assert.deepEqual((await claim(store, 'w', ['d.*'], 10)).map((t) => t.type), ['d.c'], 'only the task due now is claimed');
      assert.equal((await store.stats()).tasks.scheduled, 2);
      assert.deepEqual(await store.taskReleaseDue({ now: now + 29_999, limit: 10, wallNow: now + 29_999 }), { released: 0, jobIds: [] });
      // Two foremen releasing at once: each task once.
      const [r1, r2] = await Promise.all([0, 1].map(() => store.taskReleaseDue({ now: now + 60_000, limit: 10, wallNow: now + 60_000 })));
      assert.equal(r1.released + r2.released, 2);
      assert.equal(await store.taskNextRelease(), null);
      const claimed = await store.taskClaimMany({ workerId: 'w', patterns: ['d.*'], allowCode: false, limit: 10, leaseMs: 30_000, now: now + 60_000 });
      assert.deepEqual(claimed.map((t) => t.type).sort(), ['d.a', 'd.b']);
      assert.equal(claimed.find((t) => t.type === 'd.a')!.queuedAt, now + 60_000, 'queued from its own time: queue wait counts from then');
    });

    test('a job whose tasks all wait is scheduled, and cancelling it cancels them', async () => {
      const now = Date.now();
      const p = namedJob(['s.a', 's.b']);
      for (const t of p.tasks) t.availableAt = now + 60_000;
      p.job.runAt = now + 60_000;
      const { job } = await store.jobInsert(p);
      assert.equal(job.state, 'scheduled');
      assert.equal(job.runAt, now + 60_000);
      assert.deepEqual((await store.jobList({ limit: 10, offset: 0, state: 'scheduled' })).map((j) => j.id), [job.id]);
      assert.deepEqual(await store.jobList({ limit: 10, offset: 0, state: 'queued' }), []);
      assert.equal((await store.stats()).jobs.scheduled, 1);
      await store.jobCancel({ jobId: job.id, now });
      assert.deepEqual((await store.taskList({ jobId: job.id, limit: 10, offset: 0 })).map((t) => t.state), ['cancelled', 'cancelled']);
      assert.equal((await store.jobGet(job.id))!.state, 'cancelled');
      assert.equal(await store.taskNextRelease(), null);
    });

    test('position counts queued tasks ahead in priority order', async () => {
      await store.jobInsert(namedJob(['p.a', 'p.b', 'p.c'], { priority: 'normal' }));
      const high = await store.jobInsert(namedJob(['p.d'], { priority: 'high' }));
      assert.equal(high.position, 0);
      const low = await store.jobInsert(namedJob(['p.e'], { priority: 'low' }));
      assert.equal(low.position, 4);
      // A deep queue is counted up to the cap, whatever its depth.
      await store.jobInsert(namedJob(Array.from({ length: POSITION_COUNT_CAP + 50 }, () => 'p.deep')));
      assert.equal((await store.jobInsert(namedJob(['p.f']))).position, POSITION_COUNT_CAP);
      assert.equal((await store.jobInsert(namedJob(['p.g'], { priority: 'high' }))).position, 1);
    });

    test('position follows the queue between submissions: claims, cancels, appends and groups in between', async () => {
      assert.equal((await store.jobInsert(namedJob(['q.a', 'q.a', 'q.a']))).position, 0);
      assert.equal((await store.jobInsert(namedJob(['q.b']))).position, 3);
      assert.equal((await claim(store, 'w', ['q.a'], 2)).length, 2);
      assert.equal((await store.jobInsert(namedJob(['q.c']))).position, 2, 'the two claimed no longer wait');
      const cancelled = await store.jobInsert(namedJob(['q.d', 'q.d']));
      assert.equal(cancelled.position, 3);
      await store.jobCancel({ jobId: cancelled.job.id, now: Date.now() });
      const [g1, g2] = await store.jobInsertMany([namedJob(['q.e']), namedJob(['q.f'], { priority: 'high' })]);
      assert.ok(!('error' in g1) && !('error' in g2));
      assert.equal(g1.position, 3, 'the cancelled tasks no longer wait');
      assert.equal(g2.position, 0);
      assert.equal((await store.jobInsert(namedJob(['q.g'], { priority: 'high' }))).position, 1);
      // The queued tasks as counted afresh agree with the positions handed out.
      assert.equal((await store.stats()).tasks.queued, 6);
      assert.equal((await store.jobInsert(namedJob(['q.h'], { priority: 'low' }))).position, 6);
    });

    test('a group insert: each job in whole or not at all, a refused job alone, keys shared within the group', async () => {
      await store.jobInsert(namedJob(['g.a', 'g.b', 'g.c']));
      const taken = namedJob(['g.d', 'g.e']);
      taken.tasks[1].id = (await store.jobInsert(namedJob(['g.f']))).job.id + '.0';
      const group = [namedJob(['g.h'], { priority: 'high' }), taken, namedJob(['g.l'], { priority: 'low' }), namedJob(['g.k'], { key: 'group-key' }), namedJob(['g.k'], { key: 'group-key' })];
      const out = await store.jobInsertMany(group);
      assert.equal(out.length, 5);
      const ok = (o: (typeof out)[number]) => { if ('error' in o) throw o.error; return o; };
      assert.equal(ok(out[0]).position, 0);
      assert.ok('error' in out[1] && /UNIQUE|duplicate key/i.test(out[1].error.message), 'the job with a taken task id is refused');
      assert.equal(await store.jobGet(taken.job.id), null, 'none of the refused job is kept');
      assert.equal(ok(out[2]).position, 5, 'the group\'s earlier jobs count in a later job\'s position');
      assert.equal(ok(out[3]).job.id, ok(out[4]).job.id);
      assert.deepEqual([ok(out[3]).deduplicated, ok(out[4]).deduplicated].sort(), [false, true]);
      assert.equal((await store.stats()).tasks.queued, 3 + 1 + 1 + 1 + 1);
    });

    test('claims go by priority, then submission order, and only to matching patterns', async () => {
      const low = await store.jobInsert(namedJob(['math.add'], { priority: 'low' }));
      const norm = await store.jobInsert(namedJob(['math.add', 'image.resize'], { priority: 'normal' }));
      const crit = await store.jobInsert(namedJob(['math.mul'], { priority: 'critical' }));
      const got = await claim(store, 'w1', ['math.*'], 10);
      assert.deepEqual(got.map((t) => t.jobId), [crit.job.id, norm.job.id, low.job.id]);
      assert.ok(got.every((t) => t.attempt === 1 && t.type.startsWith('math.')));
      assert.deepEqual(await claim(store, 'w1', ['math.*'], 10), []);
      const img = await claim(store, 'w2', ['image.resize'], 10);
      assert.equal(img.length, 1);
      assert.equal((await store.jobGet(norm.job.id))?.state, 'running');
    });

    test('claims respect the limit and a literal pattern does not match a longer name', async () => {
      await store.jobInsert(namedJob(['x.a', 'x.a', 'x.a', 'x.ab']));
      assert.equal((await claim(store, 'w', ['x.a'], 2)).length, 2);
      assert.equal((await claim(store, 'w', ['x.a'], 5)).length, 1);
      assert.equal((await claim(store, 'w', ['x.?'], 5)).length, 0);
      assert.equal((await claim(store, 'w', ['x.??'], 5)).length, 1);
    });

    test('map tasks go only to workers that allow code', async () => {
      await store.jobInsert(mapJob([1, 2, 3], 2));
      assert.deepEqual(await claim(store, 'w', ['*'], 10, false), []);
      const got = await claim(store, 'w', [], 10, true);
      assert.deepEqual(got.map((t) => t.input), [[1, 2], [3]]);
      assert.deepEqual(await store.jobCode(got[0].jobId), { code: '(x) => x * x', chunkSize: 2, name: 'squares', language: 'javascript', traceContext: null });
    });

    test("a map job keeps its function's language; other jobs have none", async () => {
      const python = mapJob([1], 1);
      python.job.code = 'def f(x):\n    return x\n';
      python.job.language = 'python';
      const inserted = await store.jobInsert(python);
      assert.equal((await store.jobCode(inserted.job.id))?.language, 'python');
      assert.equal((await store.jobGet(inserted.job.id))?.language, 'python');
      assert.equal((await store.jobGet((await store.jobInsert(mapJob([1], 1))).job.id))?.language, 'javascript');
      assert.equal((await store.jobGet((await store.jobInsert(namedJob(['x.lang']))).job.id))?.language, null);
    });

    test('a result is recorded once; a duplicate or a stale attempt is rejected', async () => {
      const { job } = await store.jobInsert(namedJob(['t.a']));
      const [t] = await claim(store, 'w1', ['t.*'], 1);
      const now = Date.now();
      const first = await store.taskFinishMany({ outcomes: [{ taskId: t.taskId, attempt: 1, workerId: 'w1', status: 'completed', result: { v: 1 } }], now });
      assert.equal(first.recorded.length, 1);
      assert.deepEqual(first.jobs, [{ jobId: job.id, state: 'completed', counts: { total: 1, completed: 1, failed: 0, cancelled: 0 }, finished: true, results: [{ v: 1 }], webhook: false }]);
      const dup = await store.taskFinishMany({ outcomes: [{ taskId: t.taskId, attempt: 1, workerId: 'w1', status: 'completed', result: { v: 2 } }], now });
      assert.equal(dup.recorded.length, 0);
      assert.deepEqual(dup.rejected, [{ taskId: t.taskId, attempt: 1, currentState: 'completed', currentAttempt: 1 }]);
      assert.deepEqual((await store.taskGet(t.taskId))?.result, { v: 1 });
      assert.equal((await store.jobGet(job.id))?.counts.completed, 1);
    });

    test("the commit that completes a one-task job hands over its results, as jobResults reads them; other jobs' changes carry none", async () => {
      const finish = async (taskId: string, attempt: number, status: 'completed' | 'failed', result: unknown) =>
        (await store.taskFinishMany({ outcomes: [{ taskId, attempt, workerId: 'w1', status, result, ...(status === 'failed' ? { error: { message: 'no' } } : {}) }], now: Date.now() })).jobs;
      // A named task, and a map of one chunk of two arguments.
      const named = await store.jobInsert(namedJob(['hand.one']));
      const [t] = await claim(store, 'w1', ['hand.one'], 1);
      const [namedChange] = await finish(t.taskId, 1, 'completed', { deep: [1, 'two', null] });
      assert.deepEqual(namedChange.results, (await store.jobResults(named.job.id))?.results);
      assert.deepEqual(namedChange.results, [{ deep: [1, 'two', null] }]);
      const map = await store.jobInsert(mapJob([3, 4], 2));
      const [c] = await claim(store, 'w1', [], 1, true);
      assert.equal(c.jobId, map.job.id);
      const [mapChange] = await finish(c.taskId, 1, 'completed', [9, 16]);
      assert.deepEqual(mapChange.results, [9, 16]);
      assert.deepEqual(mapChange.results, (await store.jobResults(map.job.id))?.results);
      // Two tasks: the last completion is not all the results. A failure hands over nothing.
      await store.jobInsert(namedJob(['hand.two', 'hand.two']));
      const two = await claim(store, 'w1', ['hand.two'], 2);
      assert.equal((await finish(two[0].taskId, 1, 'completed', 1))[0].results, undefined);
      const [twoDone] = await finish(two[1].taskId, 1, 'completed', 2);
      assert.equal(twoDone.finished, true);
      assert.equal(twoDone.results, undefined);
      await store.jobInsert(namedJob(['hand.fail']));
      const [f] = await claim(store, 'w1', ['hand.fail'], 1);
      const [failed] = await finish(f.taskId, 1, 'failed', null);
      assert.equal(failed.state, 'failed');
      assert.equal(failed.results, undefined);
    });

    test('a job ends by the same rule whichever outcome is its last: failed when a task failed before the last completed', async () => {
      const { job } = await store.jobInsert(namedJob(['end.a', 'end.a']));
      const [a, b] = await claim(store, 'w1', ['end.a'], 2);
      const now = Date.now();
      const first = await store.taskFinishMany({ outcomes: [{ taskId: a.taskId, attempt: 1, workerId: 'w1', status: 'failed', error: { message: 'x', retryable: false } }], now });
      assert.deepEqual(first.jobs.map((j) => [j.state, j.finished]), [['running', false]]);
      const last = await store.taskFinishMany({ outcomes: [{ taskId: b.taskId, attempt: 1, workerId: 'w1', status: 'completed', result: 2 }], now });
      assert.deepEqual(last.jobs.map((j) => [j.jobId, j.state, j.finished, j.counts]), [[job.id, 'failed', true, { total: 2, completed: 1, failed: 1, cancelled: 0 }]]);
      const stored = await store.jobGet(job.id);
      assert.equal(stored?.state, 'failed');
      assert.ok(stored?.completedAt !== null, 'its end time is written');
      // A later duplicate of the completion changes nothing and ends nothing again.
      const dup = await store.taskFinishMany({ outcomes: [{ taskId: b.taskId, attempt: 1, workerId: 'w1', status: 'completed', result: 2 }], now: now + 1 });
      assert.deepEqual(dup.jobs, []);
    });

    test('after a requeue only the new attempt can record', async () => {
      await store.jobInsert(namedJob(['r.a']));
      const [t1] = await claim(store, 'w1', ['r.a'], 1);
      assert.deepEqual(await store.taskListRunningByWorker('w1'), [{ taskId: t1.taskId, attempt: 1 }]);
      const lostError = { message: 'worker lost', code: 'CC_ERR_WORKER_LOST' };
      assert.deepEqual((await store.taskRequeueMany({ tasks: [{ taskId: t1.taskId, attempt: 1 }], now: Date.now(), error: lostError })).requeued, [{ taskId: t1.taskId, attempt: 1 }]);
      assert.deepEqual((await store.taskRequeueMany({ tasks: [{ taskId: t1.taskId, attempt: 1 }], now: Date.now(), error: lostError })).requeued, []);
      const [t2] = await claim(store, 'w2', ['r.a'], 1);
      assert.equal(t2.attempt, 2);
      const stale = await store.taskFinishMany({ outcomes: [{ taskId: t1.taskId, attempt: 1, workerId: 'w1', status: 'completed', result: 'old' }], now: Date.now() });
      assert.equal(stale.rejected[0]?.currentAttempt, 2);
      const fresh = await store.taskFinishMany({ outcomes: [{ taskId: t2.taskId, attempt: 2, workerId: 'w2', status: 'completed', result: 'new' }], now: Date.now() });
      assert.equal(fresh.recorded.length, 1);
      assert.equal((await store.taskGet(t1.taskId))?.result, 'new');
    });

    test('a result from a worker that does not hold the task is rejected', async () => {
      await store.jobInsert(namedJob(['h.a']));
      const [t] = await claim(store, 'w1', ['h.a'], 1);
      const r = await store.taskFinishMany({ outcomes: [{ taskId: t.taskId, attempt: 1, workerId: 'intruder', status: 'completed', result: 1 }], now: Date.now() });
      assert.equal(r.recorded.length, 0);
    });

    test('a failure retries while attempts remain, not before its time, then fails for good', async () => {
      const { job } = await store.jobInsert(namedJob(['f.a'], { maxAttempts: 2 }));
      const [t] = await claim(store, 'w', ['f.a'], 1);
      const now = Date.now();
      const r1 = await store.taskFinishMany({ outcomes: [{ taskId: t.taskId, attempt: 1, workerId: 'w', status: 'failed', error: { message: 'boom 1' }, retryAt: now + 60_000 }], now });
      assert.deepEqual(r1.recorded, [{ taskId: t.taskId, attempt: 1, retried: true }]);
      assert.deepEqual(r1.jobs, []);
      assert.deepEqual(await claim(store, 'w', ['f.a'], 1), [], 'not claimable before retryAt');
      const later = await store.taskClaimMany({ workerId: 'w', patterns: ['f.a'], allowCode: false, limit: 1, leaseMs: 1000, now: now + 61_000 });
      assert.equal(later[0]?.attempt, 2);
      const r2 = await store.taskFinishMany({ outcomes: [{ taskId: t.taskId, attempt: 2, workerId: 'w', status: 'failed', error: { message: 'boom 2' }, retryAt: now + 62_000 }], now });
      assert.deepEqual(r2.recorded, [{ taskId: t.taskId, attempt: 2, retried: false }]);
      assert.equal(r2.jobs[0]?.state, 'failed');
      const rec = await store.taskGet(t.taskId);
      assert.equal(rec?.state, 'failed');
      assert.equal(rec?.failures, 2);
      assert.equal(rec?.error?.message, 'boom 2');
      assert.equal((await store.jobGet(job.id))?.state, 'failed');
    });

    test('a non-retryable failure fails at once', async () => {
      await store.jobInsert(namedJob(['n.a'], { maxAttempts: 5 }));
      const [t] = await claim(store, 'w', ['n.a'], 1);
      const r = await store.taskFinishMany({ outcomes: [{ taskId: t.taskId, attempt: 1, workerId: 'w', status: 'failed', error: { message: 'bad', retryable: false } }], now: Date.now() });
      assert.deepEqual(r.recorded, [{ taskId: t.taskId, attempt: 1, retried: false }]);
      assert.equal((await store.taskGet(t.taskId))?.state, 'failed');
    });

    test('map results come back flattened in argument order, failures named by argument index', async () => {
      const { job } = await store.jobInsert(mapJob([1, 2, 3, 4, 5], 2));
      const ts = await claim(store, 'w', [], 10, true);
      const now = Date.now();
      await store.taskFinishMany({ outcomes: [
        { taskId: ts[2].taskId, attempt: 1, workerId: 'w', status: 'completed', result: [25] },
        { taskId: ts[0].taskId, attempt: 1, workerId: 'w', status: 'completed', result: [1, 4] },
        { taskId: ts[1].taskId, attempt: 1, workerId: 'w', status: 'failed', error: { message: 'argument 3 threw' } },
      ], now });
      const res = await store.jobResults(job.id);
      assert.deepEqual(res?.results, [1, 4, null, null, 25]);
      assert.equal(res?.failures.length, 1);
      assert.equal(res?.failures[0].index, 2);
      assert.equal((await store.jobGet(job.id))?.state, 'failed');
      assert.equal(await store.jobResults('nope'), null);
    });

    test('an open job takes parts until sealed, finishes only once sealed, and a retried part is appended once', async () => {
      const p = namedJob(['o.a']);
      p.job.open = true;
      const { job } = await store.jobInsert(p);
      assert.equal(job.open, true);
      const part = (types: string[], at: number | null, seal = false) => ({
        jobId: job.id, at, seal, args: 0, label: null, now: Date.now(),
        tasks: types.map((type) => ({ kind: 'named' as const, type, input: { type }, priority: 'normal' as const, maxAttempts: 1, timeoutMs: null })),
      });
      const a = await store.jobAppend(part(['o.b', 'o.c'], 1));
      assert.ok(a && !('refused' in a));
      assert.equal(a.firstIndex, 1);
      assert.equal(a.job.counts.total, 3);
      const again = await store.jobAppend(part(['o.b', 'o.c'], 1));
      assert.ok(again && !('refused' in again) && again.deduplicated, 'the same part again is not appended twice');
      const gap = await store.jobAppend(part(['o.z'], 7));
      assert.ok(gap && 'refused' in gap && gap.refused === 'conflict');
      const ts = await claim(store, 'w', ['o.*'], 10);
      assert.deepEqual(ts.map((t) => [t.index, t.taskId]), [[0, `${job.id}.0`], [1, `${job.id}.1`], [2, `${job.id}.2`]]);
      const fin = await store.taskFinishMany({ outcomes: ts.map((t) => ({ taskId: t.taskId, attempt: 1, workerId: 'w', status: 'completed' as const, result: t.index })), now: Date.now() });
      assert.equal(fin.jobs.at(-1)?.finished, false, 'an open job does not finish when its tasks have');
      assert.equal((await store.jobGet(job.id))?.state, 'running');
      const sealed = await store.jobAppend(part([], 3, true));
      assert.ok(sealed && !('refused' in sealed));
      assert.equal(sealed.change?.finished, true, 'sealing a job whose tasks are done finishes it');
      assert.equal(sealed.job.state, 'completed');
      assert.equal(sealed.job.open, false);
      const late = await store.jobAppend(part(['o.late'], null));
      assert.ok(late && 'refused' in late && late.refused === 'sealed');
      assert.equal(await store.jobAppend({ ...part([], null), jobId: 'nope' }), null);
      // A page of results.
      const page = await store.jobResults(job.id, { offset: 1, limit: 1 });
      assert.deepEqual([page?.results, page?.offset, page?.total], [[1], 1, 3]);
    });

    test('an open job without a part or a seal for its open timeout is sealed when it chose so; each part pushes the time back', async () => {
      const t0 = Date.now();
      const p = { ...namedJob(['ot.a']), now: t0 };
      Object.assign(p.job, { open: true, openTimeoutMs: 1_000, onOpenTimeout: 'seal' });
      const { job } = await store.jobInsert(p);
      assert.deepEqual([job.openTimeoutMs, job.onOpenTimeout, job.openExpiresAt, job.closedBy], [1_000, 'seal', t0 + 1_000, null]);
      assert.equal(await store.jobNextExpiry(), t0 + 1_000);
      assert.deepEqual(await store.jobExpireOpen({ now: t0 + 999, limit: 10 }), [], 'not before its time');
      const part = await store.jobAppend({ jobId: job.id, at: null, seal: false, args: 0, label: null, now: t0 + 800,
        tasks: [{ kind: 'named', type: 'ot.b', input: null, priority: 'normal', maxAttempts: 1, timeoutMs: null }] });
      assert.ok(part && !('refused' in part));
      assert.equal(part.job.openExpiresAt, t0 + 1_800, 'a part pushes the time back');
      assert.deepEqual(await store.sweepCandidates({ sweep: 'open_timeouts', now: t0 + 1_500, limit: 10 }), []);
      assert.deepEqual(await store.jobExpireOpen({ now: t0 + 1_500, limit: 10 }), []);
      const ts = await claim(store, 'w', ['ot.*'], 10);
      await store.taskFinishMany({ outcomes: ts.map((t) => ({ taskId: t.taskId, attempt: t.attempt, workerId: 'w', status: 'completed' as const, result: t.index })), now: t0 + 1_600 });
      assert.equal((await store.jobGet(job.id))?.state, 'running', 'open: not finished though its tasks are');
      assert.deepEqual(await store.sweepCandidates({ sweep: 'open_timeouts', now: t0 + 1_800, limit: 10 }), [job.id]);
      assert.deepEqual(await store.sweepCandidates({ sweep: 'open_timeouts', now: t0 + 1_800, limit: 10, except: [job.id] }), []);
      const [r, ...more] = await store.jobExpireOpen({ now: t0 + 1_800, limit: 10 });
      assert.equal(more.length, 0);
      assert.deepEqual([r.jobId, r.action, r.openTimeoutMs, r.running], [job.id, 'seal', 1_000, []]);
      assert.equal(r.change?.finished, true, 'sealed, a job whose tasks are done finishes');
      const closed = await store.jobGet(job.id);
      assert.deepEqual([closed?.state, closed?.open, closed?.closedBy, closed?.openExpiresAt], ['completed', false, 'open_timeout', null]);
      assert.equal(await store.jobNextExpiry(), null);
      assert.deepEqual(await store.jobExpireOpen({ now: t0 + 5_000, limit: 10 }), [], 'closed once');
      const late = await store.jobAppend({ jobId: job.id, at: null, seal: false, args: 0, label: null, now: t0 + 5_000, tasks: [] });
      assert.ok(late && 'refused' in late && late.refused === 'sealed');
    });

    test('an open job that chose cancel is cancelled by its open timeout: unfinished tasks cancelled with an error naming it, running ones returned', async () => {
      const t0 = Date.now();
      const p = { ...namedJob(['oc.a', 'oc.b', 'oc.c']), now: t0 };
      Object.assign(p.job, { open: true, openTimeoutMs: 500 });
      const { job } = await store.jobInsert(p);
      assert.equal(job.onOpenTimeout, 'cancel', 'cancel unless the job says');
      const [a, b] = await store.taskClaimMany({ workerId: 'w', patterns: ['oc.*'], allowCode: false, limit: 2, leaseMs: 60_000, now: t0 });
      await store.taskFinishMany({ outcomes: [{ taskId: a.taskId, attempt: a.attempt, workerId: 'w', status: 'completed', result: 'kept' }], now: t0 + 1 });
      // Jobs that never expire: one open without a timeout, one not open (a timeout given to it is dropped).
      const forever = { ...namedJob(['oc.z']), now: t0 };
      forever.job.open = true;
      await store.jobInsert(forever);
      const shut = { ...namedJob(['oc.y']), now: t0 };
      shut.job.openTimeoutMs = 10;
      assert.deepEqual([(await store.jobInsert(shut)).job.openTimeoutMs, (await store.jobGet(shut.job.id))?.openExpiresAt], [null, null]);
      const [r] = await store.jobExpireOpen({ now: t0 + 500, limit: 10 });
      assert.deepEqual([r.jobId, r.action, r.running], [job.id, 'cancel', [{ taskId: b.taskId, attempt: b.attempt, workerId: 'w' }]]);
      assert.deepEqual([r.change?.state, r.change?.finished, r.change?.counts], ['cancelled', true, { total: 3, completed: 1, failed: 0, cancelled: 2 }]);
      const tasks = await store.taskList({ jobId: job.id, limit: 10, offset: 0 });
      assert.deepEqual(tasks.map((t) => t.state), ['completed', 'cancelled', 'cancelled']);
      assert.equal(tasks[0].result, 'kept');
      assert.equal(tasks[2].error?.code, 'CC_ERR_CANCELLED');
      assert.equal(tasks[2].error?.reason, 'open_timeout');
      assert.match(tasks[2].error?.message ?? '', new RegExp(`job ${job.id} was cancelled: it was open and got no part and no seal for 500 ms`));
      assert.equal((await store.jobGet(job.id))?.closedBy, 'open_timeout');
      assert.deepEqual(await store.jobExpireOpen({ now: t0 + 1e9, limit: 10 }), [], 'the others never expire');
      // Why other open jobs were closed: sealed by their producer, cancelled.
      const sealedJob = (await store.jobInsert({ ...namedJob(['oc.s']), job: { ...namedJob(['oc.s']).job, open: true, openTimeoutMs: 1_000 } })).job;
      const sealed = await store.jobAppend({ jobId: sealedJob.id, at: null, seal: true, args: 0, label: null, now: t0, tasks: [] });
      assert.ok(sealed && !('refused' in sealed));
      assert.deepEqual([sealed.job.closedBy, sealed.job.openExpiresAt], ['seal', null]);
      await store.jobCancel({ jobId: forever.job.id, now: t0 });
      assert.equal((await store.jobGet(forever.job.id))?.closedBy, 'cancel');
      assert.equal((await store.jobGet(shut.job.id))?.closedBy, null, 'a job never open was never closed');
    });

    test('past its deadline a job fails its scheduled, queued and running tasks with CC_ERR_DEADLINE; finished ones stay; a late result is refused', async () => {
      const t0 = Date.now();
      const p = { ...namedJob(['dl.a', 'dl.b', 'dl.c', 'dl.d']), now: t0 };
      p.job.deadline = t0 + 1_000;
      p.job.open = true;
      const { job } = await store.jobInsert(p);
      assert.equal(job.deadline, t0 + 1_000);
      const done = { ...namedJob(['dl.x']), now: t0 };
      done.job.deadline = t0 + 500;
      await store.jobInsert(done);
      assert.equal(await store.jobNextExpiry(), t0 + 500);
      const ran = await store.taskClaimMany({ workerId: 'w', patterns: ['dl.*'], allowCode: false, limit: 3, leaseMs: 60_000, now: t0,
        jobs: [{ jobId: job.id, limit: 2 }, { jobId: done.job.id, limit: 1 }] });
      const byType = new Map(ran.map((t) => [t.type, t]));
      const a = byType.get('dl.a')!;
      const b = byType.get('dl.b')!;
      const x = byType.get('dl.x')!;
      await store.taskFinishMany({ outcomes: [b, x].map((t) => ({ taskId: t.taskId, attempt: t.attempt, workerId: 'w', status: 'completed' as const, result: 'kept' })), now: t0 + 1 });
      assert.equal((await store.jobGet(done.job.id))?.state, 'completed');
      assert.equal(await store.jobNextExpiry(), t0 + 1_000, 'a finished job\'s deadline is no longer due');
      assert.deepEqual(await store.jobFailPastDeadline({ now: t0 + 999, limit: 10 }), [], 'not before its time; a finished job never');
      assert.deepEqual(await store.sweepCandidates({ sweep: 'deadlines', now: t0 + 1_000, limit: 10 }), [job.id]);
      assert.deepEqual(await store.sweepCandidates({ sweep: 'deadlines', now: t0 + 1_000, limit: 10, except: [job.id] }), []);
      const [r, ...more] = await store.jobFailPastDeadline({ now: t0 + 1_000, limit: 10 });
      assert.equal(more.length, 0);
      assert.deepEqual([r.jobId, r.deadline, r.failed, r.running], [job.id, t0 + 1_000, 3, [{ taskId: a.taskId, attempt: a.attempt, workerId: 'w' }]]);
      assert.deepEqual([r.change?.state, r.change?.finished, r.change?.counts], ['failed', true, { total: 4, completed: 1, failed: 3, cancelled: 0 }]);
      const after = await store.jobGet(job.id);
      assert.deepEqual([after?.state, after?.open, after?.closedBy], ['failed', false, 'deadline'], 'an open job is closed at its deadline');
      const tasks = await store.taskList({ jobId: job.id, limit: 10, offset: 0 });
      assert.deepEqual(tasks.map((t) => t.state), ['failed', 'completed', 'failed', 'failed']);
      assert.equal(tasks[1].result, 'kept');
      for (const t of [tasks[0], tasks[2], tasks[3]]) {
        assert.equal(t.error?.code, 'CC_ERR_DEADLINE');
        assert.equal(t.error?.retryable, false);
        assert.ok(t.error?.message.includes(`job ${job.id} passed its deadline ${new Date(t0 + 1_000).toISOString()}`), t.error?.message);
      }
      const late = await store.taskFinishMany({ outcomes: [{ taskId: a.taskId, attempt: a.attempt, workerId: 'w', status: 'completed', result: 'late' }], now: t0 + 1_001 });
      assert.equal(late.recorded.length, 0, 'the stopped task\'s late result is refused');
      assert.deepEqual(await store.jobFailPastDeadline({ now: t0 + 5_000, limit: 10 }), [], 'once');
      assert.equal(await store.jobNextExpiry(), null);
      assert.equal((await store.jobGet(done.job.id))?.state, 'completed', 'a job done before its deadline is left as it was');
    });

    test('an open map job: parts of whole chunks, the last may be partial, results paged by argument', async () => {
      const p = mapJob([1, 2, 3, 4], 2);
      p.job.open = true;
      const { job } = await store.jobInsert(p);
      const chunks = (args: number[][]) => args.map((input) => ({ kind: 'map' as const, type: 'map', input, priority: 'normal' as const, maxAttempts: 1, timeoutMs: null }));
      const a = await store.jobAppend({ jobId: job.id, tasks: chunks([[5]]), args: 1, at: 4, seal: false, label: null, now: Date.now() });
      assert.ok(a && !('refused' in a));
      assert.equal(a.job.argCount, 5);
      const b = await store.jobAppend({ jobId: job.id, tasks: chunks([[6, 7]]), args: 2, at: 5, seal: false, label: null, now: Date.now() });
      assert.ok(b && 'refused' in b && b.refused === 'partial_chunk');
      const seal = await store.jobAppend({ jobId: job.id, tasks: [], args: 0, at: 5, seal: true, label: null, now: Date.now() });
      assert.ok(seal && !('refused' in seal) && seal.job.open === false);
      const ts = await claim(store, 'w', [], 10, true);
      await store.taskFinishMany({ outcomes: ts.map((t) => ({ taskId: t.taskId, attempt: 1, workerId: 'w', status: 'completed' as const, result: (t.input as number[]).map((x) => x * x) })), now: Date.now() });
      assert.equal((await store.jobGet(job.id))?.state, 'completed');
      const page = await store.jobResults(job.id, { offset: 1, limit: 3 });
      assert.deepEqual(page?.results, [4, 9, 16]);
      assert.equal(page?.total, 5);
      assert.deepEqual((await store.jobResults(job.id, { offset: 4, limit: 10 }))?.results, [25]);
    });

    test('cancelling a job cancels queued and running tasks, keeps finished results, and reports running ones', async () => {
      const { job } = await store.jobInsert(namedJob(['c.a', 'c.b', 'c.c']));
      const [t0, t1] = await claim(store, 'w', ['c.*'], 2);
      await store.taskFinishMany({ outcomes: [{ taskId: t0.taskId, attempt: 1, workerId: 'w', status: 'completed', result: 'kept' }], now: Date.now() });
      const c = await store.jobCancel({ jobId: job.id, now: Date.now() });
      assert.deepEqual(c?.running, [{ taskId: t1.taskId, attempt: 1, workerId: 'w' }]);
      assert.equal(c?.job.state, 'cancelled');
      assert.deepEqual(c?.job.counts, { total: 3, completed: 1, failed: 0, cancelled: 2 });
      assert.equal(c?.change?.finished, true);
      const late = await store.taskFinishMany({ outcomes: [{ taskId: t1.taskId, attempt: 1, workerId: 'w', status: 'completed', result: 'late' }], now: Date.now() });
      assert.equal(late.rejected[0]?.currentState, 'cancelled');
      assert.deepEqual((await store.jobResults(job.id))?.results, ['kept', null, null]);
      const again = await store.jobCancel({ jobId: job.id, now: Date.now() });
      assert.equal(again?.change, null);
      assert.equal(await store.jobCancel({ jobId: 'nope', now: Date.now() }), null);
    });

    test('an idempotency key returns the existing job', async () => {
      const a = await store.jobInsert(namedJob(['i.a'], { key: 'order-17' }));
      const b = await store.jobInsert(namedJob(['i.a'], { key: 'order-17' }));
      assert.equal(b.deduplicated, true);
      assert.equal(b.job.id, a.job.id);
      assert.equal((await store.stats()).tasks.queued, 1);
    });

    test('progress is kept only for the running attempt', async () => {
      await store.jobInsert(namedJob(['g.a']));
      const [t] = await claim(store, 'w', ['g.a'], 1);
      assert.equal(await store.taskProgressSet({ taskId: t.taskId, attempt: 1, progress: 40, message: 'half' }), true);
      assert.equal(await store.taskProgressSet({ taskId: t.taskId, attempt: 2, progress: 50, message: null }), false);
      const rec = await store.taskGet(t.taskId);
      assert.equal(rec?.progress, 40);
      assert.equal(rec?.progressMessage, 'half');
    });

    test('jobs list newest first and filter by state', async () => {
      const a = await store.jobInsert(namedJob(['l.a']));
      const b = await store.jobInsert(namedJob(['l.b']));
      await claim(store, 'w', ['l.b'], 1);
      const all = await store.jobList({ limit: 10, offset: 0 });
      assert.deepEqual(all.map((j) => j.id).slice(0, 2), [b.job.id, a.job.id]);
      const running = await store.jobList({ limit: 10, offset: 0, state: 'running' });
      assert.deepEqual(running.map((j) => j.id), [b.job.id]);
    });

    test('workers are upserted, their outcomes counted with the results, marked offline; stats add up', async () => {
      const now = Date.now();
      await store.workerUpsert({ id: 'w1', state: 'online', capacity: 4, patterns: ['a.*'], allowCode: true,
        resources: { cpuCores: 2 }, version: '0.1.0', foremanId: 'f1', connectedAt: now, lastSeenAt: now });
      await store.jobInsert(namedJob(['wc.a', 'wc.a', 'wc.a', 'wc.a']));
      const ts = await claim(store, 'w1', ['wc.a'], 4);
      await store.taskFinishMany({ outcomes: ts.map((t, i) => ({ taskId: t.taskId, attempt: 1, workerId: 'w1', status: i < 3 ? 'completed' as const : 'failed' as const, error: { message: 'x' } })), now });
      let [w] = await store.workerList();
      assert.deepEqual([w.id, w.state, w.capacity, w.patterns, w.allowCode, w.tasksCompleted, w.tasksFailed], ['w1', 'online', 4, ['a.*'], true, 3, 1]);
      await store.workerDisconnected({ workerId: 'w1', now });
      [w] = await store.workerList();
      assert.equal(w.state, 'offline');
      await store.jobInsert(namedJob(['s.a', 's.b']));
      const stats = await store.stats();
      assert.equal(stats.tasks.queued, 2);
      assert.equal(stats.jobs.queued, 1);
      assert.equal(stats.jobs.failed, 1);
      assert.deepEqual(stats.workers, { online: 0, offline: 1 });
    });

    test('workerSeen moves an online worker\'s last seen forward, in one write for many, only at its own foreman', async () => {
      const t0 = Date.now() - 60_000;
      const hello = { capacity: 1, patterns: [], allowCode: false, resources: {}, version: null, connectedAt: t0, lastSeenAt: t0 };
      await store.workerUpsert({ id: 'seen-a', state: 'online', foremanId: 'fa', ...hello });
      await store.workerUpsert({ id: 'seen-b', state: 'online', foremanId: 'fa', ...hello });
      await store.workerUpsert({ id: 'seen-other', state: 'online', foremanId: 'fb', ...hello });
      await store.workerUpsert({ id: 'seen-gone', state: 'online', foremanId: 'fa', ...hello });
      await store.workerDisconnected({ workerId: 'seen-gone', now: t0 + 1 });
      await store.workerSeen({ foremanId: 'fa', workers: [{ id: 'seen-a', at: t0 + 5_000 }, { id: 'seen-b', at: t0 + 7_000 }, { id: 'seen-other', at: t0 + 9_000 }, { id: 'seen-gone', at: t0 + 9_000 }, { id: 'seen-unknown', at: t0 }] });
      const seen = async () => new Map((await store.workerList()).filter((w) => w.id.startsWith('seen-')).map((w) => [w.id, w.lastSeenAt]));
      assert.deepEqual(Object.fromEntries(await seen()), { 'seen-a': t0 + 5_000, 'seen-b': t0 + 7_000, 'seen-other': t0, 'seen-gone': t0 + 1 });
      // Never backwards (a late batch after a newer one), and nothing to write is no write.
      await store.workerSeen({ foremanId: 'fa', workers: [{ id: 'seen-a', at: t0 + 1_000 }] });
      await store.workerSeen({ foremanId: 'fa', workers: [] });
      assert.equal((await seen()).get('seen-a'), t0 + 5_000);
    });

    test('foremen\'s leases: a foreman whose lease ran out, or that holds none, has its online workers marked offline; a live one keeps them', async () => {
      const t0 = Date.now();
      const hello = { capacity: 1, patterns: [], allowCode: false, resources: {}, version: null, connectedAt: t0 - 5_000 };
      const online = async () => Object.fromEntries((await store.workerList()).filter((w) => w.id.startsWith('fl-')).map((w) => [w.id, w.state]));
      // A foreman starting under an id that an earlier run left workers at: they go offline, others' stay.
      assert.equal(await store.foremanLeaseTake({ foremanId: 'fl-b', now: t0, until: t0 + 10_000 }), 0);
      await store.workerUpsert({ id: 'fl-earlier', state: 'online', foremanId: 'fl-a', lastSeenAt: t0 - 4_000, ...hello });
      await store.workerUpsert({ id: 'fl-b1', state: 'online', foremanId: 'fl-b', lastSeenAt: t0 - 3_000, ...hello });
      assert.equal(await store.foremanLeaseTake({ foremanId: 'fl-a', now: t0, until: t0 + 1_000 }), 1);
      assert.deepEqual(await online(), { 'fl-earlier': 'offline', 'fl-b1': 'online' });
      assert.equal((await store.workerList()).find((w) => w.id === 'fl-earlier')!.disconnectedAt, t0 - 4_000, 'disconnected when last seen');
      await store.workerUpsert({ id: 'fl-a1', state: 'online', foremanId: 'fl-a', lastSeenAt: t0 + 500, ...hello });
      await store.workerUpsert({ id: 'fl-c1', state: 'online', foremanId: 'fl-c', lastSeenAt: t0, ...hello });
      await store.foremanLeaseTake({ foremanId: 'fl-d', now: t0, until: t0 + 10_000 });
      await store.workerUpsert({ id: 'fl-d1', state: 'online', foremanId: 'fl-d', lastSeenAt: t0, ...hello });

      // Renewed while held: true. Nothing has lapsed yet; fl-c holds no lease at all.
      assert.equal(await store.foremanLeaseRenew({ foremanId: 'fl-b', until: t0 + 20_000 }), true);
      assert.deepEqual(await store.foremanReapLapsed({ now: t0 + 500 }), { foremen: [], workers: 1 });
      assert.deepEqual(await online(), { 'fl-earlier': 'offline', 'fl-b1': 'online', 'fl-a1': 'online', 'fl-c1': 'offline', 'fl-d1': 'online' });

      // fl-a's lease ran out at t0 + 1000 and fl-d's at t0 + 10000; fl-b renewed past the reap's time.
      const reaped = await store.foremanReapLapsed({ now: t0 + 12_000 });
      assert.deepEqual({ ...reaped, foremen: [...reaped.foremen].sort() }, { foremen: ['fl-a', 'fl-d'], workers: 2 });
      assert.deepEqual(await online(), { 'fl-earlier': 'offline', 'fl-b1': 'online', 'fl-a1': 'offline', 'fl-c1': 'offline', 'fl-d1': 'offline' });
      assert.equal((await store.workerList()).find((w) => w.id === 'fl-a1')!.disconnectedAt, t0 + 500);
      // A reaped foreman learns it at its next renewal (and holds its lease again).
      assert.equal(await store.foremanLeaseRenew({ foremanId: 'fl-a', until: t0 + 30_000 }), false);
      assert.equal(await store.foremanLeaseRenew({ foremanId: 'fl-a', until: t0 + 31_000 }), true);
      assert.deepEqual(await store.foremanReapLapsed({ now: t0 + 12_000 }), { foremen: [], workers: 0 });
      assert.equal((await online())['fl-b1'], 'online', 'a foreman that renewed in time keeps its workers');

      // A foreman stopping ends its lease; its workers still recorded online go offline now.
      await store.foremanLeaseEnd({ foremanId: 'fl-b', now: t0 + 13_000 });
      const b1 = (await store.workerList()).find((w) => w.id === 'fl-b1')!;
      assert.deepEqual([b1.state, b1.disconnectedAt], ['offline', t0 + 13_000]);
      assert.equal(await store.foremanLeaseRenew({ foremanId: 'fl-b', until: t0 + 40_000 }), false, 'its lease is gone');
    });

    test('task counts by state agree with the tasks themselves through claims, results, failures, cancels and retries', async () => {
      const a = await store.jobInsert(namedJob(['st.a', 'st.a', 'st.a', 'st.a', 'st.a']));
      const b = await store.jobInsert(namedJob(['st.b', 'st.b', 'st.b']));
      await store.jobInsert(namedJob(['st.c', 'st.c']));
      const ts = await claim(store, 'w', ['st.a'], 4);
      await store.taskFinishMany({ outcomes: [
        { taskId: ts[0].taskId, attempt: 1, workerId: 'w', status: 'completed', result: 1 },
        { taskId: ts[1].taskId, attempt: 1, workerId: 'w', status: 'failed', error: { message: 'no' } },
      ], now: Date.now() });
      await claim(store, 'w', ['st.b'], 1);
      await store.jobCancel({ jobId: b.job.id, now: Date.now() });
      await store.jobRetry({ jobId: a.job.id, now: Date.now() });
      const byTask = { scheduled: 0, queued: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
      for (const j of await store.jobList({ limit: 100, offset: 0 })) {
        for (const t of await store.taskList({ jobId: j.id, limit: 100, offset: 0 })) byTask[t.state]++;
      }
      assert.deepEqual(byTask, { scheduled: 0, queued: 4, running: 2, completed: 1, failed: 0, cancelled: 3 });
      assert.deepEqual((await store.stats()).tasks, byTask);
    });

    test('20,000 tasks insert in one job and claim in order', async () => {
      const types = Array.from({ length: 20_000 }, () => 'bulk.noop');
      const { job } = await store.jobInsert(namedJob(types));
      assert.equal(job.counts.total, 20_000);
      const got = await claim(store, 'w', ['bulk.*'], 500);
      assert.equal(got.length, 500);
      assert.deepEqual(got.slice(0, 3).map((t) => t.index), [0, 1, 2]);
    });

    test('heartbeats extend leases; expired leases are requeued; a task lost too often fails', async () => {
      const { job } = await store.jobInsert(namedJob(['l.a', 'l.b']));
      const t0 = Date.now();
      const [a, b] = await store.taskClaimMany({ workerId: 'w', patterns: ['l.*'], allowCode: false, limit: 2, leaseMs: 1_000, now: t0 });
      assert.equal(await store.taskLeaseExtend({ workerId: 'w', tasks: [{ taskId: a.taskId, attempt: 1 }], until: t0 + 10_000 }), 1);
      assert.equal(await store.taskLeaseExtend({ workerId: 'other', tasks: [{ taskId: b.taskId, attempt: 1 }], until: t0 + 10_000 }), 0);
      const r1 = await store.taskRequeueExpired({ now: t0 + 5_000, maxLost: 2, limit: 100 });
      assert.deepEqual(r1.expired, [{ taskId: b.taskId, attempt: 1, workerId: 'w' }]);
      assert.deepEqual(r1.requeued, [{ taskId: b.taskId, attempt: 1 }]);
      const rec = await store.taskGet(b.taskId);
      assert.equal(rec?.state, 'queued');
      assert.equal(rec?.attemptErrors[0]?.error.code, 'CC_ERR_WORKER_LOST');
      const [b2] = await store.taskClaimMany({ workerId: 'w2', patterns: ['l.*'], allowCode: false, limit: 1, leaseMs: 1_000, now: t0 + 5_000 });
      assert.equal(b2.attempt, 2);
      const r2 = await store.taskRequeueExpired({ now: t0 + 7_000, maxLost: 2, limit: 100 });
      assert.deepEqual(r2.failed, [{ taskId: b.taskId, attempt: 2 }], 'second loss reaches maxLost = 2');
      assert.equal(r2.jobs[0]?.counts.failed, 1);
      const failed = await store.taskGet(b.taskId);
      assert.equal(failed?.state, 'failed');
      assert.equal(failed?.error?.code, 'CC_ERR_WORKER_LOST');
      assert.equal(failed?.attemptErrors.length, 2);
      assert.equal((await store.taskRequeueExpired({ now: t0 + 8_000, limit: 100 })).expired.length, 0, 'the extended lease of a has not expired');
      assert.equal((await store.jobGet(job.id))?.state, 'running');
    });

    test('a task handed back (not lost) is requeued without using up its lost budget', async () => {
      await store.jobInsert(namedJob(['hb.a']));
      for (let i = 1; i <= 3; i++) {
        const [t] = await claim(store, 'w', ['hb.a'], 1);
        const r = await store.taskRequeueMany({ tasks: [{ taskId: t.taskId, attempt: i }], now: Date.now(), error: { message: 'drain' }, maxLost: 1, countAsLost: false });
        assert.deepEqual(r.failed, []);
        assert.equal(r.requeued.length, 1);
      }
      const [t] = await claim(store, 'w', ['hb.a'], 1);
      assert.equal(t.attempt, 4);
    });

    test('every failed attempt keeps its error; the last one is the task error', async () => {
      await store.jobInsert(namedJob(['e.a'], { maxAttempts: 3 }));
      const now = Date.now();
      for (let i = 1; i <= 3; i++) {
        const [t] = await store.taskClaimMany({ workerId: `w${i}`, patterns: ['e.a'], allowCode: false, limit: 1, leaseMs: 1_000, now: now + i * 10 });
        await store.taskFinishMany({ outcomes: [{ taskId: t.taskId, attempt: i, workerId: `w${i}`, status: 'failed', error: { message: `boom ${i}` }, retryAt: now + i * 10 }], now });
      }
      const [rec] = await store.taskList({ jobId: (await store.jobList({ limit: 1, offset: 0 }))[0].id, limit: 1, offset: 0 });
      assert.equal(rec.state, 'failed');
      assert.deepEqual(rec.attemptErrors.map((e) => [e.attempt, e.workerId, e.error.message]), [[1, 'w1', 'boom 1'], [2, 'w2', 'boom 2'], [3, 'w3', 'boom 3']]);
      assert.equal(rec.error?.message, 'boom 3');
    });

    test('cancelling one task: a queued one never runs, a running one is reported; the job settles', async () => {
      const { job } = await store.jobInsert(namedJob(['k.a', 'k.b']));
      const [a] = await claim(store, 'w', ['k.*'], 1);
      const b = (await store.taskList({ jobId: job.id, limit: 10, offset: 0 }))[1];
      const cb = await store.taskCancel({ taskId: b.id, now: Date.now() });
      assert.equal(cb?.task.state, 'cancelled');
      assert.equal(cb?.running, null);
      assert.deepEqual(await claim(store, 'w', ['k.*'], 5), []);
      const ca = await store.taskCancel({ taskId: a.taskId, now: Date.now() });
      assert.deepEqual(ca?.running, { attempt: 1, workerId: 'w' });
      assert.equal(ca?.change?.finished, true);
      assert.equal(ca?.change?.state, 'cancelled');
      const again = await store.taskCancel({ taskId: a.taskId, now: Date.now() });
      assert.equal(again?.change, null);
      assert.equal(await store.taskCancel({ taskId: 'nope', now: Date.now() }), null);
    });

    test('an idempotency key expires: after its TTL a new job takes it', async () => {
      const first = await store.jobInsert(namedJob(['d.a'], { key: 'nightly' }));
      const within = await store.jobInsert({ ...namedJob(['d.a'], { key: 'nightly' }), dedupSince: Date.now() - 60_000 });
      assert.equal(within.deduplicated, true);
      const after = await store.jobInsert({ ...namedJob(['d.a'], { key: 'nightly' }), dedupSince: Date.now() + 1 });
      assert.equal(after.deduplicated, false);
      assert.notEqual(after.job.id, first.job.id);
      assert.equal((await store.jobGet(first.job.id))?.idempotencyKey, null);
      assert.equal((await store.jobInsert(namedJob(['d.a'], { key: 'nightly' }))).job.id, after.job.id);
    });

    test('jobs remember their owner; a listing by owner shows only that key\'s jobs', async () => {
      const mine = await store.jobInsert(namedJob(['a'], { owner: 'key-a' }));
      await store.jobInsert(namedJob(['b'], { owner: 'key-b' }));
      await store.jobInsert(namedJob(['c']));
      assert.equal(mine.job.owner, 'key-a');
      assert.equal((await store.jobGet(mine.job.id))!.owner, 'key-a');
      assert.deepEqual((await store.jobList({ limit: 10, offset: 0, owner: 'key-a' })).map((j) => j.id), [mine.job.id]);
      assert.deepEqual(await store.jobList({ limit: 10, offset: 0, owner: 'key-a', state: 'completed' }), []);
      assert.equal((await store.jobList({ limit: 10, offset: 0 })).length, 3);
    });

    test('credentials: stored without secrets, listed, revoked once, touched; every change moves the version', async () => {
      const v0 = await store.credentialsVersion();
      const now = Date.now();
      await store.credentialInsert({ id: uid('k').replace(/\W/g, ''), kind: 'key', name: 'ci', scopes: ['read', 'submit'], workerId: null, secretHash: 'ab'.repeat(32), createdAt: now });
      const keyId = (await store.credentialList({ kind: 'key' }))[0].id;
      await store.credentialInsert({ id: uid('t').replace(/\W/g, ''), kind: 'token', name: null, scopes: [], workerId: 'w1', secretHash: null, createdAt: now + 1 });
      assert.ok(await store.credentialsVersion() > v0);
      const key = (await store.credentialGet(keyId))!;
      assert.deepEqual([key.kind, key.name, key.scopes, key.secretHash, key.revokedAt], ['key', 'ci', ['read', 'submit'], 'ab'.repeat(32), null]);
      assert.deepEqual((await store.credentialList({ kind: 'token' })).map((t) => t.workerId), ['w1']);
      assert.equal((await store.credentialList({})).length, 2);
      await store.credentialTouch({ id: keyId, now: now + 5, from: '10.0.0.1' });
      assert.deepEqual([(await store.credentialGet(keyId))!.lastUsedAt, (await store.credentialGet(keyId))!.lastUsedFrom], [now + 5, '10.0.0.1']);
      const v1 = await store.credentialsVersion();
      const revoked = (await store.credentialRevoke({ id: keyId, now: now + 10 }))!;
      assert.equal(revoked.revokedAt, now + 10);
      assert.ok(await store.credentialsVersion() > v1);
      assert.equal((await store.credentialRevoke({ id: keyId, now: now + 20 }))!.revokedAt, now + 10, 'revoking again keeps the first time');
      assert.equal(await store.credentialRevoke({ id: 'nope', now }), null);
      assert.equal(await store.credentialGet('nope'), null);
    });

    test('a setting is written once: the first writer wins', async () => {
      assert.equal(await store.metaSetIfAbsent({ key: 'fingerprint', value: 'one' }), 'one');
      assert.equal(await store.metaSetIfAbsent({ key: 'fingerprint', value: 'two' }), 'one');
    });

    test('finished jobs are pruned after their retention, a bounded number of tasks at a time, leaving a tombstone', async () => {
      const t0 = Date.now();
      const short = await store.jobInsert({ ...namedJob(['a', 'b', 'c'], { retentionMs: 1_000, owner: 'k1' }), now: t0 });
      const long = await store.jobInsert({ ...namedJob(['a'], { retentionMs: 3_600_000 }), now: t0 });
      const unfinished = await store.jobInsert({ ...namedJob(['a'], { retentionMs: 0 }), now: t0 });
      for (const jobId of [short.job.id, long.job.id]) await store.jobCancel({ jobId, now: t0 });
      assert.deepEqual(await store.jobPrune({ now: t0 + 500, maxTasks: 100 }), { jobs: 0, tasks: 0, more: false }, 'nothing before its time');
      // Two tasks per step: the job goes in two steps, and only once all its tasks are gone.
      assert.deepEqual(await store.jobPrune({ now: t0 + 2_000, maxTasks: 2 }), { jobs: 0, tasks: 2, more: true });
      assert.ok(await store.jobGet(short.job.id), 'still there while it has tasks');
      assert.deepEqual(await store.jobPrune({ now: t0 + 2_000, maxTasks: 2 }), { jobs: 1, tasks: 1, more: false });
      assert.equal(await store.jobGet(short.job.id), null);
      assert.deepEqual(await store.taskList({ jobId: short.job.id, limit: 10, offset: 0 }), []);
      assert.deepEqual(await store.jobPruned(short.job.id), { owner: 'k1', prunedAt: t0 + 2_000 });
      assert.ok(await store.jobGet(long.job.id), 'a longer retention keeps its job');
      assert.ok(await store.jobGet(unfinished.job.id), 'an unfinished job is never pruned');
      assert.deepEqual((await store.stats()).pruned, { jobs: 1, tasks: 3 });
      // On demand: finished before a time, whatever the retention; old tombstones are forgotten.
      assert.equal((await store.jobPrune({ now: t0 + 3_000, maxTasks: 100, completedBefore: t0 + 1, forgetPrunedBefore: t0 + 2_500 })).jobs, 1);
      assert.equal(await store.jobGet(long.job.id), null);
      assert.equal(await store.jobPruned(short.job.id), null, 'its tombstone was forgotten');
      assert.ok(await store.jobPruned(long.job.id));
    });

    test('a retry runs failed and cancelled tasks again with fresh attempts; recorded results stay; the history keeps every attempt', async () => {
      const { job } = await store.jobInsert(namedJob(['r.a', 'r.b', 'r.c'], { maxAttempts: 1 }));
      const now = Date.now();
      const got = await claim(store, 'w', ['r.*'], 3);
      const by = new Map(got.map((t) => [t.type, t]));
      await store.taskFinishMany({ now, outcomes: [
        { taskId: by.get('r.a')!.taskId, attempt: 1, workerId: 'w', status: 'completed', result: 'A' },
        { taskId: by.get('r.b')!.taskId, attempt: 1, workerId: 'w', status: 'failed', error: { message: 'b broke' } },
      ] });
      await store.taskCancel({ taskId: by.get('r.c')!.taskId, now });
      assert.notEqual((await store.jobGet(job.id))?.completedAt, null, 'the job ended');
      const failedTask = (await store.taskGet(by.get('r.b')!.taskId))!;
      assert.equal(failedTask.attemptErrors[0]?.workerId, 'w', 'the history names the worker');
      assert.equal(typeof failedTask.attemptErrors[0]?.startedAt, 'number', 'and when the attempt started');

      const r = (await store.jobRetry({ jobId: job.id, now }))!;
      assert.equal(r.retried, 2);
      assert.deepEqual(r.job.counts, { total: 3, completed: 1, failed: 0, cancelled: 0 });
      assert.equal(r.job.state, 'running');
      assert.equal(r.job.completedAt, null);
      assert.equal(r.change?.finished, false);
      const again = await claim(store, 'w2', ['r.*'], 3);
      assert.deepEqual(again.map((t) => t.type).sort(), ['r.b', 'r.c'], 'only the failed and the cancelled task run again');
      assert.equal(again.find((t) => t.type === 'r.b')?.attempt, 2, 'the attempt number goes on (it fences results)');
      const done = await store.taskFinishMany({ now: now + 20, outcomes: again.map((t) => ({ taskId: t.taskId, attempt: t.attempt, workerId: 'w2', status: 'completed' as const, result: t.type })) });
      assert.equal(done.jobs[0]?.state, 'completed');
      assert.deepEqual((await store.jobResults(job.id))?.results, ['A', 'r.b', 'r.c']);
      assert.equal((await store.taskGet(by.get('r.b')!.taskId))!.attemptErrors.length, 1, 'the failed attempt stays in the history');

      assert.deepEqual((await store.jobRetry({ jobId: job.id, now }))?.retried, 0, 'nothing left to retry');
      assert.equal(await store.jobRetry({ jobId: 'no-such-job', now }), null);
    });

    test('one task of a job can be retried alone', async () => {
      const { job } = await store.jobInsert(namedJob(['o.a', 'o.b'], { maxAttempts: 1 }));
      const got = await claim(store, 'w', ['o.*'], 2);
      await store.taskFinishMany({ now: Date.now(), outcomes: got.map((t) => ({ taskId: t.taskId, attempt: 1, workerId: 'w', status: 'failed' as const, error: { message: 'no' } })) });
      const r = (await store.jobRetry({ jobId: job.id, taskId: got[0].taskId, now: Date.now() }))!;
      assert.equal(r.retried, 1);
      assert.deepEqual(r.job.counts, { total: 2, completed: 0, failed: 1, cancelled: 0 });
      assert.deepEqual((await claim(store, 'w', ['o.*'], 2)).map((t) => t.taskId), [got[0].taskId]);
    });

    test('dead letters: failed tasks grouped by type and error (first line), filtered by owner, type, code, job and time, walked in order and retried by list', async () => {
      const t0 = Date.now();
      const a = await store.jobInsert(namedJob(['dl.a', 'dl.a', 'dl.a', 'dl.b'], { owner: 'k1' }));
      const b = await store.jobInsert(namedJob(['dl.a', 'dl.a'], { owner: 'k2' }));
      const got = await claim(store, 'w', ['dl.*'], 6);
      const ofJob = (id: string) => got.filter((t) => t.jobId === id).sort((x, y) => x.index - y.index);
      const [a0, a1, a2, a3] = ofJob(a.job.id);
      const [b0, b1] = ofJob(b.job.id);
      const fail = (t: typeof a0, error: { message: string; code?: string; name?: string }, at: number) =>
        store.taskFinishMany({ now: at, outcomes: [{ taskId: t.taskId, attempt: t.attempt, workerId: 'w', status: 'failed', error: { ...error, retryable: false } }] });
      await fail(a0, { message: 'disk full\n  at write (x.ts:1)', code: 'E_DISK' }, t0 + 1);
      await fail(a1, { message: 'disk full\nanother trace', code: 'E_DISK' }, t0 + 2);
      await fail(b0, { message: 'disk full', code: 'E_DISK' }, t0 + 3);
      await fail(b1, { message: 'bad input', name: 'TypeError' }, t0 + 4);
      await fail(a3, { message: 'disk full', code: 'E_DISK' }, t0 + 5);
      await store.taskFinishMany({ now: t0 + 6, outcomes: [{ taskId: a2.taskId, attempt: a2.attempt, workerId: 'w', status: 'completed', result: 'ok' }] });
      const all = { limit: 10, offset: 0 };
      const groups = await store.taskFailedGroups(all);
      assert.deepEqual(groups.map((g) => [g.type, g.errorCode, g.message, g.count, g.jobs]), [
        ['dl.a', 'E_DISK', 'disk full', 3, 2],
        ['dl.a', 'TypeError', 'bad input', 1, 1],
        ['dl.b', 'E_DISK', 'disk full', 1, 1],
      ], 'grouped by type, code (the name when there is none) and first line; largest first');
      assert.deepEqual([groups[0].firstAt, groups[0].lastAt], [t0 + 1, t0 + 3]);
      assert.deepEqual(groups[0].taskIds, [b0.taskId, a1.taskId, a0.taskId], 'the newest examples first');
      assert.deepEqual(groups[0].jobIds, [b.job.id, a.job.id, a.job.id]);
      assert.deepEqual((await store.taskFailedGroups({ ...all, owner: 'k1' })).map((g) => [g.type, g.count]), [['dl.a', 2], ['dl.b', 1]], "one owner's only");
      assert.deepEqual((await store.taskFailedGroups({ ...all, owner: 'nobody' })), []);
      assert.deepEqual((await store.taskFailedGroups({ ...all, type: 'dl.b' })).map((g) => g.count), [1]);
      assert.deepEqual((await store.taskFailedGroups({ ...all, errorCode: 'TypeError' })).map((g) => g.type), ['dl.a']);
      assert.deepEqual((await store.taskFailedGroups({ ...all, message: 'disk full' })).map((g) => g.count), [3, 1]);
      assert.deepEqual((await store.taskFailedGroups({ ...all, jobId: b.job.id })).map((g) => g.count), [1, 1]);
      assert.deepEqual((await store.taskFailedGroups({ ...all, since: t0 + 4 })).map((g) => g.type), ['dl.a', 'dl.b']);
      assert.deepEqual((await store.taskFailedGroups({ limit: 1, offset: 1 })).map((g) => g.errorCode), ['TypeError'], 'paged');

      const page1 = await store.taskFailedPage({ type: 'dl.a', errorCode: 'E_DISK', afterSeq: 0, limit: 2 });
      assert.deepEqual(page1.map((r) => r.taskId), [a0.taskId, a1.taskId], 'in storage order');
      const page2 = await store.taskFailedPage({ type: 'dl.a', errorCode: 'E_DISK', afterSeq: page1[1].seq, limit: 2 });
      assert.deepEqual(page2.map((r) => [r.taskId, r.jobId]), [[b0.taskId, b.job.id]]);
      assert.deepEqual((await store.taskFailedPage({ taskIds: [a3.taskId, a2.taskId, 'nope'], owner: 'k1', afterSeq: 0, limit: 10 })).map((r) => r.taskId), [a3.taskId], 'only failed ones of the list');

      const r = (await store.jobRetry({ jobId: a.job.id, taskIds: [a0.taskId, a1.taskId], now: Date.now() }))!;
      assert.equal(r.retried, 2);
      assert.deepEqual(r.job.counts, { total: 4, completed: 1, failed: 1, cancelled: 0 });
      assert.equal(r.job.state, 'running', 'the finished job is open again');
      assert.deepEqual((await store.taskFailedGroups({ ...all, owner: 'k1' })).map((g) => [g.type, g.count]), [['dl.b', 1]]);
      assert.deepEqual((await claim(store, 'w', ['dl.*'], 5)).map((t) => t.taskId).sort(), [a0.taskId, a1.taskId].sort(), 'only the listed tasks run again');

      // A hostile handler's error (a NUL, a lone surrogate, an escaped backslash before "u0000") is listed, not refused.
      const c = await store.jobInsert(namedJob(['dl.odd', 'dl.odd'], { owner: 'k3' }));
      const [c0, c1] = (await claim(store, 'w', ['dl.odd'], 2)).sort((x, y) => x.index - y.index);
      await fail(c0, { message: 'nul \u0000 and \ud800 here', code: 'E_ODD\u0000' }, t0 + 20);
      await fail(c1, { message: 'a path C:\\u0000\\x', code: 'E_PATH' }, t0 + 21);
      const odd = await store.taskFailedGroups({ ...all, owner: 'k3' });
      assert.deepEqual(odd.map((g) => [g.count, g.message.startsWith('nul '), g.message.startsWith('a path C:')]).sort(), [[1, false, true], [1, true, false]]);
      assert.deepEqual((await store.taskFailedPage({ owner: 'k3', errorCode: 'E_PATH', afterSeq: 0, limit: 5 })).map((r) => r.taskId), [c1.taskId]);
    });

    test('tasks nobody started before the queue deadline fail with CC_ERR_NO_WORKER; started ones run on', async () => {
      const t0 = Date.now();
      const { job } = await store.jobInsert({ ...namedJob(['q.a', 'q.b', 'q.c'], { queueTimeoutMs: 1_000 }), now: t0 });
      const [started] = await store.taskClaimMany({ workerId: 'w', patterns: ['q.a'], allowCode: false, limit: 1, leaseMs: 60_000, now: t0 });
      assert.deepEqual(await store.taskExpireQueued({ now: t0 + 500, limit: 10 }), { failed: 0, jobs: [] }, 'nothing before the deadline');
      const r = await store.taskExpireQueued({ now: t0 + 1_000, limit: 10 });
      assert.equal(r.failed, 2);
      assert.deepEqual(r.jobs[0]?.counts, { total: 3, completed: 0, failed: 2, cancelled: 0 });
      const expired = (await store.taskList({ jobId: job.id, limit: 10, offset: 0, state: 'failed' }));
      assert.deepEqual(expired.map((t) => t.error?.code), ['CC_ERR_NO_WORKER', 'CC_ERR_NO_WORKER']);
      assert.equal((await store.taskGet(started.taskId))?.state, 'running', 'the started task runs on');
      assert.deepEqual(await store.taskExpireQueued({ now: t0 + 5_000, limit: 10 }), { failed: 0, jobs: [] }, 'a deadline is spent once');
      // A retry gives the tasks a new deadline, counted from the retry.
      await store.jobRetry({ jobId: job.id, now: t0 + 10_000 });
      assert.equal((await store.taskExpireQueued({ now: t0 + 10_500, limit: 10 })).failed, 0);
      assert.equal((await store.taskExpireQueued({ now: t0 + 11_000, limit: 10 })).failed, 2);
    });

    test('a job failed as a whole: queued and running tasks fail with the error, finished ones stay, it takes no more parts', async () => {
      const t0 = Date.now();
      const { job } = await store.jobInsert({ ...namedJob(['jf.a', 'jf.b', 'jf.c', 'jf.d']), now: t0 });
      const [a, b] = await store.taskClaimMany({ workerId: 'w', patterns: ['jf.*'], allowCode: false, limit: 2, leaseMs: 60_000, now: t0 });
      await store.taskFinishMany({ outcomes: [{ taskId: a.taskId, attempt: a.attempt, workerId: 'w', status: 'completed', result: 'kept' }], now: t0 + 1 });
      const error = { code: 'CC_ERR_SANDBOX_CRASHED', message: 'CC_ERR_SANDBOX_CRASHED: job failed', retryable: false };
      const r = await store.jobFail({ jobId: job.id, now: t0 + 2, error });
      assert.ok(r);
      assert.deepEqual(r.running, [{ taskId: b.taskId, attempt: b.attempt, workerId: 'w' }]);
      assert.deepEqual(r.change?.counts, { total: 4, completed: 1, failed: 3, cancelled: 0 });
      assert.equal(r.change?.state, 'failed');
      assert.equal(r.change?.finished, true);
      assert.equal(r.job.state, 'failed');
      const tasks = await store.taskList({ jobId: job.id, limit: 10, offset: 0 });
      assert.deepEqual(tasks.map((t) => t.state), ['completed', 'failed', 'failed', 'failed']);
      assert.equal(tasks[0].result, 'kept');
      assert.equal(tasks[2].error?.code, 'CC_ERR_SANDBOX_CRASHED');
      // The running task's late result is refused; failing again changes nothing.
      const late = await store.taskFinishMany({ outcomes: [{ taskId: b.taskId, attempt: b.attempt, workerId: 'w', status: 'completed', result: 'late' }], now: t0 + 3 });
      assert.equal(late.recorded.length, 0);
      assert.equal((await store.jobFail({ jobId: job.id, now: t0 + 4, error }))?.change, null);
      assert.equal(await store.jobFail({ jobId: 'no-such-job', now: t0, error }), null);
    });

    test('sweeps name what they would take, and leave out `except` or keep to `only`: leases, queue deadlines, pruning', async () => {
      const t0 = Date.now();
      // Leases.
      await store.jobInsert(namedJob(['sw.a', 'sw.b', 'sw.c']));
      const run = await store.taskClaimMany({ workerId: 'w', patterns: ['sw.*'], allowCode: false, limit: 3, leaseMs: 1_000, now: t0 });
      const [a, b, c] = run.map((t) => t.taskId);
      assert.deepEqual((await store.sweepCandidates({ sweep: 'leases', now: t0 + 500, limit: 10 })), [], 'nothing expired yet');
      assert.deepEqual((await store.sweepCandidates({ sweep: 'leases', now: t0 + 5_000, limit: 10 })).sort(), [a, b, c].sort());
      assert.deepEqual((await store.sweepCandidates({ sweep: 'leases', now: t0 + 5_000, limit: 10, except: [b] })).sort(), [a, c].sort());
      const onlyA = await store.taskRequeueExpired({ now: t0 + 5_000, limit: 10, only: [a] });
      assert.deepEqual(onlyA.expired.map((t) => t.taskId), [a]);
      const exceptB = await store.taskRequeueExpired({ now: t0 + 5_000, limit: 10, except: [b] });
      assert.deepEqual(exceptB.expired.map((t) => t.taskId), [c]);
      assert.equal((await store.taskGet(b))?.state, 'running', 'left out');
      // Queue deadlines.
      const q1 = await store.jobInsert({ ...namedJob(['nq.a'], { queueTimeoutMs: 1_000 }), now: t0 });
      const q2 = await store.jobInsert({ ...namedJob(['nq.a'], { queueTimeoutMs: 1_000 }), now: t0 });
      assert.deepEqual((await store.sweepCandidates({ sweep: 'queue_deadlines', now: t0 + 2_000, limit: 10 })).sort(), [q1.job.id, q2.job.id].sort());
      assert.equal((await store.taskExpireQueued({ now: t0 + 2_000, limit: 10, except: [q1.job.id] })).failed, 1);
      assert.equal((await store.jobGet(q1.job.id))?.counts.failed, 0);
      assert.equal((await store.taskExpireQueued({ now: t0 + 2_000, limit: 10, only: [q2.job.id] })).failed, 0, 'its deadline is spent');
      assert.equal((await store.taskExpireQueued({ now: t0 + 2_000, limit: 10, only: [q1.job.id] })).failed, 1);
      // Pruning.
      const p1 = await store.jobInsert({ ...namedJob(['pr.a'], { retentionMs: 1_000 }), now: t0 });
      const p2 = await store.jobInsert({ ...namedJob(['pr.a'], { retentionMs: 1_000 }), now: t0 });
      for (const jobId of [p1.job.id, p2.job.id]) await store.jobCancel({ jobId, now: t0 });
      const due = await store.sweepCandidates({ sweep: 'prune', now: t0 + 2_000, limit: 50 });
      assert.ok(due.includes(p1.job.id) && due.includes(p2.job.id));
      assert.deepEqual(await store.sweepCandidates({ sweep: 'prune', now: t0 + 2_000, limit: 50, only: [p2.job.id] }), [p2.job.id]);
      assert.equal((await store.jobPrune({ now: t0 + 2_000, maxTasks: 100, except: [p1.job.id] })).jobs, due.length - 1);
      assert.ok(await store.jobGet(p1.job.id), 'left out');
      assert.equal(await store.jobGet(p2.job.id), null);
      assert.equal((await store.jobPrune({ now: t0 + 2_000, maxTasks: 100, only: [p1.job.id] })).jobs, 1);
      assert.deepEqual(await store.sweepCandidates({ sweep: 'prune', now: t0 + 2_000, limit: 50, completedBefore: t0 + 1 }), []);
    });

    test('listings filter jobs by state, text and time, and page tasks from an index', async () => {
      const t0 = Date.now() - 10_000;
      const a = await store.jobInsert({ ...namedJob(['image.resize', 'image.crop']), now: t0 });
      const b = await store.jobInsert({ ...namedJob(['mail.send'], { owner: 'k1' }), now: t0 + 1_000 });
      const c = await store.jobInsert({ ...mapJob([1, 2, 3, 4, 5], 1), now: t0 + 2_000 });
      await store.jobCancel({ jobId: b.job.id, now: t0 + 3_000 });
      const ids = async (p: Partial<JobListParams>) => (await store.jobList({ limit: 10, offset: 0, ...p })).map((j) => j.id);
      assert.deepEqual(await ids({}), [c.job.id, b.job.id, a.job.id], 'newest first');
      assert.deepEqual(await ids({ state: 'cancelled' }), [b.job.id]);
      assert.deepEqual(await ids({ search: 'IMAGE' }), [a.job.id], 'by task type, any case');
      assert.deepEqual(await ids({ search: 'square' }), [c.job.id], 'by function name');
      assert.deepEqual(await ids({ search: b.job.id }), [b.job.id], 'by id');
      assert.deepEqual(await ids({ createdAfter: t0 + 500 }), [c.job.id, b.job.id]);
      assert.deepEqual(await ids({ createdBefore: t0 + 1_500, createdAfter: t0 + 500 }), [b.job.id]);
      assert.deepEqual(await ids({ owner: 'k1', state: 'cancelled' }), [b.job.id]);
      assert.deepEqual(await ids({ limit: 1, offset: 1 }), [b.job.id]);
      const from3 = await store.taskList({ jobId: c.job.id, limit: 2, offset: 3 });
      assert.deepEqual(from3.map((t) => t.index), [3, 4], 'offset is the first index');
      assert.deepEqual((await store.taskList({ jobId: b.job.id, limit: 5, offset: 0, state: 'cancelled' })).length, 1);
      assert.deepEqual((await store.taskList({ jobId: b.job.id, limit: 5, offset: 0, state: 'queued' })).length, 0);
    });

    test('a job that runs only in browsers, or only on Node workers, is claimed only by that kind of worker', async () => {
      const onBrowser = await store.jobInsert(mapJob([1, 2], 1, 'browser'));
      const onNode = await store.jobInsert(mapJob([3, 4], 1, 'node'));
      const anywhere = await store.jobInsert(mapJob([5], 1));
      assert.equal(onBrowser.job.runOn, 'browser');
      assert.equal(anywhere.job.runOn, null);
      const tab = await store.taskClaimMany({ workerId: 'tab', patterns: [], allowCode: true, limit: 10, leaseMs: 10_000, now: Date.now(), kind: 'browser' });
      assert.deepEqual(new Set(tab.map((t) => t.jobId)), new Set([onBrowser.job.id, anywhere.job.id]));
      const node = await store.taskClaimMany({ workerId: 'n', patterns: [], allowCode: true, limit: 10, leaseMs: 10_000, now: Date.now() });
      assert.deepEqual(new Set(node.map((t) => t.jobId)), new Set([onNode.job.id]), 'a worker of unstated kind is a Node worker');
    });

    test('join links keep when they expire and how many browsers they admit', async () => {
      await store.credentialInsert({ id: 'j1', kind: 'join', name: 'lab', scopes: [], workerId: '*', secretHash: null, createdAt: 1, expiresAt: 5_000, maxWorkers: 3 });
      const r = (await store.credentialGet('j1'))!;
      assert.equal(r.kind, 'join');
      assert.equal(r.expiresAt, 5_000);
      assert.equal(r.maxWorkers, 3);
      assert.deepEqual((await store.credentialList({ kind: 'join' })).map((c) => c.id), ['j1']);
      await store.credentialInsert({ id: 'k9', kind: 'key', name: null, scopes: ['read'], workerId: null, secretHash: 'h', createdAt: 2 });
      assert.equal((await store.credentialGet('k9'))!.expiresAt, null);
    });

    test('batches, artifacts and checkpoints: recorded only by the running attempt, each batch and artifact once, resumed by the next attempt, pruned with the job', async () => {
      const p = namedJob(['pipe.numbers'], { maxAttempts: 3, retentionMs: 1 });
      const { job } = await store.jobInsert(p);
      const [t] = await claim(store, 'w1', ['pipe.*'], 1);
      const now = Date.now();
      const rec = async (attempt: number, workerId: string, extra: Partial<Parameters<Store['taskRecord']>[0]>) =>
        (await store.taskRecord({ taskId: t.taskId, attempt, workerId, now, ...extra })).recorded;
      assert.equal(await rec(1, 'w1', { batch: { uid: 'b0', metrics: { items: 10 } }, artifacts: [{ batchUid: 'b0', data: { squares: [1, 4] } }], checkpoint: { next: 1 } }), true);
      // A repeat of the same batch (a resend) changes nothing: the first record stands.
      assert.equal(await rec(1, 'w1', { batch: { uid: 'b0', metrics: { items: 99 } }, artifacts: [{ batchUid: 'b0', data: { squares: ['other'] } }] }), true);
      assert.equal(await rec(1, 'w2', { batch: { uid: 'b1', metrics: null } }), false, 'another worker cannot record');
      assert.equal(await rec(2, 'w1', { batch: { uid: 'b1', metrics: null } }), false, 'another attempt cannot record');
      assert.deepEqual((await store.taskBatches(t.taskId)).map((b) => [b.batchUid, b.attempt, b.metrics]), [['b0', 1, { items: 10 }]]);
      const arts = await store.artifactList({ taskId: t.taskId, limit: 10 });
      assert.deepEqual(arts.map((a) => [a.batchUid, a.data, a.jobId]), [['b0', { squares: [1, 4] }, job.id]]);
      assert.equal(arts[0].size, JSON.stringify({ squares: [1, 4] }).length);

      // The worker is lost: the next attempt starts from the checkpoint, knowing which batches are done.
      await store.taskRequeueMany({ tasks: [{ taskId: t.taskId, attempt: 1 }], now, error: { message: 'lost', code: 'CC_ERR_WORKER_LOST' } });
      const [again] = await claim(store, 'w2', ['pipe.*'], 1);
      assert.equal(again.attempt, 2);
      assert.deepEqual(await store.taskResume([again.taskId, 'no-such-task']), new Map([[again.taskId, { checkpoint: { next: 1 }, batches: ['b0'] }]]));
      assert.equal(await rec(1, 'w1', { batch: { uid: 'b1', metrics: null } }), false, 'the lost attempt can no longer record');
      assert.deepEqual(await store.taskRecord({ taskId: again.taskId, attempt: 2, workerId: 'w2', now, batch: { uid: 'b1', metrics: { items: 5 } },
        artifacts: [{ batchUid: 'b1', data: [9] }, { batchUid: 'b0', data: 'late repeat' }], checkpoint: { next: 2 }, artifactsComplete: true }), { recorded: true, released: 0 });
      const all = await store.artifactList({ jobId: job.id, limit: 10 });
      assert.deepEqual(all.map((a) => [a.batchUid, a.attempt]), [['b0', 1], ['b1', 2]], 'each batch uid once, in the order recorded');
      assert.ok(all[1].seq > all[0].seq);
      assert.deepEqual((await store.artifactList({ jobId: job.id, afterSeq: all[0].seq, limit: 10 })).map((a) => a.batchUid), ['b1']);
      assert.deepEqual((await store.artifactList({ taskIds: [again.taskId], limit: 1 })).map((a) => a.batchUid), ['b0'], 'limit holds');
      assert.deepEqual(await store.artifactList({ taskIds: [], limit: 10 }), []);
      assert.deepEqual(await store.artifactCounts(job.id), new Map([[again.taskId, 2]]));
      assert.deepEqual((await store.taskResume([again.taskId])).get(again.taskId), { checkpoint: { next: 2 }, batches: ['b0', 'b1'] });
      assert.deepEqual(await store.taskResume([(await store.jobInsert(namedJob(['x.y']))).job.id + '.0']), new Map(), 'a task that recorded nothing has no resume state');

      // Finished and pruned: its batches and artifacts go with it.
      await store.taskFinishMany({ outcomes: [{ taskId: again.taskId, attempt: 2, workerId: 'w2', status: 'completed', result: 1 }], now });
      let more = true;
      while (more) more = (await store.jobPrune({ now: now + 1_000, maxTasks: 1_000 })).more;
      assert.equal(await store.jobGet(job.id), null);
      assert.deepEqual(await store.artifactList({ jobId: job.id, limit: 10 }), []);
      assert.deepEqual(await store.taskBatches(again.taskId), []);
    });

    test('a graph: nodes wait for their upstream nodes; a streaming node starts at the first upstream artifact, a plain one when its upstream completed', async () => {
      const base = namedJob(['g.numbers', 'g.sums', 'g.total']);
      const jobId = base.job.id;
      const plan = planGraph(jobId, { nodes: [
        { id: 'numbers', type: 'g.numbers' },
        { id: 'sums', type: 'g.sums', inputAdapter: 'pull.from_artifacts.rechunk:size', inputArgs: { fromNodes: ['numbers'], size: 5 } },
        { id: 'total', type: 'g.total', dependsOn: ['sums'] },
      ] });
      const now = Date.now();
      await store.jobInsert({ ...base, job: { ...base.job, kind: 'graph', graph: plan },
        tasks: base.tasks.map((t, i) => ({ ...t, id: plan.nodes[i].taskId, ...(i > 0 ? { availableAt: BLOCKED_UNTIL } : {}) })) });
      assert.deepEqual(await store.jobGraph(jobId), plan);
      assert.equal(await store.jobGraph(base.job.id + '-none'), null);
      const [numbers, none] = await claim(store, 'w1', ['g.*'], 5);
      assert.equal(numbers.taskId, plan.nodes[0].taskId);
      assert.equal(none, undefined, 'only the root may start');
      // The first artifact of numbers releases sums (it streams), not total.
      assert.deepEqual(await store.taskRecord({ taskId: numbers.taskId, attempt: 1, workerId: 'w1', now, artifacts: [{ batchUid: 'b0', data: [1, 2] }] }), { recorded: true, released: 1 });
      const [sums] = await claim(store, 'w2', ['g.*'], 5);
      assert.equal(sums?.taskId, plan.nodes[1].taskId);
      assert.deepEqual(await claim(store, 'w3', ['g.*'], 5), [], 'total waits for sums to complete');
      const done = await store.taskFinishMany({ outcomes: [{ taskId: numbers.taskId, attempt: 1, workerId: 'w1', status: 'completed', result: null }], now });
      assert.equal(done.released, 0);
      const sumsDone = await store.taskFinishMany({ outcomes: [{ taskId: sums.taskId, attempt: 1, workerId: 'w2', status: 'completed', result: null }], now });
      assert.equal(sumsDone.released, 1);
      const [total] = await claim(store, 'w3', ['g.*'], 5);
      assert.equal(total?.taskId, plan.nodes[2].taskId);
      const end = await store.taskFinishMany({ outcomes: [{ taskId: total.taskId, attempt: 1, workerId: 'w3', status: 'failed', error: { message: 'x' } }], now });
      assert.equal(end.jobs[0].state, 'failed');
    });

    test('tasks that require resources are claimed only by taskClaimFitting, and only as far as what is free allows', async () => {
      const p = namedJob(['r.gpu', 'r.gpu', 'r.eu', 'r.plain']);
      p.tasks[0].requires = { gpu: 1, cpu: 2 };
      p.tasks[1].requires = { gpu: 1, cpu: 2 };
      p.tasks[2].requires = { labels: { region: 'eu' } };
      await store.jobInsert(p);
      const now = Date.now();
      const base = { workerId: 'w1', patterns: ['r.*'], allowCode: false, leaseMs: 30_000, now };
      assert.deepEqual((await store.taskClaimMany({ ...base, limit: 10 })).map((t) => t.type), ['r.plain'], 'the plain claim leaves them alone');
      const none = await store.taskClaimFitting({ ...base, limit: 10, free: { cpu: 8, memoryMb: 1000, gpu: 0, labels: {} } });
      assert.deepEqual(none, [], 'no GPU, no GPU task; no label, no labelled task');
      const one = await store.taskClaimFitting({ ...base, limit: 10, free: { cpu: 3, memoryMb: 1000, gpu: 2, labels: { region: 'eu' } } });
      assert.deepEqual(one.map((t) => [t.index, t.requires]), [[0, { gpu: 1, cpu: 2 }], [2, { labels: { region: 'eu' } }]], 'the second GPU task does not fit in the cpu left');
      const next = await store.taskClaimFitting({ ...base, workerId: 'w2', limit: 1, free: { cpu: 2, memoryMb: 0, gpu: 1, labels: {} } });
      assert.deepEqual(next.map((t) => t.index), [1]);
    });

    test('files: kept with their bytes, attached to the job whose tasks carry them, listed per task in order, pruned with the job', async () => {
      const now = Date.now();
      const bytes = new TextEncoder().encode('hello, file');
      await store.fileInsert({ id: 'f1', owner: 'k1', filename: 'a.txt', size: bytes.length, contentType: 'text/plain', sha256: 'x', createdAt: now, data: bytes });
      await store.fileInsert({ id: 'f2', owner: 'k1', filename: 'b.bin', size: 3, contentType: 'application/octet-stream', sha256: 'y', createdAt: now, data: new Uint8Array([1, 2, 3]) });
      assert.deepEqual(new TextDecoder().decode((await store.fileData('f1'))!), 'hello, file');
      assert.equal(await store.fileData('nope'), null);
      assert.deepEqual((await store.fileList(['f2', 'f1', 'nope'])).map((f) => f.id).sort(), ['f1', 'f2']);
      const p = namedJob(['f.read'], { retentionMs: 1 });
      p.tasks[0].files = ['f2', 'f1'];
      const { job } = await store.jobInsert(p);
      assert.deepEqual((await store.taskFiles(p.tasks[0].id)).map((f) => [f.id, f.filename, f.jobId]), [['f2', 'b.bin', job.id], ['f1', 'a.txt', job.id]]);
      assert.deepEqual(await store.taskFiles('no-task'), []);
      const [t] = await claim(store, 'w', ['f.*'], 1);
      await store.taskFinishMany({ outcomes: [{ taskId: t.taskId, attempt: 1, workerId: 'w', status: 'completed', result: 1 }], now });
      let more = true;
      while (more) more = (await store.jobPrune({ now: now + 1_000, maxTasks: 1_000 })).more;
      assert.equal(await store.fileData('f1'), null, 'pruned with its job');
      await store.fileInsert({ id: 'f3', owner: null, filename: 'c', size: 0, contentType: 'text/plain', sha256: 'z', createdAt: now, data: new Uint8Array() });
      await store.jobPrune({ now: now + 1_000, maxTasks: 1_000, forgetPrunedBefore: now + 1 });
      assert.equal(await store.fileData('f3'), null, 'a file no job carried goes in time');
    });

    test('the scheduler snapshot: unfinished jobs oldest first with running and waiting tasks, weights, caps and owners\' caps', async () => {
      const a = await store.jobInsert(namedJob(['s.a', 's.a', 's.a'], { weight: 2.5, maxConcurrency: 2, owner: 'k1' }));
      const b = await store.jobInsert({ ...namedJob(['s.b']), now: Date.now() + 1 });
      await store.credentialInsert({ id: 'k1', kind: 'key', name: null, scopes: ['submit'], workerId: null, secretHash: 'h', createdAt: Date.now(), maxConcurrency: 7 });
      await store.credentialInsert({ id: 'k2', kind: 'key', name: null, scopes: ['submit'], workerId: null, secretHash: 'h2', createdAt: Date.now() });
      await claim(store, 'w', ['s.a'], 1);
      const snap = await store.schedulerSnapshot();
      assert.deepEqual(snap.jobs.map((j) => [j.jobId, j.owner, j.priority, j.weight, j.maxConcurrency, j.running, j.waiting]),
        [[a.job.id, 'k1', 'normal', 2.5, 2, 1, 2], [b.job.id, null, 'normal', 1, null, 0, 1]]);
      assert.deepEqual(snap.ownerCaps, [{ owner: 'k1', maxConcurrency: 7 }]);
      assert.equal((await store.jobGet(a.job.id))?.weight, 2.5);
      assert.equal((await store.jobGet(a.job.id))?.maxConcurrency, 2);
      assert.equal((await store.credentialGet('k1'))?.maxConcurrency, 7);
      await store.jobCancel({ jobId: b.job.id, now: Date.now() });
      assert.deepEqual((await store.schedulerSnapshot()).jobs.map((j) => j.jobId), [a.job.id], 'a finished job is not shared any more');
    });

    test('the scheduler snapshot counts delayed tasks apart from waiting ones: a job whose tasks are not due has none to claim', async () => {
      const now = Date.now();
      const part = namedJob(['d.x', 'd.x', 'd.x']);
      part.now = now;
      part.tasks[1].availableAt = now + 60_000;
      part.tasks[2].availableAt = now + 60_000;
      const all = { ...namedJob(['d.x', 'd.x']), now: now + 1 };
      for (const t of all.tasks) t.availableAt = now + 60_000;
      const a = await store.jobInsert(part);
      const b = await store.jobInsert(all);
      const counts = async () => (await store.schedulerSnapshot()).jobs.map((j) => [j.jobId, j.waiting, j.scheduled]);
      assert.deepEqual(await counts(), [[a.job.id, 1, 2], [b.job.id, 0, 2]], 'delayed tasks are scheduled, not waiting');
      await store.taskReleaseDue({ now: now + 60_000, limit: 100, wallNow: now + 60_000 });
      assert.deepEqual(await counts(), [[a.job.id, 3, 0], [b.job.id, 2, 0]], 'released, they wait');
    });

    test('with more unfinished jobs than one read takes, the snapshot adds the next ones past a cursor, and comes round', async () => {
      const t0 = Date.now();
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) ids.push((await store.jobInsert({ ...namedJob(['w.x']), now: t0 + i })).job.id);
      const ids2 = (s: { jobs: { jobId: string }[] }) => s.jobs.map((j) => j.jobId);
      const first = await store.schedulerSnapshot({ window: 3 });
      assert.deepEqual(ids2(first), ids.slice(0, 6), 'the 3 oldest, and the 3 after them');
      assert.deepEqual(first.next, { createdAt: t0 + 5, jobId: ids[5] });
      const second = await store.schedulerSnapshot({ window: 3, after: first.next });
      assert.deepEqual(ids2(second), [...ids.slice(0, 3), ...ids.slice(6)], 'then the rest');
      assert.equal(second.next, null, 'and round again');
      assert.deepEqual(ids2(await store.schedulerSnapshot({ window: 3, after: { createdAt: t0, jobId: ids[0] } })), ids.slice(0, 6), 'never inside the oldest');
      assert.equal((await store.schedulerSnapshot()).next, null, 'all of them fit one read');
    });

    test('a claim from chosen jobs takes at most each one\'s number, in each job\'s own order, best priority first within it (read alone or with others)', async () => {
      const big = await store.jobInsert(namedJob(Array.from({ length: 50 }, () => 'j.x')));
      const small = namedJob(['j.x', 'j.x', 'j.x']);
      small.tasks[2].priority = 'high';
      await store.jobInsert(small);
      const got = await store.taskClaimMany({ workerId: 'w', patterns: ['j.*'], allowCode: false, limit: 10, leaseMs: 1_000, now: Date.now(),
        jobs: [{ jobId: small.job.id, limit: 2, few: true }, { jobId: big.job.id, limit: 3 }, { jobId: 'no-such-job', limit: 5, few: true }] });
      assert.deepEqual(got.map((t) => t.taskId), [`${small.job.id}.2`, `${small.job.id}.0`, `${big.job.id}.0`, `${big.job.id}.1`, `${big.job.id}.2`]);
      const capped = await store.taskClaimMany({ workerId: 'w', patterns: ['j.*'], allowCode: false, limit: 2, leaseMs: 1_000, now: Date.now(),
        jobs: [{ jobId: big.job.id, limit: 5 }, { jobId: small.job.id, limit: 5 }] });
      assert.deepEqual(capped.map((t) => t.taskId), [`${big.job.id}.3`, `${big.job.id}.4`], 'the claim\'s own limit holds over the jobs\'');
      assert.equal((await store.jobGet(small.job.id))?.state, 'running', 'a job claimed from is started');
    });

    test('rate limits: kept by pattern; a claim spends their tokens, leaves what has none queued, and they refill with time', async () => {
      const t0 = Date.now();
      await store.rateLimitSet({ pattern: 'r.slow', max: 5, perMs: 1_000 }, t0);
      await store.rateLimitSet({ pattern: 'r.slow', max: 2, perMs: 1_000 }, t0);
      await store.rateLimitSet({ pattern: 'r.other*', max: 9, perMs: 60_000 }, t0);
      assert.deepEqual(await store.rateLimitList(), [{ pattern: 'r.other*', max: 9, perMs: 60_000 }, { pattern: 'r.slow', max: 2, perMs: 1_000 }]);
      assert.deepEqual((await store.schedulerSnapshot()).rateLimits.map((l) => [l.pattern, l.available]), [['r.other*', 9], ['r.slow', 2]], 'a new limit starts full');
      assert.equal(await store.rateLimitDelete('r.other*'), true);
      assert.equal(await store.rateLimitDelete('r.other*'), false);
      const types = ['r.slow', 'r.slow', 'r.fast', 'r.slow', 'r.fast', 'r.slow'];
      const j = await store.jobInsert(namedJob(types));
      const claimAt = (now: number, limit: number) => store.taskClaimMany({ workerId: 'w', patterns: ['r.*'], allowCode: false, limit, leaseMs: 60_000, now, rateLimits: true,
        jobs: [{ jobId: j.job.id, limit }] });
      // Two tokens: two slow tasks, and the fast ones pass them by.
      assert.deepEqual((await claimAt(t0, 4)).map((t) => t.index), [0, 1, 2, 4]);
      assert.deepEqual((await claimAt(t0 + 100, 4)).map((t) => t.index), [], 'spent: the slow ones wait');
      // Half a second later one token has come back (2 per second).
      assert.deepEqual((await claimAt(t0 + 500, 4)).map((t) => t.index), [3]);
      assert.equal((await store.taskClaimMany({ workerId: 'w', patterns: ['r.*'], allowCode: false, limit: 4, leaseMs: 60_000, now: t0 + 600, rateLimits: true })).length, 0,
        'the whole queue too');
      assert.deepEqual((await claimAt(t0 + 1_000, 4)).map((t) => t.index), [5]);
    });

    test('caps: a claim for a capped job or owner takes only what the cap leaves, counting what already runs', async () => {
      await store.credentialInsert({ id: 'owner-k', kind: 'key', name: null, scopes: ['submit'], workerId: null, secretHash: 'hk', createdAt: Date.now(), maxConcurrency: 3 });
      const capped = await store.jobInsert(namedJob(Array.from({ length: 10 }, () => 'c.x'), { maxConcurrency: 2 }));
      const a = await store.jobInsert(namedJob(Array.from({ length: 10 }, () => 'c.x'), { owner: 'owner-k' }));
      const b = await store.jobInsert(namedJob(Array.from({ length: 10 }, () => 'c.x'), { owner: 'owner-k' }));
      const take = (jobs: { jobId: string; limit: number; capped?: boolean }[]) =>
        store.taskClaimMany({ workerId: 'w', patterns: ['c.*'], allowCode: false, limit: 20, leaseMs: 60_000, now: Date.now(), jobs });
      assert.equal((await take([{ jobId: capped.job.id, limit: 5, capped: true }])).length, 2);
      assert.equal((await take([{ jobId: capped.job.id, limit: 5, capped: true }])).length, 0, 'two run: the cap is reached');
      const owned = await take([{ jobId: a.job.id, limit: 2, capped: true }, { jobId: b.job.id, limit: 5, capped: true }]);
      assert.deepEqual(owned.map((t) => t.jobId), [a.job.id, a.job.id, b.job.id], 'the owner\'s cap of 3 over both its jobs');
      await store.taskFinishMany({ outcomes: [{ taskId: owned[0].taskId, attempt: 1, workerId: 'w', status: 'completed', result: 1 }], now: Date.now() });
      assert.equal((await take([{ jobId: b.job.id, limit: 5, capped: true }])).length, 1, 'a finished task makes room for one');
      assert.equal((await store.credentialSetMaxConcurrency({ id: 'owner-k', maxConcurrency: 5 }))?.maxConcurrency, 5);
      assert.equal((await take([{ jobId: b.job.id, limit: 5, capped: true }])).length, 2, 'a raised cap makes room for the difference');
      assert.equal((await store.credentialSetMaxConcurrency({ id: 'owner-k', maxConcurrency: null }))?.maxConcurrency, null);
      assert.deepEqual((await store.schedulerSnapshot()).ownerCaps, [], 'a lifted cap is gone');
      assert.equal(await store.credentialSetMaxConcurrency({ id: 'no-such-key', maxConcurrency: 1 }), null);
    });

    test('the space probe succeeds where there is room, and leaves nothing behind; stats say how much space the store takes', async () => {
      await store.probeSpace();
      await store.probeSpace();
      assert.equal(await store.metaSetIfAbsent({ key: 'space_probe', value: 'absent before' }), 'absent before', 'the probe was undone');
      const { storageBytes } = await store.stats();
      assert.ok(storageBytes === null || storageBytes > 0);
    });
  });
}
