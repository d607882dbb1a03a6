/**
 * Retention: finished jobs, with their tasks and results, are pruned once their retention has
 * passed, and a pruned job says so (404 with CC_ERR_JOB_PRUNED) instead of "never existed".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { CrowdComputeError } from '../../src/protocol/index.ts';
import { freePort, localApiKeyAt, spawnForemanProcess, startTestForeman, waitFor } from '../../src/testing/index.ts';

test('with --retention 2s a finished job is gone from the API a few seconds later; a job asking for longer stays', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-retention-'));
  const foreman = await spawnForemanProcess(await freePort(), ['--database', `sqlite:${join(dir, 'r.db')}`, '--retention', '2s', '--prune-interval', '200ms']);
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'w', logLevel: 'silent' }).handle('keep.*', async (t) => t.input);
  const client = new Client({ url: foreman.url });
  const key = localApiKeyAt(foreman.url)!;
  const get = (path: string) => fetch(`${foreman.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
  try {
    await worker.start();
    const brief = await client.submitMany([{ type: 'keep.a', input: 1 }, { type: 'keep.b', input: 2 }]);
    const lasting = await client.submitMany([{ type: 'keep.c', input: 3 }], { retentionMs: 3_600_000 });
    assert.deepEqual(await brief.result(), [1, 2]);
    assert.deepEqual(await lasting.result(), [3]);
    const view = await (await get(`/api/jobs/${brief.id}`)).json();
    assert.equal(view.retention_ms, 2_000);
    assert.equal(Date.parse(view.prune_at) - Date.parse(view.completed_at), 2_000);

    const gone = await waitFor(async () => { const r = await get(`/api/jobs/${brief.id}`); return r.status === 404 ? r : null; },
      { timeoutMs: 20_000, intervalMs: 200, message: 'the job is pruned' });
    const body = await gone.json();
    assert.equal(body.code, 'CC_ERR_JOB_PRUNED');
    assert.match(body.message, /finished and was pruned .* after its retention/);
    assert.equal((await get(`/api/jobs/${brief.id}/tasks`)).status, 404);
    assert.equal((await get(`/api/jobs/${brief.id}/results`)).status, 404);
    await assert.rejects(client.getJob(brief.id), (err: unknown) => err instanceof CrowdComputeError && err.code === 'CC_ERR_JOB_PRUNED');
    await assert.rejects(client.getJob('job-that-never-was'), (err: unknown) => err instanceof CrowdComputeError && err.code === 'CC_ERR_JOB_NOT_FOUND');

    assert.equal((await client.getJob(lasting.id)).status, 'completed', 'a job with a longer retention is kept');
    const stats = await (await get('/api/stats')).json();
    assert.equal(stats.retention.default_seconds, 2);
    assert.equal(stats.retention.pruned_jobs, 1);
    assert.equal(stats.retention.pruned_tasks, 2);
    assert.equal(stats.retention.retained_jobs, 1);
    assert.ok(stats.retention.storage_bytes > 0);
  } finally {
    await client.close();
    await worker.stop();
    foreman.kill();
    await foreman.exited;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('under a steady load with pruning, the SQLite file stops growing: rounds after the first reuse the space pruning freed', async () => {
  const foreman = await startTestForeman({ retentionMs: 0, pruneIntervalMs: 100 });
  const worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'steady', maxConcurrentTasks: 50, logLevel: 'silent' }).handle('steady.*', async () => null);
  const client = new Client({ url: foreman.url });
  const db = new Database(foreman.databaseUrl.replace(/^sqlite:/, ''), { readonly: true });
  const pages = () => db.pragma('page_count', { simple: true }) as number;
  try {
    await worker.start();
    const sizes: number[] = [];
    for (let round = 0; round < 5; round++) {
      const job = await client.submitMany(Array.from({ length: 5_000 }, (_, i) => ({ type: 'steady.noop', input: { round, i, pad: 'p'.repeat(200) } })));
      assert.equal((await job.result()).length, 5_000);
      await waitFor(async () => (await client.stats()).retention.retained_jobs === 0 || null, { timeoutMs: 30_000, message: `round ${round} pruned` });
      sizes.push(pages());
    }
    const stats = await client.stats();
    assert.equal(stats.retention.pruned_tasks, 25_000);
    // Without pruning (or without reuse of the pages it frees) the file would grow fivefold.
    if (process.env.CC_TEST_LOG) console.log(sizes);
    assert.ok(sizes[4] <= sizes[0] * 1.25, `pages after each round: ${sizes.join(', ')}`);
  } finally {
    db.close();
    await client.close();
    await worker.stop();
    await foreman.cleanup();
  }
});
