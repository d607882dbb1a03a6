/**
 * Fault injection with real processes and real sockets. Every test ends by checking the
 * invariant of docs/guarantees.md: every task of every accepted job ends with exactly one
 * recorded result (or a final failure); none is lost. "Recorded once" is checked through the
 * job's counters: the store adds to them only when a conditional update records an outcome,
 * so a second recording would make `completed` exceed `total`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { PROTOCOL_VERSION } from '../../src/protocol/index.ts';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import {
  FreezableProxy, RawSocket, freePort, spawnForemanProcess, spawnWorkerProcess, startTestForeman, waitFor,
} from '../../src/testing/index.ts';
import handlers from './fixtures/fault-handlers.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/fault-handlers.ts', import.meta.url));
const FAST = { heartbeatIntervalMs: 100, leaseTtlMs: 600 };

/** Executions per task id, from the handlers' log. */
function executions(log: string): Map<string, number> {
  const m = new Map<string, number>();
  if (!existsSync(log)) return m;
  for (const line of readFileSync(log, 'utf8').split('\n')) {
    if (!line) continue;
    const id = line.split(' ')[0];
    m.set(id, (m.get(id) ?? 0) + 1);
  }
  return m;
}

async function assertInvariant(client: Client, jobId: string, expected: unknown[]): Promise<void> {
  const job = await client.getJob(jobId);
  assert.equal(job.status, 'completed');
  assert.equal(job.totalTasks, expected.length);
  assert.equal(job.completedTasks, expected.length, 'each task recorded exactly once (completed == total)');
  assert.equal(job.failedTasks, 0);
  const outcome = await client.getJobOutcome(jobId);
  assert.deepEqual(outcome.results, expected);
}

const hello = (workerId: string, patterns: string[], running: { taskId: string; attempt: number }[] = []) =>
  ({ type: 'hello', protocol: PROTOCOL_VERSION, role: 'worker', workerId, capacity: 1, patterns, allowCode: false, running });

test('a worker process killed with SIGKILL mid-task: its tasks run again elsewhere, each recorded once', async () => {
  const foreman = await startTestForeman(FAST);
  const log = join(foreman.dir, 'exec.log');
  const client = new Client({ url: foreman.url });
  const victim = spawnWorkerProcess(['--foreman', foreman.wsUrl, '--id', 'victim', '--concurrency', '4', '--handlers', FIXTURE], { CC_EXEC_LOG: log });
  let rescuer: ReturnType<typeof spawnWorkerProcess> | null = null;
  try {
    await waitFor(async () => (await client.stats()).connected_workers === 1, { message: 'victim connects' });
    const job = await client.submitMany(Array.from({ length: 20 }, (_, i) => ({ type: 'fault.work', input: { v: i, ms: 300 } })));
    // Claimed is not started: wait until the victim's handlers have logged all four.
    await waitFor(() => executions(log).size === 4 || null, { message: 'victim runs 4' });
    victim.kill('SIGKILL');
    await victim.exited;
    rescuer = spawnWorkerProcess(['--foreman', foreman.wsUrl, '--id', 'rescuer', '--concurrency', '8', '--handlers', FIXTURE], { CC_EXEC_LOG: log });
    const results = await job.result();
    assert.deepEqual(results, Array.from({ length: 20 }, (_, i) => i * 2));
    await assertInvariant(client, job.id, results);
    const tasks = await client.getJobTasks(job.id);
    const rerun = tasks.filter((t) => t.attempt === 2);
    assert.equal(rerun.length, 4, 'the four tasks running on the victim ran again');
    for (const t of rerun) assert.equal((t.attemptErrors[0]?.error as { code: string }).code, 'CC_ERR_WORKER_LOST');
    const execs = executions(log);
    assert.equal(execs.size, 20);
    assert.equal([...execs.values()].reduce((a, b) => a + b, 0), 24, '4 duplicate executions, 0 duplicate recordings');
  } finally {
    rescuer?.kill();
    await rescuer?.exited;
    await client.close();
    await foreman.cleanup();
  }
});

test('a socket cut without a close frame: the foreman notices the silence, requeues, the job completes', async () => {
  const foreman = await startTestForeman(FAST);
  const proxy = await FreezableProxy.start(foreman.port);
  const client = new Client({ url: foreman.url });
  // Through the proxy's address, the worker cannot find its foreman's token by URL: it is given.
  const cut = new Worker({ foremanUrl: `ws://127.0.0.1:${proxy.port}/ws`, workerId: 'cut', maxConcurrentTasks: 2, reconnectIntervalMs: 50, logLevel: 'silent', token: foreman.credentials!.workerToken });
  cut.handle('fault.work', handlers['fault.work'] as never);
  const direct = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'direct', maxConcurrentTasks: 4, logLevel: 'silent' });
  direct.handle('fault.work', handlers['fault.work'] as never);
  try {
    await cut.start();
    const job = await client.submitMany(Array.from({ length: 6 }, (_, i) => ({ type: 'fault.work', input: { v: i, ms: 400 } })));
    await waitFor(() => cut.runningTasks.length === 2 || null, { message: 'cut worker busy' });
    proxy.freeze();
    await direct.start();
    const results = await job.result();
    assert.deepEqual(results, [0, 2, 4, 6, 8, 10]);
    await assertInvariant(client, job.id, results);
    const lost = (await client.getJobTasks(job.id)).filter((t) => t.attemptErrors.length > 0);
    assert.equal(lost.length, 2);
    await waitFor(async () => ((await client.workers()).find((w) => w.worker_id === 'cut')?.status === 'offline') || null, { message: 'cut worker marked offline' });
  } finally {
    await Promise.all([cut.stop({ drainTimeoutMs: 0 }), direct.stop()]);
    await proxy.close();
    await client.close();
    await foreman.cleanup();
  }
});

test('a worker that heartbeats but never finishes (zombie) loses the task at its deadline; its late result is refused', async () => {
  const foreman = await startTestForeman(FAST);
  const client = new Client({ url: foreman.url });
  const zombie = await RawSocket.open(foreman.wsUrl);
  let heartbeats: NodeJS.Timeout | null = null;
  const real = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'real', logLevel: 'silent' });
  real.handle('fault.work', handlers['fault.work'] as never);
  try {
    zombie.send(hello('zombie', ['fault.*']));
    await zombie.next((m) => m.type === 'welcome');
    const task = await client.submit('fault.work', { v: 21 }, { timeoutMs: 200 });
    const assign = await zombie.next((m) => m.type === 'assign_tasks');
    const ref = { taskId: assign.tasks[0].taskId, attempt: assign.tasks[0].attempt };
    heartbeats = setInterval(() => zombie.send({ type: 'heartbeat', running: [ref] }), 100);
    const cancel = await zombie.next((m) => m.type === 'cancel_task', 5_000);
    assert.equal(cancel.taskId, ref.taskId);
    await real.start();
    assert.equal(await task.result(), 42);
    const t = await client.getTask(task.taskId);
    assert.equal(t.attempt, 2);
    assert.equal((t.attemptErrors[0].error as { reason: string }).reason, 'zombie');
    zombie.send({ type: 'task_result', taskId: ref.taskId, attempt: ref.attempt, status: 'completed', result: 999 });
    await zombie.next((m) => m.type === 'result_ack');
    await assertInvariant(client, task.jobId, [42]);
  } finally {
    if (heartbeats) clearInterval(heartbeats);
    await zombie.close();
    await real.stop();
    await client.close();
    await foreman.cleanup();
  }
});

test('a worker whose heartbeats stop listing a task it was given loses that task', async () => {
  const foreman = await startTestForeman(FAST);
  const client = new Client({ url: foreman.url });
  const forgetful = await RawSocket.open(foreman.wsUrl);
  let heartbeats: NodeJS.Timeout | null = null;
  const real = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'real-2', logLevel: 'silent' });
  real.handle('fault.work', handlers['fault.work'] as never);
  try {
    forgetful.send(hello('forgetful', ['fault.*']));
    await forgetful.next((m) => m.type === 'welcome');
    const task = await client.submit('fault.work', { v: 5 });
    await forgetful.next((m) => m.type === 'assign_tasks');
    heartbeats = setInterval(() => forgetful.send({ type: 'heartbeat', running: [] }), 100);
    // Taken back after two heartbeats that do not list it (it may come straight back to the
    // same worker, which has a free slot again, so look at the attempt history, not the state).
    await waitFor(async () => (await client.getTask(task.taskId)).attemptErrors.length >= 1 || null, { message: 'task taken back' });
    clearInterval(heartbeats);
    heartbeats = null;
    await forgetful.close();
    await real.start();
    assert.equal(await task.result(), 10);
    assert.equal((((await client.getTask(task.taskId)).attemptErrors[0].error) as { reason: string }).reason, 'dropped');
  } finally {
    if (heartbeats) clearInterval(heartbeats);
    await forgetful.close();
    await real.stop();
    await client.close();
    await foreman.cleanup();
  }
});

test('a result sent twice is recorded once', async () => {
  const foreman = await startTestForeman(FAST);
  const client = new Client({ url: foreman.url });
  const w = await RawSocket.open(foreman.wsUrl);
  try {
    w.send(hello('twice', ['fault.*']));
    await w.next((m) => m.type === 'welcome');
    const task = await client.submit('fault.work', { v: 1 });
    const assign = await w.next((m) => m.type === 'assign_tasks');
    const result = (value: number) => ({ type: 'task_result', taskId: assign.tasks[0].taskId, attempt: assign.tasks[0].attempt, status: 'completed', result: value });
    w.send([result(2), result(3)]);
    w.send(result(4));
    assert.equal(await task.result(), 2);
    await waitFor(() => w.received.filter((m) => m.type === 'result_ack').flatMap((m) => m.tasks).length >= 3 || null, { message: 'all three acknowledged' });
    await assertInvariant(client, task.jobId, [2]);
    assert.match(await (await foreman.fetch('/metrics')).text(), /crowdcompute_results_rejected_total 2/);
  } finally {
    await w.close();
    await client.close();
    await foreman.cleanup();
  }
});

test('a result for an old attempt is refused; only the current attempt records', async () => {
  const foreman = await startTestForeman(FAST);
  const client = new Client({ url: foreman.url });
  const a = await RawSocket.open(foreman.wsUrl);
  const b = await RawSocket.open(foreman.wsUrl);
  try {
    a.send(hello('a', ['fault.*']));
    await a.next((m) => m.type === 'welcome');
    const task = await client.submit('fault.work', { v: 7 });
    const first = await a.next((m) => m.type === 'assign_tasks');
    await a.close(); // the foreman requeues it at once
    b.send(hello('b', ['fault.*']));
    await b.next((m) => m.type === 'welcome');
    const second = await b.next((m) => m.type === 'assign_tasks');
    assert.equal(second.tasks[0].attempt, first.tasks[0].attempt + 1);
    const a2 = await RawSocket.open(foreman.wsUrl);
    a2.send(hello('a', []));
    await a2.next((m) => m.type === 'welcome');
    a2.send({ type: 'task_result', taskId: task.taskId, attempt: first.tasks[0].attempt, status: 'completed', result: 'stale' });
    await a2.next((m) => m.type === 'result_ack');
    assert.equal((await client.getTask(task.taskId)).status, 'running', 'the stale result did not record');
    b.send({ type: 'task_result', taskId: task.taskId, attempt: second.tasks[0].attempt, status: 'completed', result: 14 });
    assert.equal(await task.result(), 14);
    await assertInvariant(client, task.jobId, [14]);
    await a2.close();
  } finally {
    await b.close();
    await client.close();
    await foreman.cleanup();
  }
});

/**
 * Kill the foreman mid-way through a 10,000-task job, restart it on the same file, and check
 * the invariant. With `outlastLeases`, the foreman stays down until every lease has expired,
 * as after a slow restart on a busy machine: a restarted foreman must then wait for its
 * returning worker instead of handing that worker's tasks out again.
 */
async function crashAndRestart(options: { outlastLeases: boolean }): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cc-crash-'));
  const port = await freePort();
  const file = join(dir, 'cc.db');
  const args = ['--database', `sqlite:${file}`, '--heartbeat-interval', '200', '--lease-ttl', '3000'];
  const log = join(dir, 'exec.log');
  let foreman = await spawnForemanProcess(port, args);
  const worker = spawnWorkerProcess(['--foreman', foreman.wsUrl, '--id', 'steady', '--concurrency', '16', '--handlers', FIXTURE, '--reconnect-interval', '100'], { CC_EXEC_LOG: log });
  const client = new Client({ url: foreman.url, reconnectIntervalMs: 100, connectTimeoutMs: 30_000 });
  try {
    await waitFor(async () => (await client.stats()).connected_workers === 1, { message: 'worker connects' });
    const N = 10_000;
    const job = await client.submitMany(Array.from({ length: N }, (_, i) => ({ type: 'fault.work', input: { v: i, ms: 1 } })));
    const db = new Database(file, { readonly: true });
    try {
      const latest = () => (db.prepare(`SELECT max(lease_expires_at) AS t FROM tasks WHERE state = 'running'`).get() as { t: number | null }).t;
      // Crash while tasks are out on the worker (on a busy machine there are moments when none
      // are, e.g. while a slow worker reconnects): that is what the restart must cope with.
      await waitFor(() => ((job.progressSnapshot?.fraction ?? 0) >= 0.3 && latest() !== null) || null, { timeoutMs: 60_000, intervalMs: 20, message: '30% done, tasks running' });
      foreman.kill('SIGKILL');
      await foreman.exited;
      const doneAtCrash = executions(log).size;
      assert.ok(doneAtCrash < N, `the crash came mid-job (${doneAtCrash} of ${N} had run)`);
      // The kill can land between a tick's result commit and its next claim, when no task is
      // out; then there is no lease to outlast, and the restart has nothing to wait for.
      const until = latest();
      if (options.outlastLeases && until !== null) {
        await waitFor(() => Date.now() > until || null, { message: 'every lease has expired', timeoutMs: 10_000, intervalMs: 100 });
      }
    } finally {
      db.close();
    }
    foreman = await spawnForemanProcess(port, args);
    const results = await job.result();
    assert.equal(results.length, N);
    assert.ok(results.every((r, i) => r === i * 2), 'every result in order');
    await assertInvariant(client, job.id, results);
    const execs = executions(log);
    assert.equal(execs.size, N, 'every task ran');
    const duplicates = [...execs.values()].reduce((a, b) => a + b, 0) - N;
    // Tasks running at the crash, and results finished but not yet acknowledged, are kept by
    // their worker: it reconnects with them (its reconnection delay is capped at a third of
    // the lease TTL) and the restarted foreman waits one lease TTL for it before reaping.
    if (options.outlastLeases) assert.equal(duplicates, 0, 'nothing the returning worker held ran again');
    else assert.ok(duplicates <= 16, `${duplicates} duplicate executions (at most one worker's worth)`);
  } finally {
    await client.close();
    worker.kill();
    await worker.exited;
    foreman.kill();
    await foreman.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the foreman killed with SIGKILL mid-way through a 10,000-task job and restarted: the job completes, each result recorded once', () =>
  crashAndRestart({ outlastLeases: false }));

test('the foreman down for longer than a lease TTL: on restart it waits for its worker, whose running and finished tasks do not run again', () =>
  crashAndRestart({ outlastLeases: true }));
