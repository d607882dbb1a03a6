/**
 * `npm run bench:peers [-- --rounds N] [-- --only a,b] [-- --workloads W1,W2,W3] [-- --floors cheap|all|none]`:
 * CrowdCompute beside three job queues, each in its default and its documented fastest ("tuned")
 * configuration, on the same three workloads (see bench/peers/README.md):
 *   W1 throughput: 20,000 no-op jobs added in bulk, one worker process at concurrency 50
 *                  (after an untimed 2,000-job warm-up); from just before the add to the last completion
 *   W2 latency:    1,000 sequential add -> completion observed by the client round trips (after 100
 *                  untimed), p50 / p99
 *   W3 map:        10,000 jobs, one per argument, each summing 1..10,000 in a loop (after an untimed
 *                  500-argument warm-up); from submit to all 10,000 results in hand, in argument order
 * Systems: bullmq (Redis), graphile (Graphile Worker, PostgreSQL), pgboss (pg-boss, PostgreSQL), each
 * also as bullmq-tuned, graphile-tuned, pgboss-tuned; crowdcompute-sqlite and crowdcompute-postgres (bench/run.ts, spawned and parsed, not reimplemented).
 * Each peer's worker runs in a child process (bench/peers/worker.ts); its client runs here.
 * Rounds are interleaved: round 1 runs every system once, then round 2, and so on. Every system and
 * workload is bounded (120 s); each run gets fresh state (a new BullMQ queue obliterated after, a new
 * PostgreSQL schema dropped after). Loopback only: Redis 127.0.0.1:6379, PostgreSQL 127.0.0.1:5432.
 * The floors measured by bench/run.ts rather than these workloads (REST intake, two foremen, a million
 * tasks) run in each round too, as `--floors` says.
 * stdout: one JSON line per system and workload (medians over rounds and every round's figure), the
 * machine limits line and the floors line; stderr: progress, then the ratio tables, the machine limits
 * and the floors table.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const here = fileURLToPath(new URL('./', import.meta.url));
const root = fileURLToPath(new URL('../../', import.meta.url));
const PG_URL = 'postgres://postgres@127.0.0.1:5432/test';
const REDIS = { host: '127.0.0.1', port: 6379 };
const LIMIT_MS = 120_000;
const W1_JOBS = 20_000;
const W1_WARMUP = 2_000;
const W2_TRIPS = 1_000;
const W2_WARMUP = 100;
const W3_ARGS = 10_000;
const W3_WARMUP = 500;
const SUM = 50_005_000;
/** How often a client looks for completions where the peer offers no push (W1 counts, W3 results). */
const POLL_MS = 10;
/** BullMQ's event stream cap for the benchmark's queues (its default is 10,000). */
const EVENTS_MAX_LEN = 100_000;

/**
 * Each peer twice: as set up by default (`bullmq`, `graphile`, `pgboss`) and as its own documentation
 * advises for speed (`-tuned`; see TUNED below and bench/peers/README.md). Comparisons with a peer
 * take the faster of its two configurations in the run, figure by figure.
 */
const ALL_SYSTEMS = ['bullmq', 'bullmq-tuned', 'graphile', 'graphile-tuned', 'pgboss', 'pgboss-tuned', 'crowdcompute-sqlite', 'crowdcompute-postgres'] as const;
type System = (typeof ALL_SYSTEMS)[number];
const PEERS: System[] = ALL_SYSTEMS.filter((s) => !s.startsWith('crowdcompute'));
type Family = 'bullmq' | 'graphile' | 'pgboss';
const familyOf = (s: string) => s.replace(/-tuned$/, '') as Family;
const isTuned = (s: string) => s.endsWith('-tuned');
const ALL_WORKLOADS = ['W1', 'W2', 'W3'] as const;
type Workload = (typeof ALL_WORKLOADS)[number];
/**
 * BullMQ's documentation recommends several worker processes ("Multiple workers … is the recommended
 * way to setup BullMQ", https://docs.bullmq.io/guide/workers/concurrency): the tuned configuration
 * runs one per core, sharing the 50 jobs in flight.
 */
const BULLMQ_TUNED_PROCESSES = Math.max(2, cpus().length);
/** Workloads a configuration does not run, and why (printed in their place). */
const NOT_RUN: Partial<Record<System, Partial<Record<Workload, string>>>> = {
  'pgboss-tuned': { W2: 'one fetch loop polls an idle queue every 0.5 s (pg-boss 10\'s minimum), so 1,000 sequential round trips would take ~250 s; `pgboss` is pg-boss\'s W2 configuration' },
};

const { values: args } = parseArgs({ options: {
  rounds: { type: 'string', default: '3' },
  only: { type: 'string' },
  workloads: { type: 'string' },
  floors: { type: 'string' },
} });
const ROUNDS = Number(args.rounds);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`--rounds must be a positive integer, got ${args.rounds}`);
const pick = <T extends string>(list: string | undefined, all: readonly T[], what: string): T[] => {
  if (!list) return [...all];
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!all.includes(n as T)) throw new Error(`unknown ${what} '${n}' (one of ${all.join(', ')})`);
  return all.filter((a) => names.includes(a)); // always in the canonical order
};
const systems = pick(args.only, ALL_SYSTEMS, 'system in --only');
const workloads = pick(args.workloads, ALL_WORKLOADS, 'workload');
/**
 * The floors that bench/run.ts measures rather than the peer workloads: `cheap` (REST intake on
 * SQLite; PostgreSQL W2 with two foremen beside one), `all` (also a million tasks on PostgreSQL,
 * several minutes a round), `none`. Default: `cheap`, or `none` when `--only` narrows the systems.
 */
const FLOORS = (args.floors ?? (args.only ? 'none' : 'cheap')) as 'cheap' | 'all' | 'none';
if (!['cheap', 'all', 'none'].includes(FLOORS)) throw new Error(`--floors must be cheap, all or none, got ${args.floors}`);

const log = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The same methods as bench/run.ts: the upper median, and the p-th percentile as sorted[floor(p/100*n)], clamped. */
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;

// ---- the peers' packages: installed into bench/peers/node_modules on first use ----
if (systems.some((s) => PEERS.includes(s)) && !existsSync(join(here, 'node_modules'))) {
  log('bench:peers: installing the peers (npm install --prefix bench/peers) …');
  const r = spawnSync('npm', ['install', '--prefix', here, '--no-audit', '--no-fund'], { stdio: ['ignore', 2, 2] });
  if (r.status !== 0) throw new Error(`npm install --prefix bench/peers failed (${r.status ?? r.signal})`);
}
/**
 * The peers are loaded by a non-literal specifier: the root typecheck (which includes bench/) must pass
 * without bench/peers/node_modules, so they are typed here by the little this file uses.
 */
const load = (name: string): Promise<any> => import(name);
const versionOf = (pkg: string) => {
  try { return (JSON.parse(readFileSync(join(here, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version; } catch { return undefined; }
};
const ours = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const VERSIONS: Record<System, string | undefined> = {
  bullmq: versionOf('bullmq'), 'bullmq-tuned': versionOf('bullmq'), graphile: versionOf('graphile-worker'), 'graphile-tuned': versionOf('graphile-worker'),
  pgboss: versionOf('pg-boss'), 'pgboss-tuned': versionOf('pg-boss'), 'crowdcompute-sqlite': ours, 'crowdcompute-postgres': ours,
};

// ---- bounds ----
/** Set when a workload runs out of time: its polling loops and waits stop at the next look. */
type Abort = { aborted: boolean };
async function bounded<T>(label: string, fn: (abort: Abort) => Promise<T>, ms = LIMIT_MS): Promise<T> {
  const abort: Abort = { aborted: false };
  let timer: NodeJS.Timeout | undefined;
  const work = fn(abort);
  work.catch(() => {}); // a late rejection after the time-out is not news
  try {
    return await Promise.race([work, new Promise<never>((_, reject) => { timer = setTimeout(() => { abort.aborted = true; reject(new Error(`${label}: timed out after ${ms / 1000} s`)); }, ms); })]);
  } finally {
    clearTimeout(timer);
  }
}
async function until(abort: Abort, what: string, check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) {
    if (abort.aborted) throw new Error(`aborted while waiting for ${what}`);
    await sleep(POLL_MS);
  }
}

// ---- child processes: ended with the runner if it is interrupted ----
const children = new Set<ChildProcess>();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const c of children) { try { if (c.spawnargs.includes(join(root, 'bench/run.ts'))) process.kill(-c.pid!, 'SIGKILL'); else c.kill('SIGKILL'); } catch { /* gone */ } }
    log(`bench:peers: interrupted (${sig}); this run's schemas (gw_peers_${process.pid}_*, pgboss_peers_${process.pid}_*) and BullMQ queues (cc-peers-${process.pid}_*) may be left behind`);
    process.exit(130);
  });
}
const track = (c: ChildProcess) => { children.add(c); c.once('exit', () => children.delete(c)); return c; };

// ---- a peer's worker process ----
/** `config.tuned` selects the peer's tuned configuration (worker.ts). */
function startWorker(system: string, config: object): Promise<ChildProcess> {
  const child = track(spawn(process.execPath, ['--no-node-snapshot', join(here, 'worker.ts'), familyOf(system), JSON.stringify({ ...config, tuned: isTuned(system) })], { cwd: here, stdio: ['ignore', 'pipe', 'pipe'] }));
  let err = '';
  child.stderr!.on('data', (d) => { err += d; if (err.length > 10_000) err = err.slice(-5_000); process.stderr.write(`[${system} worker] ${d}`); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${system} worker did not start within 30 s`)); }, 30_000);
    let out = '';
    child.stdout!.on('data', (d) => { out += d; if (out.includes('ready\n')) { clearTimeout(timer); resolve(child); } });
    child.once('exit', (code, signal) => { clearTimeout(timer); reject(new Error(`${system} worker exited (${code ?? signal}) before it was ready: ${err.trim()}`)); });
  });
}
async function stopWorker(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

// ---- the peers, behind one interface so the three workloads are written once ----
interface Peer {
  /** W1: prepare n no-op jobs; the returned function adds them in bulk and resolves when all are completed. */
  noops(n: number): Promise<(abort: Abort) => Promise<void>>;
  /** W2: one round trip: add a job with input i, resolve with its result once the client observes it. */
  echo(i: number, abort: Abort): Promise<number>;
  /** W3: prepare one sum job per argument; the returned function submits them and resolves with the results in argument order. */
  map(argsList: number[]): Promise<(abort: Abort) => Promise<number[]>>;
  close(): Promise<void>;
}

type Pg = import('pg').Client;
async function pgClient(): Promise<Pg> {
  const { default: pg } = await import('pg');
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  c.on('error', (err) => log(`pg client: ${err}`));
  return c;
}
/** A LISTEN connection: the worker's handler pg_notify()s the round trip's number on `channel`. */
async function listener(channel: string) {
  const c = await pgClient();
  const waiters = new Map<number, () => void>();
  c.on('notification', (m) => { const i = Number(m.payload); const w = waiters.get(i); if (w) { waiters.delete(i); w(); } });
  await c.query(`LISTEN "${channel}"`);
  return {
    /** Registered before the job is added, so a notification cannot arrive unclaimed. */
    wait(i: number, abort: Abort): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = setInterval(() => { if (abort.aborted) { clearInterval(check); waiters.delete(i); reject(new Error('aborted')); } }, 1_000);
        waiters.set(i, () => { clearInterval(check); resolve(); });
      });
    },
    close: () => c.end(),
  };
}

let runSeq = 0;

async function bullmqPeer(tag: string, system: System): Promise<Peer> {
  const { Queue, QueueEvents } = await load('bullmq');
  const name = `cc-peers-${tag}`;
  // BullMQ keeps ~10,000 events per queue by default; W3's 10,000 jobs make ~40,000, so a client that
  // falls behind loses some. The documented streams.events.maxLen raises the cap.
  const queue = new Queue(name, { connection: REDIS, streams: { events: { maxLen: EVENTS_MAX_LEN } } });
  const events = new QueueEvents(name, { connection: REDIS });
  queue.on('error', (err: unknown) => log(`bullmq queue: ${err}`));
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
  const processes = isTuned(system) ? BULLMQ_TUNED_PROCESSES : 1;
  const started = await Promise.allSettled(Array.from({ length: processes }, () => startWorker(system, { queue: name, concurrency: Math.ceil(50 / processes) })));
  const workers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) { await Promise.all(workers.map(stopWorker)); await queue.obliterate({ force: true }); await events.close(); await queue.close(); throw failed.reason; }
  const counts = async () => { const c = await queue.getJobCounts('completed', 'failed'); if (c.failed) throw new Error(`bullmq: ${c.failed} jobs failed`); return c.completed; };
  return {
    async noops(n) {
      const jobs = Array.from({ length: n }, () => ({ name: 'noop', data: { k: 'noop', i: 0 } }));
      const target = (await counts()) + n;
      return async (abort) => {
        await queue.addBulk(jobs);
        // Completion is observed by polling the completed count (QueueEvents would stream 20,000 events to the client).
        await until(abort, 'bullmq completions', async () => (await counts()) >= target);
      };
    },
    async echo(i) {
      // BullMQ's own result wait: QueueEvents (a blocking XREAD on the queue's event stream) + waitUntilFinished.
      const job = await queue.add('echo', { k: 'echo', i });
      return (await job.waitUntilFinished(events, LIMIT_MS)) as number;
    },
    async map(argsList) {
      const seq = ++runSeq;
      const prefix = `m${seq}-`;
      const jobs = argsList.map((i) => ({ name: 'sum', data: { k: 'sum', i }, opts: { jobId: `${prefix}${i}` } }));
      const target = (await counts()) + argsList.length;
      return async (abort) => {
        // Return values arrive with QueueEvents' 'completed' events; the job id names the argument.
        const results = new Array<number>(argsList.length);
        let got = 0;
        const onDone = ({ jobId, returnvalue }: { jobId: string; returnvalue: unknown }) => {
          if (!jobId.startsWith(prefix)) return;
          const idx = Number(jobId.slice(prefix.length));
          if (results[idx] === undefined) got++;
          results[idx] = typeof returnvalue === 'string' ? JSON.parse(returnvalue) : (returnvalue as number);
        };
        events.on('completed', onDone);
        try {
          await queue.addBulk(jobs);
          await until(abort, 'bullmq results', async () => got === argsList.length || (await counts()) >= target);
          // The event stream is capped (see EVENTS_MAX_LEN): should the client have fallen behind and
          // lost events, the missing return values are read from the jobs themselves.
          const missing = argsList.filter((_, idx) => results[idx] === undefined);
          const found = await Promise.all(missing.map((i) => queue.getJob(`${prefix}${i}`)));
          missing.forEach((i, n) => { results[i] = found[n]?.returnvalue; });
          return results;
        } finally {
          events.off('completed', onDone);
        }
      };
    },
    async close() {
      await Promise.all(workers.map(stopWorker));
      await queue.obliterate({ force: true });
      await events.close();
      await queue.close();
    },
  };
}

async function graphilePeer(tag: string, system: System): Promise<Peer> {
  const { makeWorkerUtils, Logger } = await load('graphile-worker');
  const schema = `gw_peers_${tag}`;
  const channel = `${schema}_done`;
  const logger = new Logger(() => (level: string, message: string) => { if (level === 'error' || level === 'warning') log(`graphile: ${message}`); });
  const sql = await pgClient();
  const utils = await makeWorkerUtils({ connectionString: PG_URL, schema, logger });
  let worker: ChildProcess | undefined;
  let notes: Awaited<ReturnType<typeof listener>> | undefined;
  const cleanup = async () => {
    await stopWorker(worker);
    await notes?.close();
    await utils.release();
    await sql.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await sql.end();
  };
  try {
    await utils.migrate();
    // Graphile keeps no results: the W3 handler writes one row per argument here.
    await sql.query(`CREATE TABLE "${schema}".bench_results (idx int PRIMARY KEY, value bigint NOT NULL)`);
    notes = await listener(channel);
    worker = await startWorker(system, { connectionString: PG_URL, schema, channel });
  } catch (err) { await cleanup(); throw err; }
  const pending = async () => {
    const r = await sql.query(`SELECT count(*)::int AS n, count(*) FILTER (WHERE last_error IS NOT NULL)::int AS failed FROM "${schema}"._private_jobs`);
    if (r.rows[0].failed) throw new Error(`graphile: ${r.rows[0].failed} jobs failed`);
    return r.rows[0].n as number;
  };
  return {
    async noops(n) {
      const specs = Array.from({ length: n }, () => ({ identifier: 'bench', payload: { k: 'noop', i: 0 } }));
      return async (abort) => {
        await utils.addJobs(specs); // one add_jobs() call
        // Graphile deletes a job's row when it completes: done when none is left.
        await until(abort, 'graphile completions', async () => (await pending()) === 0);
      };
    },
    async echo(i, abort) {
      // Completion: the handler pg_notify()s i on this run's channel, which this client LISTENs to.
      const heard = notes!.wait(i, abort);
      await utils.addJob('bench', { k: 'echo', i });
      await heard;
      return i;
    },
    async map(argsList) {
      await sql.query(`TRUNCATE "${schema}".bench_results`);
      const specs = argsList.map((i) => ({ identifier: 'bench', payload: { k: 'sum', i } }));
      return async (abort) => {
        await utils.addJobs(specs);
        await until(abort, 'graphile results', async () => (await sql.query(`SELECT count(*)::int AS n FROM "${schema}".bench_results`)).rows[0].n >= argsList.length);
        const r = await sql.query(`SELECT value FROM "${schema}".bench_results ORDER BY idx`);
        return r.rows.map((row: { value: string }) => Number(row.value));
      };
    },
    close: cleanup,
  };
}

async function pgbossPeer(tag: string, system: System): Promise<Peer> {
  const { default: PgBoss } = await load('pg-boss');
  const schema = `pgboss_peers_${tag}`;
  const channel = `${schema}_done`;
  const sql = await pgClient();
  const boss = new PgBoss({ connectionString: PG_URL, schema, supervise: false, schedule: false });
  boss.on('error', (err: unknown) => log(`pg-boss: ${err}`));
  let worker: ChildProcess | undefined;
  let notes: Awaited<ReturnType<typeof listener>> | undefined;
  let started = false;
  const cleanup = async () => {
    await stopWorker(worker);
    await notes?.close();
    if (started) await boss.stop({ graceful: false, wait: true });
    await sql.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await sql.end();
  };
  try {
    await boss.start(); // creates the schema
    started = true;
    await boss.createQueue('bench');
    notes = await listener(channel);
    worker = await startWorker(system, { connectionString: PG_URL, schema, channel });
  } catch (err) { await cleanup(); throw err; }
  const completed = async () => {
    const r = await sql.query(`SELECT count(*) FILTER (WHERE state = 'completed')::int AS done, count(*) FILTER (WHERE state = 'failed')::int AS failed FROM "${schema}".job WHERE name = 'bench'`);
    if (r.rows[0].failed) throw new Error(`pg-boss: ${r.rows[0].failed} jobs failed`);
    return r.rows[0].done as number;
  };
  return {
    async noops(n) {
      const jobs = Array.from({ length: n }, () => ({ name: 'bench', data: { k: 'noop', i: 0 } }));
      const target = (await completed()) + n;
      return async (abort) => {
        await boss.insert(jobs); // one insert of all the jobs
        await until(abort, 'pg-boss completions', async () => (await completed()) >= target);
      };
    },
    async echo(i, abort) {
      // pg-boss 10 has no wait for a result: the handler pg_notify()s i on this run's channel
      // (faster than polling getJobById), and this client LISTENs to it.
      const heard = notes!.wait(i, abort);
      await boss.send('bench', { k: 'echo', i });
      await heard;
      return i;
    },
    async map(argsList) {
      const seq = ++runSeq;
      const jobs = argsList.map((i) => ({ name: 'bench', data: { k: 'sum', i, r: seq } }));
      const target = (await completed()) + argsList.length;
      return async (abort) => {
        await boss.insert(jobs);
        await until(abort, 'pg-boss completions', async () => (await completed()) >= target);
        // The worker completes each sum job with its value, which pg-boss stores as the job's output, {"value": …}.
        const r = await sql.query(`SELECT (data->>'i')::int AS i, (output->>'value')::bigint AS v FROM "${schema}".job
          WHERE name = 'bench' AND data->>'k' = 'sum' AND (data->>'r')::int = $1 ORDER BY 1`, [seq]);
        return r.rows.map((row: { v: string }) => Number(row.v));
      };
    },
    close: cleanup,
  };
}

// ---- the workloads, one definition for every peer ----
type Figures = { W1?: { tasks_per_s: number }; W2?: { p50_ms: number; p99_ms: number }; W3?: { wall_s: number; unchunked_wall_s?: number } };

async function w1(p: Peer, label: string): Promise<Figures['W1']> {
  return bounded(`${label} W1`, async (abort) => {
    await (await p.noops(W1_WARMUP))(abort);
    const go = await p.noops(W1_JOBS);
    const t0 = performance.now();
    await go(abort);
    return { tasks_per_s: Math.round(W1_JOBS / ((performance.now() - t0) / 1000)) };
  });
}
async function w2(p: Peer, label: string): Promise<Figures['W2']> {
  return bounded(`${label} W2`, async (abort) => {
    for (let i = 0; i < W2_WARMUP; i++) await p.echo(-1 - i, abort);
    const lat: number[] = [];
    for (let i = 0; i < W2_TRIPS; i++) {
      if (abort.aborted) throw new Error('aborted');
      const t0 = performance.now();
      const v = await p.echo(i, abort);
      lat.push(performance.now() - t0);
      if (v !== i) throw new Error(`round trip ${i} returned ${v}`);
    }
    return { p50_ms: round(pct(lat, 50), 3), p99_ms: round(pct(lat, 99), 3) };
  });
}
async function w3(p: Peer, label: string): Promise<Figures['W3']> {
  const argsList = Array.from({ length: W3_ARGS }, (_, i) => i);
  return bounded(`${label} W3`, async (abort) => {
    const warm = await (await p.map(argsList.slice(0, W3_WARMUP)))(abort);
    if (warm.length !== W3_WARMUP) throw new Error(`warm-up returned ${warm.length} results`);
    const go = await p.map(argsList);
    const t0 = performance.now();
    const results = await go(abort);
    const wall = (performance.now() - t0) / 1000;
    if (results.length !== W3_ARGS || results.some((v) => v !== SUM)) throw new Error(`wrong results (${results.length}; first bad ${results.find((v) => v !== SUM)})`);
    return { wall_s: round(wall, 3) };
  });
}

// ---- CrowdCompute: bench/run.ts, spawned and parsed ----
type BenchLines = Record<string, Record<string, any>>;
/** bench/run.ts with these arguments: its JSON lines by `bench` (and `path`: the REST lines are two), and how it ended. */
async function runBench(label: string, argv: string[], limitMs: number): Promise<{ lines: BenchLines; code: number | string }> {
  // Its own process group, so a time-out ends its foremen and workers too.
  const child = track(spawn(process.execPath, ['--no-node-snapshot', join(root, 'bench/run.ts'), ...argv], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true }));
  const lines: BenchLines = {};
  let out = '';
  child.stdout!.on('data', (d) => {
    out += d;
    let nl: number;
    while ((nl = out.indexOf('\n')) >= 0) {
      const line = out.slice(0, nl).trim();
      out = out.slice(nl + 1);
      if (!line.startsWith('{')) continue;
      try { const j = JSON.parse(line); if (typeof j.bench === 'string') lines[typeof j.path === 'string' ? `${j.bench} ${j.path}` : j.bench] = j; } catch { /* not one of its lines */ }
    }
  });
  child.stderr!.on('data', (d) => process.stderr.write(`[${label}] ${d}`));
  const code = await new Promise<number | string>((resolve) => {
    const timer = setTimeout(() => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } resolve(`timed out after ${limitMs / 1000} s`); }, limitMs);
    child.once('exit', (c, s) => { clearTimeout(timer); resolve(c ?? String(s)); });
  });
  if (code !== 0 && argv.includes('--database')) {
    // Its schema is dropped in its own cleanup, which a killed run does not reach.
    const sql = await pgClient();
    await sql.query(`DROP SCHEMA IF EXISTS "cc_bench_${child.pid}" CASCADE`).catch(() => {});
    await sql.end();
  }
  return { lines, code };
}

/** One round of CrowdCompute on the selected workloads; on SQLite also the machine limits line (bench/run.ts `limits`). */
async function crowdcompute(system: System, errors: Map<Workload, string>): Promise<{ figures: Figures; limits?: Record<string, unknown> }> {
  const only = workloads.flatMap((w) => (w === 'W1' ? ['throughput'] : w === 'W2' ? ['latency'] : ['map', 'map-unchunked']));
  const withLimits = system === 'crowdcompute-sqlite';
  const { lines, code } = await runBench(system, ['--only', [...only, ...(withLimits ? ['limits'] : [])].join(','), '--runs', '1',
    ...(system === 'crowdcompute-postgres' ? ['--database', PG_URL] : [])], LIMIT_MS * (only.length + 1) + 30_000);
  const figures: Figures = {};
  const fail = (w: Workload, what: string) => errors.set(w, `${system} ${w}: ${code === 0 ? `bench/run.ts printed no '${what}' line` : `bench/run.ts exited ${code}`}`);
  if (workloads.includes('W1')) { if (lines.throughput) figures.W1 = { tasks_per_s: lines.throughput.tasks_per_s }; else fail('W1', 'throughput'); }
  if (workloads.includes('W2')) { if (lines.latency) figures.W2 = { p50_ms: lines.latency.p50_ms, p99_ms: lines.latency.p99_ms }; else fail('W2', 'latency'); }
  if (workloads.includes('W3')) {
    if (lines.map && lines['map-unchunked']) figures.W3 = { wall_s: round(lines.map.wall_ms / 1000, 3), unchunked_wall_s: round(lines['map-unchunked'].wall_ms / 1000, 3) };
    else fail('W3', lines.map ? 'map-unchunked' : 'map');
  }
  if (withLimits && !lines.limits) log(`bench:peers: ${system}: no limits line (bench/run.ts ${code === 0 ? 'printed none' : `exited ${code}`})`);
  return { figures, limits: lines.limits };
}

// ---- the floors measured by bench/run.ts rather than the peer workloads (see --floors) ----
const EXTRAS = {
  /** REST intake on SQLite: POST /task/submit at 50 connections. */
  rest: { argv: ['--only', 'rest', '--runs', '1'], limitMs: 300_000 },
  /** PostgreSQL W2 with one foreman, and with two (the worker on one, the client on the other). */
  'pg-latency-1-foreman': { argv: ['--only', 'latency', '--runs', '1', '--database', PG_URL], limitMs: 300_000 },
  'pg-latency-2-foremen': { argv: ['--only', 'latency', '--runs', '1', '--database', PG_URL, '--foremen', '2'], limitMs: 300_000 },
  /** A million tasks on PostgreSQL beside the 20,000-task throughput rate of the same foreman. */
  'pg-million': { argv: ['--only', 'throughput,million', '--runs', '1', '--database', PG_URL], limitMs: 2_400_000 },
} as const;
type Extra = keyof typeof EXTRAS;
const extras: Extra[] = FLOORS === 'none' ? [] : FLOORS === 'cheap' ? ['rest', 'pg-latency-1-foreman', 'pg-latency-2-foremen'] : Object.keys(EXTRAS) as Extra[];
const extraRounds = new Map<Extra, BenchLines[]>(extras.map((e) => [e, []]));
const extraErrors: string[] = [];

// ---- the rounds ----
const results = new Map<string, { figures: Figures; errors: Map<Workload, string> }[]>();
for (const s of systems) results.set(s, []);
const limitsRounds: Record<string, unknown>[] = [];

async function runPeer(system: System, r: number): Promise<{ figures: Figures; errors: Map<Workload, string> }> {
  const errors = new Map<Workload, string>();
  const figures: Figures = {};
  const tag = `${process.pid}_${r}${isTuned(system) ? 't' : ''}`;
  const family = familyOf(system);
  let peer: Peer;
  try {
    peer = await bounded(`${system} setup`, async () => family === 'bullmq' ? bullmqPeer(tag, system) : family === 'graphile' ? graphilePeer(tag, system) : pgbossPeer(tag, system), 60_000);
  } catch (err) {
    for (const w of workloads) errors.set(w, `${system} setup: ${(err as Error).message}`);
    return { figures, errors };
  }
  try {
    for (const w of workloads) {
      if (NOT_RUN[system]?.[w]) continue;
      try {
        if (w === 'W1') figures.W1 = await w1(peer, system);
        if (w === 'W2') figures.W2 = await w2(peer, system);
        if (w === 'W3') figures.W3 = await w3(peer, system);
      } catch (err) {
        errors.set(w, `${system} ${w}: ${(err as Error).message}`);
        break; // the worker may be busy with the abandoned jobs: the next workloads would not compare
      }
    }
    for (const w of workloads) if (!figures[w] && !errors.has(w) && !NOT_RUN[system]?.[w]) errors.set(w, `${system} ${w}: skipped after an earlier failure in this round`);
  } finally {
    await bounded(`${system} cleanup`, () => peer.close(), 60_000).catch((err) => log(`${system} cleanup: ${(err as Error).message}`));
  }
  return { figures, errors };
}

for (let r = 1; r <= ROUNDS; r++) {
  for (const system of systems) {
    log(`bench:peers: round ${r}/${ROUNDS}: ${system} (${workloads.join(', ')}) …`);
    const t0 = performance.now();
    let res: { figures: Figures; errors: Map<Workload, string> };
    if (PEERS.includes(system)) res = await runPeer(system, r);
    else {
      const errors = new Map<Workload, string>();
      const { figures, limits } = await crowdcompute(system, errors);
      if (limits) limitsRounds.push(limits);
      res = { figures, errors };
    }
    for (const e of res.errors.values()) log(`bench:peers: ERROR ${e}`);
    log(`bench:peers: round ${r}/${ROUNDS}: ${system} done in ${round((performance.now() - t0) / 1000, 1)} s: ${JSON.stringify(res.figures)}`);
    results.get(system)!.push(res);
  }
  for (const e of extras) {
    log(`bench:peers: round ${r}/${ROUNDS}: floor run ${e} (bench/run.ts ${EXTRAS[e].argv.join(' ')}) …`);
    const t0 = performance.now();
    const { lines, code } = await runBench(e, [...EXTRAS[e].argv], EXTRAS[e].limitMs);
    if (code !== 0) { extraErrors.push(`round ${r}: ${e}: bench/run.ts exited ${code}`); log(`bench:peers: ERROR ${e}: bench/run.ts exited ${code}`); }
    extraRounds.get(e)!.push(lines);
    log(`bench:peers: round ${r}/${ROUNDS}: floor run ${e} done in ${round((performance.now() - t0) / 1000, 1)} s`);
  }
}

// ---- JSON lines: medians over rounds, and every round's figure ----
const meta = { node: process.versions.node, cpus: cpus().length };
type Summary = Record<string, number | null>;
const summary = new Map<string, Summary>(); // `${system} ${workload}` -> medians
const medianOr = (xs: unknown[]) => { const v = xs.filter((x): x is number => typeof x === 'number'); return v.length ? median(v) : null; };
let failures = extraErrors.length;
for (const system of systems) {
  const rounds = results.get(system)!;
  for (const w of workloads) {
    const errs = rounds.flatMap((x, i) => (x.errors.has(w) ? [`round ${i + 1}: ${x.errors.get(w)}`] : []));
    failures += errs.length;
    const per = rounds.map((x) => x.figures[w]);
    const notRun = NOT_RUN[system]?.[w];
    const base = { system, workload: w, version: VERSIONS[system], ...(PEERS.includes(system) ? { config: isTuned(system) ? 'tuned' : 'default' } : {}) };
    let s: Summary;
    let line: Record<string, unknown>;
    if (w === 'W1') {
      s = { tasks_per_s: medianOr(per.map((f) => (f as Figures['W1'])?.tasks_per_s)) };
      line = { ...base, jobs: W1_JOBS, concurrency: 50, ...s, rounds: per.map((f) => (f as Figures['W1'])?.tasks_per_s ?? null) };
    } else if (w === 'W2') {
      s = { p50_ms: medianOr(per.map((f) => (f as Figures['W2'])?.p50_ms)), p99_ms: medianOr(per.map((f) => (f as Figures['W2'])?.p99_ms)) };
      line = { ...base, round_trips: W2_TRIPS, ...s, rounds: per.map((f) => f ?? null) };
    } else {
      const f3 = per as (Figures['W3'] | undefined)[];
      if (system.startsWith('crowdcompute')) {
        s = { wall_s: medianOr(f3.map((f) => f?.wall_s)), unchunked_wall_s: medianOr(f3.map((f) => f?.unchunked_wall_s)) };
        line = { ...base, args: W3_ARGS, ...s, note: 'wall_s: default chunking; unchunked_wall_s: chunkSize 1, one task per argument as the peers run it', rounds: per.map((f) => f ?? null) };
      } else {
        s = { wall_s: medianOr(f3.map((f) => f?.wall_s)) };
        line = { ...base, args: W3_ARGS, jobs: W3_ARGS, ...s, rounds: f3.map((f) => f?.wall_s ?? null) };
      }
    }
    summary.set(`${system} ${w}`, s);
    console.log(JSON.stringify({ ...line, ...(notRun ? { not_run: notRun } : {}), ...(errs.length ? { errors: errs } : {}), ...meta }));
  }
}

// ---- the ratio table (stderr, after the JSON lines) ----
// Every ratio is an advantage factor: how many times better the row's system is than the one it is
// compared with (>1 better, <1 worse): throughput / theirs for W1, theirs / ours for times.
const get = (system: string, w: Workload, key: string) => summary.get(`${system} ${w}`)?.[key] ?? null;
const fmt = (n: number | null, d = 2) => (n === null ? '—' : String(round(n, d)));
const factor = (x: number | null) => (x === null || !Number.isFinite(x) ? '—' : x >= 1 ? `${x.toFixed(2)}x better` : `${x.toFixed(2)}x (${(1 / x).toFixed(2)}x worse)`);
const higher = (ours: number | null, theirs: number | null) => (ours === null || theirs === null || theirs === 0 ? null : ours / theirs);
const lower = (ours: number | null, theirs: number | null) => (ours === null || theirs === null || ours === 0 ? null : theirs / ours);
const peersIn = PEERS.filter((p) => systems.includes(p));
/** The best figure among these peer configurations (all selected ones by default). */
function best(w: Workload, key: string, hi: boolean, among: string[] = peersIn): { system: string; value: number } | null {
  let b: { system: string; value: number } | null = null;
  for (const p of among) {
    const v = get(p, w, key);
    if (v !== null && (b === null || (hi ? v > b.value : v < b.value))) b = { system: p, value: v };
  }
  return b;
}
/** The faster of a peer's two configurations in this run, for this figure. */
const fasterOf = (family: Family, w: Workload, key: string, hi: boolean) => best(w, key, hi, peersIn.filter((p) => familyOf(p) === family));
const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const out: string[] = ['', `== bench:peers: medians over ${ROUNDS} round(s); ratios are advantage factors (>1: the row's system is better) ==`];
const table = (title: string, w: Workload, key: string, unit: string, hi: boolean, systemsKey: (s: string) => string = () => key) => {
  const b = best(w, key, hi);
  out.push('', `${title} (${unit}; best peer: ${b ? `${b.system} ${fmt(b.value)}` : '—'})`);
  for (const s of systems) {
    const k = systemsKey(s);
    const v = get(s, w, k);
    const shown = v === null && NOT_RUN[s as System]?.[w] ? 'not run' : fmt(v);
    out.push(`  ${pad(s + (k !== key ? ` [${k}]` : ''), 42)} ${pad(shown, 12)} vs best peer: ${factor(b ? (hi ? higher(v, b.value) : lower(v, b.value)) : null)}`);
  }
};
if (workloads.includes('W1')) table('W1 throughput', 'W1', 'tasks_per_s', 'tasks/s, higher is better', true);
if (workloads.includes('W2')) {
  table('W2 latency p50', 'W2', 'p50_ms', 'ms, lower is better', false);
  table('W2 latency p99', 'W2', 'p99_ms', 'ms, lower is better', false);
}
if (workloads.includes('W3')) {
  table('W3 map, one task per argument (chunkSize 1 for CrowdCompute)', 'W3', 'wall_s', 's, lower is better', false, (s) => (s.startsWith('crowdcompute') ? 'unchunked_wall_s' : 'wall_s'));
  table('W3 map, CrowdCompute default chunking (peers: one job per argument)', 'W3', 'wall_s', 's, lower is better', false);
}
const notRunNotes = systems.flatMap((s) => workloads.flatMap((w) => (NOT_RUN[s]?.[w] ? [`  ${s} ${w} not run: ${NOT_RUN[s]![w]}`] : [])));
if (notRunNotes.length) out.push('', ...notRunNotes);
const headline: [string, string, Workload, string, 'best' | Family, string, boolean][] = [
  // label, ours, workload, our key, peer ('best' = best peer configuration; a family = the faster of its two), peer key, higher is better
  ['SQLite W1 throughput vs best peer', 'crowdcompute-sqlite', 'W1', 'tasks_per_s', 'best', 'tasks_per_s', true],
  ['SQLite W2 p50 vs BullMQ', 'crowdcompute-sqlite', 'W2', 'p50_ms', 'bullmq', 'p50_ms', false],
  ['SQLite W2 p99 vs BullMQ', 'crowdcompute-sqlite', 'W2', 'p99_ms', 'bullmq', 'p99_ms', false],
  ['SQLite W3 chunkSize 1 vs BullMQ', 'crowdcompute-sqlite', 'W3', 'unchunked_wall_s', 'bullmq', 'wall_s', false],
  ['PostgreSQL W1 throughput vs Graphile', 'crowdcompute-postgres', 'W1', 'tasks_per_s', 'graphile', 'tasks_per_s', true],
  ['PostgreSQL W2 p50 vs pg-boss', 'crowdcompute-postgres', 'W2', 'p50_ms', 'pgboss', 'p50_ms', false],
  ['PostgreSQL W3 chunkSize 1 vs Graphile', 'crowdcompute-postgres', 'W3', 'unchunked_wall_s', 'graphile', 'wall_s', false],
];
const peerOf = (peer: 'best' | Family, w: Workload, key: string, hi: boolean) => (peer === 'best' ? best(w, key, hi) : fasterOf(peer, w, key, hi));
const lines = headline.filter(([, ours, w, , peer]) => systems.includes(ours as System) && workloads.includes(w) && (peer === 'best' ? peersIn.length > 0 : peersIn.some((p) => familyOf(p) === peer)));
if (lines.length) {
  out.push('', 'Headline comparisons (against the best peer configuration, or the faster of the named peer\'s two: "ahead of the peer tuned as its own docs advise")');
  for (const [label, ours, w, ok, peer, pk, hi] of lines) {
    const b = peerOf(peer, w, pk, hi);
    const v = get(ours, w, ok);
    out.push(`  ${pad(label, 40)} ${pad(`${fmt(v)} vs ${fmt(b?.value ?? null)}${b ? ` (${b.system})` : ''}`, 36)} ${factor(b ? (hi ? higher(v, b.value) : lower(v, b.value)) : null)}`);
  }
}

// ---- machine limits (bench/run.ts `limits`, from the SQLite runs) ----
if (systems.includes('crowdcompute-sqlite')) {
  const m = (k: string) => medianOr(limitsRounds.map((l) => l[k]));
  const keys = ['ws_round_trip_p50_ms', 'ws_round_trip_p99_ms', 'sqlite_inserts_per_s', 'sqlite_updates_per_s', 'foreman_cpu_us_per_task', 'worker_cpu_us_per_task', 'client_cpu_us_per_task'];
  const lim = Object.fromEntries(keys.map((k) => [k, m(k)]));
  const first = limitsRounds[0] ?? {};
  console.log(JSON.stringify({ system: 'machine-limits', ...lim, sqlite_insert_batch: first.sqlite_insert_batch ?? null, sqlite_update_batch: first.sqlite_update_batch ?? null,
    sqlite_synchronous: first.sqlite_synchronous ?? null, rounds: limitsRounds.length, ...meta }));
  out.push('', limitsRounds.length
    ? `Machine limits (bench/run.ts limits, median of ${limitsRounds.length}): WebSocket round trip between two Node processes on loopback p50 ${fmt(lim.ws_round_trip_p50_ms, 3)} ms, p99 ${fmt(lim.ws_round_trip_p99_ms, 3)} ms; ` +
      `SQLite (WAL, synchronous ${String(first.sqlite_synchronous)}) ${fmt(lim.sqlite_inserts_per_s, 0)} inserts/s in transactions of ${String(first.sqlite_insert_batch)}, ${fmt(lim.sqlite_updates_per_s, 0)} updates/s in transactions of ${String(first.sqlite_update_batch)}; ` +
      `CPU per task in the throughput workload: foreman ${fmt(lim.foreman_cpu_us_per_task, 1)} µs, worker ${fmt(lim.worker_cpu_us_per_task, 1)} µs, client ${fmt(lim.client_cpu_us_per_task, 1)} µs`
    : 'Machine limits: not measured (no limits line from bench/run.ts)');
}

// ---- the floors: each goal, this run's figure, met or missed ----
type FloorRow = { floor: string; goal: string; measured: string; value: number | null; met: boolean | null };
const floors: FloorRow[] = [];
const addFloor = (floor: string, op: '>=' | '<=', goal: number, goalText: string, value: number | null, measured: string, missing: string) =>
  floors.push({ floor, goal: goalText, value: value === null ? null : round(value, 3), measured: value === null ? `not measured (${missing})` : measured, met: value === null ? null : op === '>=' ? value >= goal : value <= goal });
const n0 = (v: number | null) => (v === null ? '—' : Math.round(v).toLocaleString('en-US'));
/** Why a system's figure is missing: not selected, a workload not selected or not run, or failed rounds. */
const whyNo = (system: string, w: Workload) => {
  if (!systems.includes(system as System)) return `${system} not selected`;
  if (!workloads.includes(w)) return `${w} not selected`;
  return NOT_RUN[system as System]?.[w] ? `${system} does not run ${w}` : `no ${system} ${w} figure: its rounds failed`;
};
/** Why a peer's figure is missing (`best`: any peer configuration; a family: either of its two). */
const whyNoPeer = (peer: 'best' | Family, w: Workload) => {
  const among = peer === 'best' ? PEERS : PEERS.filter((p) => familyOf(p) === peer);
  if (!among.some((p) => systems.includes(p))) return `no ${peer === 'best' ? 'peer' : peer} configuration selected`;
  return workloads.includes(w) ? `no ${peer === 'best' ? 'peer' : peer} ${w} figure: its rounds failed` : `${w} not selected`;
};
/** Why a floor run's figure is missing. */
const whyNoExtra = (e: Extra, flag: string) => (extras.includes(e) ? `the ${e} floor run failed` : `run with --floors ${flag}`);
{
  // Throughput: ours / theirs (above 1 we are faster).
  const rate = (label: string, ours: System, peer: 'best' | Family, goal: number) => {
    const v = get(ours, 'W1', 'tasks_per_s');
    const b = systems.includes(ours) ? peerOf(peer, 'W1', 'tasks_per_s', true) : null;
    const x = v !== null && b ? v / b.value : null;
    addFloor(label, '>=', goal, `ours/theirs tasks/s >= ${goal}x`, x, `ours/theirs ${x?.toFixed(2)}x (${n0(v)} vs ${n0(b?.value ?? null)} tasks/s, ${b?.system})`, v === null ? whyNo(ours, 'W1') : whyNoPeer(peer, 'W1'));
  };
  // Times: ours / theirs (below 1 we are faster), said as such to leave no doubt about the direction.
  const time = (label: string, ours: System, w: Workload, ok: string, peer: Family, pk: string, goal: number, unit: string) => {
    const v = get(ours, w, ok);
    const b = systems.includes(ours) ? peerOf(peer, w, pk, false) : null;
    const x = v !== null && b && b.value > 0 ? v / b.value : null;
    addFloor(label, '<=', goal, `ours/theirs time <= ${goal}`, x, `ours/theirs time ${x?.toFixed(2)} (${fmt(v, 3)} vs ${fmt(b?.value ?? null, 3)} ${unit}, ${b?.system})`, v === null ? whyNo(ours, w) : whyNoPeer(peer, w));
  };
  const ex = (e: Extra, key: string, field: string) => (extraRounds.get(e) ? medianOr(extraRounds.get(e)!.map((l) => l[key]?.[field])) : null);
  rate('SQLite W1 tasks/s vs best peer', 'crowdcompute-sqlite', 'best', 5);
  time('SQLite W2 p50 vs BullMQ', 'crowdcompute-sqlite', 'W2', 'p50_ms', 'bullmq', 'p50_ms', 0.7, 'ms');
  time('SQLite W2 p99 vs BullMQ', 'crowdcompute-sqlite', 'W2', 'p99_ms', 'bullmq', 'p99_ms', 0.8, 'ms');
  time('SQLite W3 map-unchunked vs BullMQ', 'crowdcompute-sqlite', 'W3', 'unchunked_wall_s', 'bullmq', 'wall_s', 0.5, 's');
  rate('PostgreSQL W1 tasks/s vs Graphile', 'crowdcompute-postgres', 'graphile', 2);
  const pgP50 = get('crowdcompute-postgres', 'W2', 'p50_ms') ?? ex('pg-latency-1-foreman', 'latency', 'p50_ms');
  addFloor('PostgreSQL W2 p50', '<=', 4, '<= 4 ms', pgP50, `${fmt(pgP50, 3)} ms`, `${whyNo('crowdcompute-postgres', 'W2')}, and ${whyNoExtra('pg-latency-1-foreman', 'cheap')}`);
  time('PostgreSQL W2 p50 vs pg-boss', 'crowdcompute-postgres', 'W2', 'p50_ms', 'pgboss', 'p50_ms', 0.5, 'ms');
  const restRate = ex('rest', 'rest /task/submit', 'submissions_per_s');
  const restP50 = ex('rest', 'rest /task/submit', 'p50_ms');
  addFloor('REST POST /task/submit at 50 connections (SQLite)', '>=', 10_000, '>= 10,000/s', restRate, `${n0(restRate)}/s`, whyNoExtra('rest', 'cheap'));
  addFloor('REST POST /task/submit p50 at 50 connections (SQLite)', '<=', 5, '<= 5 ms', restP50, `${fmt(restP50, 2)} ms`, whyNoExtra('rest', 'cheap'));
  const million = ex('pg-million', 'million-tasks', 'items_per_s');
  const twentyK = ex('pg-million', 'throughput', 'tasks_per_s');
  const mx = million !== null && twentyK ? million / twentyK : null;
  addFloor('PostgreSQL million tasks rate vs its 20k throughput rate', '>=', 0.9, 'million/20k >= 0.9x', mx, `million/20k ${mx?.toFixed(2)}x (${n0(million)} vs ${n0(twentyK)} tasks/s)`, whyNoExtra('pg-million', 'all'));
  const one = ex('pg-latency-1-foreman', 'latency', 'p50_ms');
  const two = ex('pg-latency-2-foremen', 'latency', 'p50_ms');
  const fx = one !== null && two !== null && one > 0 ? two / one : null;
  addFloor('PostgreSQL two foremen W2 p50 vs one foreman', '<=', 1.2, 'two/one p50 time <= 1.2x', fx, `two/one ${fx?.toFixed(2)}x (${fmt(two, 3)} vs ${fmt(one, 3)} ms)`, one === null ? whyNoExtra('pg-latency-1-foreman', 'cheap') : whyNoExtra('pg-latency-2-foremen', 'cheap'));
}
const met = floors.filter((f) => f.met === true).length;
const missed = floors.filter((f) => f.met === false).length;
console.log(JSON.stringify({ floors: floors.map((f) => ({ ...f })), met, missed, not_measured: floors.length - met - missed, rounds: ROUNDS, floor_runs: extras, ...meta }));
out.push('', `Floors (medians over ${ROUNDS} round(s); "ours/theirs time" below 1 means CrowdCompute takes less time; ${met} met, ${missed} missed, ${floors.length - met - missed} not measured)`);
const w0 = Math.max(...floors.map((f) => f.floor.length)) + 2;
const w1c = Math.max(...floors.map((f) => f.goal.length)) + 2;
const w2c = Math.max(...floors.map((f) => f.measured.length)) + 2;
out.push(`  ${pad('floor', w0)}${pad('goal', w1c)}${pad('measured', w2c)}result`);
for (const f of floors) out.push(`  ${pad(f.floor, w0)}${pad(f.goal, w1c)}${pad(f.measured, w2c)}${f.met === null ? '—' : f.met ? 'met' : 'MISSED'}`);
if (extraErrors.length) out.push('', ...extraErrors.map((e) => `floor run failed: ${e}`));
if (failures) out.push('', `${failures} run(s) failed: see the errors above and in the JSON lines.`);
process.stderr.write(`${out.join('\n')}\n`);
process.exitCode = failures ? 1 : 0;
