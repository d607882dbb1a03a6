/**
 * Placement by resources, through the SDK: a task that requires a GPU is reported at
 * submission when no worker could run it, waits (never landing on a worker without one), runs
 * on the first worker that has one, and GPU tasks share that worker's GPUs one at a time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../../src/client/index.ts';
import { Worker } from '../../src/worker/index.ts';
import { startTestForeman, waitFor } from '../../src/testing/index.ts';

test('a task requiring a GPU waits for a worker that has one, and never lands on one that has none', async () => {
  const foreman = await startTestForeman();
  const client = new Client({ url: foreman.url });
  const running = new Map<string, number>();
  let most = 0;
  const handler = (name: string) => async (task: { input: { ms: number } }) => {
    running.set(name, (running.get(name) ?? 0) + 1);
    most = Math.max(most, running.get('gpu-box') ?? 0);
    await new Promise((r) => setTimeout(r, task.input.ms));
    running.set(name, running.get(name)! - 1);
    return name;
  };
  const cpuOnly = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'cpu-box', maxConcurrentTasks: 4, logLevel: 'silent' }).handle('render.*', handler('cpu-box'));
  const gpuBox = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'gpu-box', maxConcurrentTasks: 4, logLevel: 'silent', resources: { gpu: 1, labels: { region: 'eu' } } })
    .handle('render.*', handler('gpu-box'));
  try {
    await cpuOnly.start();
    const gpuTask = await client.submit('render.frame', { ms: 50 }, { requires: { gpu: 1 } });
    assert.match(gpuTask.job.warnings.join('\n'), /no connected worker that handles "render.frame" has gpu 1/);
    // Plain work submitted after it flows to the CPU-only worker, which was offered the queue
    // since, and the GPU task is still queued: the worker without a GPU passed it over.
    assert.equal(await (await client.submit('render.frame', { ms: 1 })).result(), 'cpu-box');
    assert.equal((await client.getTask(gpuTask.taskId)).status, 'queued');
    await gpuBox.start();
    assert.equal(await gpuTask.result(), 'gpu-box');

    // Four GPU tasks on a box of one GPU and four slots: one at a time, all there.
    const many = await client.submitMany(Array.from({ length: 4 }, () => ({ type: 'render.frame', input: { ms: 80 }, requires: { gpu: 1, labels: { region: 'eu' } } })));
    assert.deepEqual(await many.result(), ['gpu-box', 'gpu-box', 'gpu-box', 'gpu-box']);
    assert.equal(most, 1, 'never two GPU tasks at once on one GPU');
    // A label no worker has: reported, and it waits.
    const us = await client.submit('render.frame', { ms: 1 }, { requires: { labels: { region: 'us' } } });
    assert.match(us.job.warnings.join('\n'), /region=us/);
    await waitFor(async () => (await client.getTask(us.taskId)).status === 'queued' || null);
    await client.cancel(us.jobId);
  } finally {
    await client.close();
    await cpuOnly.stop();
    await gpuBox.stop();
    await foreman.cleanup();
  }
});
