/**
 * The dead letters through the SDK, the REST API and the CLI: tasks that fail for good (a
 * permanent error, or retries used up) are listed grouped by type and error, each key seeing
 * only its own; a bulk retry is bounded and owner-scoped; once the handler is fixed, a bulk
 * retry reopens the finished job, which completes with every result recorded once and in
 * order.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { NonRetryableError, Worker } from '../../src/worker/index.ts';
import { Client, type JobHandle } from '../../src/client/index.ts';
import { CrowdComputeError } from '../../src/protocol/index.ts';
import { startTestForeman, waitFor, type TestForeman } from '../../src/testing/index.ts';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));

interface Ran { code: number; stdout: string; stderr: string }

/** Run the CLI with a key against the test foreman; a failure is returned (with its exit code), not thrown. */
async function cli(key: string, ...args: string[]): Promise<Ran> {
  try {
    const r = await run(process.execPath, [bin, ...args, '--foreman', foreman.url, '--api-key', key], { timeout: 90_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function ok(key: string, ...args: string[]): Promise<string> {
  const r = await cli(key, ...args);
  assert.equal(r.code, 0, `crowdcompute ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

let foreman: TestForeman;
let worker: Worker;
const keys = { a: '', b: '', admin: '' };
const clients: Record<'a' | 'b' | 'admin', Client> = {} as never;
/** While true the parse and fetch handlers fail; the fix sets it false. */
let broken = true;
/** Runs of each input once fixed: every failed task must run exactly once more. */
const runsAfterFix = new Map<number, number>();
let jobA: JobHandle;
let jobB: JobHandle;

before(async () => {
  foreman = await startTestForeman();
  keys.admin = foreman.credentials!.apiKey;
  const db = ['--database', foreman.databaseUrl];
  [keys.a, keys.b] = await Promise.all([
    run(process.execPath, [bin, 'key', 'create', '--scopes', 'read,submit', '--name', 'owner a', ...db]).then((r) => r.stdout.trim()),
    run(process.execPath, [bin, 'key', 'create', '--scopes', 'read,submit', '--name', 'owner b', ...db]).then((r) => r.stdout.trim()),
  ]);
  for (const k of ['a', 'b', 'admin'] as const) clients[k] = new Client({ url: foreman.url, apiKey: keys[k] });
  const counted = (n: number) => { if (!broken) runsAfterFix.set(n, (runsAfterFix.get(n) ?? 0) + 1); };
  worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'dead-letters-worker', maxConcurrentTasks: 4, logLevel: 'silent' })
    .handle('dl.ok', async (t) => `ok ${t.input as number}`)
    .handle('dl.parse', async (t) => {
      const n = t.input as number;
      counted(n);
      // A permanent error: not retried; its stack-like second line must not split the group.
      if (broken) throw new NonRetryableError(`cannot parse the record\n    at parse (records.ts:${n})`);
      return `parsed ${n}`;
    })
    .handle('dl.fetch', async (t) => {
      const n = t.input as number;
      counted(n);
      if (broken) throw new Error('upstream refused the request');
      return `fetched ${n}`;
    });
  await worker.start();
  jobA = await clients.a.submitMany([
    { type: 'dl.ok', input: 0 }, { type: 'dl.parse', input: 1 }, { type: 'dl.fetch', input: 2 },
    { type: 'dl.parse', input: 3 }, { type: 'dl.fetch', input: 4 }, { type: 'dl.parse', input: 5 },
  ], { maxAttempts: 2 });
  jobB = await clients.b.submitMany([{ type: 'dl.parse', input: 10 }, { type: 'dl.parse', input: 11 }], { maxAttempts: 2 });
  for (const job of [jobA, jobB]) assert.equal((await job.outcome()).state, 'failed');
});

after(async () => {
  for (const c of Object.values(clients)) await c?.close();
  await worker?.stop();
  await foreman?.cleanup();
});

test('failed tasks are grouped by type and error with counts, times and examples; a key sees only its own, admin every owner\'s', async () => {
  const mine = await clients.a.listFailed();
  assert.equal(mine.nextOffset, null);
  const parseTask = await clients.a.getTask(mine.groups.find((g) => g.type === 'dl.parse')!.taskIds[0]);
  assert.deepEqual(mine.groups.map((g) => [g.type, g.message, g.count, g.jobs]), [
    ['dl.parse', 'cannot parse the record', 3, 1],
    ['dl.fetch', 'upstream refused the request', 2, 1],
  ]);
  assert.equal(mine.groups[0].errorCode, parseTask.error?.code ?? parseTask.error?.name, 'the error code the task has');
  for (const g of mine.groups) {
    assert.deepEqual(new Set(g.jobIds), new Set([jobA.id]));
    assert.ok(Date.parse(g.firstFailedAt) <= Date.parse(g.lastFailedAt));
  }
  assert.equal(mine.groups[0].taskIds.length, 3);

  const everyone = await clients.admin.listFailed({ type: 'dl.parse' });
  assert.deepEqual(everyone.groups.map((g) => [g.count, g.jobs]), [[5, 2]], 'admin sees both owners');
  const theirs = await clients.b.listFailed();
  assert.deepEqual(theirs.groups.map((g) => [g.type, g.count]), [['dl.parse', 2]]);
  assert.ok(!JSON.stringify(theirs).includes(jobA.id), "no trace of the other owner's job");

  // The REST API's own names, filters and paging.
  const res = await fetch(`${foreman.url}/api/failed?error_code=${encodeURIComponent(mine.groups[1].errorCode)}&type=dl.fetch&limit=1`, { headers: { authorization: `Bearer ${keys.a}` } });
  assert.equal(res.status, 200);
  const body = await res.json() as { groups: Record<string, unknown>[]; next_offset: number | null };
  assert.deepEqual(Object.keys(body.groups[0]).sort(), ['count', 'error_code', 'first_failed_at', 'job_ids', 'jobs', 'last_failed_at', 'message', 'task_ids', 'type']);
  assert.equal(body.groups[0].count, 2);
  assert.equal(body.next_offset, null);
  const paged = await clients.a.listFailed({ limit: 1 });
  assert.deepEqual([paged.groups.length, paged.nextOffset], [1, 1]);
  assert.deepEqual((await clients.a.listFailed({ limit: 1, offset: 1 })).groups.map((g) => g.type), ['dl.fetch']);
  assert.deepEqual((await clients.a.listFailed({ since: Date.now() + 60_000 })).groups, [], 'nothing failed after now');
});

test('a bulk retry is bounded, and refuses a bad filter in one line naming the limit', async () => {
  await assert.rejects(clients.a.retryFailed({ limit: 10_001 }), (err: unknown) =>
    err instanceof CrowdComputeError && err.code === 'CC_ERR_BAD_MESSAGE' && /limit: must be at most 10,000 tasks a call/.test(err.message) && !err.message.includes('\n'));
  await assert.rejects(clients.a.retryFailed({ taskIds: Array.from({ length: 10_001 }, (_, i) => `t${i}`) }), /at most 10,000 tasks a call/);
  const res = await fetch(`${foreman.url}/api/failed?limit=0`, { headers: { authorization: `Bearer ${keys.a}` } });
  assert.equal(res.status, 400);
  // A group's fields as the view shows them, an empty message included, are a valid filter.
  const emptyMessage = await fetch(`${foreman.url}/api/failed/retry`, { method: 'POST', headers: { authorization: `Bearer ${keys.a}`, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'dl.none', error_code: '', message: '' }) });
  assert.deepEqual(await emptyMessage.json(), { requeued: 0, jobs: 0, job_ids: [], more: false });
  const anonymous = await fetch(`${foreman.url}/api/failed/retry`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(anonymous.status, 401);
});

test('another key can neither see nor retry them', async () => {
  const aTasks = (await clients.a.listFailed()).groups.flatMap((g) => g.taskIds);
  assert.deepEqual(await clients.b.retryFailed({ jobId: jobA.id }), { requeued: 0, jobs: 0, jobIds: [], more: false });
  assert.deepEqual((await clients.b.retryFailed({ taskIds: aTasks })).requeued, 0);
  assert.equal((await clients.a.getJob(jobA.id)).status, 'failed');
  assert.equal((await clients.a.listFailed()).groups.reduce((n, g) => n + g.count, 0), 5, 'all still failed');
});

test('crowdcompute failed: a table by type and error, --json in the REST names, one-line errors', async () => {
  const table = await ok(keys.a, 'failed');
  const lines = table.trimEnd().split('\n');
  assert.match(lines[0], /^TYPE\s+ERROR\s+MESSAGE\s+TASKS\s+JOBS\s+LAST FAILED\s+EXAMPLE TASK$/);
  assert.match(lines[1], /^dl\.parse\s+NonRetryableError\s+cannot parse the record\s+3\s+1\s+(.+ ago|just now)\s+\S+$/);
  assert.match(lines[2], /^dl\.fetch\s+\S+\s+upstream refused the request\s+2\s+1\s/);
  assert.equal(lines.length, 3);
  const json = JSON.parse(await ok(keys.a, 'failed', '--type', 'dl.parse', '--since', '1h', '--json')) as { groups: { type: string; count: number; error_code: string }[]; next_offset: null };
  assert.deepEqual(json.groups.map((g) => [g.type, g.count]), [['dl.parse', 3]]);
  assert.equal(json.next_offset, null);
  assert.match(await ok(keys.b, 'failed', 'list', '--job', jobA.id), /^no failed tasks$/m);
  const refused = await cli(keys.a, 'failed', 'retry', '--type', 'dl.parse');
  assert.equal(refused.code, 1);
  assert.match(refused.stderr.trim(), /^crowdcompute: this would requeue 3 failed tasks in 1 group: add --yes to confirm/);
  const badSince = await cli(keys.a, 'failed', '--since', 'yesterday-ish');
  assert.notEqual(badSince.code, 0);
  assert.match(badSince.stderr, /--since "yesterday-ish" is not a time/);
  const badLimit = await cli(keys.a, 'failed', 'retry', '--yes', '--limit', '20000');
  assert.notEqual(badLimit.code, 0);
  assert.match(badLimit.stderr, /--limit must be at most 10,?000/);
  assert.equal((await clients.a.getJob(jobA.id)).status, 'failed', 'nothing was retried');
});

test('with the handler fixed, bulk retries reopen the finished jobs, which complete with each result recorded once, in order', async () => {
  broken = false;
  const byType = await clients.a.retryFailed({ type: 'dl.parse' });
  assert.deepEqual(byType, { requeued: 3, jobs: 1, jobIds: [jobA.id], more: false });
  assert.notEqual((await clients.a.getJob(jobA.id)).status, 'failed', 'the job is open again');
  assert.equal((await ok(keys.a, 'failed', 'retry', '--error', (await clients.a.listFailed()).groups[0].errorCode, '--type', 'dl.fetch', '--yes')).trim(), 'requeued 2 tasks in 1 job');
  await waitFor(async () => (await clients.a.getJob(jobA.id)).status === 'completed' || null, { timeoutMs: 30_000, message: "A's job completes" });
  const results = await clients.a.getJobResults(jobA.id);
  assert.deepEqual(results.results, ['ok 0', 'parsed 1', 'fetched 2', 'parsed 3', 'fetched 4', 'parsed 5']);
  assert.deepEqual(results.failures, []);
  const job = await clients.a.getJob(jobA.id);
  assert.deepEqual([job.completedTasks, job.failedTasks, job.totalTasks], [6, 0, 6]);

  // B's two, one a call: the first says more remain.
  const first = JSON.parse(await ok(keys.b, 'failed', 'retry', '--limit', '1', '--yes', '--json'));
  assert.deepEqual(first, { requeued: 1, jobs: 1, job_ids: [jobB.id], more: true });
  assert.match(await ok(keys.b, 'failed', 'retry', '-y'), /^requeued 1 task in 1 job$/m);
  await waitFor(async () => (await clients.b.getJob(jobB.id)).status === 'completed' || null, { timeoutMs: 30_000, message: "B's job completes" });
  assert.deepEqual((await clients.b.getJobResults(jobB.id)).results, ['parsed 10', 'parsed 11']);

  assert.deepEqual([...runsAfterFix.entries()].sort((x, y) => x[0] - y[0]), [[1, 1], [2, 1], [3, 1], [4, 1], [5, 1], [10, 1], [11, 1]], 'each failed task ran once more');
  assert.deepEqual((await clients.admin.listFailed()).groups, []);
  assert.match(await ok(keys.a, 'failed'), /^no failed tasks$/m);
  assert.match(await ok(keys.a, 'failed', 'retry'), /^no failed tasks match: nothing to retry$/m);
});
