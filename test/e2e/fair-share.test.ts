import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor, type TestForeman } from '../../src/testing/index.ts';

// Sharing the workers: between jobs (by weight) and owners, within caps and rate limits, after priority.
// Each test watches the order in which tasks start, or how many run at once, never the clock,
// except the rate limit, whose start times are the foreman's own records.

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));
const cli = async (args: string[]) => (await run(process.execPath, [bin, ...args], { env: process.env, timeout: 60_000 })).stdout.trim();

let foreman: TestForeman;
let client: Client;
const workers: Worker[] = [];

/** Tasks started, in order, by the tag in their input; and how many of each tag run at once. */
let started: string[] = [];
const inFlight = new Map<string, number>();
const peak = new Map<string, number>();

before(async () => {
  foreman = await startTestForeman({ heartbeatIntervalMs: 200 });
  client = new Client({ url: foreman.url });
});

after(async () => {
  await client.close();
  for (const w of workers) await w.stop({ drainTimeoutMs: 0 });
  await foreman.cleanup();
});

/** A worker of `slots` whose handler records the start and holds the slot `ms`. */
async function startWorker(id: string, slots: number, ms: number): Promise<Worker> {
  const w = new Worker({ foremanUrl: foreman.wsUrl, workerId: id, maxConcurrentTasks: slots, logLevel: 'silent' })
    .handle('fair.*', async (t) => {
      const tag = (t.input as { tag: string }).tag;
      started.push(tag);
      const n = (inFlight.get(tag) ?? 0) + 1;
      inFlight.set(tag, n);
      peak.set(tag, Math.max(peak.get(tag) ?? 0, n));
      await new Promise((r) => setTimeout(r, ms));
      inFlight.set(tag, inFlight.get(tag)! - 1);
      return null;
    });
  await w.start();
  workers.push(w);
  return w;
}

async function stopWorkers(): Promise<void> {
  for (const w of workers.splice(0)) await w.stop({ drainTimeoutMs: 0 });
  started = [];
  inFlight.clear();
  peak.clear();
}

const tasks = (tag: string, n: number, type = 'fair.work') => Array.from({ length: n }, () => ({ type, input: { tag } }));
const share = (list: string[], tag: string) => list.filter((t) => t === tag).length / list.length;

test('two jobs of different sizes progress together: a small job behind a large one finishes long before it', async () => {
  await startWorker('fair-1', 4, 1);
  const big = await client.submitMany(tasks('big', 3_000));
  const small = await client.submitMany(tasks('small', 10));
  await small.result();
  const bigDone = (await client.getJob(big.id)).completedTasks;
  assert.ok(bigDone < 1_000, `the small job finished when the large one had done ${bigDone} of 3000 (in turn, not after it)`);
  await big.result();
  await stopWorkers();
});

test('a job of weight 3 runs three times as many tasks as one of weight 1 (within 10%)', async () => {
  const light = await client.submitMany(tasks('light', 2_000));
  const heavy = await client.submitMany(tasks('heavy', 2_000), { weight: 3 });
  await startWorker('fair-2', 8, 2);
  await waitFor(() => started.length >= 1_000, { timeoutMs: 120_000 });
  const window = started.slice(0, 1_000);
  const s = share(window, 'heavy');
  assert.ok(s >= 0.75 * 0.9 && s <= 0.75 * 1.1, `weight 3 against 1 should have 75% of the starts, had ${(s * 100).toFixed(1)}%`);
  // The statistics show each job's running tasks against its share.
  const sharing = Object.fromEntries((await client.stats()).sharing.jobs.map((j) => [j.job_id, j]));
  assert.deepEqual([sharing[heavy.id]?.share, sharing[heavy.id]?.weight, sharing[light.id]?.share], [0.75, 3, 0.25]);
  assert.ok(sharing[heavy.id].running + sharing[heavy.id].waiting > 0);
  await Promise.all([light.result(), heavy.result()]);
  await stopWorkers();
});

test('owners share before jobs do: an owner with eight jobs gets one owner\'s share; an owner\'s cap holds across its jobs', async () => {
  const db = ['--database', foreman.databaseUrl];
  const [manyKey, oneKey, cappedKey] = await Promise.all([
    cli(['key', 'create', '--scopes', 'submit,read', '--name', 'many jobs', ...db]),
    cli(['key', 'create', '--scopes', 'submit,read', '--name', 'one job', ...db]),
    cli(['key', 'create', '--scopes', 'submit,read', '--name', 'capped', '--max-concurrency', '2', ...db]),
  ]);
  const many = new Client({ url: foreman.url, apiKey: manyKey });
  const one = new Client({ url: foreman.url, apiKey: oneKey });
  const capped = new Client({ url: foreman.url, apiKey: cappedKey });
  try {
    const jobs = [];
    for (let i = 0; i < 8; i++) jobs.push(await many.submitMany(tasks('many', 300)));
    jobs.push(await one.submitMany(tasks('one', 2_400)));
    await startWorker('fair-3', 8, 2);
    await waitFor(() => started.length >= 1_000, { timeoutMs: 120_000 });
    const s = share(started.slice(0, 1_000), 'one');
    assert.ok(s >= 0.45 && s <= 0.55, `two owners should have half the starts each, the one-job owner had ${(s * 100).toFixed(1)}%`);
    const owners = (await client.stats()).sharing.owners.filter((o) => o.running > 0 || o.share > 0);
    assert.deepEqual(owners.map((o) => o.share).sort(), [0.5, 0.5], 'each owner\'s share is half');
    assert.deepEqual(owners.map((o) => o.jobs).sort(), [1, 8]);
    await Promise.all(jobs.map((j) => j.result()));
    await stopWorkers();

    // A key created with --max-concurrency 2: its two jobs together never run more than 2 tasks
    // at once, while another job takes the rest of the slots.
    const a = await capped.submitMany(tasks('capped', 40));
    const b = await capped.submitMany(tasks('capped', 40));
    const other = await one.submitMany(tasks('other', 200));
    await startWorker('fair-3b', 10, 10);
    await Promise.all([a.result(), b.result(), other.result()]);
    assert.ok(peak.get('capped')! <= 2, `the capped owner ran ${peak.get('capped')} tasks at once (cap 2)`);
    assert.ok(peak.get('other')! > 2, `the slots the cap leaves go to others (they ran ${peak.get('other')} at once)`);
    await stopWorkers();

    // The cap changed on a running foreman: `key limit` raises it, the foreman applies it.
    const keyId = cappedKey.split('_')[1];
    const limited = JSON.parse(await cli(['key', 'limit', keyId, '--max-concurrency', '4', '--json', ...db])) as { max_concurrency: number };
    assert.equal(limited.max_concurrency, 4);
    await waitFor(async () => (await client.stats()).sharing.owners.length === 0 || null, { timeoutMs: 30_000 });
    const c = await capped.submitMany(tasks('capped4', 80));
    await waitFor(async () => (await client.stats()).sharing.owners.find((o) => o.owner === keyId)?.max_concurrency === 4 || null, { timeoutMs: 30_000 });
    await startWorker('fair-3c', 10, 15);
    await c.result();
    assert.ok(peak.get('capped4')! <= 4, `the raised cap of 4 held (${peak.get('capped4')} at once)`);
    await stopWorkers();
  } finally {
    await Promise.all([many.close(), one.close(), capped.close()]);
  }
});

test('maxConcurrency: a job never runs more tasks at once than its cap, and its waiting tasks hold no slot', async () => {
  const capped = await client.submitMany(tasks('cap3', 60), { maxConcurrency: 3 });
  const free = await client.submitMany(tasks('free', 120));
  await startWorker('fair-4', 12, 15);
  await Promise.all([capped.result(), free.result()]);
  assert.ok(peak.get('cap3')! <= 3, `the job capped at 3 ran ${peak.get('cap3')} at once`);
  assert.ok(peak.get('free')! > 3, `the other job used the slots the capped one could not (${peak.get('free')} at once)`);
  assert.equal((await client.getJob(capped.id)).maxConcurrency, 3);
  await stopWorkers();
});

test('a type rate limit set through the API holds under load; other types pass', async () => {
  assert.deepEqual(await client.setRateLimit('fair.limited', '25/s'), { pattern: 'fair.limited', limit: '25/s', max: 25, perMs: 1_000 });
  const bad = await foreman.fetch('/api/rate-limits', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ pattern: 'x', limit: '0/s' }) });
  assert.equal(bad.status, 400);
  assert.match((await bad.json() as { message: string }).message, /count must be 1 to/);
  assert.deepEqual((await client.rateLimits()).filter((l) => l.pattern === 'fair.limited').map((l) => l.limit), ['25/s']);
  const limited = await client.submitMany(tasks('limited', 75, 'fair.limited'));
  const other = await client.submitMany(tasks('unlimited', 100));
  await startWorker('fair-5', 16, 1);
  await other.result();
  assert.ok(share(started, 'limited') < 0.7, 'the unlimited job ran beside the limited one');
  await limited.result();
  const times = (await client.getJobTasks(limited.id, { limit: 100 })).map((t) => Date.parse(t.startedAt!)).sort((x, y) => x - y);
  // A bucket of 25 that refills 25 a second: at most 50 starts in any second, and 75 take 2 s at least.
  for (let i = 0; i < times.length; i++) {
    const inSecond = times.filter((t) => t >= times[i] && t < times[i] + 1_000).length;
    assert.ok(inSecond <= 51, `${inSecond} tasks started within one second of ${new Date(times[i]).toISOString()} (limit 25/s, burst 25)`);
  }
  assert.ok(times.at(-1)! - times[0] >= 1_900, `75 tasks at 25/s after a burst of 25 took ${times.at(-1)! - times[0]} ms`);
  await client.removeRateLimit('fair.limited');
  await assert.rejects(client.removeRateLimit('fair.limited'), /CC_ERR_RATE_LIMIT_NOT_FOUND|no rate limit for pattern fair.limited/);
  await stopWorkers();
});

test('priority still comes first: a high-priority job runs before a normal one that was there first', async () => {
  const normal = await client.submitMany(tasks('normal', 1_500));
  await startWorker('fair-6', 4, 1);
  await waitFor(() => started.length >= 50);
  const high = await client.submitMany(tasks('high', 20), { priority: 'high' });
  await high.result();
  const first = started.indexOf('high');
  const last = started.lastIndexOf('high');
  const between = started.slice(first, last + 1).filter((t) => t === 'normal').length;
  assert.ok(between <= 4, `${between} normal tasks started among the high ones (at most the worker's slots, already on their way)`);
  await normal.result();
  await stopWorkers();
});
