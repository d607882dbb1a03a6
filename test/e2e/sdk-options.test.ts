import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { freePort, startTestForeman, waitFor } from '../../src/testing/index.ts';

test('job progress as an async iterator ends with the job; watch() follows a job submitted elsewhere', async () => {
  const foreman = await startTestForeman();
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'it', maxConcurrentTasks: 2, logLevel: 'silent' })
    .handle('slowish', async (t) => { await new Promise((r) => setTimeout(r, 30)); return t.input; });
  const submitter = new Client({ url: foreman.url });
  const watcher = new Client({ url: foreman.url });
  try {
    await worker.start();
    const job = await submitter.submitMany(Array.from({ length: 10 }, (_, i) => ({ type: 'slowish', input: i })));
    const watched = await watcher.watch<number>(job.id);
    const fractions: number[] = [];
    for await (const p of job.progress()) fractions.push(p.fraction);
    assert.equal(fractions.at(-1), 1, 'the iterator ends at completion');
    assert.ok(fractions.every((f, i) => i === 0 || f >= fractions[i - 1]), 'progress never goes back');
    assert.deepEqual(await watched.result(), Array.from({ length: 10 }, (_, i) => i));
    const task = await submitter.getTask(`${job.id}.3`);
    const viaApi = await (await foreman.fetch(`/api/tasks/${encodeURIComponent(task.taskId)}`)).json();
    assert.equal(viaApi.result, 3);
    assert.deepEqual(viaApi.attempt_errors, []);
  } finally {
    await Promise.all([submitter.close(), watcher.close()]);
    await worker.stop();
    await foreman.cleanup();
  }
});

test('a worker gives up after maxReconnectAttempts and start() says why', async () => {
  const port = await freePort(); // nothing listens there
  const worker = new Worker({ foremanUrl: `ws://127.0.0.1:${port}/ws`, workerId: 'lonely', maxReconnectAttempts: 2, reconnectIntervalMs: 20, logLevel: 'silent' })
    .handle('x', async () => null);
  worker.on('error', () => {});
  await assert.rejects(worker.start(), /CC_ERR_CONNECTION: gave up after 2 reconnection attempts/);
  await waitFor(() => worker.status === 'stopped' || null);
});

test('with autoRestart off, a worker stops when its connection drops instead of reconnecting', async () => {
  const foreman = await startTestForeman();
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'one-shot', autoRestart: false, logLevel: 'silent' }).handle('x', async () => null);
  try {
    await worker.start();
    const stopped = new Promise<void>((r) => worker.once('stopped', () => r()));
    worker.restart(); // drops the connection
    await stopped;
    assert.equal(worker.status, 'stopped');
    assert.equal(worker.stats.connects, 1);
  } finally {
    await worker.stop();
    await foreman.cleanup();
  }
});
