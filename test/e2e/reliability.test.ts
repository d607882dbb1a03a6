import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { RawSocket, spawnWorkerProcess, startTestForeman, waitFor } from '../../src/testing/index.ts';
import { readFileSync, existsSync } from 'node:fs';

const FIXTURE = fileURLToPath(new URL('./fixtures/fault-handlers.ts', import.meta.url));

test('a connection that floods is rate limited and then closed; other work carries on', async () => {
  const foreman = await startTestForeman({ maxMessagesPerSecond: 200, floodCloseAfterMs: 300 });
  const client = new Client({ url: foreman.url });
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'calm', logLevel: 'silent' }).handle('echo', async (t) => t.input);
  const flood = await RawSocket.open(foreman.wsUrl);
  try {
    await worker.start();
    const closed = flood.closed;
    const pump = setInterval(() => { for (let i = 0; i < 50 && flood.isOpen; i++) flood.send({ type: 'subscribe_job', jobId: 'x' }); }, 5);
    const limited = await flood.next((m) => m.type === 'error' && m.code === 'CC_ERR_RATE_LIMITED');
    assert.match(limited.message, /200 messages\/s/);
    assert.equal(await (await client.submit('echo', 'still served')).result(), 'still served');
    assert.equal(await closed, 1008);
    clearInterval(pump);
  } finally {
    await flood.close();
    await worker.stop();
    await client.close();
    await foreman.cleanup();
  }
});

test('hostile submissions get errors that name the limit: a million arguments, an oversized result', async () => {
  const foreman = await startTestForeman({ maxPayloadBytes: 256 * 1024, maxArgs: 100_000 });
  const client = new Client({ url: foreman.url });
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'hostile', logLevel: 'silent' })
    .handle('big', async () => 'x'.repeat(1024 * 1024))
    .handle('small', async () => 'ok');
  try {
    await worker.start();
    const args = new Array(1_000_000).fill(0);
    const res = await foreman.fetch('/api/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'map', code: '(x) => x', args }) });
    const body = await res.json();
    assert.ok(res.status === 400 || res.status === 413, `status ${res.status}`);
    assert.match(body.message, /1000000 arguments, the foreman accepts at most 100000|exceeds 256\.0 KiB/);
    const job = await client.submitMany([{ type: 'big' }, { type: 'small' }]);
    const outcome = await job.outcome();
    assert.equal(outcome.state, 'failed');
    assert.deepEqual(outcome.results, [null, 'ok']);
    assert.equal(outcome.failures[0].error?.code, 'CC_ERR_PAYLOAD_TOO_LARGE');
    assert.match(outcome.failures[0].error?.message ?? '', /1\.0 MiB, the foreman accepts at most 256\.0 KiB/);
    // Through the SDK, a job larger than one message is sent open, in parts, each within both limits.
    const direct = await client.submitMap((x: number) => x, Array.from({ length: 150_000 }, (_, i) => i));
    const sent = await client.getJob(direct.id);
    assert.deepEqual([sent.argCount, sent.open], [150_000, false]);
    await client.cancel(direct.id);
  } finally {
    await worker.stop();
    await client.close();
    await foreman.cleanup();
  }
});

test('a timed-out attempt is retried when attempts remain; every attempt error is visible', async () => {
  const foreman = await startTestForeman();
  const client = new Client({ url: foreman.url });
  let calls = 0;
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'slowpoke', logLevel: 'silent', timeoutGraceMs: 50 })
    .handle('flaky', async (_t, ctx) => {
      calls++;
      if (calls === 1) await new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
      return 'second time';
    });
  try {
    await worker.start();
    const task = await client.submit('flaky', {}, { timeoutMs: 100, maxAttempts: 2 });
    assert.equal(await task.result(), 'second time');
    const t = await client.getTask(task.taskId);
    assert.equal(t.attempt, 2);
    assert.equal(t.attemptErrors.length, 1);
    assert.equal((t.attemptErrors[0].error as { code: string; reason: string }).code, 'CC_ERR_TIMEOUT');
  } finally {
    await worker.stop();
    await client.close();
    await foreman.cleanup();
  }
});

test('cancel one task from the client: queued never starts, running gets its signal; the REST route too', async () => {
  const foreman = await startTestForeman();
  const client = new Client({ url: foreman.url });
  let aborted = false;
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'single', maxConcurrentTasks: 1, logLevel: 'silent' })
    .handle('hold', async (_t, ctx) => new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => { aborted = true; reject(ctx.signal.reason); })))
    .handle('quick', async () => 'quick');
  try {
    await worker.start();
    const job = await client.submitMany([{ type: 'hold' }, { type: 'quick' }, { type: 'quick' }]);
    await waitFor(() => worker.runningTasks.length === 1 || null);
    const [holdId, quick1] = [`${job.id}.0`, `${job.id}.1`];
    const cancelledQueued = await client.cancelTask(quick1);
    assert.equal(cancelledQueued.status, 'cancelled');
    const res = await foreman.fetch(`/task/${encodeURIComponent(holdId)}/cancel`, { method: 'POST' });
    assert.equal((await res.json()).status, 'cancelled');
    await waitFor(() => aborted || null, { message: 'running handler aborted' });
    const outcome = await job.outcome();
    assert.equal(outcome.state, 'cancelled');
    assert.deepEqual(outcome.results, [null, null, 'quick']);
  } finally {
    await worker.stop();
    await client.close();
    await foreman.cleanup();
  }
});

test('an idempotency key returns the same job instead of a second one', async () => {
  const foreman = await startTestForeman();
  const client = new Client({ url: foreman.url });
  try {
    const a = await client.submit('never.run', { n: 1 }, { idempotencyKey: 'order-42' });
    const b = await client.submit('never.run', { n: 1 }, { idempotencyKey: 'order-42' });
    assert.equal(b.jobId, a.jobId);
    assert.equal(b.job.deduplicated, true);
    assert.equal((await client.listJobs()).length, 1);
  } finally {
    await client.close();
    await foreman.cleanup();
  }
});

test('SIGTERM to a worker process: it takes nothing new, finishes what runs, and hands back what outlasts its drain timeout', async () => {
  const foreman = await startTestForeman();
  const client = new Client({ url: foreman.url });
  const log = join(foreman.dir, 'exec.log');
  const leaving = spawnWorkerProcess(['--foreman', foreman.wsUrl, '--id', 'leaving', '--concurrency', '2', '--drain-timeout', '300', '--handlers', FIXTURE], { CC_EXEC_LOG: log });
  const staying = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'staying', maxConcurrentTasks: 4, logLevel: 'silent' });
  staying.handle('fault.work', async (t) => (t.input as { v: number }).v * 2);
  try {
    await waitFor(async () => (await client.stats()).connected_workers === 1);
    // One task that finishes within the drain timeout, one that outlasts it, one queued.
    const job = await client.submitMany([{ type: 'fault.work', input: { v: 1, ms: 100 } }, { type: 'fault.work', input: { v: 2, ms: 5_000 } }, { type: 'fault.work', input: { v: 3, ms: 10 } }]);
    await waitFor(() => (existsSync(log) && readFileSync(log, 'utf8').split('\n').filter(Boolean).length === 2) || null, { message: 'two tasks started' });
    leaving.kill('SIGTERM');
    assert.equal(await leaving.exited, 0);
    await staying.start();
    assert.deepEqual(await job.result(), [2, 4, 6]);
    const tasks = await client.getJobTasks(job.id);
    assert.equal(tasks[0].workerId, 'leaving', 'the short task finished during the drain');
    assert.equal(tasks[1].workerId, 'staying', 'the long one was handed back and ran elsewhere');
    assert.equal((tasks[1].attemptErrors[0].error as { reason: string }).reason, 'released');
    assert.deepEqual(tasks[1].attempts.map((a) => a.status), ['lost', 'completed'], 'a handed-back attempt is shown lost, not failed');
    assert.equal(tasks[2].workerId, 'staying', 'nothing new went to the draining worker');
  } finally {
    leaving.kill('SIGKILL');
    await staying.stop();
    await client.close();
    await foreman.cleanup();
  }
});
