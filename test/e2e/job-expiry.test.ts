/**
 * Work that expires, on SQLite and on PostgreSQL, through the SDK and REST: an open job that
 * gets no more parts is sealed (its tasks run to the end) or cancelled (its tasks carry an
 * error naming the timeout), as it chose, and its view and the log say so; a part pushes the
 * time back; the foreman's --open-timeout applies to jobs that say nothing. A job past its
 * deadline fails its queued and running tasks with CC_ERR_DEADLINE and the worker running one
 * is told to stop; a job done before its deadline is left as it was.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor, type TestForeman } from '../../src/testing/index.ts';
import type { ForemanOptions } from '../../src/foreman/index.ts';
import { testPostgresUrl } from '../../src/store/postgres/postgres-test-url.ts';
import { openRawDatabase } from '../support/raw-database.ts';
import { jobSummary } from '../../src/cli/views.ts';

const pgUrl = await testPostgresUrl();
const STORES = ['sqlite', 'postgres'] as const;
type StoreName = typeof STORES[number];
const skipFor = (store: StoreName) => (store === 'postgres' && !pgUrl ? 'no PostgreSQL reachable (CROWDCOMPUTE_TEST_POSTGRES); under CI=true this fails instead' : false);

let schemas = 0;

/** A foreman on the store whose log lines are kept, a client, a worker holding `hold.*` tasks until told to stop. */
async function bench(store: StoreName, options: ForemanOptions = {}) {
  const schema = `cc_expiry_${process.pid}_${++schemas}`;
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write(chunk, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb(); } }));
  const foreman = await startTestForeman({ logger, ...options, ...(store === 'postgres' ? { database: `${pgUrl}?schema=${schema}` } : {}) });
  const client = new Client({ url: foreman.url });
  const stopped: { taskId: string; reason: string }[] = [];
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: `expiry-${schemas}`, maxConcurrentTasks: 4, logLevel: 'silent' })
    .handle('echo.*', async (t) => t.input)
    .handle('hold.*', (t, ctx) => new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => {
      stopped.push({ taskId: t.id, reason: String((ctx.signal.reason as Error | undefined)?.message ?? '') });
      reject(ctx.signal.reason);
    })));
  await worker.start();
  const post = async (path: string, body: unknown) => {
    const res = await foreman.fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: await res.json() as Record<string, any> };
  };
  return {
    foreman, client, worker, stopped, lines, post,
    done: async () => {
      await worker.stop({ drainTimeoutMs: 0 });
      await client.close();
      await foreman.cleanup();
      if (store === 'postgres') {
        const admin = await openRawDatabase(pgUrl!);
        await admin.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await admin.close();
      }
    },
  };
}

type Bench = Awaited<ReturnType<typeof bench>>;

const view = async (b: Bench, id: string) => (await b.foreman.fetch(`/api/jobs/${id}`)).json() as Promise<Record<string, any>>;
const finished = (b: Bench, id: string, status: string) => waitFor(async () => {
  const v = await view(b, id);
  return v.status === status ? v : null;
}, { message: `job ${id} ${status}`, timeoutMs: 20_000 });

// The stores' runs go side by side, each on its own foremen and database (their waits for
// timeouts and deadlines overlap); the tests of one store run one at a time.
describe('each store', { concurrency: STORES.length }, () => {
for (const store of STORES) describe(store, { concurrency: 1 }, () => {
  test(`${store}: an open job that gets one part and then nothing is sealed by its open timeout; its tasks complete and its view says why`, { skip: skipFor(store) }, async () => {
    const b = await bench(store);
    try {
      // The first part comes with the submission: nothing races the 300 ms.
      const handle = await b.client.submitJob({ kind: 'tasks', open: true, openTimeout: 300, onOpenTimeout: 'seal', tasks: [{ type: 'echo.a', input: 1 }, { type: 'echo.b', input: 2 }] });
      assert.deepEqual(await handle.result(), [1, 2], 'sealed, the job finishes with the tasks it has');
      const v = await view(b, handle.id);
      assert.deepEqual([v.status, v.open, v.closed_by, v.open_timeout_ms, v.on_open_timeout, v.open_expires_at], ['completed', false, 'open_timeout', 300, 'seal', null]);
      const line = await waitFor(() => b.lines.find((l) => l.jobId === handle.id && /sealed/.test(String(l.msg))) ?? null);
      assert.match(String(line.msg), new RegExp(`open job ${handle.id} sealed: it got no part and no seal for 300 ms`));
      assert.match(jobSummary(await b.client.getJob(handle.id)), /closed by\s+its open timeout: no part and no seal came in time/, 'crowdcompute job says so');
      const late = await b.post(`/api/jobs/${handle.id}/tasks`, { tasks: [{ type: 'echo.c', input: 3 }] });
      assert.equal(late.status, 409);
      assert.match(late.body.message, /closed by its open timeout: no part and no seal came for 300 ms/);
    } finally {
      await b.done();
    }
  });

  test(`${store}: an open job that chose cancel is cancelled by its open timeout; its tasks carry an error naming the timeout`, { skip: skipFor(store) }, async () => {
    const b = await bench(store);
    try {
      const created = await b.post('/api/jobs', { kind: 'tasks', open: true, open_timeout: '300ms', on_open_timeout: 'cancel', tasks: [{ type: 'hold.a' }, { type: 'nobody.b' }] });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const id = created.body.id as string;
      assert.equal(created.body.on_open_timeout, 'cancel');
      const v = await finished(b, id, 'cancelled');
      assert.equal(v.closed_by, 'open_timeout');
      const tasks = await b.client.getJobTasks(id);
      for (const t of tasks) {
        assert.equal(t.status, 'cancelled');
        assert.equal(t.error?.code, 'CC_ERR_CANCELLED');
        assert.match(t.error?.message ?? '', new RegExp(`job ${id} was cancelled: it was open and got no part and no seal for 300 ms \\(its openTimeout\\)`));
      }
      // If the held task had started, its worker was told why it stops.
      if (tasks[0].attempt > 0) await waitFor(() => b.stopped.some((s) => s.taskId === tasks[0].taskId), { message: 'the running task was stopped' });
      assert.ok(b.lines.some((l) => l.jobId === id && /cancelled: it got no part and no seal/.test(String(l.msg))), 'the log names the job');
    } finally {
      await b.done();
    }
  });

  test(`${store}: a part pushes the open timeout back; the foreman's --open-timeout applies to a job that says nothing`, { skip: skipFor(store) }, async () => {
    const b = await bench(store, { openTimeoutMs: 300 });
    try {
      const open = await b.client.openTasks<number>({ openTimeout: '10m' });
      const before = await view(b, open.id);
      assert.equal(before.open_timeout_ms, 600_000, "the job's own timeout, not the foreman's");
      assert.equal(before.on_open_timeout, 'cancel', 'cancel unless the job says');
      await open.append([{ type: 'echo.x', input: 5 }]);
      await open.flush();
      const after = await view(b, open.id);
      assert.ok(Date.parse(after.open_expires_at) > Date.parse(before.open_expires_at), `a part pushes the time back (${before.open_expires_at} -> ${after.open_expires_at})`);
      assert.deepEqual(await (await open.seal()).result(), [5]);
      assert.equal((await view(b, open.id)).closed_by, 'seal');

      // No openTimeout: the foreman's (300 ms here), and what it does: cancel.
      const dflt = await b.client.submitJob({ kind: 'tasks', open: true, tasks: [{ type: 'echo.y', input: 1 }] });
      assert.equal((await view(b, dflt.id)).open_timeout_ms, 300);
      const v = await finished(b, dflt.id, 'cancelled');
      assert.deepEqual([v.closed_by, v.completed_tasks + v.cancelled_tasks], ['open_timeout', 1]);
      // 0: never, whatever the foreman says.
      const never = await b.client.submitJob({ kind: 'tasks', open: true, openTimeout: 0, tasks: [] });
      assert.deepEqual([(await view(b, never.id)).open_timeout_ms, (await view(b, never.id)).open_expires_at], [null, null]);
    } finally {
      await b.done();
    }
  });

  test(`${store}: past its deadline a job fails its queued and running tasks with CC_ERR_DEADLINE and the worker is told to stop; a job done before its deadline is left alone`, { skip: skipFor(store) }, async () => {
    const b = await bench(store);
    try {
      // Done well before its deadline: nothing changes when the deadline passes.
      const earlyDeadline = Date.now() + 4_000;
      const early = await b.client.submitMany([{ type: 'echo.e', input: 'kept' }], { deadline: earlyDeadline });
      assert.deepEqual(await early.result(), ['kept']);
      const deadline = new Date(Date.now() + 3_000).toISOString();
      const created = await b.post('/api/jobs', { kind: 'tasks', deadline, tasks: [{ type: 'hold.a' }, { type: 'nobody.b' }, { type: 'nobody.c' }] });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const id = created.body.id as string;
      assert.equal(created.body.deadline, deadline);
      const held = `${id}.0`;
      await waitFor(async () => (await b.client.getTask(held)).status === 'running', { message: 'a worker holds the first task' });
      const v = await finished(b, id, 'failed');
      assert.equal(v.failed_tasks, 3);
      assert.match(jobSummary(await b.client.getJob(id)), /deadline\s+.*what is not done by then fails \(CC_ERR_DEADLINE\)/);
      for (const t of await b.client.getJobTasks(id)) {
        assert.equal(t.status, 'failed');
        assert.equal(t.error?.code, 'CC_ERR_DEADLINE');
        assert.equal(t.error?.retryable, false);
        assert.ok(t.error?.message.includes(`job ${id} passed its deadline ${deadline}`), t.error?.message);
      }
      const stop = await waitFor(() => b.stopped.find((s) => s.taskId === held) ?? null, { message: 'the worker was told to stop the running task' });
      assert.match(stop.reason, new RegExp(`job ${id} passed its deadline`));
      assert.ok(b.lines.some((l) => l.jobId === id && /passed its deadline/.test(String(l.msg))), 'the log names the job');
      await waitFor(() => Date.now() > earlyDeadline + 100, { message: "the first job's deadline passes" });
      const e = await view(b, early.id);
      assert.deepEqual([e.status, e.completed_tasks, e.failed_tasks], ['completed', 1, 0], 'a job done before its deadline is left as it was');
      // A deadline that has passed, or comes before the job may start, is refused by name.
      const past = await b.post('/api/jobs', { kind: 'tasks', deadline: 1_000, tasks: [{ type: 'echo.x' }] });
      assert.equal(past.status, 400);
      assert.match(past.body.message, /deadline 1970-01-01T00:00:01.000Z has passed/);
    } finally {
      await b.done();
    }
  });
});
});
