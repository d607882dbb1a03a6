/**
 * The embedded store's file: a database that cannot grow refuses new work with 507 and keeps
 * the results of accepted work until space returns; one file serves one foreman.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { freePort, spawnForemanProcess, startTestForeman, waitFor } from '../../src/testing/index.ts';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));
const cli = async (args: string[]) => (await run(process.execPath, [bin, ...args], { env: process.env, timeout: 60_000 })).stdout.trim();

// Once with the store on the event loop's thread, once on a thread of its own (--store-thread):
// the full disk's SQLITE_FULL must cross that thread as the error it is.
for (const storeThread of [false, true]) test(`a full database${storeThread ? ' (the store on its own thread)' : ''}: submissions get 507, health is degraded, held results wait, and everything resumes once pruning frees space`, async () => {
  const foreman = await startTestForeman({ maxDatabaseBytes: 1024 * 1024, heartbeatIntervalMs: 200, storeThread });
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'filler', maxConcurrentTasks: 16, logLevel: 'silent' })
    .handle('fill.echo', async () => null)
    .handle('hold.big', async (t) => { await gate; return 'r'.repeat(40_000) + t.input; });
  const client = new Client({ url: foreman.url });
  const submit = (tasks: unknown[]) => foreman.fetch('/api/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'tasks', tasks }) });
  try {
    await worker.start();
    // Accepted before the disk fills: its results (160 KB) come when there is no room left.
    const held = await client.submitMany([0, 1, 2, 3].map((i) => ({ type: 'hold.big', input: i })));
    let refused: Response | null = null;
    for (let i = 0; i < 200 && !refused; i++) {
      // One task per job: jobs share the worker, so with several tasks each they would all be
      // part done when the store fills, and pruning (of finished jobs) would free nothing.
      const r = await submit([{ type: 'fill.echo', input: `${i}-${'x'.repeat(80_000)}` }]);
      if (r.status === 507) refused = r;
      else assert.equal(r.status, 201, `filler ${i}: ${await r.text()}`);
    }
    assert.ok(refused, 'the store filled up within 200 submissions');
    const body = await refused.json();
    assert.equal(body.code, 'CC_ERR_STORE_FULL');
    assert.match(body.message, /full.*crowdcompute prune/);
    const health = await fetch(`${foreman.url}/health`);
    assert.equal(health.status, 503);
    const h = await health.json();
    assert.equal(h.status, 'degraded');
    assert.equal(h.store.state, 'full');

    release();
    // The results cannot be written yet: the worker keeps them, the job stays open.
    await waitFor(() => worker.stats.tasksCompleted >= 4 || null, { message: 'the held tasks ran' });
    assert.equal((await client.getJob(held.id)).status, 'running');

    const pruned = await cli(['prune', '--database', foreman.databaseUrl, '--older-than', '0s']);
    assert.match(pruned, /pruned [1-9]\d* jobs that finished more than/);
    const results = await held.result();
    assert.deepEqual(results, [0, 1, 2, 3].map((i) => 'r'.repeat(40_000) + i), 'every held result, recorded once space returned');
    const info = await client.getJob(held.id);
    assert.equal(info.completedTasks, 4);
    await waitFor(async () => (await fetch(`${foreman.url}/health`)).status === 200 || null, { message: 'health recovers' });
    assert.equal((await submit([{ type: 'fill.echo', input: 'after' }])).status, 201, 'submissions are accepted again');
  } finally {
    await client.close();
    await worker.stop();
    await foreman.cleanup();
  }
});

test('a database full of queued work can be emptied with the foreman running: cancel (REST and CLI) in the headroom, then prune, or prune --unfinished', { timeout: 180_000 }, async () => {
  const foreman = await startTestForeman({ maxDatabaseBytes: 4 * 1024 * 1024 });
  const client = new Client({ url: foreman.url });
  const submit = (tasks: unknown[]) => foreman.fetch('/api/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ kind: 'tasks', tasks }) });
  try {
    // Queued work nobody serves fills the file.
    const ids: string[] = [];
    for (let i = 0; i < 400; i++) {
      const r = await submit([{ type: 'nobody.serves', input: `${i}-${'x'.repeat(60_000)}` }]);
      if (r.status === 507) break;
      const body = await r.json();
      assert.equal(r.status, 201, `filler ${i}: ${JSON.stringify(body)}`);
      ids.push(body.job_id);
    }
    assert.ok(ids.length > 10 && ids.length < 400, `the store filled up (${ids.length} jobs)`);
    assert.equal((await foreman.fetch('/health')).status, 503);
    const refused = await submit([{ type: 'nobody.serves', input: 'y'.repeat(60_000) }]);
    assert.equal(refused.status, 507);
    assert.match((await refused.json()).message, /crowdcompute prune --unfinished/);

    // Cancelling while full: through REST (the dashboard's Cancel uses the same route) and the CLI.
    const cancelled = await foreman.fetch(`/api/jobs/${ids[0]}/cancel`, { method: 'POST' });
    const cancelledBody = await cancelled.json();
    assert.equal(cancelled.status, 200, JSON.stringify(cancelledBody));
    assert.equal(cancelledBody.status, 'cancelled');
    const viaCli = JSON.parse(await cli(['cancel', ids[1], '--foreman', foreman.url, '--json']));
    assert.equal(viaCli.status, 'cancelled');
    for (const id of ids.slice(2, 10)) assert.equal((await client.cancel(id)).status, 'cancelled');
    // Then the cancelled jobs go, and with them their inputs.
    assert.match(await cli(['prune', '--database', foreman.databaseUrl, '--older-than', '0s']), /^pruned 10 jobs that finished more than/);

    // The rest never finished: a client waiting on one hears that it was pruned.
    const waiting = await client.watch(ids[ids.length - 1]);
    const outcome = waiting.result().then(() => null, (err: Error & { code?: string }) => err);
    const out = await cli(['prune', '--database', foreman.databaseUrl, '--unfinished']);
    assert.match(out, new RegExp(`^pruned ${ids.length - 10} jobs past their retention or had not finished \\(${ids.length - 10} of them\\)`));
    const err = await outcome;
    assert.ok(err, 'the waiter is told');
    assert.equal(err.code, 'CC_ERR_JOB_PRUNED');
    assert.equal((await foreman.fetch(`/api/jobs/${ids[ids.length - 1]}`)).status, 404);

    await waitFor(async () => (await foreman.fetch('/health')).status === 200 || null, { timeoutMs: 20_000, message: 'health recovers' });
    assert.equal((await submit([{ type: 'nobody.serves', input: 'after' }])).status, 201, 'submissions are accepted again');
  } finally {
    await client.close();
    await foreman.cleanup();
  }
});

test('a second foreman on the same SQLite file refuses to start and names the one that holds it; the CLI still works beside it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-lock-'));
  const database = `sqlite:${join(dir, 'one.db')}`;
  const first = await spawnForemanProcess(await freePort(), ['--database', database, '--id', 'holder']);
  try {
    const second = await run(process.execPath, [bin, 'foreman', '--database', database, '--port', '0', '--host', '127.0.0.1', '--id', 'intruder'], { env: process.env, timeout: 60_000 })
      .then(() => null, (err: { code: number; stderr: string }) => err);
    assert.ok(second, 'the second foreman exited with an error');
    assert.equal(second.code, 1);
    assert.match(second.stderr, /one\.db is in use by another foreman \(holder, pid \d+/);
    assert.equal(first.child.exitCode, null, 'the first foreman is unharmed');
    // Credential and prune commands open the file beside the running foreman.
    assert.match(await cli(['key', 'list', '--database', database, '--json']), /"kind": "key"/);
    assert.match(await cli(['prune', '--database', database]), /^pruned 0 jobs past their retention/);
  } finally {
    first.kill();
    await first.exited;
  }
  // Once the holder has stopped, the file is free again.
  const again = await spawnForemanProcess(await freePort(), ['--database', database, '--id', 'successor']);
  again.kill();
  await again.exited;
  rmSync(dir, { recursive: true, force: true });
});
