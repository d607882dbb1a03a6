/**
 * What a key that is not admin may learn of other owners through the views every `read` key
 * reaches: statistics (GET /api/stats), the dashboard's live feed (GET /api/events), the
 * workers (GET /api/workers, GET /api/workers/{id}) and the metrics. Two owners keep tasks
 * running on one worker; owner A's key must find its own jobs, tasks and key id there, none
 * of owner B's, and B's work only as totals that add up; an admin key (and a foreman with
 * authentication off) sees both owners in full. The raw text of each answer is searched, so a
 * field added later that carries an id is caught too.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from '../../src/worker/index.ts';
import { Client } from '../../src/client/index.ts';
import { startTestForeman, waitFor, type TestForeman } from '../../src/testing/index.ts';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));
const cli = async (args: string[]) => (await run(process.execPath, [bin, ...args], { env: process.env, timeout: 60_000 })).stdout.trim();

/** Tasks of this type run until the test lets them go; no worker handles `vis.nobody`, so those wait. */
const HOLD = 'vis.hold';
const NOBODY = 'vis.nobody';

let foreman: TestForeman;
let worker: Worker;
let release: () => void = () => {};
const keys = { a: '', b: '', admin: '' };
/** Each owner's key id, job ids and task ids, as the admin reads them. */
const owners: Record<'a' | 'b', { keyId: string; jobs: string[]; tasks: string[]; runningTasks: string[] }> = {
  a: { keyId: '', jobs: [], tasks: [], runningTasks: [] }, b: { keyId: '', jobs: [], tasks: [], runningTasks: [] },
};

before(async () => {
  foreman = await startTestForeman({ heartbeatIntervalMs: 200 });
  const db = ['--database', foreman.databaseUrl];
  [keys.a, keys.b, keys.admin] = await Promise.all([
    cli(['key', 'create', '--scopes', 'read,submit', '--name', 'owner a', ...db]),
    cli(['key', 'create', '--scopes', 'read,submit', '--name', 'owner b', ...db]),
    cli(['key', 'create', '--scopes', 'admin', '--name', 'operator', ...db]),
  ]);
  owners.a.keyId = keys.a.split('_')[1];
  owners.b.keyId = keys.b.split('_')[1];
  const held = new Promise<void>((resolve) => { release = resolve; });
  worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: 'vis-worker', maxConcurrentTasks: 8, logLevel: 'silent' })
    .handle(HOLD, async () => { await held; return 'done'; });
  await worker.start();
  // A: one job of 2 running tasks, one of 1 waiting. B: one of 2 running, one of 3 waiting.
  const submit = async (key: string, type: string, n: number) => {
    const c = new Client({ url: foreman.url, apiKey: key });
    try { return (await c.submitMany(Array.from({ length: n }, (_, i) => ({ type, input: i })))).id; } finally { await c.close(); }
  };
  owners.a.jobs = [await submit(keys.a, HOLD, 2), await submit(keys.a, NOBODY, 1)];
  owners.b.jobs = [await submit(keys.b, HOLD, 2), await submit(keys.b, NOBODY, 3)];
  for (const o of [owners.a, owners.b]) {
    for (const jobId of o.jobs) {
      const tasks = await get(`/api/jobs/${jobId}/tasks`, keys.admin) as { task_id: string; type: string }[];
      o.tasks.push(...tasks.map((t) => t.task_id));
      o.runningTasks.push(...tasks.filter((t) => t.type === HOLD).map((t) => t.task_id));
    }
  }
  await waitFor(async () => ((await get('/api/workers/vis-worker', keys.admin)) as { running: unknown[] }).running.length === 4 || null,
    { timeoutMs: 30_000, message: 'both owners\' held tasks run on the worker' });
});

after(async () => {
  release();
  await worker?.stop();
  await foreman?.cleanup();
});

async function raw(path: string, key: string): Promise<string> {
  const res = await fetch(`${foreman.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
  const text = await res.text();
  assert.equal(res.status, 200, `${path}: ${text}`);
  return text;
}

async function get(path: string, key: string): Promise<unknown> {
  return JSON.parse(await raw(path, key));
}

/** Every id of owner `o` that `text` holds. */
function idsIn(text: string, o: (typeof owners)['a']): string[] {
  return [o.keyId, ...o.jobs, ...o.tasks].filter((id) => text.includes(id));
}

/**
 * Log in as the dashboard does, open the live feed with the session, and read it until it has
 * sent a stats and a workers event; answers the raw text and those events.
 */
async function followFeed(key: string): Promise<{ text: string; stats: any; workers: any[] }> {
  const login = await fetch(`${foreman.url}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) });
  assert.equal(login.status, 200);
  const cookie = login.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  const ac = new AbortController();
  const res = await fetch(`${foreman.url}/api/events`, { headers: { cookie }, signal: ac.signal });
  assert.equal(res.status, 200);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let text = '';
  const events = () => text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => JSON.parse(e.slice(6)) as { type: string; data: any });
  try {
    const deadline = Date.now() + 30_000;
    while (!(events().some((e) => e.type === 'stats') && events().some((e) => e.type === 'workers'))) {
      assert.ok(Date.now() < deadline, `the feed sent stats and workers within 30 s; it sent: ${text.slice(0, 500)}`);
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
  } finally {
    ac.abort();
    await reader.cancel().catch(() => {});
  }
  const all = events();
  return { text, stats: all.find((e) => e.type === 'stats')!.data, workers: all.find((e) => e.type === 'workers')!.data };
}

/** The sharing of owner A's key: its own row and jobs in full, owner B only as totals. */
function assertOwnSharing(sharing: any): void {
  assert.deepEqual(sharing.owners.map((o: any) => [o.owner, o.running, o.waiting, o.jobs]), [[owners.a.keyId, 2, 1, 2]], 'its own owner row only');
  assert.deepEqual(sharing.jobs.map((j: any) => j.job_id).sort(), [...owners.a.jobs].sort(), 'its own jobs only');
  assert.ok(sharing.jobs.every((j: any) => j.owner === owners.a.keyId));
  const { share, ...others } = sharing.others;
  assert.deepEqual(others, { owners: 1, jobs: 2, running: 2, waiting: 3 }, 'the other owner as totals');
  assert.ok(share > 0 && share < 1, `the others' fair share together is a fraction (${share})`);
}

test("a key that is not admin sees its own jobs and keys in statistics and worker views, and other owners' only as totals", async () => {
  const stats = await raw('/api/stats', keys.a);
  assert.deepEqual(idsIn(stats, owners.b), [], 'GET /api/stats holds none of B\'s ids');
  assert.ok(idsIn(stats, owners.a).includes(owners.a.keyId) && owners.a.jobs.every((id) => stats.includes(id)), 'GET /api/stats holds A\'s key and jobs');
  assertOwnSharing(JSON.parse(stats).sharing);

  const workers = await raw('/api/workers', keys.a);
  assert.deepEqual(idsIn(workers, owners.b), [], 'GET /api/workers holds none of B\'s ids');
  assert.equal((JSON.parse(workers) as any[]).find((w) => w.worker_id === 'vis-worker').running_tasks, 4, 'the worker\'s running tasks are counted whoever they are for');

  const detailText = await raw('/api/workers/vis-worker', keys.a);
  assert.deepEqual(idsIn(detailText, owners.b), [], 'GET /api/workers/{id} holds none of B\'s ids');
  const detail = JSON.parse(detailText);
  assert.deepEqual(detail.running.map((r: any) => r.task_id).sort(), [...owners.a.runningTasks].sort(), 'A\'s running tasks, with their ids');
  assert.ok(detail.running.every((r: any) => r.job_id === owners.a.jobs[0] && r.type === HOLD));
  assert.equal(detail.running_others, 2, 'B\'s running tasks, counted');
  assert.equal(detail.running_tasks, 4);

  const feed = await followFeed(keys.a);
  assert.deepEqual(idsIn(feed.text, owners.b), [], 'the live feed holds none of B\'s ids');
  assertOwnSharing(feed.stats.sharing);
  assert.equal(feed.workers.find((w) => w.worker_id === 'vis-worker').running_tasks, 4);

  for (const path of ['/metrics', '/api/series', '/api/rate-limits', '/api/jobs']) {
    assert.deepEqual(idsIn(await raw(path, keys.a), owners.b), [], `${path} holds none of B's ids`);
  }

  // The SDK reads the same views.
  const sdk = new Client({ url: foreman.url, apiKey: keys.a });
  try {
    assertOwnSharing((await sdk.stats()).sharing);
    const w = await sdk.worker('vis-worker');
    assert.deepEqual([w.running.length, w.running_others], [2, 2]);
    await assert.rejects(sdk.worker('nobody'), /CC_ERR_WORKER_NOT_FOUND/);
  } finally {
    await sdk.close();
  }
});

test('an admin key sees every owner in statistics, the live feed and worker views', async () => {
  const stats = await get('/api/stats', keys.admin) as any;
  assert.equal(stats.sharing.others, null, 'nothing is summed away');
  assert.deepEqual(stats.sharing.owners.map((o: any) => o.owner).sort(), [owners.a.keyId, owners.b.keyId].sort());
  assert.deepEqual(stats.sharing.jobs.map((j: any) => j.job_id).sort(), [...owners.a.jobs, ...owners.b.jobs].sort());
  const detail = await get('/api/workers/vis-worker', keys.admin) as any;
  assert.deepEqual(detail.running.map((r: any) => r.task_id).sort(), [...owners.a.runningTasks, ...owners.b.runningTasks].sort());
  assert.equal(detail.running_others, 0);
  const [feed, own] = await Promise.all([followFeed(keys.admin), followFeed(keys.a)]);
  assert.deepEqual(idsIn(feed.text, owners.b).sort(), [owners.b.keyId, ...owners.b.jobs].sort(), 'the admin\'s feed names B\'s key and jobs');
  assert.equal(feed.stats.sharing.others, null);
  assert.deepEqual(idsIn(own.text, owners.b), [], 'while A\'s feed, open at the same time, names none of them');
});

test('with authentication off (--insecure) everyone sees everything, as before', async () => {
  const open = await startTestForeman({ insecure: true });
  const w = new Worker({ foremanUrl: open.wsUrl, workerId: 'vis-open', logLevel: 'silent' });
  let letGo: () => void = () => {};
  const held = new Promise<void>((resolve) => { letGo = resolve; });
  w.handle(HOLD, async () => { await held; return 'done'; });
  const client = new Client({ url: open.url });
  try {
    await w.start();
    const job = await client.submitMany([{ type: HOLD }]);
    const stats = await waitFor(async () => {
      const s = await (await fetch(`${open.url}/api/stats`)).json() as any;
      return s.sharing.jobs.some((j: any) => j.job_id === job.id && j.running === 1) ? s : null;
    }, { timeoutMs: 30_000, message: 'the running job in the statistics' });
    assert.equal(stats.sharing.others, null);
    const detail = await (await fetch(`${open.url}/api/workers/vis-open`)).json() as any;
    assert.equal(detail.running[0].job_id, job.id);
    assert.equal(detail.running_others, 0);
    letGo();
    await job.result();
  } finally {
    letGo();
    await client.close();
    await w.stop();
    await open.cleanup();
  }
});
