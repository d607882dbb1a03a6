import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor, type TestForeman } from '../../src/testing/index.ts';
import { jobSummary } from '../../src/cli/views.ts';

// Jobs larger than one message: submitted open, appended in parts, sealed; results read in pages.

let foreman: TestForeman;
let client: Client;
let worker: Worker;

before(async () => {
  // A small --max-args, so the jobs below are larger than one message may be.
  foreman = await startTestForeman({ maxArgs: 1_000 });
  client = new Client({ url: foreman.url });
  worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'open-jobs-worker', maxConcurrentTasks: 8, allowCode: true, logLevel: 'silent' })
    .handle('echo.*', async (t) => (t.input as { n: number }).n * 2);
  await worker.start();
});

after(async () => {
  await client.close();
  await worker.stop({ drainTimeoutMs: 0 });
  await foreman.cleanup();
});

const post = async (path: string, body: unknown) => {
  const res = await foreman.fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() as Record<string, any> };
};

test('the SDK streams a job of more named tasks than one message takes; results come in order, in pages', async () => {
  const n = 25_000;
  // One message may hold 1,000 tasks here: the SDK sends the job open, in parts.
  const job = await client.submitMany(Array.from({ length: n }, (_, i) => ({ type: 'echo.double', input: { n: i } })));
  const results = await job.result() as number[];
  assert.equal(results.length, n);
  assert.ok(results.every((v, i) => v === i * 2), 'every result in its place');
  const info = await client.getJob(job.id);
  assert.equal(info.totalTasks, n);
  assert.equal(info.open, false);
  // A page, and the pages in turn.
  const page = await client.getJobResults(job.id, { offset: 24_990, limit: 100 });
  assert.deepEqual(page.results, Array.from({ length: 10 }, (_, i) => (24_990 + i) * 2));
  assert.equal(page.nextOffset, null);
  let seen = 0;
  for await (const p of client.resultPages(job.id, { pageSize: 7_000 })) {
    assert.equal(p.offset, seen);
    seen += p.results.length;
  }
  assert.equal(seen, n);
});

test('a map over more arguments than one message takes keeps argument order with chunks of its own size', async () => {
  const args = Array.from({ length: 30_000 }, (_, i) => i);
  const out = await client.map((x: number) => x + 1, args, { chunkSize: 7 });
  assert.equal(out.length, args.length);
  assert.ok(out.every((v, i) => v === i + 1));
});

test('an open job runs its tasks as they come and finishes only when sealed', async () => {
  const open = await client.openTasks<number>({ name: 'streamed' });
  await open.append([{ type: 'echo.a', input: { n: 1 } }, { type: 'echo.b', input: { n: 2 } }]);
  await open.flush();
  await waitFor(async () => (await client.getJob(open.id)).completedTasks === 2, { message: 'the appended tasks ran' });
  const running = await client.getJob(open.id);
  assert.equal(running.open, true);
  assert.notEqual(running.status, 'completed', 'an open job does not finish though its tasks have');
  assert.match(jobSummary(running), /open: takes more parts until sealed/, 'crowdcompute job says so');
  await open.append([{ type: 'echo.c', input: { n: 3 } }]);
  const handle = await open.seal();
  assert.deepEqual(await handle.result(), [2, 4, 6]);
  await assert.rejects(open.append([{ type: 'echo.d', input: { n: 4 } }]), /sealed/);
});

test('REST: a part retried with the same `at` is appended once; out of place, sealed and wrong kinds are refused by name', async () => {
  const created = await post('/api/jobs', { kind: 'tasks', tasks: [], open: true });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id as string;
  assert.equal(created.body.open, true);
  const part = { tasks: [{ type: 'echo.x', input: { n: 5 } }, { type: 'echo.x', input: { n: 6 } }], at: 0 };
  const first = await post(`/api/jobs/${id}/tasks`, part);
  assert.equal(first.body.deduplicated, false);
  assert.equal(first.body.total_tasks, 2);
  const again = await post(`/api/jobs/${id}/tasks`, part);
  assert.equal(again.status, 200);
  assert.equal(again.body.deduplicated, true);
  assert.equal(again.body.total_tasks, 2, 'the retried part was not appended twice');
  const gap = await post(`/api/jobs/${id}/tasks`, { tasks: [{ type: 'echo.x', input: { n: 7 } }], at: 5 });
  assert.equal(gap.status, 409);
  assert.equal(gap.body.code, 'CC_ERR_APPEND_CONFLICT');
  assert.match(gap.body.message, /starts at 5, but the job has 2 tasks/);
  const args = await post(`/api/jobs/${id}/tasks`, { args: [1, 2] });
  assert.equal(args.status, 400);
  assert.match(args.body.message, /append tasks, not arguments/);
  const seal = await post(`/api/jobs/${id}/seal`, {});
  assert.equal(seal.status, 200);
  assert.equal(seal.body.open, false);
  const late = await post(`/api/jobs/${id}/tasks`, { tasks: [{ type: 'echo.x', input: { n: 8 } }] });
  assert.equal(late.status, 409);
  assert.equal(late.body.code, 'CC_ERR_JOB_SEALED');
  await waitFor(async () => (await client.getJob(id)).status === 'completed', { message: 'sealed job completes' });
  const results = await foreman.fetch(`/api/jobs/${id}/results?offset=1&limit=5`).then((r) => r.json()) as Record<string, unknown>;
  assert.deepEqual(results.results, [12]);
  assert.equal(results.total, 2);
  assert.equal(results.next_offset, null);

  // A job not submitted open takes nothing.
  const closed = await post('/api/jobs', { kind: 'tasks', tasks: [{ type: 'echo.x', input: { n: 1 } }] });
  const refused = await post(`/api/jobs/${closed.body.id}/tasks`, { tasks: [{ type: 'echo.x', input: { n: 2 } }] });
  assert.equal(refused.status, 409);
  assert.match(refused.body.message, /was not submitted open, or was sealed/);
  // An empty job that is not open is refused as before.
  const empty = await post('/api/jobs', { kind: 'tasks', tasks: [] });
  assert.equal(empty.status, 400);
  assert.match(empty.body.message, /at least one task/);
});

test('REST: a map job part must be whole chunks until the last, which seals it; a cancelled open job takes no more', async () => {
  const created = await post('/api/jobs', { kind: 'map', code: 'function inc(x) { return x + 1 }', args: [], open: true, chunk_size: 4 });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const id = created.body.id as string;
  assert.equal(created.body.chunk_size, 4);
  assert.equal((await post(`/api/jobs/${id}/tasks`, { args: [0, 1, 2, 3, 4, 5, 6, 7], at: 0 })).body.arg_count, 8);
  const partial = await post(`/api/jobs/${id}/tasks`, { args: [8, 9], at: 8 });
  assert.equal(partial.status, 200);
  const after = await post(`/api/jobs/${id}/tasks`, { args: [10], at: 10 });
  assert.equal(after.status, 400);
  assert.match(after.body.message, /not a multiple of its chunkSize 4/);
  const sealed = await post(`/api/jobs/${id}/tasks`, { args: [], at: 10, seal: true });
  assert.equal(sealed.status, 200, JSON.stringify(sealed.body));
  await waitFor(async () => (await client.getJob(id)).status === 'completed', { message: 'map job completes' });
  const page = await foreman.fetch(`/api/jobs/${id}/results?offset=3&limit=6`).then((r) => r.json()) as Record<string, unknown>;
  assert.deepEqual(page.results, [4, 5, 6, 7, 8, 9]);
  assert.equal(page.next_offset, 9);

  const other = await post('/api/jobs', { kind: 'tasks', tasks: [], open: true });
  await foreman.fetch(`/api/jobs/${other.body.id}/cancel`, { method: 'POST' });
  const late = await post(`/api/jobs/${other.body.id}/tasks`, { tasks: [{ type: 'echo.x', input: { n: 1 } }] });
  assert.equal(late.status, 409);
  assert.match(late.body.message, /was cancelled/);
});
