import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Worker, NonRetryableError } from '../../src/worker/index.ts';
import { Client, JobFailedError } from '../../src/client/index.ts';
import { startTestForeman, waitFor, type TestForeman } from '../../src/testing/index.ts';

let foreman: TestForeman;
let client: Client;
const workers: Worker[] = [];

function newWorker(id: string, capacity: number): Worker {
  const w = new Worker({ foremanUrl: foreman.wsUrl, workerId: id, maxConcurrentTasks: capacity, logLevel: 'silent', timeoutGraceMs: 200 });
  workers.push(w);
  return w;
}

before(async () => {
  foreman = await startTestForeman();
  client = new Client({ url: foreman.url });
});

after(async () => {
  await client.close();
  await Promise.all(workers.map((w) => w.stop({ drainTimeoutMs: 0 })));
  await foreman.cleanup();
});

test('named tasks route by handler pattern', async () => {
  const math = newWorker('math-worker', 4).handle('math.*', async (t) => ({ result: t.input.a + t.input.b, by: 'math' }));
  const img = newWorker('image-worker', 4).handle('image.resize', async (t) => ({ size: t.input.w / 2, by: 'image' }));
  await Promise.all([math.start(), img.start()]);
  const job = await client.submit('math.add', { a: 1, b: 2 }, { priority: 'high' });
  assert.deepEqual(await job.result(), { result: 3, by: 'math' });
  const many = await client.submitMany([
    { type: 'image.resize', input: { w: 100 } }, { type: 'math.mul', input: { a: 2, b: 3 } }, { type: 'image.resize', input: { w: 8 } },
  ]);
  assert.deepEqual(await many.result(), [{ size: 50, by: 'image' }, { result: 5, by: 'math' }, { size: 4, by: 'image' }]);
  const tasks = await client.getJobTasks(many.id);
  assert.deepEqual(tasks.map((t) => t.workerId), ['image-worker', 'math-worker', 'image-worker']);
  await Promise.all([math.stop(), img.stop()]);
});

test('priority order holds when capacity is scarce', async () => {
  const order: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const w = newWorker('single-slot', 1)
    .handle('block', async () => { await gate; return 'unblocked'; })
    .handle('prio.*', async (t) => { order.push(t.input.name); return t.input.name; });
  await w.start();
  const blocker = await client.submit('block', {});
  await waitFor(() => w.runningTasks.length === 1, { message: 'blocker running' });
  // Submitted low-first while the only slot is busy: they must run critical, high, normal, low.
  const handles = [];
  for (const [name, priority] of [['low-1', 'low'], ['normal-1', 'normal'], ['high-1', 'high'], ['critical-1', 'critical'], ['normal-2', 'normal'], ['high-2', 'high']] as const) {
    handles.push(await client.submit('prio.run', { name }, { priority }));
  }
  release();
  await blocker.result();
  await Promise.all(handles.map((h) => h.result()));
  assert.deepEqual(order, ['critical-1', 'high-1', 'high-2', 'normal-1', 'normal-2', 'low-1']);
  await w.stop();
});

test('a handler that throws fails its task with message and stack; the rest of the job completes', async () => {
  const w = newWorker('thrower', 4).handle('maybe.*', async (t) => {
    if (t.input.fail) throw new TypeError(`input ${t.input.n} is bad`);
    return t.input.n;
  });
  await w.start();
  const job = await client.submitMany([0, 1, 2, 3].map((n) => ({ type: 'maybe.run', input: { n, fail: n === 2 } })));
  const outcome = await job.outcome();
  assert.equal(outcome.state, 'failed');
  assert.deepEqual(outcome.results, [0, 1, null, 3]);
  const f = outcome.failures[0];
  assert.equal(f.index, 2);
  assert.equal(f.error?.name, 'TypeError');
  assert.equal(f.error?.message, 'input 2 is bad');
  assert.match(f.error?.stack ?? '', /named-tasks\.test\.ts/);
  const rest = await client.getTask(f.taskId);
  assert.equal(rest.status, 'failed');
  await w.stop();
});

test('a task with no matching handler waits until a worker that can run it arrives', async () => {
  const task = await client.submit('late.kind', { v: 7 });
  assert.equal((await client.getTask(task.taskId)).status, 'queued');
  const w = newWorker('late-worker', 1).handle('late.*', async (t) => t.input.v * 6);
  await w.start();
  assert.equal(await task.result(), 42);
  await w.stop();
});

test('retries: a transient error is retried up to maxAttempts; NonRetryableError fails at once', async () => {
  let calls = 0;
  let permanentCalls = 0;
  const w = newWorker('flaky', 2)
    .handle('flaky.run', async () => { calls++; if (calls < 3) throw new Error(`transient ${calls}`); return 'ok'; })
    .handle('broken.run', async () => { permanentCalls++; throw new NonRetryableError('never works'); });
  await w.start();
  assert.equal(await (await client.submit('flaky.run', {}, { maxAttempts: 3 })).result(), 'ok');
  assert.equal(calls, 3);
  const broken = await client.submit('broken.run', {}, { maxAttempts: 5 });
  await assert.rejects(broken.result(), /never works/);
  assert.equal(permanentCalls, 1);
  const t = await client.getTask(broken.taskId);
  assert.equal(t.attempt, 1);
  await w.stop();
});

test('progress from a handler reaches the client', async () => {
  const w = newWorker('progress', 1).handle('steps', async (_t, ctx) => {
    for (const p of [25, 50, 75]) ctx.progress(p, `at ${p}`);
    return 'done';
  });
  await w.start();
  const task = await client.submit('steps', {});
  const seen: number[] = [];
  task.onProgress((e) => seen.push(e.progress));
  assert.equal(await task.result(), 'done');
  await waitFor(() => seen.length === 3 || null, { message: 'three progress events' });
  assert.deepEqual(seen, [25, 50, 75]);
  await w.stop();
});

test('cancelling a job: queued tasks never start, the running one gets its AbortSignal, finished results stay', async () => {
  const started: number[] = [];
  let aborted = 0;
  const w = newWorker('cancel-me', 1).handle('slow.*', async (t, ctx) => {
    started.push(t.input.i);
    if (t.input.i === 0) return 'quick';
    await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => { aborted++; reject(ctx.signal.reason); }, { once: true }));
  });
  await w.start();
  const job = await client.submitMany([0, 1, 2, 3].map((i) => ({ type: 'slow.run', input: { i } })));
  await waitFor(() => started.length === 2 || null, { message: 'second task running' });
  await job.cancel();
  const outcome = await job.outcome();
  assert.equal(outcome.state, 'cancelled');
  assert.deepEqual(outcome.results, ['quick', null, null, null]);
  await waitFor(() => aborted === 1 || null, { message: 'running handler aborted' });
  await waitFor(() => w.runningTasks.length === 0 || null, { message: 'slot freed' });
  assert.deepEqual(started, [0, 1]);
  await assert.rejects(job.result(), (err: unknown) => err instanceof JobFailedError && err.code === 'CC_ERR_CANCELLED');
  await w.stop();
});

test('a handler that ignores its timeout is failed with reason timeout and its slot freed', async () => {
  const w = newWorker('stubborn', 1)
    .handle('hang', () => new Promise(() => { /* ignores the signal */ }))
    .handle('after', async () => 'served');
  await w.start();
  const t = await client.submit('hang', {}, { timeoutMs: 100 });
  await assert.rejects(t.result(), /CC_ERR_TIMEOUT/);
  assert.equal(await (await client.submit('after', {})).result(), 'served');
  await w.stop();
});
