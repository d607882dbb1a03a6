/**
 * Delayed work: jobs and tasks with `runAt` or `delay` wait as `scheduled` (SDK, REST, stats,
 * metrics), are released at their time and not before, on both stores; they are cancellable,
 * retry with their backoff, survive a foreman restart, and follow a clock moved by a test.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor, type TestForeman } from '../../src/testing/index.ts';
import { testPostgresUrl } from '../../src/store/postgres/postgres-test-url.ts';

const pgUrl = await testPostgresUrl();

/** Every start of a task on the worker, by task id. */
function recordingWorker(url: string, id: string, starts: Map<string, number[]>, failFirst = new Set<string>()): Worker {
  return new Worker({ foremanUrl: url, workerId: id, maxConcurrentTasks: 8, allowCode: true, logLevel: 'silent' })
    .handle('later.*', async (t) => {
      starts.set(t.id, [...(starts.get(t.id) ?? []), Date.now()]);
      if (failFirst.has(t.id) && starts.get(t.id)!.length === 1) throw new Error('first attempt fails');
      return { ran: t.type };
    });
}

// The two stores' runs go side by side, each on its own foreman and database (their waits for
// delays overlap); the tests of one store run one at a time.
describe('delayed tasks on each store', { concurrency: 2 }, () => {
for (const store of ['sqlite', 'postgres'] as const) {
  describe(`delayed tasks on ${store}`, { concurrency: 1, skip: store === 'postgres' && !pgUrl ? 'PostgreSQL is not reachable' : false }, () => {
    let foreman: TestForeman;
    let client: Client;
    let worker: Worker;
    const starts = new Map<string, number[]>();
    const failFirst = new Set<string>();

    before(async () => {
      foreman = await startTestForeman(store === 'postgres' ? { database: `${pgUrl}?schema=delayed_${Date.now()}` } : {});
      client = new Client({ url: foreman.url });
      worker = recordingWorker(foreman.wsUrl, `delayed-${store}`, starts, failFirst);
      await worker.start();
    });

    after(async () => {
      await client.close();
      await worker.stop({ drainTimeoutMs: 0 });
      await foreman.cleanup();
    });

    const rest = async (method: string, path: string, body?: unknown) => {
      const res = await foreman.fetch(path, { method, ...(body !== undefined ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}) });
      return { status: res.status, body: await res.json() as any };
    };

    test('a job with a delay waits as scheduled, then runs at its time and not before', async () => {
      const submittedAt = Date.now();
      const handle = await client.submit('later.sdk', { n: 1 }, { delay: '1500ms' });
      const info = await client.getJob(handle.jobId);
      assert.equal(info.status, 'scheduled');
      const runAt = Date.parse(String((info as any).runAt));
      assert.ok(runAt >= submittedAt + 1_500, 'its time is the submission plus the delay');
      const tasks = await rest('GET', `/api/jobs/${handle.jobId}/tasks`);
      assert.equal(tasks.body[0].status, 'scheduled');
      const stats = await rest('GET', '/api/stats');
      assert.ok(stats.body.tasks.scheduled >= 1 && stats.body.jobs.scheduled >= 1, 'statistics count it as scheduled');
      const metrics = await (await foreman.fetch('/metrics')).text();
      assert.match(metrics, /crowdcompute_tasks\{state="scheduled"\} [1-9]/);
      assert.deepEqual(await handle.result(), { ran: 'later.sdk' });
      const started = starts.get(handle.taskId)![0];
      assert.ok(started >= runAt, `started ${started - runAt} ms after its time, not before`);
      assert.equal((await client.getJob(handle.jobId)).status, 'completed');
    });

    test('REST takes run_at (RFC 3339) and delay ("500ms" or milliseconds); a task may carry its own time', async () => {
      const runAt = new Date(Date.now() + 800).toISOString();
      const a = await rest('POST', '/api/jobs', { kind: 'tasks', tasks: [{ type: 'later.rest' }], run_at: runAt });
      assert.equal(a.status, 201, JSON.stringify(a.body));
      const b = await rest('POST', '/api/jobs', { kind: 'tasks', tasks: [{ type: 'later.now' }, { type: 'later.own', delay: 700 }] });
      assert.equal(b.status, 201);
      const jobA = await client.watch(a.body.job_id);
      await jobA.result();
      const ranA = starts.get(`${a.body.job_id}.0`)![0];
      assert.ok(ranA >= Date.parse(runAt), 'not before run_at');
      const jobB = await client.watch(b.body.job_id);
      await jobB.result();
      const ownTask = (await rest('GET', `/api/jobs/${b.body.job_id}/tasks`)).body[1];
      assert.ok(Date.parse(ownTask.started_at) >= Date.parse(ownTask.available_at), 'the delayed task started at its time or later');
      assert.ok(Date.parse(ownTask.available_at) - Date.parse(b.body.created_at) >= 700, 'its time is its own delay after submission');
    });

    test('bad times are refused with the problem and the limit', async () => {
      const both = await rest('POST', '/api/jobs', { kind: 'tasks', tasks: [{ type: 'later.x' }], run_at: new Date().toISOString(), delay: '1m' });
      assert.equal(both.status, 400);
      assert.match(both.body.message, /both runAt and delay/);
      const far = await rest('POST', '/api/jobs', { kind: 'tasks', tasks: [{ type: 'later.x' }], delay: '400d' });
      assert.equal(far.status, 400);
      assert.match(far.body.message, /delay.*at most/);
      const farAt = await rest('POST', '/api/jobs', { kind: 'tasks', tasks: [{ type: 'later.x' }], run_at: new Date(Date.now() + 400 * 86_400_000).toISOString() });
      assert.equal(farAt.status, 400);
      assert.match(farAt.body.message, /a year/);
      // Past what a Date holds: refused by the schema, not a 500 from formatting the time.
      const beyondDates = await rest('POST', '/api/jobs', { kind: 'tasks', tasks: [{ type: 'later.x' }], run_at: 9_007_199_254_740_990, deadline: 9_007_199_254_740_990 });
      assert.equal(beyondDates.status, 400);
      assert.match(beyondDates.body.message, /run_at.*at most 8640000000000000/);
      const garbled = await rest('POST', '/api/jobs', { kind: 'tasks', tasks: [{ type: 'later.x' }], delay: 'soon' });
      assert.equal(garbled.status, 400);
      assert.match(garbled.body.message, /delay.*duration such as/);
      const badTime = await rest('POST', '/api/jobs', { kind: 'tasks', tasks: [{ type: 'later.x' }], run_at: 'tomorrow' });
      assert.equal(badTime.status, 400);
      assert.match(badTime.body.message, /run_at.*RFC 3339/);
    });

    test('a scheduled job is cancelled like any other: nothing of it runs', async () => {
      const handle = await client.submitMany([{ type: 'later.cancel' }, { type: 'later.cancel' }], { delay: '1h' });
      const cancelled = await client.cancel(handle.id);
      assert.equal(cancelled.status, 'cancelled');
      const tasks = await rest('GET', `/api/jobs/${handle.id}/tasks`);
      assert.deepEqual(tasks.body.map((t: any) => t.status), ['cancelled', 'cancelled']);
      assert.equal(starts.has(`${handle.id}.0`), false);
    });

    test('a delayed task that fails retries after its backoff and then completes', async () => {
      const handle = await client.submit('later.retry', {}, { delay: 300, maxAttempts: 2, taskId: `retry-${store}-${Date.now()}` });
      failFirst.add(handle.taskId);
      assert.deepEqual(await handle.result(), { ran: 'later.retry' });
      assert.equal(starts.get(handle.taskId)!.length, 2, 'two attempts');
    });

    test('an open job with a time: its appended parts wait for it too', async () => {
      const open = await client.openTasks({ delay: '1s' });
      await open.append([{ type: 'later.open', input: 1 }]);
      await open.flush();
      const tasks = await rest('GET', `/api/jobs/${open.id}/tasks`);
      assert.equal(tasks.body[0].status, 'scheduled');
      const job = await open.seal();
      await job.result();
      const info = await rest('GET', `/api/jobs/${open.id}`);
      const t = (await rest('GET', `/api/jobs/${open.id}/tasks`)).body[0];
      assert.ok(Date.parse(t.started_at) >= Date.parse(info.body.run_at), 'the appended task ran at the job\'s time, not before');
    });

    test('a job listed by state: scheduled and queued are told apart', async () => {
      const handle = await client.submit('later.list', {}, { delay: '1h' });
      const scheduled = await rest('GET', '/api/jobs?status=scheduled');
      assert.ok(scheduled.body.some((j: any) => j.job_id === handle.jobId));
      const queued = await rest('GET', '/api/jobs?status=queued');
      assert.ok(!queued.body.some((j: any) => j.job_id === handle.jobId));
      await client.cancel(handle.jobId);
    });
  });
}
});

test('delayed tasks survive a foreman restart: the next foreman releases them at their time', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-delayed-'));
  const database = `sqlite:${join(dir, 'delayed.db')}`;
  const starts = new Map<string, number[]>();
  try {
    let foreman = await startTestForeman({ database });
    let client = new Client({ url: foreman.url });
    const handle = await client.submit('later.restart', {}, { delay: '1500ms' });
    const runAt = Date.parse(String(((await client.getJob(handle.jobId)) as any).runAt));
    await client.close();
    await foreman.stop();
    foreman = await startTestForeman({ database });
    client = new Client({ url: foreman.url });
    const worker = recordingWorker(foreman.wsUrl, 'restart-worker', starts);
    await worker.start();
    try {
      const job = await client.watch(handle.jobId);
      assert.deepEqual(await job.result(), [{ ran: 'later.restart' }]);
      assert.ok(starts.get(handle.taskId)![0] >= runAt, 'not before its time');
    } finally {
      await client.close();
      await worker.stop({ drainTimeoutMs: 0 });
      await foreman.cleanup();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the foreman\'s clock decides: moved an hour ahead, a task delayed by an hour runs', async () => {
  let offset = 0;
  const foreman = await startTestForeman({ clock: () => Date.now() + offset });
  const client = new Client({ url: foreman.url });
  const starts = new Map<string, number[]>();
  const worker = recordingWorker(foreman.wsUrl, 'clock-worker', starts);
  await worker.start();
  try {
    const handle = await client.submit('later.clock', {}, { delay: '1h' });
    await foreman.releaser!.lookAgain();
    assert.equal((await client.getJob(handle.jobId)).status, 'scheduled');
    assert.equal(starts.size, 0);
    offset = 3_600_000;
    await foreman.releaser!.lookAgain();
    assert.deepEqual(await handle.result(), { ran: 'later.clock' });
  } finally {
    await client.close();
    await worker.stop({ drainTimeoutMs: 0 });
    await foreman.cleanup();
  }
});
