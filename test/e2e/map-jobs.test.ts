import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from '../../src/worker/index.ts';
import { Client, JobFailedError } from '../../src/client/index.ts';
import { startTestForeman, spawnWorkerProcess, waitFor, type TestForeman, type ChildWorker } from '../../src/testing/index.ts';

let foreman: TestForeman;
let worker: Worker;
let client: Client;

before(async () => {
  foreman = await startTestForeman();
  worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'code-worker', maxConcurrentTasks: 4, allowCode: true, logLevel: 'silent',
    sandbox: { memoryLimitMb: 32, defaultTimeoutMs: 5_000 } });
  await worker.start();
  client = new Client({ url: foreman.url });
});

after(async () => {
  await client.close();
  await worker.stop();
  await foreman.cleanup();
});

test('a map job returns results in argument order', async () => {
  assert.deepEqual(await client.map((x: number) => x * x, [1, 2, 3, 4, 5]), [1, 4, 9, 16, 25]);
});

test('a large map job is chunked and still ordered, with progress reported', async () => {
  const args = Array.from({ length: 5_000 }, (_, i) => i);
  const seen: number[] = [];
  const job = await client.submitMap((n: number) => n * 2 + 1, args, { onProgress: (p) => seen.push(p.fraction) });
  assert.ok(job.totalTasks > 1 && job.totalTasks < args.length, `chunked into ${job.totalTasks} tasks`);
  const results = await job.result();
  assert.deepEqual(results, args.map((n) => n * 2 + 1));
  assert.equal(seen.at(-1), 1);
  const info = await client.getJob(job.id);
  assert.equal(info.status, 'completed');
  assert.equal(info.argCount, 5_000);
});

test('a function that throws on some arguments fails those tasks; the rest complete', async () => {
  const job = await client.submitMap((x: number) => { if (x % 4 === 0) throw new Error(`bad ${x}`); return x; }, [1, 2, 3, 4, 5, 6, 7, 8]);
  const outcome = await job.outcome();
  assert.equal(outcome.state, 'failed');
  assert.deepEqual(outcome.results, [1, 2, 3, null, 5, 6, 7, null]);
  assert.deepEqual(outcome.failures.map((f) => f.index), [3, 7]);
  assert.match(outcome.failures[0].error?.message ?? '', /bad 4/);
  assert.match(outcome.failures[0].error?.stack ?? '', /bad 4/);
  await assert.rejects(job.result(), (err: unknown) => err instanceof JobFailedError && err.code === 'CC_ERR_JOB_FAILED' && /2 of 8 tasks failed/.test(err.message));
});

test('a function that does not compile is refused at submission with a clear error', async () => {
  await assert.rejects(client.map('(x) => { return x +', [1]), (err: Error & { code?: string }) => err.code === 'CC_ERR_CODE_COMPILE' && /does not compile/.test(err.message));
});

test('a shipped function that loops forever is stopped by the timeout; the worker keeps serving', async () => {
  const job = await client.submitMap((x: number) => { while (x > 0) { /* forever */ } return x; }, [1], { timeoutMs: 200 });
  const outcome = await job.outcome();
  assert.equal(outcome.state, 'failed');
  assert.equal(outcome.failures[0].error?.code, 'CC_ERR_TIMEOUT');
  assert.deepEqual(await client.map((x: number) => x + 1, [41]), [42]);
});

test('a shipped function that allocates without bound hits the memory limit; the worker keeps serving', async () => {
  const job = await client.submitMap((x: number) => { const a: number[][] = []; for (;;) a.push(new Array(100_000).fill(x)); }, [1], { timeoutMs: 20_000 });
  const outcome = await job.outcome();
  assert.equal(outcome.state, 'failed');
  assert.equal(outcome.failures[0].error?.code, 'CC_ERR_MEMORY_LIMIT');
  assert.match(outcome.failures[0].error?.message ?? '', /32 MiB/);
  assert.deepEqual(await client.map((x: number) => x * 3, [2]), [6]);
});

test('shipped code has no Node APIs', async () => {
  const [kinds] = await client.map(() => [typeof (globalThis as any).require, typeof (globalThis as any).process, typeof (globalThis as any).fetch], [0]);
  assert.deepEqual(kinds, ['undefined', 'undefined', 'undefined']);
});

test('a worker without allowCode never receives code', async () => {
  const started: string[] = [];
  const named = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'no-code', maxConcurrentTasks: 8, logLevel: 'silent' });
  named.handle('*', async () => 'named');
  named.on('taskStarted', (t: { type: string }) => started.push(t.type));
  let framesWithCode = 0;
  await named.start();
  // Look at the raw frames too: no assignment to this worker may carry `code` or a map task.
  const ws = (named as any).link.ws as WebSocket;
  ws.addEventListener('message', (ev) => { if (/"code"|"kind":"map"/.test(String(ev.data))) framesWithCode++; });
  try {
    const job = await client.submitMap((x: number) => x - 1, Array.from({ length: 40 }, (_, i) => i), { chunkSize: 1 });
    assert.deepEqual(await job.result(), Array.from({ length: 40 }, (_, i) => i - 1));
    const tasks = await client.getJobTasks(job.id);
    assert.ok(tasks.every((t) => t.workerId === 'code-worker'), 'every map task ran on the allowCode worker');
    assert.equal(started.length, 0);
    assert.equal(framesWithCode, 0);
  } finally {
    await named.stop();
  }
});

test('a worker in a child process runs a map job (the CLI worker)', async () => {
  let child: ChildWorker | null = null;
  // Take the in-process worker out so the child process must do the work.
  const local = worker;
  await local.stop();
  try {
    child = spawnWorkerProcess(['--foreman', foreman.wsUrl, '--id', 'child-1', '--allow-code', '--concurrency', '2']);
    await waitFor(async () => (await client.stats()).connected_workers === 1, { message: 'child worker connects' });
    assert.deepEqual(await client.map((s: string) => s.split('').reverse().join(''), ['abc', 'hello']), ['cba', 'olleh']);
    const tasks = await client.listJobs({ limit: 1 });
    assert.equal(tasks[0].status, 'completed');
  } finally {
    child?.kill();
    await child?.exited;
    worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'code-worker', maxConcurrentTasks: 4, allowCode: true, logLevel: 'silent' });
    await worker.start();
  }
});
