/**
 * One bad item must not stall a loop that carries everyone's work. Each test feeds one of the
 * foreman's loops a poison item, on SQLite and on PostgreSQL, and shows that the item fails
 * alone, with an error that says why, while the next good item goes through and /health stays
 * healthy: JSON nested too deep (refused where it arrives), a result the database refuses,
 * an error message PostgreSQL's jsonb cannot hold, a task whose stored input or job cannot be
 * read, and rows the reapers, the queue deadlines and the pruner cannot change.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PROTOCOL_VERSION } from '../../src/protocol/index.ts';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { RawSocket, startTestForeman, waitFor, type TestForeman } from '../../src/testing/index.ts';
import type { ForemanOptions } from '../../src/foreman/index.ts';
import { testPostgresUrl } from '../../src/store/postgres/postgres-test-url.ts';
import { openRawDatabase, type RawDatabase } from '../support/raw-database.ts';

const pgUrl = await testPostgresUrl();
const STORES = ['sqlite', 'postgres'] as const;
type StoreName = typeof STORES[number];
const skipFor = (store: StoreName) => (store === 'postgres' && !pgUrl ? 'no PostgreSQL reachable (CROWDCOMPUTE_TEST_POSTGRES); under CI=true this fails instead' : false);

let schemas = 0;

/** A foreman on the store, a client, and a raw connection to its database. */
async function bench(store: StoreName, options: ForemanOptions = {}): Promise<{ foreman: TestForeman; client: Client; db: RawDatabase; done: () => Promise<void> }> {
  const schema = `cc_poison_${process.pid}_${++schemas}`;
  const foreman = await startTestForeman({ ...options, ...(store === 'postgres' ? { database: `${pgUrl}?schema=${schema}` } : {}) });
  const client = new Client({ url: foreman.url });
  const db = await openRawDatabase(foreman.databaseUrl);
  return {
    foreman, client, db,
    done: async () => {
      await client.close();
      await db.close();
      await foreman.cleanup();
      if (store === 'postgres') {
        const admin = await openRawDatabase(pgUrl!);
        await admin.exec(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await admin.close();
      }
    },
  };
}

/** /health says healthy, and a plain job of `type` completes through `client`. */
async function stillServes(foreman: TestForeman, client: Client, type: string): Promise<void> {
  const job = await client.submitMany([{ type, input: 'after' }, { type, input: 'the bad one' }]);
  assert.deepEqual(await job.result(), ['after', 'the bad one']);
  const health = await foreman.fetch('/health');
  const body = await health.json();
  assert.equal(health.status, 200, JSON.stringify(body));
  assert.equal(body.status, 'healthy');
}

/** The value of a counter of /metrics for one loop (0 when absent). */
async function poisonedCount(foreman: TestForeman, loop: string): Promise<number> {
  const text = await (await foreman.fetch('/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(`crowdcompute_loop_poisoned_items_total{loop="${loop}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

const nested = (levels: number) => JSON.parse('['.repeat(levels) + ']'.repeat(levels)) as unknown;

// The stores' runs go side by side, each on its own foremen and database (their waits for
// timeouts and deadlines overlap); the tests of one store run one at a time.
describe('each store', { concurrency: STORES.length }, () => {
for (const store of STORES) describe(store, { concurrency: 1 }, () => {
  test(`JSON nested 5,000 deep is refused where it arrives, naming the limit, and nothing else is lost (${store})`, { skip: skipFor(store), timeout: 120_000 }, async () => {
    const { foreman, client, done } = await bench(store);
    const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'echo', logLevel: 'silent' }).handle('deep.*', async (t) => t.input);
    try {
      // A worker's result: the frame is refused with CC_ERR_TOO_DEEP; the same task's good result is then recorded.
      const raw = await RawSocket.open(foreman.wsUrl);
      raw.send({ type: 'hello', protocol: PROTOCOL_VERSION, role: 'worker', workerId: 'raw-deep', capacity: 1, patterns: ['raw.*'], allowCode: false });
      await raw.next((m) => m.type === 'welcome');
      const job = await client.submitMany([{ type: 'raw.echo', input: 1 }]);
      const assigned = await raw.next((m) => m.type === 'assign_tasks', 15_000);
      const t = assigned.tasks[0];
      raw.send(`{"type":"task_results","results":[{"taskId":"${t.taskId}","attempt":${t.attempt},"status":"completed","result":${'['.repeat(5_000)}${']'.repeat(5_000)}}]}`);
      const refused = await raw.next((m) => m.type === 'error');
      assert.equal(refused.code, 'CC_ERR_TOO_DEEP');
      assert.match(refused.message, /the "task_results" message nests JSON more than 80 levels deep .* at most 64 levels/);
      raw.send({ type: 'task_results', results: [{ taskId: t.taskId, attempt: t.attempt, status: 'completed', result: 'fine' }] });
      assert.deepEqual(await job.result(), ['fine']);
      await raw.close();

      // A REST body: 400 naming the limit, not 500.
      const res = await foreman.fetch('/api/jobs', { method: 'POST', headers: { 'content-type': 'application/json' },
        body: `{"tasks":[{"type":"deep.x","input":${'['.repeat(5_000)}${']'.repeat(5_000)}}]}` });
      const body = await res.json();
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(body.code, 'CC_ERR_TOO_DEEP');
      assert.match(body.message, /the request body nests JSON more than 80 levels deep/);

      // A client's submission over WebSocket: an error reply naming the limit.
      await assert.rejects(client.submitMany([{ type: 'deep.x', input: nested(100) }]), /CC_ERR_TOO_DEEP/);
      // A value at the limit goes through, and comes back whole.
      await worker.start();
      const deepest = nested(64);
      assert.deepEqual(await (await client.submitMany([{ type: 'deep.x', input: deepest }])).result(), [deepest]);
      await stillServes(foreman, client, 'deep.x');
    } finally {
      await worker.stop();
      await done();
    }
  });

  test(`a submission the database refuses fails alone; the others committed with it are accepted (${store})`, { skip: skipFor(store), timeout: 120_000 }, async () => {
    const { foreman, client, db, done } = await bench(store);
    const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w-submit', logLevel: 'silent' }).handle('s.*', async (t) => t.input);
    try {
      await db.refuse('jobs', 'INSERT', `NEW.name = 'refuse me'`);
      // Two submissions in one frame: the foreman commits them in one group.
      const raw = await RawSocket.open(foreman.wsUrl);
      const submit = (requestId: string, name: string) => ({ type: 'submit_job', requestId, job: { kind: 'tasks', name, tasks: [{ type: 's.echo', input: requestId }] } });
      raw.send([submit('bad', 'refuse me'), submit('good', 'fine')]);
      const refused = await raw.next((m) => m.type === 'error' && m.requestId === 'bad');
      assert.match(refused.message, /refused by the test's trigger/);
      const accepted = await raw.next((m) => m.type === 'job_accepted' && m.requestId === 'good');
      await worker.start();
      assert.deepEqual(await (await client.watch(accepted.jobId)).result(), ['good']);
      await raw.close();
      // Over REST, a path no route answers gets the same error body as everything else.
      const lost = await foreman.fetch('/api/no/such/route', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(lost.status, 404);
      assert.equal((await lost.json()).code, 'CC_ERR_NOT_FOUND');
      if (store === 'postgres') {
        // PostgreSQL keeps no NUL in text: a clear 400, not an internal error.
        const nul = await foreman.fetch('/api/jobs', { method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ kind: 'tasks', name: 'a\u0000b', tasks: [{ type: 's.echo', input: 1 }] }) });
        const body = await nul.json();
        assert.equal(nul.status, 400, JSON.stringify(body));
        assert.equal(body.code, 'CC_ERR_BAD_MESSAGE');
        assert.match(body.message, /NUL character/);
      }
      await stillServes(foreman, client, 's.echo');
    } finally {
      await worker.stop();
      await done();
    }
  });

  test(`a result the database refuses fails its task alone with CC_ERR_RESULT_REFUSED; its batch and the next job are recorded (${store})`, { skip: skipFor(store), timeout: 120_000 }, async () => {
    const { foreman, client, db, done } = await bench(store);
    const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w-refused', maxConcurrentTasks: 8, logLevel: 'silent' }).handle('r.*', async (t) => t.input);
    const refusedSeen: unknown[] = [];
    worker.on('resultRefused', (r) => refusedSeen.push(r));
    try {
      await db.refuse('tasks', 'UPDATE', `NEW.state = 'completed' AND NEW.result LIKE '%poison%'`);
      await worker.start();
      const job = await client.submitMany(['a', 'poison', 'b', 'c', 'd', 'e'].map((input) => ({ type: 'r.echo', input })));
      const o = await job.outcome();
      assert.equal(o.state, 'failed');
      assert.deepEqual(o.results, ['a', null, 'b', 'c', 'd', 'e']);
      assert.equal(o.failures.length, 1);
      assert.equal(o.failures[0].index, 1);
      assert.equal(o.failures[0].error?.code, 'CC_ERR_RESULT_REFUSED');
      assert.match(o.failures[0].error!.message, /could not record the result sent by worker w-refused \(.*refused by the test's trigger/);
      await waitFor(() => refusedSeen.length === 1, { message: 'the worker is told its result was refused' });
      assert.ok(await poisonedCount(foreman, 'dispatcher') >= 1);
      await stillServes(foreman, client, 'r.echo');
    } finally {
      await worker.stop();
      await done();
    }
  });

  test(`an error message with NUL and unpaired surrogates is recorded; the next job goes through (${store})`, { skip: skipFor(store), timeout: 120_000 }, async () => {
    const { foreman, client, done } = await bench(store);
    const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w-nul', logLevel: 'silent' })
      .handle('nul.fail', async () => { throw new Error('bad \u0000 byte and \ud800 half'); })
      .handle('nul.echo', async (t) => t.input);
    try {
      await worker.start();
      const o = await (await client.submitMany([{ type: 'nul.fail', input: null }], { maxAttempts: 1 })).outcome();
      assert.equal(o.state, 'failed');
      assert.match(o.failures[0].error!.message, /bad .* byte and .* half/);
      const [task] = await client.getJobTasks(o.jobId);
      assert.equal(task.attemptErrors.length, 1, 'the attempt history holds the failure');
      await stillServes(foreman, client, 'nul.echo');
    } finally {
      await worker.stop();
      await done();
    }
  });

  test(`a task whose stored input cannot be read fails alone; a job that cannot be read fails its tasks alone (${store})`, { skip: skipFor(store), timeout: 120_000 }, async () => {
    const { foreman, client, db, done } = await bench(store);
    const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w-unreadable', logLevel: 'silent' }).handle('u.*', async (t) => t.input);
    try {
      const damaged = await client.submitMany([{ type: 'u.echo', input: 'x' }, { type: 'u.echo', input: 'y' }]);
      // A job this foreman accepted goes out with what it knew at submission; a graph's plan, like
      // a job another foreman accepted or one found after a restart, is read from the store at
      // its first dispatch: damaged, its tasks fail alone.
      const damagedJob = await client.submitGraph({ nodes: [{ id: 'a', type: 'u.echo', input: 'z' }], metadata: { owner: 'ops' } });
      const [first] = await client.getJobTasks(damaged.id);
      await db.exec(`UPDATE tasks SET input = '{"oops' WHERE id = '${first.taskId}'`);
      await db.exec(`UPDATE jobs SET metadata = '{"oops' WHERE id = '${damagedJob.id}'`);
      await worker.start();
      const o = await damaged.outcome();
      assert.deepEqual(o.results, [null, 'y']);
      assert.equal(o.failures[0].error?.code, 'CC_ERR_INTERNAL');
      assert.match(o.failures[0].error!.message, /stored input cannot be read/);
      // Read from the database itself: the API cannot show a job whose row is damaged.
      const [t] = await waitFor(async () => {
        const rows = await db.rows(`SELECT state, error FROM tasks WHERE job_id = '${damagedJob.id}'`);
        return rows[0]?.state === 'failed' ? rows : null;
      }, { message: 'the task of the job that cannot be read fails' });
      const error = JSON.parse(t.error as string) as { code: string; message: string };
      assert.equal(error.code, 'CC_ERR_INTERNAL');
      assert.match(error.message, /its job .* cannot be read from the store/);
      assert.ok(await poisonedCount(foreman, 'dispatcher') >= 2);
      await stillServes(foreman, client, 'u.echo');
    } finally {
      await worker.stop();
      await done();
    }
  });

  test(`the lease reaper requeues the expired task it can and sets aside the one the database refuses (${store})`, { skip: skipFor(store), timeout: 120_000 }, async () => {
    const { foreman, client, db, done } = await bench(store, { leaseTtlMs: 1_000, heartbeatIntervalMs: 300 });
    const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w-reaper', logLevel: 'silent' }).handle('orphan.*', async (t) => t.input);
    try {
      // Tasks left running by a worker that is gone, their leases long expired (as a foreman
      // killed mid-job leaves them).
      const job = await client.submitMany([{ type: 'orphan.x', input: 'poison' }, { type: 'orphan.x', input: 'good' }]);
      const [poison, good] = await client.getJobTasks(job.id);
      await db.exec(`UPDATE tasks SET state = 'running', attempt = 1, worker_id = 'ghost', started_at = 1, lease_expires_at = 2 WHERE job_id = '${job.id}'`);
      await db.refuse('tasks', 'UPDATE', `OLD.id = '${poison.taskId}'`);
      await worker.start();
      await waitFor(async () => (await client.getTask(good.taskId)).status === 'completed', { timeoutMs: 30_000, message: 'the good task is requeued and completes' });
      assert.equal((await client.getTask(poison.taskId)).status, 'running', 'the refused task is left as it is');
      assert.ok(await poisonedCount(foreman, 'lease reaper') >= 1);
      await stillServes(foreman, client, 'orphan.x');
    } finally {
      await worker.stop();
      await done();
    }
  });

  test(`a worker that leaves: the tasks that can go back to the queue do at once, beside one the database refuses (${store})`, { skip: skipFor(store), timeout: 120_000 }, async () => {
    const { foreman, client, db, done } = await bench(store);
    const leaving = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w-leaving', maxConcurrentTasks: 2, logLevel: 'silent' })
      .handle('z.*', () => new Promise(() => {}));
    const staying = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w-staying', logLevel: 'silent' }).handle('z.*', async (t) => t.input);
    try {
      await leaving.start();
      const job = await client.submitMany([{ type: 'z.x', input: 'refused' }, { type: 'z.x', input: 'good' }]);
      await waitFor(async () => (await client.getJobTasks(job.id)).every((t) => t.status === 'running'), { message: 'both run on the leaving worker' });
      const [refused, good] = await client.getJobTasks(job.id);
      await db.refuse('tasks', 'UPDATE', `OLD.id = '${refused.taskId}'`);
      await leaving.stop({ drainTimeoutMs: 0 });
      await staying.start();
      await waitFor(async () => (await client.getTask(good.taskId)).status === 'completed', { timeoutMs: 30_000, message: 'the good task goes back and completes elsewhere' });
      assert.equal((await client.getTask(refused.taskId)).status, 'running', 'the refused one is left to its lease');
      await stillServes(foreman, client, 'z.x');
    } finally {
      await staying.stop();
      await done();
    }
  });

  test(`queue deadlines fail the job they can and set aside the one the database refuses (${store})`, { skip: skipFor(store), timeout: 120_000 }, async () => {
    const { foreman, client, db, done } = await bench(store, { sweepIntervalMs: 100 });
    try {
      const poison = await client.submitMany([{ type: 'nobody.x', input: 1 }], { queueTimeoutMs: 300 });
      const good = await client.submitMany([{ type: 'nobody.x', input: 2 }], { queueTimeoutMs: 300 });
      await db.refuse('tasks', 'UPDATE', `OLD.job_id = '${poison.id}'`);
      const o = await good.outcome();
      assert.equal(o.state, 'failed');
      assert.equal(o.failures[0].error?.code, 'CC_ERR_NO_WORKER');
      await waitFor(async () => await poisonedCount(foreman, 'queue deadlines') >= 1, { message: 'the refused job is set aside' });
      assert.equal((await client.getJob(poison.id)).status, 'queued');
      const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w-deadline', logLevel: 'silent' }).handle('later.*', async (t) => t.input);
      await worker.start();
      try { await stillServes(foreman, client, 'later.x'); } finally { await worker.stop(); }
    } finally {
      await done();
    }
  });

  test(`the pruner prunes the job it can and sets aside the one the database refuses to delete (${store})`, { skip: skipFor(store), timeout: 120_000 }, async () => {
    const { foreman, client, db, done } = await bench(store, { pruneIntervalMs: 100 });
    const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w-prune', logLevel: 'silent' }).handle('p.*', async (t) => t.input);
    try {
      await worker.start();
      const poison = await client.submitMany([{ type: 'p.x', input: 1 }], { retentionMs: 3_600_000 });
      const good = await client.submitMany([{ type: 'p.x', input: 2 }], { retentionMs: 3_600_000 });
      await poison.result();
      await good.result();
      await db.refuse('jobs', 'DELETE', `OLD.id = '${poison.id}'`);
      // Both past their retention now.
      await db.exec(`UPDATE jobs SET prune_after = 1 WHERE id IN ('${poison.id}', '${good.id}')`);
      await waitFor(async () => (await foreman.fetch(`/api/jobs/${good.id}`)).status === 404, { timeoutMs: 30_000, message: 'the good job is pruned' });
      assert.equal((await client.getJob(poison.id)).status, 'completed', 'the refused job stays');
      assert.ok(await poisonedCount(foreman, 'pruner') >= 1);
      await stillServes(foreman, client, 'p.x');
    } finally {
      await worker.stop();
      await done();
    }
  });

  test(`the dashboard's feed sends the jobs it can read when one cannot be read (${store})`, { skip: skipFor(store), timeout: 120_000 }, async () => {
    const { foreman, client, db, done } = await bench(store);
    const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w-feed', logLevel: 'silent' }).handle('f.*', async (t) => t.input);
    const abort = new AbortController();
    try {
      const res = await foreman.fetch('/api/events', { signal: abort.signal });
      assert.equal(res.status, 200);
      const events: { type: string; data: unknown }[] = [];
      void (async () => {
        const decoder = new TextDecoder();
        let buf = '';
        for await (const chunk of res.body!) {
          buf += decoder.decode(chunk as Uint8Array, { stream: true });
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, i);
            buf = buf.slice(i + 2);
            if (frame.startsWith('data: ')) events.push(JSON.parse(frame.slice(6)));
          }
        }
      })().catch(() => {});
      const bad = await client.submitMany([{ type: 'f.x', input: 1 }]);
      await db.exec(`UPDATE jobs SET metadata = '{"oops' WHERE id = '${bad.id}'`);
      await worker.start();
      const good = await client.submitMany([{ type: 'f.x', input: 2 }]);
      await good.result();
      await waitFor(() => events.some((e) => e.type === 'jobs' && (e.data as { job_id: string; status: string }[]).some((j) => j.job_id === good.id && j.status === 'completed')),
        { timeoutMs: 20_000, message: 'the feed sends the good job' });
      // The damaged job's own change may come in a later flush than the good one's.
      await waitFor(async () => await poisonedCount(foreman, 'dashboard feed') >= 1, { timeoutMs: 20_000, message: 'the feed set the damaged job aside' });
      assert.ok(!events.some((e) => e.type === 'jobs' && (e.data as { job_id: string }[]).some((j) => j.job_id === bad.id)));
      await stillServes(foreman, client, 'f.x');
    } finally {
      abort.abort();
      await worker.stop();
      await done();
    }
  });
});
});

test('a dispatcher stuck on the database makes /health answer 503 naming it, and healthy again once it moves (postgres)', { skip: skipFor('postgres'), timeout: 120_000 }, async () => {
  const { foreman, client, db, done } = await bench('postgres', { stallAfterMs: 1_000 });
  let release: (() => void) | null = null;
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w-stall', logLevel: 'silent' })
    .handle('s.wait', async () => { await new Promise<void>((r) => { release = r; }); return 'done'; })
    .handle('s.echo', async (t) => t.input);
  const locker = await openRawDatabase(foreman.databaseUrl);
  try {
    await worker.start();
    const job = await client.submitMany([{ type: 's.wait', input: null }]);
    await waitFor(() => release !== null, { message: 'the task runs' });
    // Writes to tasks wait behind this lock; reads (the health check's counts) do not.
    await locker.exec('BEGIN; LOCK TABLE tasks IN EXCLUSIVE MODE');
    release!();
    const stalled = await waitFor(async () => {
      const r = await foreman.fetch('/health');
      return r.status === 503 ? r.json() : null;
    }, { timeoutMs: 30_000, message: '/health says the dispatcher is stuck' });
    assert.equal(stalled.status, 'degraded');
    assert.deepEqual(stalled.stalled_loops, ['dispatcher']);
    assert.match(stalled.reason, /the dispatcher has been in one round for .* s/);
    const metrics = await (await foreman.fetch('/metrics')).text();
    assert.match(metrics, /crowdcompute_loop_stalled\{loop="dispatcher"\} 1/);
    await locker.exec('ROLLBACK');
    assert.deepEqual(await job.result(), ['done']);
    await waitFor(async () => (await foreman.fetch('/health')).status === 200, { message: '/health is healthy again' });
    await stillServes(foreman, client, 's.echo');
  } finally {
    await locker.close();
    await worker.stop();
    await done();
  }
});
