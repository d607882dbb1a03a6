/**
 * Several foremen on one PostgreSQL database (a fresh schema per test). Workers and clients
 * may connect to any foreman; work, completions and cancellations cross between them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startForeman, type Foreman } from '../../src/foreman/index.ts';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { freePort, spawnForemanProcess, spawnWorkerProcess, waitFor, type ChildForeman, type ChildWorker } from '../../src/testing/index.ts';
import { testPostgresUrl } from '../../src/store/postgres/postgres-test-url.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/fault-handlers.ts', import.meta.url));
const pgUrl = await testPostgresUrl();
let schemaSeq = 0;

async function dropSchema(schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: pgUrl! });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await c.end();
}

async function cluster(n: number, options: { heartbeatIntervalMs?: number; leaseTtlMs?: number } = {}) {
  const schema = `cc_mf_${process.pid}_${++schemaSeq}`;
  const database = `${pgUrl}?schema=${schema}`;
  // Started together: the migrations must not race (advisory lock).
  const foremen = await Promise.all(Array.from({ length: n }, (_, i) =>
    startForeman({ port: 0, host: '127.0.0.1', database, foremanId: `f${i + 1}`, logLevel: process.env.CC_TEST_LOG ?? 'silent', ...options })));
  return { schema, database, foremen, stop: async () => { await Promise.all(foremen.map((f) => f.stop())); await dropSchema(schema); } };
}

const skip = pgUrl ? false : 'no PostgreSQL reachable (CROWDCOMPUTE_TEST_POSTGRES); under CI=true this fails instead';

test('work submitted at one foreman is spread over workers connected to all of them', { skip }, async () => {
  const c = await cluster(3);
  const workers = c.foremen.map((f, i) => new Worker({ foremanUrl: f.wsUrl, workerId: `w${i + 1}`, maxConcurrentTasks: 4, logLevel: 'silent' })
    .handle('spread.*', async (t) => { await new Promise((r) => setTimeout(r, 5)); return t.input * 2; }));
  const client = new Client({ url: c.foremen[0].url });
  try {
    await Promise.all(workers.map((w) => w.start()));
    const job = await client.submitMany(Array.from({ length: 300 }, (_, i) => ({ type: 'spread.run', input: i })));
    assert.deepEqual(await job.result(), Array.from({ length: 300 }, (_, i) => i * 2));
    const tasks = await client.getJobTasks(job.id, { limit: 300 });
    const byWorker = new Map<string, number>();
    for (const t of tasks) byWorker.set(t.workerId!, (byWorker.get(t.workerId!) ?? 0) + 1);
    assert.equal(byWorker.size, 3, `all three workers took tasks: ${JSON.stringify([...byWorker])}`);
    const info = await client.getJob(job.id);
    assert.equal(info.completedTasks, 300);
    const listed = (await client.workers()).map((w) => `${w.worker_id}@${w.foreman_id}`).sort();
    assert.deepEqual(listed, ['w1@f1', 'w2@f2', 'w3@f3'], 'every foreman sees every worker and where it is connected');
  } finally {
    await client.close();
    await Promise.all(workers.map((w) => w.stop()));
    await c.stop();
  }
});

test('a client connected to one foreman hears of completion recorded through another', { skip }, async () => {
  const c = await cluster(2);
  const worker = new Worker({ foremanUrl: c.foremen[1].wsUrl, workerId: 'only-on-f2', logLevel: 'silent' }).handle('far.*', async (t) => `done ${t.input}`);
  const client = new Client({ url: c.foremen[0].url });
  try {
    await worker.start();
    const job = await client.submit('far.away', 7);
    assert.equal(await job.result(), 'done 7');
    const seen: number[] = [];
    const many = await client.submitMany(Array.from({ length: 50 }, (_, i) => ({ type: 'far.many', input: i })));
    many.onProgress((p) => seen.push(p.counts.completed));
    assert.equal((await many.result()).length, 50);
    assert.equal(seen.at(-1), 50, 'progress, too, crossed foremen');
  } finally {
    await client.close();
    await worker.stop();
    await c.stop();
  }
});

test('cancelling at one foreman stops a task running on a worker connected to another', { skip }, async () => {
  const c = await cluster(2);
  let aborted = false;
  const worker = new Worker({ foremanUrl: c.foremen[1].wsUrl, workerId: 'runner', maxConcurrentTasks: 1, logLevel: 'silent' })
    .handle('hold', (_t, ctx) => new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => { aborted = true; reject(ctx.signal.reason); })));
  const client = new Client({ url: c.foremen[0].url });
  try {
    await worker.start();
    const job = await client.submitMany([{ type: 'hold' }, { type: 'hold' }]);
    await waitFor(() => worker.runningTasks.length === 1 || null, { message: 'task running on f2' });
    await client.cancel(job.id);
    await waitFor(() => aborted || null, { message: 'the handler on f2 was aborted' });
    const outcome = await job.outcome();
    assert.equal(outcome.state, 'cancelled');
    await waitFor(() => worker.runningTasks.length === 0 || null);
  } finally {
    await client.close();
    await worker.stop();
    await c.stop();
  }
});

test('three foremen on one database, one killed with SIGKILL mid-job: workers move, nothing lost or recorded twice', { skip }, async () => {
  const schema = `cc_mf_${process.pid}_${++schemaSeq}`;
  const database = `${pgUrl}?schema=${schema}`;
  const dir = mkdtempSync(join(tmpdir(), 'cc-mf-'));
  const log = join(dir, 'exec.log');
  const ports = await Promise.all([freePort(), freePort(), freePort()]);
  const args = (i: number) => ['--database', database, '--id', `f${i + 1}`, '--heartbeat-interval', '200', '--lease-ttl', '2000'];
  const started = await Promise.allSettled(ports.map((p, i) => spawnForemanProcess(p, args(i))));
  const foremen: ChildForeman[] = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    // The ones that did start are stopped before the test fails.
    for (const f of foremen) f.kill('SIGKILL');
    await Promise.all(foremen.map((f) => f.exited));
    await dropSchema(schema);
    throw (failed as PromiseRejectedResult).reason;
  }
  const wsList = (first: number) => [0, 1, 2].map((k) => foremen[(first + k) % 3].wsUrl).join(',');
  // Each worker starts on a different foreman and knows all three.
  const workers: ChildWorker[] = [0, 1, 2].map((i) => spawnWorkerProcess(['--foreman', wsList(i), '--id', `mw${i + 1}`, '--concurrency', '8',
    '--handlers', FIXTURE, '--reconnect-interval', '100'], { CC_EXEC_LOG: log }));
  // The client starts on the foreman that will be killed: it must fail over and still get its results.
  const client = new Client({ url: [foremen[0].url, foremen[1].url, foremen[2].url], reconnectIntervalMs: 100 });
  try {
    await waitFor(async () => (await client.stats()).workers && ((await client.workers()).filter((w) => w.status === 'online').length === 3) || null, { timeoutMs: 20_000, message: 'three workers online' });
    const N = 3_000;
    const job = await client.submitMany(Array.from({ length: N }, (_, i) => ({ type: 'fault.work', input: { v: i, ms: 2 } })));
    await waitFor(() => (job.progressSnapshot?.fraction ?? 0) >= 0.25 || null, { timeoutMs: 60_000, message: '25% done' });
    foremen[0].kill('SIGKILL');
    await foremen[0].exited;
    const results = await job.result();
    assert.ok(results.length === N && results.every((r, i) => r === i * 2), 'every result, in order');
    const info = await client.getJob(job.id);
    assert.equal(info.completedTasks, N, 'each task recorded exactly once');
    const lines = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
    assert.equal(new Set(lines.map((l) => l.split(' ')[0])).size, N, 'every task ran');
    const moved = (await client.workers()).filter((w) => w.status === 'online' && w.foreman_id !== 'f1');
    assert.equal(moved.length, 3, 'the workers of the dead foreman reconnected to the others');
    assert.equal((await client.getJob(job.id)).status, 'completed', 'queries, too, fail over to a live foreman');
  } finally {
    await client.close();
    for (const w of workers) w.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
    for (const f of foremen) f.kill('SIGKILL');
    await Promise.all(foremen.map((f) => f.exited));
    rmSync(dir, { recursive: true, force: true });
    await dropSchema(schema);
  }
});

test('sharing across foremen: a job\'s cap holds over workers of both, and a small job passes a large one', { skip }, async () => {
  const c = await cluster(2);
  const inFlight = new Map<string, number>();
  const peak = new Map<string, number>();
  const byWorker = new Map<string, Set<string>>();
  // Two slots per worker, a cap of 3: neither foreman can reach the cap alone, so both claim for
  // the job at once (the store counts both foremen's running tasks in each claim; the store
  // conformance suite shows that count cutting a claim).
  const workers = c.foremen.map((f, i) => new Worker({ foremanUrl: f.wsUrl, workerId: `share-w${i + 1}`, maxConcurrentTasks: 2, logLevel: 'silent' })
    .handle('share.*', async (t) => {
      const tag = (t.input as { tag: string }).tag;
      const n = (inFlight.get(tag) ?? 0) + 1;
      inFlight.set(tag, n);
      peak.set(tag, Math.max(peak.get(tag) ?? 0, n));
      byWorker.set(tag, (byWorker.get(tag) ?? new Set()).add(`w${i + 1}`));
      await new Promise((r) => setTimeout(r, 20));
      inFlight.set(tag, inFlight.get(tag)! - 1);
      return null;
    }));
  const client = new Client({ url: c.foremen[0].url });
  const other = new Client({ url: c.foremen[1].url });
  try {
    await Promise.all(workers.map((w) => w.start()));
    const tasks = (tag: string, n: number) => Array.from({ length: n }, () => ({ type: 'share.run', input: { tag } }));
    // Long enough (about a second on one foreman's two slots) that the other foreman's once-a-second look finds it even if it missed the announcement.
    const capped = await client.submitMany(tasks('capped', 100), { maxConcurrency: 3 });
    await capped.result();
    assert.ok(peak.get('capped')! <= 3, `a job capped at 3 ran ${peak.get('capped')} tasks at once over two foremen`);
    assert.equal(byWorker.get('capped')!.size, 2, 'workers of both foremen ran it');

    const big = await client.submitMany(tasks('big', 400));
    const small = await other.submitMany(tasks('small', 10));
    await small.result();
    const bigDone = (await client.getJob(big.id)).completedTasks;
    assert.ok(bigDone < 200, `the small job finished when the large one had done ${bigDone} of 400`);
    await big.result();
  } finally {
    await Promise.all([client.close(), other.close()]);
    await Promise.all(workers.map((w) => w.stop()));
    await c.stop();
  }
});
