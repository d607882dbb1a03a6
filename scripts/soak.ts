/**
 * `npm run soak [-- --seconds 60] [-- --workers 3] [-- --database postgres://…]`: a stream of
 * jobs while workers and the foreman are killed with SIGKILL and restarted (and, on PostgreSQL,
 * every connection of the foreman is terminated on the server every few seconds), then a check
 * over everything submitted: every task of every job has exactly one recorded result, in order,
 * and none is lost.
 * Loopback only, bounded in time (the run, then at most --drain-seconds to finish), stops by
 * itself. Exit code 1 if anything was lost or recorded twice.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client, type JobHandle } from '../src/client/index.ts';
import { freePort, spawnForemanProcess, spawnWorkerProcess, type ChildForeman, type ChildWorker } from '../src/testing/index.ts';

const { values: opt } = parseArgs({ options: {
  seconds: { type: 'string', default: '60' }, workers: { type: 'string', default: '3' }, 'drain-seconds': { type: 'string', default: '120' },
  'foreman-kill-every': { type: 'string', default: '10' }, 'worker-kill-every': { type: 'string', default: '3' },
  database: { type: 'string' }, 'db-kill-every': { type: 'string', default: '4' },
} });
const SECONDS = Number(opt.seconds);
const WORKERS = Number(opt.workers);
const FIXTURE = fileURLToPath(new URL('../test/e2e/fixtures/fault-handlers.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'cc-soak-'));
const log = join(dir, 'exec.log');
const port = await freePort();
// PostgreSQL runs get a schema of their own, dropped at the end.
const schema = `cc_soak_${process.pid}`;
const database = opt.database ? `${opt.database}${opt.database.includes('?') ? '&' : '?'}schema=${schema}` : `sqlite:${join(dir, 'soak.db')}`;
const onPostgres = database.startsWith('postgres');
const foremanId = `soak-foreman-${process.pid}`;
const foremanArgs = ['--database', database, '--id', foremanId, '--heartbeat-interval', '200', '--lease-ttl', '2000'];
// The local credentials of this run's foremen stay in its directory.
process.env.CROWDCOMPUTE_CONFIG_DIR = join(dir, 'credentials');
const say = (s: string) => process.stderr.write(`[soak ${((Date.now() - started) / 1000).toFixed(1)}s] ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const started = Date.now();

let foreman: ChildForeman = await spawnForemanProcess(port, foremanArgs);
const workers: (ChildWorker | null)[] = [];
let workerSeq = 0;
const spawnWorker = (slot: number) => {
  workers[slot] = spawnWorkerProcess(['--foreman', foreman.wsUrl, '--id', `soak-${slot}-${++workerSeq}`, '--concurrency', '8', '--handlers', FIXTURE,
    '--reconnect-interval', '100'], { CC_EXEC_LOG: log });
};
for (let i = 0; i < WORKERS; i++) spawnWorker(i);
const client = new Client({ url: foreman.url, reconnectIntervalMs: 100, connectTimeoutMs: 60_000 });

const jobs: { handle: JobHandle<number>; inputs: number[] }[] = [];
const stats = { jobs: 0, tasks: 0, workerKills: 0, foremanKills: 0, connectionKills: 0, submitErrors: 0 };
let running = true;

// Submitter: jobs of 20..300 tasks, a few ms each, back to back while the chaos runs.
const submitter = (async () => {
  let n = 0;
  while (running) {
    const size = 20 + Math.floor(Math.random() * 280);
    const inputs = Array.from({ length: size }, (_, i) => n * 1000 + i);
    try {
      const handle = await client.submitMany<number>(inputs.map((v) => ({ type: 'fault.work', input: { v, ms: Math.floor(Math.random() * 5) } })), { name: `soak-${n}` });
      jobs.push({ handle, inputs });
      stats.jobs++;
      stats.tasks += size;
    } catch (err) {
      stats.submitErrors++;
      say(`submit failed (will continue): ${(err as Error).message}`);
    }
    n++;
    await sleep(50 + Math.random() * 150);
  }
})();

// Chaos: SIGKILL a random worker every few seconds (restarted shortly after), and the foreman less often.
const chaos = (async () => {
  let nextForemanKill = Date.now() + Number(opt['foreman-kill-every']) * 1000;
  while (running) {
    await sleep(Number(opt['worker-kill-every']) * 1000 * (0.5 + Math.random()));
    if (!running) break;
    if (Date.now() >= nextForemanKill) {
      say('SIGKILL foreman');
      foreman.kill('SIGKILL');
      await foreman.exited;
      stats.foremanKills++;
      await sleep(200 + Math.random() * 800);
      foreman = await spawnForemanProcess(port, foremanArgs);
      say('foreman restarted on the same database');
      nextForemanKill = Date.now() + Number(opt['foreman-kill-every']) * 1000;
    } else {
      const slot = Math.floor(Math.random() * WORKERS);
      say(`SIGKILL worker slot ${slot}`);
      workers[slot]?.kill('SIGKILL');
      await workers[slot]?.exited;
      stats.workerKills++;
      await sleep(100 + Math.random() * 500);
      spawnWorker(slot);
    }
  }
})();

// Database faults (PostgreSQL): terminate every connection of the foreman, on the server.
const dbChaos = (async () => {
  if (!onPostgres) return;
  const { default: pg } = await import('pg');
  while (running) {
    await sleep(Number(opt['db-kill-every']) * 1000 * (0.5 + Math.random()));
    if (!running) break;
    const c = new pg.Client({ connectionString: opt.database });
    try {
      await c.connect();
      const r = await c.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1`, [`crowdcompute ${foremanId}%`]);
      stats.connectionKills += r.rowCount ?? 0;
      say(`terminated ${r.rowCount} PostgreSQL connections of the foreman`);
    } catch (err) {
      say(`could not terminate connections: ${(err as Error).message}`);
    } finally {
      await c.end().catch(() => {});
    }
  }
})();

await sleep(SECONDS * 1000);
running = false;
await Promise.all([submitter, chaos, dbChaos]);
say(`stopped the chaos: ${stats.jobs} jobs, ${stats.tasks} tasks submitted; waiting for them to finish`);

const deadline = Date.now() + Number(opt['drain-seconds']) * 1000;
const outcomes = await Promise.all(jobs.map((j) => Promise.race([
  j.handle.outcome(),
  new Promise<null>((r) => setTimeout(() => r(null), Math.max(0, deadline - Date.now()))),
])));

let lost = 0;
let duplicatesRecorded = 0;
let wrong = 0;
let unfinishedJobs = 0;
for (let i = 0; i < jobs.length; i++) {
  const o = outcomes[i];
  const { inputs, handle } = jobs[i];
  if (!o) { unfinishedJobs++; lost += inputs.length; continue; }
  const info = await client.getJob(handle.id);
  if (info.completedTasks > info.totalTasks) duplicatesRecorded += info.completedTasks - info.totalTasks;
  const done = o.results.filter((r, k) => r === inputs[k] * 2).length;
  wrong += o.results.filter((r, k) => r !== null && r !== inputs[k] * 2).length;
  lost += inputs.length - done;
}
const execLines = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
const summary = {
  soak: 'crowdcompute', seconds: SECONDS, workers: WORKERS, jobs: stats.jobs, tasks: stats.tasks,
  database: onPostgres ? 'postgres' : 'sqlite', worker_kills: stats.workerKills, foreman_kills: stats.foremanKills,
  connection_kills: stats.connectionKills, submit_errors: stats.submitErrors,
  executions: execLines.length, duplicates_executed: execLines.length - new Set(execLines.map((l) => l.split(' ')[0])).size,
  duplicates_recorded: duplicatesRecorded, wrong_results: wrong, lost, unfinished_jobs: unfinishedJobs,
};
console.log(JSON.stringify(summary));
say(`jobs ${summary.jobs}, tasks ${summary.tasks}, worker kills ${summary.worker_kills}, foreman kills ${summary.foreman_kills}, connection kills ${summary.connection_kills}, ` +
  `duplicates executed ${summary.duplicates_executed}, duplicates recorded ${summary.duplicates_recorded} (must be 0), lost ${summary.lost} (must be 0)`);

await client.close();
for (const w of workers) { w?.kill('SIGTERM'); }
await Promise.all(workers.map((w) => w?.exited));
foreman.kill('SIGTERM');
await foreman.exited;
if (onPostgres) {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: opt.database });
  await c.connect();
  await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await c.end();
}
rmSync(dir, { recursive: true, force: true });
process.exit(summary.duplicates_recorded === 0 && summary.lost === 0 && summary.wrong_results === 0 ? 0 : 1);
