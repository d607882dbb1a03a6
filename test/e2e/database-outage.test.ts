/**
 * The database goes away under running foremen: every connection of theirs terminated on the
 * server (twice), then PostgreSQL unreachable for several seconds behind a TCP proxy that
 * resets every connection and refuses new ones. No foreman process may exit; the job must
 * complete with each result recorded once; submissions during the outage get 503 with
 * Retry-After, and go through once it is over.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Client } from '../../src/client/index.ts';
import { FreezableProxy, freePort, localApiKeyAt, spawnForemanProcess, spawnWorkerProcess, waitFor, type ChildForeman, type ChildWorker } from '../../src/testing/index.ts';
import { testPostgresUrl } from '../../src/store/postgres/postgres-test-url.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/fault-handlers.ts', import.meta.url));
const pgUrl = await testPostgresUrl();
const skip = pgUrl ? false : 'no PostgreSQL reachable (CROWDCOMPUTE_TEST_POSTGRES); under CI=true this fails instead';

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: pgUrl! });
  await c.connect();
  try { return await fn(c); } finally { await c.end(); }
}

/** Terminate every backend of the named foremen; returns how many there were. */
const terminate = (prefix: string) => admin(async (c) => (await c.query(
  `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1 AND pid <> pg_backend_pid()`, [`crowdcompute ${prefix}%`])).rowCount ?? 0);

function executions(log: string): Map<string, number> {
  const m = new Map<string, number>();
  if (!existsSync(log)) return m;
  for (const line of readFileSync(log, 'utf8').split('\n')) if (line) m.set(line.split(' ')[0], (m.get(line.split(' ')[0]) ?? 0) + 1);
  return m;
}

test('PostgreSQL connections killed twice, then the database unreachable for 4 s: both foremen live on, the job completes, each result once', { skip, timeout: 170_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-outage-'));
  const schema = `cc_outage_${process.pid}`;
  const proxy = await FreezableProxy.start(Number(new URL(pgUrl!).port || 5432));
  const viaProxy = new URL(pgUrl!);
  viaProxy.port = String(proxy.port);
  viaProxy.searchParams.set('schema', schema);
  const prefix = `outage-${process.pid}-`;
  const log = join(dir, 'exec.log');
  const foremen: ChildForeman[] = [];
  const workers: ChildWorker[] = [];
  let client: Client | null = null;
  try {
    for (const id of ['a', 'b']) {
      foremen.push(await spawnForemanProcess(await freePort(), ['--database', viaProxy.toString(), '--id', `${prefix}${id}`,
        '--heartbeat-interval', '500', '--lease-ttl', '5s']));
    }
    for (const [i, f] of foremen.entries()) {
      workers.push(spawnWorkerProcess(['--foreman', f.wsUrl, '--id', `w${i}`, '--concurrency', '8', '--handlers', FIXTURE, '--reconnect-interval', '200'], { CC_EXEC_LOG: log }));
    }
    client = new Client({ url: foremen[0].url, connectTimeoutMs: 60_000 });
    const c = client;
    await waitFor(async () => (await c.workers()).filter((w) => w.status === 'online').length === 2, { message: 'both workers connect', timeoutMs: 30_000 });

    const N = 3_000;
    const job = await client.submitMany(Array.from({ length: N }, (_, i) => ({ type: 'fault.work', input: { v: i, ms: 3 } })));
    const reached = (f: number) => waitFor(() => (job.progressSnapshot?.fraction ?? 0) >= f || null, { timeoutMs: 60_000, message: `${f * 100}% done` });

    await reached(0.15);
    assert.ok(await terminate(prefix) >= 2, 'the foremen had connections to terminate');
    await reached(0.3);
    assert.ok(await terminate(prefix) >= 2, 'the foremen had connections again, and lost them again');
    await reached(0.45);

    proxy.cut();
    const outageStarted = Date.now();
    // A submission during the outage: 503 with Retry-After, naming the problem.
    const key = localApiKeyAt(foremen[1].url)!;
    const submitRest = () => fetch(`${foremen[1].url}/api/jobs`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'tasks', tasks: [{ type: 'fault.work', input: { v: 21 } }], idempotency_key: `rest-${process.pid}` }),
    });
    const refused = await submitRest();
    assert.equal(refused.status, 503);
    assert.ok(Number(refused.headers.get('retry-after')) > 0, 'Retry-After says when to try again');
    assert.equal((await refused.json()).code, 'CC_ERR_STORE_UNAVAILABLE');
    const health = await fetch(`${foremen[1].url}/health`);
    assert.equal(health.status, 503);
    const h = await health.json();
    assert.equal(h.status, 'degraded');
    assert.equal(h.store.state, 'unavailable');
    assert.match(h.reason, /database/);
    // The SDK, meanwhile, keeps trying within its connect timeout.
    const during = client.submit('fault.work', { v: 50 });
    await waitFor(() => Date.now() - outageStarted >= 4_000 || null, { timeoutMs: 10_000, intervalMs: 100, message: 'the outage lasts 4 s' });
    for (const f of foremen) assert.equal(f.child.exitCode, null, `foreman exited during the outage: ${f.output().slice(-1500)}`);
    proxy.restore();

    const results = await job.result();
    assert.deepEqual(results, Array.from({ length: N }, (_, i) => i * 2), 'every result, in order');
    const info = await client.getJob(job.id);
    assert.equal(info.status, 'completed');
    assert.equal(info.completedTasks, N, 'each task recorded exactly once (completed == total)');
    assert.equal(info.failedTasks, 0);
    assert.equal(await (await during).result(), 100, 'the submission made during the outage went through');
    const accepted = await waitFor(async () => { const r = await submitRest(); return r.status === 201 ? r : null; }, { timeoutMs: 30_000, message: 'REST submission accepted after the outage' });
    assert.equal((await accepted.json()).total_tasks, 1);
    assert.equal(executions(log).size >= N, true, 'every task ran');
    for (const f of foremen) assert.equal(f.child.exitCode, null, 'no foreman exited');
    if (process.env.CC_TEST_LOG) for (const f of foremen) console.log(f.output(), [...executions(log).values()].reduce((a, b) => a + b, 0) - N);
    const metrics = await (await fetch(`${foremen[1].url}/metrics`, { headers: { authorization: `Bearer ${key}` } })).text();
    assert.match(metrics, /crowdcompute_store_outages_total\{kind="unavailable"\} [1-9]/, 'the outage was counted');
  } finally {
    await client?.close();
    for (const w of workers) { w.kill(); await w.exited; }
    for (const f of foremen) { f.kill(); await f.exited; }
    await proxy.close();
    await admin((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  }
});
