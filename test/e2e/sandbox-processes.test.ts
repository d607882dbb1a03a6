/**
 * A map function that makes V8 abort the process it runs in (an object grown without end, which
 * isolated-vm cannot turn into an error) fails its task, not the worker: through a real foreman
 * and a worker process started from the CLI, the task fails with CC_ERR_MEMORY_LIMIT on its
 * first attempt, is not handed to another worker, and the same worker process runs the next job.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, spawnWorkerProcess, waitFor, type TestForeman, type ChildWorker } from '../../src/testing/index.ts';

let foreman: TestForeman;
let worker: ChildWorker;
let client: Client;

before(async () => {
  foreman = await startTestForeman();
  worker = spawnWorkerProcess(['--foreman', foreman.wsUrl, '--id', 'sandboxed', '--allow-code', '--sandbox-memory', '32', '--concurrency', '2']);
  client = new Client({ url: foreman.url });
  await waitFor(async () => (await client.stats()).connected_workers === 1, { timeoutMs: 60_000, message: 'the worker connects' });
});

after(async () => {
  await client.close();
  worker.kill();
  await worker.exited;
  await foreman.cleanup();
});

test('a function that aborts its sandbox process fails its task once, and the worker runs the next job', async () => {
  const pid = worker.child.pid;
  // Three tasks: V8 fails a call at its heap limit or aborts the process, depending on its
  // timing, and a growing object nearly always aborts it. Generous timeout: near its limit V8
  // collects again and again before it gives up, slowly on a busy machine.
  const job = await client.submitMap((x: number) => { const o: Record<string, number> = {}; for (let i = 0; ; i++) o[`k${i}`] = i + x; }, [1, 2, 3],
    { chunkSize: 1, timeoutMs: 180_000, maxAttempts: 3 });
  // Were the worker to die of it, its tasks would wait for another worker for ever: say so instead.
  const outcome = await Promise.race([job.outcome(), worker.exited.then((how) => assert.fail(`the worker process died (${how}):\n${worker.output()}`))]);
  assert.equal(outcome.state, 'failed');
  assert.equal(outcome.failures.length, 3);
  for (const f of outcome.failures) {
    assert.equal(f.error?.code, 'CC_ERR_MEMORY_LIMIT', f.error?.message ?? 'no error');
    assert.match(f.error?.message ?? '', /32 MiB \(--sandbox-memory\)/);
  }
  const tasks = await client.getJobTasks(job.id);
  assert.deepEqual(tasks.map((t) => [t.status, t.attempt]), [['failed', 1], ['failed', 1], ['failed', 1]], 'not requeued: one attempt of the three allowed');
  assert.ok(outcome.failures.some((f) => /sandbox process was stopped \(signal SIGABRT\); the task is not retried/.test(f.error?.message ?? '')),
    'at least one task aborted its sandbox process');
  assert.match(worker.output(), /sandbox process died \(signal SIGABRT\) running a chunk of job .*: out of heap \(limit 32 MiB\)/, 'the worker logs why');

  assert.deepEqual(await client.map((x: number) => x * 2, [1, 2, 3]), [2, 4, 6]);
  const [last] = await client.listJobs({ limit: 1 });
  assert.ok((await client.getJobTasks(last!.id)).every((t) => t.workerId === 'sandboxed'), 'the same worker ran it');
  assert.equal(worker.child.exitCode, null, `the worker process is still running:\n${worker.output()}`);
  assert.equal(worker.child.pid, pid);
  assert.equal((await client.stats()).connected_workers, 1);
});

test('a job whose function keeps taking down sandboxes fails as a whole after --max-sandbox-crashes, not task after task', async () => {
  const args = Array.from({ length: 20 }, (_, i) => i);
  const job = await client.submitMap((x: number) => { const o: Record<string, number> = {}; for (let i = 0; ; i++) o[`k${i}`] = i + x; }, args,
    { chunkSize: 1, timeoutMs: 180_000 });
  const outcome = await Promise.race([job.outcome(), worker.exited.then((how) => assert.fail(`the worker process died (${how}):\n${worker.output()}`))]);
  assert.equal(outcome.state, 'failed');
  assert.equal(outcome.failures.length, 20);
  const tasks = await client.getJobTasks(job.id, { limit: 100 });
  const crashed = tasks.filter((t) => t.error?.code === 'CC_ERR_MEMORY_LIMIT');
  const halted = tasks.filter((t) => t.error?.code === 'CC_ERR_SANDBOX_CRASHED');
  assert.ok(crashed.length >= 3, `${crashed.length} tasks took down their sandbox before the job failed`);
  assert.equal(crashed.length + halted.length, 20);
  assert.ok(halted.length > 0, 'the rest of the job failed without running');
  assert.match(halted[0].error!.message, /its function took down 3 sandboxes \(--max-sandbox-crashes 3\)/);
  // At most the tasks in flight when the third crash was recorded ran past it (the worker runs two at once).
  assert.ok(tasks.filter((t) => t.attempt > 0).length <= 3 + 4, `tasks that ran: ${tasks.filter((t) => t.attempt > 0).length}`);
  assert.equal(worker.child.exitCode, null, `the worker process is still running:\n${worker.output()}`);
  assert.deepEqual(await client.map((x: number) => x + 1, [1, 2]), [2, 3]);
});
