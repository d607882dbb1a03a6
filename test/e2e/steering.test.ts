/**
 * Steering work through the public interfaces: retrying failed jobs and tasks (SDK, REST, CLI),
 * work nobody can run (warnings at submission, queue deadlines), shipped functions refused for
 * what they reach outside themselves, map chunks that keep the results of the arguments that
 * did not throw, and the foreman's Prometheus endpoints read with a real exposition parser.
 */
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { CrowdComputeError } from '../../src/protocol/index.ts';
import { startTestForeman, waitFor, type TestForeman } from '../../src/testing/index.ts';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [bin, ...args], { env: process.env, timeout: 90_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let foreman: TestForeman;
let worker: Worker;
let client: Client;
let healthy = false;

before(async () => {
  foreman = await startTestForeman({ queueTimeoutMs: 60_000 });
  worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'steer', maxConcurrentTasks: 4, allowCode: true, logLevel: 'silent' })
    .handle('flaky.*', async (t) => { if (!healthy) throw new Error(`flaky ${String(t.input)}`); return `ok ${String(t.input)}`; })
    .handle('fine.*', async (t) => t.input);
  await worker.start();
  client = new Client({ url: foreman.url });
});

after(async () => {
  await client.close();
  await worker.stop();
  await foreman.cleanup();
});

const fails = (code: string) => (err: unknown) => err instanceof CrowdComputeError && err.code === code;

test('retry from the SDK: only the failed tasks run again, recorded results stay, and the new handle follows the job to its end', async () => {
  healthy = false;
  const job = await client.submitMany([{ type: 'fine.a', input: 'A' }, { type: 'flaky.b', input: 'B' }, { type: 'flaky.c', input: 'C' }]);
  const first = await job.outcome();
  assert.equal(first.state, 'failed');
  assert.deepEqual(first.results, ['A', null, null]);
  healthy = true;
  const again = await job.retry();
  assert.deepEqual(await again.result(), ['A', 'ok B', 'ok C']);
  const tasks = await client.getJobTasks(job.id);
  assert.deepEqual(tasks.map((t) => t.attempt), [1, 2, 2], 'the completed task did not run again');
  assert.equal(tasks[1].attempts.length, 2, 'both attempts of a retried task are in its history');
  assert.equal(tasks[1].attempts[0].status, 'failed');
  assert.equal(tasks[1].attempts[0].worker_id, 'steer');
  assert.equal(tasks[1].attempts[1].status, 'completed');
  await assert.rejects(again.retry(), fails('CC_ERR_NOTHING_TO_RETRY'), 'a completed job has nothing to retry');
});

test('retry over REST (a job, one task) and from the CLI; a job with nothing to retry is a 409 and a clear error', async () => {
  healthy = false;
  const job = await client.submitMany([{ type: 'flaky.x', input: 1 }, { type: 'flaky.y', input: 2 }]);
  await job.outcome();
  healthy = true;
  const post = (path: string) => foreman.fetch(path, { method: 'POST' });
  const one = await post(`/api/tasks/${encodeURIComponent(`${job.id}.0`)}/retry`);
  assert.equal(one.status, 200);
  const body = await one.json();
  assert.equal(body.retried, 1);
  assert.equal(body.failed_tasks, 1, 'the other failed task is still failed');
  await waitFor(async () => (await client.getJob(job.id)).status === 'failed' || null, { message: 'the retried task ran; the job ended again' });
  const viaCli = await cli(['retry', job.id, '--foreman', foreman.url, '--wait']);
  assert.equal(viaCli.code, 0, viaCli.stderr);
  assert.match(viaCli.stderr, /1 task put back in the queue/);
  assert.match(viaCli.stderr, /completed/);
  assert.equal((await client.getJob(job.id)).status, 'completed');
  const nothing = await post(`/api/jobs/${job.id}/retry`);
  assert.equal(nothing.status, 409);
  assert.equal((await nothing.json()).code, 'CC_ERR_NOTHING_TO_RETRY');
  const cliNothing = await cli(['retry', job.id, '--foreman', foreman.url]);
  assert.equal(cliNothing.code, 1);
  assert.match(cliNothing.stderr, /has no failed or cancelled task to retry/);
});

test('work nobody serves: a warning from the SDK, REST and the CLI; with a queue deadline its tasks fail with CC_ERR_NO_WORKER', async () => {
  const job = await client.submitMany([{ type: 'nobody.here', input: 1 }, { type: 'fine.ok', input: 2 }], { queueTimeoutMs: 300 });
  assert.equal(job.warnings.length, 1);
  assert.match(job.warnings[0], /no connected worker handles task type "nobody\.here"/);
  const outcome = await job.outcome();
  assert.equal(outcome.state, 'failed');
  assert.deepEqual(outcome.results, [null, 2]);
  assert.equal(outcome.failures[0].error?.code, 'CC_ERR_NO_WORKER');
  assert.match(outcome.failures[0].error?.message ?? '', /queue deadline/);

  const rest = await foreman.fetch('/api/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'tasks', tasks: [{ type: 'nobody.else' }] }) });
  assert.match((await rest.json()).warnings[0], /"nobody\.else"/);
  const viaCli = await cli(['submit', 'nobody.either', '{}', '--no-wait', '--json', '--foreman', foreman.url]);
  assert.equal(viaCli.code, 0);
  assert.match(viaCli.stderr, /warning: no connected worker handles task type "nobody\.either"/);
  // The foreman's own default deadline (60 s here) applies to jobs that do not set one.
  assert.equal((await client.getJob(JSON.parse(viaCli.stdout).job_id)).queueTimeoutMs, 60_000);
});

test('a shipped function that reaches outside itself is refused at submission, naming what it reaches', async () => {
  const factor = 3;
  await assert.rejects(client.map((x: number) => x * factor, [1, 2]), (err: unknown) =>
    err instanceof CrowdComputeError && err.code === 'CC_ERR_CODE_COMPILE' && /variable from outside itself: "factor"/.test(err.message));
  const rest = await foreman.fetch('/api/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'map', code: '(x) => helper(x) + offset', args: [1] }) });
  assert.equal(rest.status, 400);
  assert.match((await rest.json()).message, /"helper", "offset"/);
  assert.deepEqual(await client.map((x: number) => Math.max(x, JSON.parse('2')), [1, 3]), [2, 3], 'the sandbox\'s own globals are fine');
});

test('when some arguments of a map chunk throw, the others keep their results and each failure names its argument in the whole job', async () => {
  const job = await client.submitMap((x: number) => { if (x % 7 === 3) throw new RangeError(`bad ${x}`); return x * 2; }, Array.from({ length: 20 }, (_, i) => i), { chunkSize: 5 });
  const o = await job.outcome();
  assert.equal(o.state, 'failed');
  assert.deepEqual(o.results, Array.from({ length: 20 }, (_, i) => (i % 7 === 3 ? null : i * 2)));
  assert.deepEqual(o.failures.map((f) => f.index), [3, 10, 17]);
  assert.match(o.failures[1].error?.message ?? '', /argument 10: RangeError: bad 10/);
});

test('the foreman\'s Prometheus endpoints parse with a real exposition parser and carry the histograms by task type', async () => {
  await (await client.submitMany([{ type: 'fine.metric', input: 1 }])).result();
  for (const path of ['/metrics', '/metrics/prometheus']) {
    const res = await foreman.fetch(path);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    const text = await res.text();
    const families = new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f]));
    for (const [name, type] of [
      ['crowdcompute_task_queue_wait_seconds', 'HISTOGRAM'], ['crowdcompute_task_execution_seconds', 'HISTOGRAM'], ['crowdcompute_task_latency_seconds', 'HISTOGRAM'],
      ['crowdcompute_store_commit_seconds', 'HISTOGRAM'], ['crowdcompute_tasks', 'GAUGE'], ['crowdcompute_queue_depth', 'GAUGE'], ['crowdcompute_workers', 'GAUGE'],
      ['crowdcompute_protocol_errors_total', 'COUNTER'], ['crowdcompute_tasks_finished_total', 'COUNTER'], ['process_cpu_user_seconds_total', 'COUNTER'], ['nodejs_heap_size_used_bytes', 'GAUGE'],
    ] as const) {
      assert.equal(families.get(name)?.type, type, `${path}: ${name} is a ${type}`);
    }
    const finished = families.get('crowdcompute_tasks_finished_total')!.metrics;
    assert.ok(finished.some((m) => m.labels?.type === 'fine.metric' && m.labels.outcome === 'completed' && Number(m.value) >= 1), 'outcomes counted by task type');
    assert.match(text, /crowdcompute_task_execution_seconds_count\{type="fine\.metric"\} [1-9]/);
    const workers = families.get('crowdcompute_workers')!.metrics;
    assert.equal(workers.find((m) => m.labels?.kind === 'node')?.value, '1', 'workers by kind');
  }
});
