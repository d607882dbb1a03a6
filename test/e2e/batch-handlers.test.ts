/**
 * Batch handlers through the public SDK and REST API: batches recorded with their artifacts,
 * metrics and checkpoints; a worker process SIGKILLed mid-task and the next attempt resuming
 * from the checkpoint without redoing the batches before it (on SQLite and on PostgreSQL);
 * errors classified permanent or transient; the four reasons a run is asked to stop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '../../src/client/index.ts';
import { Worker, type BatchHandler, type CancelReason } from '../../src/worker/index.ts';
import { FreezableProxy, spawnWorkerProcess, startTestForeman, waitFor, type TestForeman } from '../../src/testing/index.ts';
import { testPostgresUrl } from '../../src/store/postgres/postgres-test-url.ts';
import { squares } from './fixtures/batch-handlers.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/batch-handlers.ts', import.meta.url));
const sumOfSquares = (n: number) => (n * (n + 1) * (2 * n + 1)) / 6;
const pgUrl = await testPostgresUrl();

test('a batch handler records each batch with its artifact, metrics and checkpoint; finalize gives the result', async () => {
  const foreman = await startTestForeman();
  const client = new Client({ url: foreman.url });
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w1', logLevel: 'silent' }).handle('pipe.*', squares);
  try {
    await worker.start();
    const job = await client.submit('pipe.squares', { from: 1, to: 1_000, size: 100 });
    assert.equal(await job.result(), sumOfSquares(1_000));
    const [task] = await client.getJobTasks(job.jobId);
    const arts = await client.getArtifacts(task.taskId);
    assert.equal(arts.complete, true);
    assert.deepEqual(arts.artifacts.map((a) => a.batchUid), Array.from({ length: 10 }, (_, i) => `b${i * 100 + 1}`));
    assert.deepEqual((arts.artifacts[0].data as { squares: number[] }).squares.slice(0, 3), [1, 4, 9]);
    const page = await client.getArtifacts(task.taskId, { after: arts.artifacts[8].seq, limit: 1 });
    assert.deepEqual(page.artifacts.map((a) => a.batchUid), ['b901']);
    const batches = await client.getTaskBatches(task.taskId);
    assert.deepEqual(batches.metrics, { items: 1_000, batches: 10, finalized: 1 });
    assert.deepEqual(batches.checkpoint, { next: 1_001, sum: sumOfSquares(1_000) });
    // The same over REST, with the caller's credentials.
    const res = await foreman.fetch(`/api/tasks/${task.taskId}/artifacts?limit=2`);
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.deepEqual(body.artifacts.map((a: { batch_uid: string }) => a.batch_uid), ['b1', 'b101']);
    assert.equal((await fetch(`${foreman.url}/api/tasks/${task.taskId}/artifacts`)).status, 401, 'no credentials, no artifacts');
    assert.equal((await foreman.fetch('/api/tasks/nope/batches')).status, 404);
  } finally {
    await client.close();
    await worker.stop();
    await foreman.cleanup();
  }
});

test('classifyError: a permanent error fails the task without retry; a transient one retries from the checkpoint', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-batch-'));
  const log = join(dir, 'exec.log');
  process.env.CC_EXEC_LOG = log;
  const foreman = await startTestForeman();
  const client = new Client({ url: foreman.url });
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w1', logLevel: 'silent' }).handle('pipe.*', squares);
  try {
    await worker.start();
    const permanent = await client.submit('pipe.squares', { from: 1, to: 500, size: 100, failAt: { batch: 'b201', permanent: true } }, { maxAttempts: 3 });
    const p = await permanent.job.outcome();
    assert.equal(p.state, 'failed');
    const pt = await client.getTask((await client.getJobTasks(permanent.jobId))[0].taskId);
    assert.equal(pt.attempt, 1, 'no retry after a permanent error');
    assert.equal(pt.error?.code, 'bad_input');

    const transient = await client.submit('pipe.squares', { from: 1, to: 500, size: 100, failAt: { batch: 'b301', permanent: false, whileAttemptBelow: 2 } }, { maxAttempts: 3 });
    assert.equal(await transient.result(), sumOfSquares(500));
    const tt = (await client.getJobTasks(transient.jobId))[0];
    assert.equal(tt.attempt, 2);
    const runs = readFileSync(log, 'utf8').trim().split('\n').map((l) => l.split(' ')).filter(([id]) => id === tt.taskId);
    // Attempt 1 did b1..b201 and failed in b301; attempt 2 started at b301.
    assert.deepEqual(runs.map(([, attempt, uid]) => `${attempt}:${uid}`), ['1:b1', '1:b101', '1:b201', '1:b301', '2:b301', '2:b401']);
    assert.deepEqual((await client.getTaskBatches(tt.taskId)).batches.map((b) => `${b.attempt}:${b.batchUid}`),
      ['1:b1', '1:b101', '1:b201', '2:b301', '2:b401', '2:#finalize']);
  } finally {
    delete process.env.CC_EXEC_LOG;
    await client.close();
    await worker.stop();
    await foreman.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a run sees why it was stopped: coordinator, timeout, lease lost, worker shutdown', async () => {
  const foreman = await startTestForeman({ heartbeatIntervalMs: 200, leaseTtlMs: 1_000 });
  const client = new Client({ url: foreman.url });
  const seen: CancelReason[] = [];
  const waiter: BatchHandler = {
    async *iterBatches() { yield { batchUid: 'only', payload: null }; },
    async processBatch(_batch, ctx) {
      await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve(), { once: true }));
      seen.push(ctx.cancelReason!);
      throw ctx.signal.reason;
    },
  };
  let worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w1', logLevel: 'silent', timeoutGraceMs: 2_000 }).handle('wait.*', waiter);
  try {
    await worker.start();
    const running = async (jobId: string) => waitFor(async () => (await client.getJobTasks(jobId))[0]?.status === 'running' || null, { message: 'the task runs' });

    const cancelled = await client.submit('wait.forever', null);
    await running(cancelled.jobId);
    await client.cancel(cancelled.jobId);
    await waitFor(() => seen.length === 1 || null, { message: 'the handler sees the cancellation' });
    assert.equal(seen[0], 'coordinator');

    const timed = await client.submit('wait.forever', null, { timeoutMs: 300 });
    await waitFor(() => seen.length === 2 || null, { message: 'the handler sees its deadline pass' });
    assert.equal(seen[1], 'timeout');
    assert.equal((await timed.job.outcome()).state, 'failed');

    // The network drops silently for longer than a lease: the foreman takes the task back, and
    // when the worker returns it is told to stop: the run hears that its lease is lost.
    const proxy = await FreezableProxy.start(foreman.port);
    const away = new Worker({ foremanUrl: `ws://127.0.0.1:${proxy.port}/ws`, workerId: 'away', reconnectIntervalMs: 50, logLevel: 'silent', token: foreman.credentials!.workerToken, timeoutGraceMs: 2_000 })
      .handle('wait.*', waiter);
    try {
      await worker.stop();
      await away.start();
      const lost = await client.submit('wait.forever', null, { maxAttempts: 3 });
      await running(lost.jobId);
      proxy.freeze();
      await waitFor(async () => (await client.getJobTasks(lost.jobId))[0]?.status === 'queued' || null, { timeoutMs: 15_000, message: 'the foreman takes the task back' });
      proxy.restore();
      await waitFor(() => seen.length === 3 || null, { timeoutMs: 15_000, message: 'the handler hears its lease is lost' });
      assert.equal(seen[2], 'lease_lost');
      // Cancelled once its next attempt runs (a task cancelled while queued never reaches a handler).
      await waitFor(async () => { const [t] = await client.getJobTasks(lost.jobId); return (t?.status === 'running' && t.attempt >= 2) || null; }, { timeoutMs: 30_000, message: 'the next attempt runs' });
      await client.cancel(lost.jobId);
      await waitFor(() => seen.length === 4 || null, { timeoutMs: 15_000, message: 'the next attempt is cancelled' });
    } finally {
      await away.stop({ drainTimeoutMs: 0 });
      await proxy.close();
    }
    worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w1b', logLevel: 'silent', timeoutGraceMs: 2_000 }).handle('wait.*', waiter);
    await worker.start();

    const draining = await client.submit('wait.forever', null);
    await running(draining.jobId);
    await worker.stop({ drainTimeoutMs: 100 });
    await waitFor(() => seen.length >= 4 || null, { message: 'the handler sees the worker shut down' });
    assert.equal(seen.at(-1), 'worker_shutdown');
    worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w2', logLevel: 'silent' });
  } finally {
    await client.close();
    await worker.stop();
    await foreman.cleanup();
  }
});

for (const store of ['sqlite', 'postgres'] as const) {
  const pg = store === 'postgres' ? pgUrl : null;
  test(`a worker process SIGKILLed mid-task: the next attempt resumes from the checkpoint, the result is exact, no batch or artifact counted twice (${store})`,
    { skip: store === 'postgres' && !pg ? 'no PostgreSQL (CROWDCOMPUTE_TEST_POSTGRES)' : false }, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cc-batch-kill-'));
      const log = join(dir, 'exec.log');
      const schema = `cc_batch_${process.pid}`;
      const foreman: TestForeman = await startTestForeman({ dir, heartbeatIntervalMs: 300, leaseTtlMs: 2_000, ...(pg ? { database: `${pg}?schema=${schema}` } : {}) });
      const client = new Client({ url: foreman.url });
      const args = ['--foreman', foreman.wsUrl, '--handlers', FIXTURE, '--no-status', '--log-level', 'warn'];
      const victim = spawnWorkerProcess([...args, '--id', 'victim'], { CC_EXEC_LOG: log });
      let rescuer: ReturnType<typeof spawnWorkerProcess> | null = null;
      try {
        const job = await client.submit('pipe.squares', { from: 1, to: 3_000, size: 100, delayMs: 60 }, { maxAttempts: 3 });
        const [task] = await waitFor(async () => { const t = await client.getJobTasks(job.jobId); return t.length ? t : null; });
        // Kill it once a third of the batches are recorded.
        await waitFor(async () => (await client.getTaskBatches(task.taskId)).batches.length >= 10 || null, { timeoutMs: 60_000, message: 'ten batches recorded' });
        victim.kill('SIGKILL');
        const before = (await client.getTaskBatches(task.taskId)).batches.length;
        rescuer = spawnWorkerProcess([...args, '--id', 'rescuer'], { CC_EXEC_LOG: log });
        assert.equal(await job.result(), sumOfSquares(3_000), 'the result is exact');

        const lines = readFileSync(log, 'utf8').trim().split('\n').map((l) => l.split(' '));
        const first = lines.filter(([, attempt]) => attempt === '1').map(([, , uid]) => uid);
        const second = lines.filter(([, attempt]) => attempt === '2').map(([, , uid]) => uid);
        const again = second.filter((uid) => first.includes(uid));
        // Only batches not yet recorded when the worker died run again: at most the one in flight
        // (plus one recorded in the instant between the count and the kill).
        assert.ok(again.length <= 2, `batches processed twice: ${again.join(', ')}`);
        assert.ok(second.length <= 30 - before + 2 && second.length >= 30 - before - 1, `the second attempt did ${second.length} of the ${30 - before} left`);
        const batches = (await client.getTaskBatches(task.taskId)).batches.filter((b) => b.batchUid.startsWith('b'));
        assert.equal(batches.length, 30, 'each batch recorded once');
        assert.equal(new Set(batches.map((b) => b.batchUid)).size, 30);
        const arts = await client.getArtifacts(task.taskId, { limit: 100 });
        assert.equal(arts.artifacts.length, 30, 'each artifact counted once');
        const total = arts.artifacts.reduce((s, a) => s + (a.data as { squares: number[] }).squares.reduce((x, y) => x + y, 0), 0);
        assert.equal(total, sumOfSquares(3_000), 'the artifacts add up');
        assert.ok(arts.artifacts.some((a) => a.attempt === 1) && arts.artifacts.some((a) => a.attempt === 2), 'both attempts wrote');
      } finally {
        victim.kill('SIGKILL');
        rescuer?.kill('SIGTERM');
        await rescuer?.exited;
        await client.close();
        await foreman.cleanup();
        if (pg) {
          const { default: pgm } = await import('pg');
          const c = new pgm.Client({ connectionString: pg });
          await c.connect();
          await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
          await c.end();
        }
        if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
      }
    });
}
