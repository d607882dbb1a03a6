/**
 * `npm run bench [-- --database <url>] [-- --runs N]`: these benchmarks, each
 * printed as one JSON line so runs can be compared by a script:
 *   throughput: 20,000 no-op named tasks submitted in bulk, one worker process at concurrency 50
 *               (tasks/s, and the CPU per task of the foreman, the worker and the client);
 *               then the same run by a Python worker (the Python SDK's, bench/python-worker.py,
 *               on Debian's /usr/bin/python3 or $CROWDCOMPUTE_PYTHON; a line saying so when it
 *               is missing): its tasks/s, the ratio to the Node worker's, and each worker's CPU per task
 *   limits:     what the machine allows: a WebSocket round trip between two Node processes on
 *               loopback (p50 / p99, with `ws`), SQLite rows inserted and updated per second in
 *               batched transactions with the foreman's settings (bench/sqlite-write-probe.ts),
 *               and the CPU per task of the foreman, the worker and the client in the throughput
 *               workload (the throughput line's, or one run of it when that line is not selected)
 *   small-jobs: 5,000 jobs of one task each, submitted 500 at a time: jobs/s from the first
 *               submission to the last result (thousands of jobs sharing the workers at once)
 *   latency:    1,000 sequential submit -> result round trips, p50 / p99, and the CPU each process spent per round trip
 *   map:        a map job over 10,000 arguments (each call sums 1..10,000), submit -> ordered results,
 *               and the CPU per argument of the foreman, the worker, its sandbox processes and the client
 *   map-unchunked: the same map with chunkSize 1 (10,000 tasks of one argument each)
 *   map-python: the same map written in Python, run in Pyodide by the Node worker (warm
 *               interpreters), beside the JavaScript map and beside the same computation in one
 *               CPython process on this machine ($CROWDCOMPUTE_PYTHON, default /usr/bin/python3);
 *               also the first task's latency with a cold and a warm interpreter, and the
 *               worker's memory per interpreter (RSS of its Pyodide processes)
 *   checkpoint: one task of 2,000 batches, each recorded with a checkpoint (a batch handler),
 *               beside the same work in a plain handler; the difference per batch is what
 *               recording a batch costs
 *   rest:       5,000 single-task submissions over REST, 50 requests at a time, to POST /task/submit
 *               and to POST /api/jobs: submissions/s and the request latency's p50 / p99 (tasks
 *               of a type no worker runs: the foreman's intake alone)
 *   pipeline:   the pipeline example (examples/pipeline/graph.json): 100,000 numbers squared,
 *               re-chunked and summed across three nodes; its wall time
 *   browser:    the same map job with runOn 'browser', run by two headless Chromium tabs that
 *               opened a join link (Debian's chromium through playwright-core; skipped with a
 *               line saying so when it is missing), beside the Node worker's map figure
 *   fairness:   head-of-line blocking: the latency of a 10-task job submitted right after a
 *               100,000-task job of the same priority (p50 over `--fairness-runs`, default 20),
 *               beside the same 10-task job's latency on an idle foreman, and their ratio
 *   time:       1,000 schedules firing every second for a minute, then 100,000 tasks delayed at
 *               random over a minute from 15 s after their submission began (`--time-schedules`, `--time-seconds`, `--time-tasks`): the
 *               lateness of fires (a job's creation against its tick) and of releases (a worker
 *               getting the task against its time), p50 / p99 / max in ms, ticks missed and fired
 *               twice, and the foremen's CPU over 10 s while the schedules and delayed tasks only wait,
 *               beside the same with nothing to wait for
 *   traces:     the throughput workload on two fresh foreman-and-worker pairs, one started with
 *               OTEL_EXPORTER_OTLP_ENDPOINT pointing at a sink in this process and one without (what
 *               everyone who does not trace runs), runs interleaved: tasks/s and CPU per task of each,
 *               their ratio, and the spans the sink received
 * The foreman and the worker run as separate processes (the CLI), the client in this one.
 * `--database postgres://…` runs them on PostgreSQL; `--foremen 2` starts two foremen on it,
 * the worker on the first and the client on the last, so every result crosses foremen;
 * `--foreman-args='--no-store-thread'` passes more flags to every foreman it starts (an A/B of a
 * foreman option); `--worker-args` does the same for the workers.
 * `--spread-workers` starts one worker per foreman instead, sharing `--concurrency`, so that the
 * foremen share the dispatching.
 * `--insecure` runs the foremen without authentication, to measure what it costs.
 * `--only retention` (not part of the default set: it runs a million tasks) keeps a steady load
 * on a foreman started with `--retention 1s` and prints the database's size after every 100,000
 * tasks: with pruning, the size after a million should be no more than after the first 100,000.
 * `--only million` (not part of the default set) sends one job of 1,000,000 no-op named tasks
 * and one map over 1,000,000 arguments (`--million-tasks` to change the count), each open and
 * appended in parts, reads their results back in pages, and prints the rate and the foreman's
 * resident memory (before, and its peak sampled every 100 ms).
 * Loopback only; bounded in count and time.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Agent, request } from 'node:http';
import { Client, type MapFunction } from '../src/client/index.ts';
import { localCredentialsAt } from '../src/host/local-credentials.ts';
import { startTraceSink } from './trace-sink.ts';

const { values: args } = parseArgs({ options: {
  database: { type: 'string' }, 'worker-args': { type: 'string' }, runs: { type: 'string', default: '3' }, only: { type: 'string' },
  tasks: { type: 'string', default: '20000' }, concurrency: { type: 'string', default: '50' },
  foremen: { type: 'string', default: '1' }, 'spread-workers': { type: 'boolean', default: false },
  insecure: { type: 'boolean', default: false },
  'foreman-args': { type: 'string' },
  'steady-tasks': { type: 'string', default: '1000000' },
  'fairness-runs': { type: 'string', default: '20' },
  'million-tasks': { type: 'string', default: '1000000' },
  'time-schedules': { type: 'string', default: '1000' },
  'time-seconds': { type: 'string', default: '60' },
  'time-tasks': { type: 'string', default: '100000' },
} });
const RUNS = Number(args.runs);
/** More flags for every foreman the bench starts (`--foreman-args=--no-store-thread`): an A/B of a foreman option. */
const FOREMAN_ARGS = args['foreman-args']?.split(' ').filter(Boolean) ?? [];
/** More flags for the bench's workers (`--worker-args='--sandbox-processes 2'`): an A/B of a worker option. */
const WORKER_ARGS = args['worker-args']?.split(' ').filter(Boolean) ?? [];
const TASKS = Number(args.tasks);
const root = fileURLToPath(new URL('../', import.meta.url));
const bin = process.env.CC_BENCH_BIN ?? join(root, 'bin/crowdcompute.js');

function freePort(): Promise<number> {
  return new Promise((resolve) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => resolve(p)); }); });
}

function start(name: string, argv: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const child = spawn(process.execPath, ['--no-node-snapshot', bin, ...argv], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let err = '';
  child.stderr!.on('data', (d) => { err += d; if (err.length > 10_000) err = err.slice(-5_000); });
  child.once('exit', (code) => { if (code && code !== 0 && !stopping) { process.stderr.write(`${name} exited ${code}:\n${err}\n`); process.exit(1); } });
  return child;
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const pct = (xs: number[], p: number) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
const round = (n: number, d = 2) => Math.round(n * 10 ** d) / 10 ** d;
let stopping = false;

const dir = mkdtempSync(join(tmpdir(), 'cc-bench-'));
// The foremen's local credentials (what the worker and the client here find by URL) stay in
// this run's directory, not in the user's config.
process.env.CROWDCOMPUTE_CONFIG_DIR = join(dir, 'credentials');
// PostgreSQL runs get a schema of their own, dropped at the end.
const schema = `cc_bench_${process.pid}`;
/** Schemas to drop at the end: the run's, and those of foremen started by one benchmark (traces). */
const schemas = [schema];
const database = args.database
  ? (args.database.startsWith('postgres') ? `${args.database}${args.database.includes('?') ? '&' : '?'}schema=${schema}` : args.database)
  : `sqlite:${join(dir, 'bench.db')}`;
const FOREMEN = Number(args.foremen);
if (FOREMEN > 1 && !database.startsWith('postgres')) throw new Error('--foremen > 1 needs --database postgres://…');
const ports = await Promise.all(Array.from({ length: FOREMEN }, () => freePort()));
const foremen = ports.map((port, i) => start(`foreman ${i + 1}`, ['foreman', '--port', String(port), '--host', '127.0.0.1', '--database', database, '--id', `bench-f${i + 1}`, '--log-level', 'warn', ...FOREMAN_ARGS,
  ...(args.insecure ? ['--insecure'] : []), ...(args.only?.split(',').includes('retention') ? ['--retention', '1s', '--prune-interval', '250ms'] : [])]));
// However this run ends (a foreman or worker that does not come up throws), its processes go with it.
const children: ChildProcess[] = [...foremen];
process.once('exit', () => { for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); });
const urls = ports.map((p) => `http://127.0.0.1:${p}`);
const url = urls[urls.length - 1];
// How long the foremen and the workers may take to come up ($CC_BENCH_STARTUP_MS, default 60 s):
// on a machine shared with other work, starting from the TypeScript sources can take many seconds;
// the bound only catches a process that never comes up.
const STARTUP_MS = Number(process.env.CC_BENCH_STARTUP_MS ?? 60_000);
const deadline = Date.now() + STARTUP_MS;
for (const u of urls) {
  while (await fetch(`${u}/health`).then((r) => !r.ok, () => true)) {
    if (Date.now() > deadline) throw new Error(`foreman did not start within ${STARTUP_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
const client = new Client({ url, connectTimeoutMs: STARTUP_MS });
// One worker on the first foreman; with --spread-workers, one per foreman, sharing the concurrency.
const workerPorts = args['spread-workers'] ? ports : [ports[0]];
const workers = workerPorts.map((port, i) => start(`worker ${i + 1}`, ['worker', '--foreman', `ws://127.0.0.1:${port}/ws`, '--id', `bench-worker-${i + 1}`,
  '--concurrency', String(Math.ceil(Number(args.concurrency) / workerPorts.length)),
  '--allow-code', '--handlers', join(root, 'bench/noop-handlers.ts'), '--no-status', '--log-level', 'warn', ...WORKER_ARGS]));
children.push(...workers);
const worker = workers[0];
// Counted in the store: with several foremen the workers are connected to others than the client's.
while (!(await client.stats().then((s) => s.workers.online >= workers.length, () => false))) {
  if (Date.now() > deadline) throw new Error(`worker did not connect within ${STARTUP_MS / 1000} s`);
  await new Promise((r) => setTimeout(r, 50));
}
const meta = { database: database.split(':')[0], foremen: FOREMEN, workers: workers.length, auth: args.insecure ? 'off' : 'on', cpus: cpus().length, node: process.versions.node, runs: RUNS };
const want = (name: string) => (!args.only && name !== 'retention' && name !== 'million') || Boolean(args.only?.split(',').includes(name));
/** CPU seconds a process has used (user + system), from /proc; 0 where that cannot be read. */
const cpuOf = (pid: number): number => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch { return 0; }
};
/** CPU of the processes started by `pids` (the worker's sandbox processes), live ones only, in s. */
const childrenCpu = (pids: number[]): number => {
  const parents = new Set(pids);
  let sum = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const f = readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ');
      if (parents.has(Number(f[1]))) sum += (Number(f[11]) + Number(f[12])) / 100;
    } catch { /* gone */ }
  }
  return sum;
};
/** CPU of every PostgreSQL server process on this machine (the bench's database is local). */
const postgresCpu = (): number => {
  let sum = 0;
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try { if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'postgres') sum += cpuOf(Number(d)); } catch { /* gone */ }
  }
  return sum;
};
/** Statements the foremen have sent to PostgreSQL, from their metrics. */
const statementsSent = async (): Promise<number> => {
  let sum = 0;
  for (const u of urls) {
    const apiKey = localCredentialsAt(u)?.apiKey;
    const text = await (await fetch(`${u}/metrics/prometheus`, { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} })).text();
    sum += Number(/^crowdcompute_store_statements (\S+)/m.exec(text)?.[1] ?? 0);
  }
  return sum;
};
/**
 * CPU seconds of a process's threads, by kind (from /proc/<pid>/task): its main thread (the event
 * loop), its worker threads (the SQLite store's thread, and the checkpointer's), and the rest (V8's
 * garbage-collector helpers, libuv's pool).
 */
const threadCpuOf = (pid: number): { main: number; workers: number; other: number } => {
  const out = { main: 0, workers: 0, other: 0 };
  let tids: string[] = [];
  try { tids = readdirSync(`/proc/${pid}/task`); } catch { return out; }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      const used = (Number(f[11]) + Number(f[12])) / 100;
      if (Number(tid) === pid) out.main += used;
      else if (comm === 'WorkerThread') out.workers += used;
      else out.other += used;
    } catch { /* ended */ }
  }
  return out;
};
const onPostgres = database.startsWith('postgres');
const foremenThreads = () => foremen.map((f) => threadCpuOf(f.pid!)).reduce((a, b) => ({ main: a.main + b.main, workers: a.workers + b.workers, other: a.other + b.other }), { main: 0, workers: 0, other: 0 });
const cpuNow = async () => ({ threads: foremenThreads(), foremen: foremen.reduce((s, f) => s + cpuOf(f.pid!), 0), worker: workers.reduce((s, w) => s + cpuOf(w.pid!), 0), postgres: onPostgres ? postgresCpu() : 0, statements: onPostgres ? await statementsSent() : 0 });
/** What each task cost between two readings: µs of CPU in the foremen, the worker and PostgreSQL, and statements sent. */
const perTask = (a: Awaited<ReturnType<typeof cpuNow>>, b: Awaited<ReturnType<typeof cpuNow>>, n: number) => ({
  foreman_cpu_us_per_task: round(((b.foremen - a.foremen) * 1e6) / n, 1), worker_cpu_us_per_task: round(((b.worker - a.worker) * 1e6) / n, 1),
  // Where the foreman's CPU went: its event loop, its worker threads (the SQLite store's own), the rest.
  foreman_threads_cpu_us_per_task: { main: round(((b.threads.main - a.threads.main) * 1e6) / n, 1), workers: round(((b.threads.workers - a.threads.workers) * 1e6) / n, 1),
    other: round(((b.threads.other - a.threads.other) * 1e6) / n, 1) },
  ...(onPostgres ? { postgres_cpu_us_per_task: round(((b.postgres - a.postgres) * 1e6) / n, 1), statements_per_task: round((b.statements - a.statements) / n, 3) } : {}),
});
/** µs of this process's CPU (the client's) per task since `from` (a process.cpuUsage() reading). */
const clientCpuPerTask = (from: NodeJS.CpuUsage, n: number) => { const d = process.cpuUsage(from); return round((d.user + d.system) / n, 1); };
/** The throughput workload's CPU per task in each process, kept for the limits line. */
let throughputCost: (ReturnType<typeof perTask> & { client_cpu_us_per_task: number }) | null = null;
const SUM_TO_PY_SOURCE = 'def sum_to(n):\n    s = 0\n    for i in range(1, 10001):\n        s += i\n    return s + n * 0\n';
const SUM_TO_PY = { python: SUM_TO_PY_SOURCE, name: 'sum_to' };
/** The same 10,000 calls in one CPython process on this machine: the physical reference. Its wall time in ms, or why not. */
const cpythonWallMs = (): number | string => {
  const python = process.env.CROWDCOMPUTE_PYTHON ?? '/usr/bin/python3';
  const program = `${SUM_TO_PY_SOURCE}\nimport time\nwalls = []\nfor _ in range(${RUNS}):\n    t0 = time.perf_counter()\n    r = [sum_to(n) for n in range(10000)]\n    walls.append((time.perf_counter() - t0) * 1000)\nassert r[9999] == 50005000\nprint(sorted(walls)[len(walls) // 2])\n`;
  try {
    return Number(execFileSync(python, ['-c', program], { encoding: 'utf8', timeout: 600_000 }).trim());
  } catch (err) {
    return `no CPython reference: ${python} did not run (${(err as Error).message.split('\n')[0]})`;
  }
};
/** RSS in bytes of each Pyodide sandbox process under these worker processes. */
const pyodideProcesses = (roots: number[]): number[] => {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch { /* gone */ }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      try {
        if (/python-sandbox/.test(readFileSync(`/proc/${c}/cmdline`, 'utf8'))) out.push(Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${c}/status`, 'utf8'))?.[1] ?? 0) * 1024);
      } catch { /* gone */ }
      walk(c);
    }
  };
  for (const r of roots) walk(r);
  return out;
};
const sumTo = (n: number) => { let s = 0; for (let i = 1; i <= 10_000; i++) s += i; return s + n * 0; };
const mapArgs = Array.from({ length: 10_000 }, (_, i) => i);

/** Run the 10,000-argument map RUNS times (after a warm-up); wall times and the job's task count. */
async function mapRuns(options: { runOn?: 'browser'; chunkSize?: number }, fn: MapFunction<number, number> = sumTo): Promise<{ walls: number[]; tasks: number; cpu: Record<string, unknown> }> {
  await (await client.submitMap(fn, mapArgs.slice(0, 500), options)).result();
  const walls: number[] = [];
  let tasks = 0;
  const workerPids = workers.map((w) => w.pid!);
  const cpu0 = await cpuNow();
  const sandbox0 = childrenCpu(workerPids);
  const client0 = process.cpuUsage();
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    const job = await client.submitMap(fn, mapArgs, options);
    const results = await job.result();
    walls.push(performance.now() - t0);
    if (results.length !== 10_000 || results[9_999] !== 50_005_000) throw new Error('map: wrong results');
    tasks = (await client.getJob(job.id)).totalTasks;
  }
  // Per argument, so that chunked and unchunked runs compare; the sandbox processes are the
  // worker's children (live ones: one replaced mid-run loses what it used).
  const n = 10_000 * RUNS;
  const { foreman_threads_cpu_us_per_task: _threads, ...cost } = perTask(cpu0, await cpuNow(), n);
  const cpu = { ...Object.fromEntries(Object.entries(cost).map(([k, v]) => [k.replace('per_task', 'per_arg'), v])),
    sandbox_cpu_us_per_arg: round(((childrenCpu(workerPids) - sandbox0) * 1e6) / n, 1), client_cpu_us_per_arg: clientCpuPerTask(client0, n) };
  return { walls, tasks, cpu };
}
const mapLine = (bench: string, m: { walls: number[]; tasks: number; cpu?: Record<string, unknown> }, extra: Record<string, unknown> = {}) => JSON.stringify({
  bench, args: 10_000, tasks: m.tasks, wall_ms: Math.round(median(m.walls)), args_per_s: Math.round(10_000 / (median(m.walls) / 1000)),
  tasks_per_s: Math.round(m.tasks / (median(m.walls) / 1000)), runs_wall_ms: m.walls.map(Math.round), ...m.cpu, ...extra, ...meta });

try {
  if (want('throughput')) {
    // Warm up JITs and the page cache with a small job first.
    const warmUp = async (type: string) => { await (await client.submitMany(Array.from({ length: 2_000 }, () => ({ type })))).result(); };
    /** RUNS jobs of TASKS tasks of `type`; each run's tasks/s. */
    const throughputRuns = async (type: string): Promise<number[]> => {
      const rates: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const tasks = Array.from({ length: TASKS }, () => ({ type }));
        const t0 = performance.now();
        const job = await client.submitMany(tasks);
        const results = await job.result();
        const s = (performance.now() - t0) / 1000;
        if (results.length !== TASKS) throw new Error(`throughput: got ${results.length} results`);
        rates.push(TASKS / s);
      }
      return rates;
    };
    await warmUp('bench.noop');
    const cpu0 = await cpuNow();
    const client0 = process.cpuUsage();
    const rates = await throughputRuns('bench.noop');
    const cost = { ...perTask(cpu0, await cpuNow(), TASKS * RUNS), client_cpu_us_per_task: clientCpuPerTask(client0, TASKS * RUNS) };
    throughputCost = cost;
    console.log(JSON.stringify({ bench: 'throughput', tasks: TASKS, concurrency: Number(args.concurrency), tasks_per_s: Math.round(median(rates)), runs_tasks_per_s: rates.map(Math.round), ...cost, ...meta }));

    // The same workload run by the Python SDK's worker (bench/python-worker.py), on the same
    // foreman at the same concurrency, with a task type only it handles.
    const python = process.env.CROWDCOMPUTE_PYTHON ?? '/usr/bin/python3';
    const pythonLine = { bench: 'throughput-python', tasks: TASKS, concurrency: Number(args.concurrency) };
    const missing = existsSync(python)
      ? await new Promise<string | null>((resolve) => execFile(python, ['-c', 'import websockets'], (err) => resolve(err ? `${python} cannot import websockets (apt-get install -y python3-websockets)` : null)))
      : `no Python at ${python} (apt-get install -y python3 python3-websockets)`;
    if (missing) {
      console.log(JSON.stringify({ ...pythonLine, skipped: missing, ...meta }));
    } else {
      const online = (await client.stats()).workers.online;
      const py = spawn(python, [join(root, 'bench/python-worker.py'), `ws://127.0.0.1:${ports[0]}/ws`, 'bench-python-worker', String(args.concurrency)],
        { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PYTHONPATH: join(root, 'python') } });
      children.push(py);
      let pyErr = '';
      py.stderr!.on('data', (d) => { pyErr += d; if (pyErr.length > 10_000) pyErr = pyErr.slice(-5_000); });
      let pyStopping = false;
      const pyExit = new Promise<number | null>((r) => py.once('exit', (code, signal) => {
        // A worker gone mid-run would leave the job waiting for ever.
        if (!pyStopping && !stopping) { process.stderr.write(`the Python worker exited (${code ?? signal}):\n${pyErr}\n`); process.exit(1); }
        r(code);
      }));
      const pyBy = Date.now() + 20_000;
      while (!(await client.stats().then((s) => s.workers.online > online, () => false))) {
        if (Date.now() > pyBy) throw new Error(`the Python worker did not connect within 20 s:\n${pyErr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      try {
        await warmUp('bench.python.noop');
        const f0 = foremen.reduce((s, f) => s + cpuOf(f.pid!), 0);
        const p0 = cpuOf(py.pid!);
        const pyRates = await throughputRuns('bench.python.noop');
        const n = TASKS * RUNS;
        console.log(JSON.stringify({ ...pythonLine, tasks_per_s: Math.round(median(pyRates)), runs_tasks_per_s: pyRates.map(Math.round),
          ratio_to_node: round(median(pyRates) / median(rates)),
          foreman_cpu_us_per_task: round(((foremen.reduce((s, f) => s + cpuOf(f.pid!), 0) - f0) * 1e6) / n, 1),
          worker_cpu_us_per_task: round(((cpuOf(py.pid!) - p0) * 1e6) / n, 1), node_worker_cpu_us_per_task: cost.worker_cpu_us_per_task,
          python, ...meta }));
      } finally {
        pyStopping = true;
        py.kill('SIGTERM');
        const code = await pyExit;
        if (code !== null && code !== 0) process.stderr.write(`the Python worker exited ${code}:\n${pyErr}\n`);
      }
    }
  }

  if (want('limits')) {
    // What the machine allows, beside which the other lines can be read: a WebSocket round trip
    // between two Node processes on loopback (what one dispatch-and-result exchange cannot beat),
    // SQLite's batched inserts and updates with the foreman's settings (bench/sqlite-write-probe.ts),
    // and the CPU each process spends per task in the throughput workload (measured above when it
    // ran; otherwise by one run of it here).
    const echo = spawn(process.execPath, ['--no-node-snapshot', join(root, 'bench/ws-echo-server.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(echo);
    const echoPort = await new Promise<number>((resolve, reject) => {
      let out = '';
      echo.stdout!.on('data', (d) => { out += d; if (out.includes('\n')) resolve(Number(out.trim())); });
      echo.once('exit', (code) => reject(new Error(`the WebSocket echo server exited (${code}) before it listened`)));
    });
    const { WebSocket } = await import('ws');
    const socket = new WebSocket(`ws://127.0.0.1:${echoPort}`);
    await new Promise((resolve, reject) => { socket.once('open', resolve); socket.once('error', reject); });
    // About the size of a task assignment.
    const message = JSON.stringify({ type: 'assign', tasks: [{ taskId: crypto.randomUUID(), attempt: 1, jobId: crypto.randomUUID(), type: 'bench.echo', input: 1 }] });
    const trip = () => new Promise<number>((resolve) => { const t0 = performance.now(); socket.once('message', () => resolve(performance.now() - t0)); socket.send(message); });
    for (let i = 0; i < 200; i++) await trip();
    const trips: number[] = [];
    for (let i = 0; i < 2_000; i++) trips.push(await trip());
    socket.close();
    echo.kill('SIGTERM');
    const { sqliteWriteProbe, INSERT_BATCH, UPDATE_BATCH } = await import('./sqlite-write-probe.ts');
    const sqliteRates = sqliteWriteProbe(join(dir, 'limits-probe.db'));
    let cost = throughputCost;
    if (!cost) {
      await (await client.submitMany(Array.from({ length: 2_000 }, () => ({ type: 'bench.noop' })))).result();
      const cpu0 = await cpuNow();
      const client0 = process.cpuUsage();
      const results = await (await client.submitMany(Array.from({ length: TASKS }, () => ({ type: 'bench.noop' })))).result();
      if (results.length !== TASKS) throw new Error(`limits: got ${results.length} results`);
      cost = { ...perTask(cpu0, await cpuNow(), TASKS), client_cpu_us_per_task: clientCpuPerTask(client0, TASKS) };
    }
    console.log(JSON.stringify({ bench: 'limits', ws_round_trips: trips.length, ws_round_trip_p50_ms: round(pct(trips, 50), 3), ws_round_trip_p99_ms: round(pct(trips, 99), 3),
      sqlite_inserts_per_s: sqliteRates.inserts_per_s, sqlite_insert_batch: INSERT_BATCH, sqlite_updates_per_s: sqliteRates.updates_per_s, sqlite_update_batch: UPDATE_BATCH,
      sqlite_synchronous: 'NORMAL', throughput_tasks: TASKS, ...cost, ...meta }));
  }

  if (want('small-jobs')) {
    // Many jobs of one task each (as a REST client submitting task by task makes them): the
    // scheduler shares the workers between thousands of jobs at once.
    const JOBS = 5_000;
    const rates: number[] = [];
    const cpu0 = await cpuNow();
    for (let r = 0; r < RUNS; r++) {
      const t0 = performance.now();
      const handles = [];
      for (let i = 0; i < JOBS; i += 500) handles.push(...await Promise.all(Array.from({ length: Math.min(500, JOBS - i) }, (_, k) => client.submit('bench.echo', i + k))));
      const results = await Promise.all(handles.map((h) => h.result()));
      if (results.some((v, i) => v !== i)) throw new Error('small-jobs: wrong results');
      rates.push(JOBS / ((performance.now() - t0) / 1000));
    }
    const cost = perTask(cpu0, await cpuNow(), JOBS * RUNS);
    console.log(JSON.stringify({ bench: 'small-jobs', jobs: JOBS, tasks_per_job: 1, jobs_per_s: Math.round(median(rates)), runs_jobs_per_s: rates.map(Math.round),
      foreman_cpu_us_per_job: cost.foreman_cpu_us_per_task, foreman_threads_cpu_us_per_job: cost.foreman_threads_cpu_us_per_task, ...meta }));
  }

  if (want('latency')) {
    for (let i = 0; i < 100; i++) await (await client.submit('bench.echo', i)).result();
    const lat: number[] = [];
    const cpu0 = await cpuNow();
    const client0 = process.cpuUsage();
    for (let i = 0; i < 1_000; i++) {
      const t0 = performance.now();
      const v = await (await client.submit('bench.echo', i)).result();
      lat.push(performance.now() - t0);
      if (v !== i) throw new Error(`latency: round trip ${i} returned ${v}`);
    }
    // CPU per round trip in each process: on a busy machine a steadier figure than the times.
    const cost = perTask(cpu0, await cpuNow(), lat.length);
    const clientCpu = process.cpuUsage(client0);
    console.log(JSON.stringify({ bench: 'latency', round_trips: lat.length, p50_ms: round(pct(lat, 50), 3), p99_ms: round(pct(lat, 99), 3), mean_ms: round(lat.reduce((a, b) => a + b, 0) / lat.length, 3),
      foreman_cpu_us_per_trip: cost.foreman_cpu_us_per_task, foreman_threads_cpu_us_per_trip: cost.foreman_threads_cpu_us_per_task,
      worker_cpu_us_per_trip: cost.worker_cpu_us_per_task, client_cpu_us_per_trip: round((clientCpu.user + clientCpu.system) / lat.length, 1),
      ...(cost.postgres_cpu_us_per_task !== undefined ? { postgres_cpu_us_per_trip: cost.postgres_cpu_us_per_task, statements_per_trip: cost.statements_per_task } : {}), ...meta }));
  }

  if (want('map')) console.log(mapLine('map', await mapRuns({})));
  // The same map with one argument per task: what the job costs when nothing is batched.
  if (want('map-unchunked')) console.log(mapLine('map-unchunked', await mapRuns({ chunkSize: 1 }), { chunk_size: 1 }));

  if (want('map-python')) {
    // The first Python task of the run meets cold interpreters (each loads Pyodide); the next, warm ones.
    const firstTask = async () => { const t0 = performance.now(); await (await client.submitMap(SUM_TO_PY, [1])).result(); return performance.now() - t0; };
    const cold = await firstTask();
    const warm = median([await firstTask(), await firstTask(), await firstTask()]);
    const python = await mapRuns({}, SUM_TO_PY);
    const javascript = await mapRuns({});
    const interpreters = pyodideProcesses(workers.map((w) => w.pid!));
    const native = cpythonWallMs();
    const wall = median(python.walls);
    console.log(mapLine('map-python', python, {
      javascript_wall_ms: Math.round(median(javascript.walls)), ratio_to_javascript: round(wall / median(javascript.walls), 2),
      ...(typeof native === 'number' ? { cpython_one_process_wall_ms: Math.round(native), ratio_to_cpython: round(wall / native, 2) } : { cpython: native }),
      first_task_cold_ms: Math.round(cold), first_task_warm_ms: Math.round(warm),
      interpreters: interpreters.length, interpreter_rss_mib: interpreters.length ? Math.round(median(interpreters) / 2 ** 20) : null,
    }));
  }

  if (want('checkpoint')) {
    const BATCHES = 2_000;
    const expected = BATCHES * 500_500;
    const timed = async (type: string) => {
      const t0 = performance.now();
      const v = await (await client.submit(type, { batches: BATCHES })).result();
      if (v !== expected) throw new Error(`checkpoint: ${type} returned ${v}`);
      return performance.now() - t0;
    };
    await timed('bench.checkpointed');
    await timed('bench.loop');
    const withRecords: number[] = [];
    const plain: number[] = [];
    for (let r = 0; r < RUNS; r++) { withRecords.push(await timed('bench.checkpointed')); plain.push(await timed('bench.loop')); }
    const perBatchUs = ((median(withRecords) - median(plain)) * 1000) / BATCHES;
    console.log(JSON.stringify({ bench: 'checkpoint', batches: BATCHES, wall_ms: Math.round(median(withRecords)), plain_wall_ms: Math.round(median(plain)),
      overhead_us_per_batch: Math.round(perBatchUs), batches_per_s: Math.round(BATCHES / (median(withRecords) / 1000)), ...meta }));
  }

  if (want('pipeline')) {
    const { readFileSync } = await import('node:fs');
    const spec = JSON.parse(readFileSync(join(root, 'examples/pipeline/graph.json'), 'utf8'));
    const walls: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const t0 = performance.now();
      const v = await (await client.submitGraph(spec)).result();
      walls.push(performance.now() - t0);
      if (v !== 333338333350000) throw new Error(`pipeline: got ${v}`);
    }
    console.log(JSON.stringify({ bench: 'pipeline', numbers: 100_000, nodes: 3, wall_ms: Math.round(median(walls)), runs_wall_ms: walls.map(Math.round), ...meta }));
  }

  if (want('browser')) {
    const chromiumPath = process.env.CROWDCOMPUTE_CHROMIUM ?? '/usr/bin/chromium';
    if (!existsSync(chromiumPath)) {
      console.log(JSON.stringify({ bench: 'browser', skipped: `no Chromium at ${chromiumPath} (apt-get install -y chromium)`, ...meta }));
    } else {
      // A join link made as an operator would (the CLI), opened by two tabs of one headless Chromium.
      const link = await new Promise<string>((resolve, reject) => execFile(process.execPath, [bin, 'join-link', 'create', '--database', database, '--url', url, '--name', 'bench'],
        (err, stdout) => (err ? reject(err) : resolve(stdout.trim()))));
      const { chromium } = await import('playwright-core');
      const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'] });
      try {
        for (let i = 0; i < 2; i++) await (await browser.newPage()).goto(link);
        const joinBy = Date.now() + 30_000;
        while ((await client.workers()).filter((w) => w.kind === 'browser').length < 2) {
          if (Date.now() > joinBy) throw new Error('browser tabs did not join within 30 s');
          await new Promise((r) => setTimeout(r, 50));
        }
        console.log(mapLine('browser', await mapRuns({ runOn: 'browser' }), { tabs: 2 }));
      } finally {
        await browser.close();
      }
    }
  }
  if (want('fairness')) {
    const RUNS_F = Number(args['fairness-runs']);
    const small = () => Array.from({ length: 10 }, () => ({ type: 'bench.noop' }));
    const latencyOfSmall = async () => {
      const t0 = performance.now();
      await (await client.submitMany(small())).result();
      return performance.now() - t0;
    };
    await latencyOfSmall();
    const idle: number[] = [];
    for (let r = 0; r < RUNS_F; r++) idle.push(await latencyOfSmall());
    const busy: number[] = [];
    const bigWalls: number[] = [];
    for (let r = 0; r < RUNS_F; r++) {
      const t0 = performance.now();
      const big = await client.submitMany(Array.from({ length: 100_000 }, () => ({ type: 'bench.noop' })));
      busy.push(await latencyOfSmall());
      await big.result();
      bigWalls.push(performance.now() - t0);
      process.stderr.write(`fairness: run ${r + 1} of ${RUNS_F}: the small job took ${Math.round(busy.at(-1)!)} ms behind the big one\n`);
    }
    console.log(JSON.stringify({ bench: 'fairness', big_tasks: 100_000, small_tasks: 10, repetitions: RUNS_F,
      idle_p50_ms: round(median(idle), 1), busy_p50_ms: round(median(busy), 1), ratio: round(median(busy) / median(idle), 1),
      big_job_wall_ms: Math.round(median(bigWalls)), ...meta }));
  }

  if (want('retention')) {
    // A steady load: jobs of 10,000 no-op tasks, three in flight, until the total is reached.
    const TOTAL = Number(args['steady-tasks']);
    const PER_JOB = 10_000;
    // The size is sampled twice a second; each 100,000-task window reports its peak, since the
    // WAL swings between empty and its limit between checkpoints.
    // On SQLite the file and its WAL are measured apart: the file should stop growing, the WAL
    // stay under its limit (64 MiB, plus what arrives between two looks at it).
    const sizes: { tasks: number; bytes: number; file: number; wal: number; retained_tasks: number; pruned_tasks: number }[] = [];
    const sqliteFile = database.startsWith('sqlite:') ? database.slice('sqlite:'.length) : null;
    const sizeOf = (f: string) => { try { return statSync(f).size; } catch { return 0; } };
    let peak = { bytes: 0, file: 0, wal: 0 };
    const sample = async () => {
      const bytes = sqliteFile ? sizeOf(sqliteFile) + sizeOf(`${sqliteFile}-wal`) : (await client.stats()).retention.storage_bytes ?? 0;
      peak = { bytes: Math.max(peak.bytes, bytes), file: Math.max(peak.file, sqliteFile ? sizeOf(sqliteFile) : 0), wal: Math.max(peak.wal, sqliteFile ? sizeOf(`${sqliteFile}-wal`) : 0) };
    };
    const sampler = setInterval(() => void sample().catch(() => {}), 250);
    let submitted = 0;
    let done = 0;
    let nextMark = 100_000;
    const t0 = performance.now();
    const inFlight = new Set<Promise<void>>();
    while (done < TOTAL) {
      while (inFlight.size < 3 && submitted < TOTAL) {
        submitted += PER_JOB;
        const p: Promise<void> = client.submitMany(Array.from({ length: PER_JOB }, () => ({ type: 'bench.noop' })))
          .then((job) => job.result()).then((r) => { if (r.length !== PER_JOB) throw new Error('retention: lost results'); done += PER_JOB; })
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      await Promise.race(inFlight);
      if (done >= nextMark) {
        const st = await client.stats();
        await sample();
        sizes.push({ tasks: done, ...peak, retained_tasks: st.retention.retained_tasks, pruned_tasks: st.retention.pruned_tasks });
        process.stderr.write(`retention: ${done} tasks; peak in the last 100,000: ${(peak.bytes / 1048576).toFixed(1)} MiB` +
          `${sqliteFile ? ` (file ${(peak.file / 1048576).toFixed(1)}, WAL ${(peak.wal / 1048576).toFixed(1)})` : ''}; ${st.retention.retained_tasks} finished tasks retained\n`);
        peak = { bytes: 0, file: 0, wal: 0 };
        nextMark += 100_000;
      }
    }
    clearInterval(sampler);
    const s = (performance.now() - t0) / 1000;
    const first = sizes[0]?.bytes ?? 0;
    const last = sizes.at(-1)?.bytes ?? 0;
    const top = Math.max(...sizes.map((x) => x.bytes));
    const mib = (b: number | undefined) => round((b ?? 0) / 1048576, 1);
    console.log(JSON.stringify({ bench: 'retention', tasks: TOTAL, tasks_per_s: Math.round(TOTAL / s), peak_mib_first_100k: mib(first),
      peak_mib_last_100k: mib(last), peak_mib: mib(top), last_over_first: round(last / first, 2),
      ...(sqliteFile ? { file_mib_first_100k: mib(sizes[0]?.file), file_mib_last_100k: mib(sizes.at(-1)?.file), wal_peak_mib: mib(Math.max(...sizes.map((x) => x.wal))) } : {}),
      pruned_tasks: sizes.at(-1)?.pruned_tasks, ...meta }));
  }
  if (want('million')) {
    // One job of a million no-op named tasks, and one map over a million arguments, each sent
    // open in parts (the SDK does it for jobs larger than one message); the foreman's resident
    // memory is sampled throughout, and the results are read back in pages.
    const N = Number(args['million-tasks']);
    const foremanPid = foremen[0].pid!;
    const rssMib = () => { try { return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${foremanPid}/status`, 'utf8'))?.[1] ?? 0) / 1024; } catch { return 0; } };
    const measure = async (bench: string, run: () => Promise<{ jobId: string; count: number; extra?: Record<string, unknown> }>) => {
      const before = rssMib();
      let peak = before;
      // The V8 heap beside the resident size says where the memory is (JavaScript objects, or
      // SQLite's page cache and other native memory).
      let heapPeak = 0;
      const apiKey = localCredentialsAt(urls[0])?.apiKey;
      const heap = async () => {
        const text = await (await fetch(`${urls[0]}/metrics/prometheus`, { headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} })).text();
        heapPeak = Math.max(heapPeak, Number(/^nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1] ?? 0) / 1048576);
      };
      let ticks = 0;
      const sampler = setInterval(() => { peak = Math.max(peak, rssMib()); if (++ticks % 10 === 0) void heap().catch(() => {}); }, 100);
      const t0 = performance.now();
      const { jobId, count, extra } = await run();
      const ran = (performance.now() - t0) / 1000;
      const r0 = performance.now();
      let read = 0;
      for await (const page of client.resultPages(jobId, { pageSize: 10_000 })) read += page.results.length;
      const readS = (performance.now() - r0) / 1000;
      clearInterval(sampler);
      peak = Math.max(peak, rssMib());
      if (read !== count) throw new Error(`${bench}: read ${read} results of ${count}`);
      console.log(JSON.stringify({ bench, items: count, wall_ms: Math.round(ran * 1000), items_per_s: Math.round(count / ran), results_read_ms: Math.round(readS * 1000),
        foreman_rss_mib_before: round(before, 0), foreman_rss_mib_peak: round(peak, 0), foreman_heap_mib_peak: round(heapPeak, 0), ...extra, ...meta }));
    };
    await measure('million-tasks', async () => {
      const open = await client.openTasks();
      for (let i = 0; i < N; i += 10_000) await open.append(Array.from({ length: Math.min(10_000, N - i) }, () => ({ type: 'bench.noop' })));
      await (await open.seal()).ended();
      const info = await client.getJob(open.id);
      if (info.completedTasks !== N) throw new Error(`million-tasks: ${info.completedTasks} of ${N} completed`);
      return { jobId: open.id, count: N, extra: { tasks: N } };
    });
    await measure('million-args-map', async () => {
      const job = await client.submitMap(sumTo, Array.from({ length: N }, (_, i) => i));
      await job.ended();
      const info = await client.getJob(job.id);
      if (info.status !== 'completed') throw new Error(`million-args-map: ${info.status}`);
      return { jobId: job.id, count: N, extra: { tasks: info.totalTasks, chunk_size: info.chunkSize } };
    });
  }

  if (want('rest')) {
    // Submission alone: the tasks are of a type no worker runs, so what is measured is the
    // foreman taking requests in, not the worker running them (the throughput line measures
    // that). Last, since the tasks stay queued. 50 keep-alive connections, each sending its
    // next request when the last is answered.
    const apiKey = localCredentialsAt(url)?.apiKey;
    const agent = new Agent({ keepAlive: true, maxSockets: 50 });
    const post = (path: string, body: string) => new Promise<number>((resolve, reject) => {
      const t0 = performance.now();
      const req = request(`${url}${path}`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { text += d; });
        res.on('end', () => (res.statusCode! < 300 ? resolve(performance.now() - t0) : reject(new Error(`rest: ${path} answered ${res.statusCode}: ${text}`))));
      });
      req.on('error', reject);
      req.end(body);
    });
    const SUBMISSIONS = 5_000;
    const bodies: Record<string, (i: number) => string> = {
      '/task/submit': (i) => JSON.stringify({ payload: { function: 'bench.submitted', args: [i] } }),
      '/api/jobs': (i) => JSON.stringify({ kind: 'tasks', tasks: [{ type: 'bench.submitted', input: i }] }),
    };
    for (const [path, body] of Object.entries(bodies)) {
      const burst = async (n: number) => {
        const lat: number[] = [];
        let next = 0;
        const t0 = performance.now();
        await Promise.all(Array.from({ length: 50 }, async () => { while (next < n) lat.push(await post(path, body(next++))); }));
        return { s: (performance.now() - t0) / 1000, lat };
      };
      await burst(1_000);
      const rates: number[] = [];
      const all: number[] = [];
      for (let r = 0; r < RUNS; r++) { const { s, lat } = await burst(SUBMISSIONS); rates.push(SUBMISSIONS / s); all.push(...lat); }
      console.log(JSON.stringify({ bench: 'rest', path, submissions: SUBMISSIONS, concurrency: 50, submissions_per_s: Math.round(median(rates)),
        p50_ms: round(pct(all, 50), 2), p99_ms: round(pct(all, 99), 2), runs_submissions_per_s: rates.map(Math.round), ...meta }));
    }
    agent.destroy();
  }

  if (want('time')) {
    // Time: 1,000 schedules firing every second, then 100,000 tasks delayed at random over the
    // same span; how late fires and releases are against their intended time, ticks missed or
    // fired twice, and the foremen's CPU while they only wait.
    const SCHEDULES = Number(args['time-schedules']);
    const SPAN_S = Number(args['time-seconds']);
    const DELAYED = Number(args['time-tasks']);
    const tag = `bench-${process.pid}`;
    const noop = { kind: 'tasks' as const, tasks: [{ type: 'bench.noop' }] };
    const foremenCpu = () => foremen.reduce((s, f) => s + cpuOf(f.pid!), 0);

    // The foremen's CPU with nothing to wait for, then while 1,000 schedules and 100,000 delayed
    // tasks wait (not due for an hour): the difference is what waiting costs.
    const IDLE_S = 10;
    const baseFrom = foremenCpu();
    await new Promise((r) => setTimeout(r, IDLE_S * 1_000));
    const baseCpuPct = ((foremenCpu() - baseFrom) / IDLE_S / FOREMEN) * 100;
    for (let i = 0; i < SCHEDULES; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, SCHEDULES - i) }, (_, k) => client.createSchedule({ id: `${tag}-idle-${i + k}`, every: '1h', job: noop })));
    }
    const idleJobs: string[] = [];
    for (let i = 0; i < DELAYED; i += 10_000) idleJobs.push((await client.submitMany(Array.from({ length: 10_000 }, () => ({ type: 'bench.noop' })), { delay: '1h' })).id);
    await new Promise((r) => setTimeout(r, 2_000));
    const idleFrom = foremenCpu();
    await new Promise((r) => setTimeout(r, IDLE_S * 1_000));
    const idleCpuPct = ((foremenCpu() - idleFrom) / IDLE_S / FOREMEN) * 100;
    for (const id of idleJobs) await client.cancel(id);
    for (let i = 0; i < SCHEDULES; i += 50) {
      await Promise.all(Array.from({ length: Math.min(50, SCHEDULES - i) }, (_, k) => client.deleteSchedule(`${tag}-idle-${i + k}`)));
    }

    // Schedules: every second for SPAN_S seconds. A fire's lateness is its job's creation
    // against its tick (the tick is in the job's idempotency key, schedule:<id>:<tick>).
    const firstTick = Math.ceil((Date.now() + 5_000) / 1_000) * 1_000;
    const lastTick = firstTick + (SPAN_S - 1) * 1_000;
    const ids = Array.from({ length: SCHEDULES }, (_, i) => `${tag}-s-${i}`);
    for (let i = 0; i < SCHEDULES; i += 50) await Promise.all(ids.slice(i, i + 50).map((id) => client.createSchedule({ id, every: '1s', job: noop, overlap: 'allow', catchUp: { window: '1h', policy: 'all' } })));
    await new Promise((r) => setTimeout(r, lastTick - Date.now() + 1_000));
    for (let i = 0; i < SCHEDULES; i += 50) await Promise.all(ids.slice(i, i + 50).map((id) => client.pauseSchedule(id)));
    const fires = new Map<string, number>();
    const fireLate: number[] = [];
    let duplicated = 0;
    for (let offset = 0; ; offset += 10_000) {
      const page = await client.listJobs({ limit: 10_000, offset });
      for (const j of page) {
        const m = /^schedule:(bench-\d+-s-\d+):(\d+)$/.exec(String((j as { idempotencyKey?: string | null }).idempotencyKey ?? ''));
        if (!m || !m[1].startsWith(tag)) continue;
        const tick = Number(m[2]);
        if (tick < firstTick || tick > lastTick) continue;
        const key = `${m[1]}:${tick}`;
        if (fires.has(key)) duplicated++;
        fires.set(key, tick);
        fireLate.push(Date.parse(String(j.createdAt)) - tick);
      }
      if (page.length < 10_000) break;
    }
    let missed = 0;
    for (const id of ids) for (let t = firstTick; t <= lastTick; t += 1_000) if (!fires.has(`${id}:${t}`)) missed++;
    for (let i = 0; i < SCHEDULES; i += 50) await Promise.all(ids.slice(i, i + 50).map((id) => client.deleteSchedule(id)));
    // The fired jobs run to their end before the delayed tasks start, so that releases are not
    // measured behind a backlog of them: how long that took is part of the line.
    const drainFrom = Date.now();
    while (await client.stats().then((st) => st.tasks.queued + st.tasks.running > 0)) {
      if (Date.now() - drainFrom > 600_000) throw new Error('the fired jobs did not finish within 10 minutes');
      await new Promise((r) => setTimeout(r, 200));
    }
    const firedDrainedMs = Date.now() - drainFrom;

    // Delayed tasks: each with its own time, at random over SPAN_S seconds from 15 s on (the
    // submissions are done by then: what is measured is the release, not a foreman busy taking
    // in 100,000 tasks). A release's lateness is when a worker got the task against its time.
    const base = Date.now() + 15_000;
    let submittedBy = 0;
    const jobs: string[] = [];
    for (let i = 0; i < DELAYED; i += 1_000) {
      const tasks = Array.from({ length: Math.min(1_000, DELAYED - i) }, () => ({ type: 'bench.noop', runAt: Math.round(base + Math.random() * SPAN_S * 1_000) }));
      jobs.push((await client.submitMany(tasks)).id);
    }
    submittedBy = Date.now();
    for (const id of jobs) await (await client.watch(id)).result();
    const releaseLate: number[] = [];
    let early = 0;
    for (const id of jobs) {
      for (const t of await client.getJobTasks(id, { limit: 1_000 })) {
        const late = Date.parse(String(t.startedAt)) - Date.parse(String(t.availableAt));
        if (late < 0) early++;
        releaseLate.push(late);
      }
    }
    const stats = (xs: number[]) => ({ p50: round(pct(xs, 50), 1), p99: round(pct(xs, 99), 1), max: round(Math.max(...xs), 1) });
    const f = stats(fireLate);
    const r = stats(releaseLate);
    console.log(JSON.stringify({ bench: 'time', schedules: SCHEDULES, every_s: 1, seconds: SPAN_S, fires: fires.size, fires_expected: SCHEDULES * SPAN_S,
      fired_jobs_finished_after_last_tick_ms: firedDrainedMs + 1_000, fire_lateness_p50_ms: f.p50, fire_lateness_p99_ms: f.p99, fire_lateness_max_ms: f.max, fires_missed: missed, fires_duplicated: duplicated,
      delayed_tasks: releaseLate.length, delayed_submitted_before_first_due_ms: base - submittedBy, release_lateness_p50_ms: r.p50, release_lateness_p99_ms: r.p99, release_lateness_max_ms: r.max, released_early: early,
      waiting_foreman_cpu_pct: round(idleCpuPct, 2), idle_foreman_cpu_pct: round(baseCpuPct, 2), waiting_with: { schedules: SCHEDULES, delayed_tasks: DELAYED }, ...meta }));
  }

  if (want('traces')) {
    // The throughput workload on two fresh foreman-and-worker pairs started alike by the CLI,
    // one with OTEL_EXPORTER_OTLP_ENDPOINT set (pointing at a sink in this process) and one
    // without, which is what every user who does not trace runs; runs interleaved. The client
    // here registers no tracer: the traced foreman's submit span starts each trace.
    const sink = await startTraceSink();
    const plainEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OTEL_')));
    const pairs: { label: 'untraced' | 'traced'; foreman: ChildProcess; worker: ChildProcess; client: Client }[] = [];
    try {
      for (const [label, env] of [['untraced', plainEnv], ['traced', { ...plainEnv, OTEL_EXPORTER_OTLP_ENDPOINT: sink.url }]] as const) {
        const port = await freePort();
        let db = `sqlite:${join(dir, `traces-${label}.db`)}`;
        if (onPostgres) {
          schemas.push(`${schema}_${label}`);
          db = `${args.database}${args.database!.includes('?') ? '&' : '?'}schema=${schema}_${label}`;
        }
        const foreman = start(`${label} foreman`, ['foreman', '--port', String(port), '--host', '127.0.0.1', '--database', db, '--id', `bench-${label}`, '--log-level', 'warn', ...FOREMAN_ARGS,
          ...(args.insecure ? ['--insecure'] : [])], env);
        children.push(foreman);
        const pairUrl = `http://127.0.0.1:${port}`;
        const by = Date.now() + 20_000;
        while (await fetch(`${pairUrl}/health`).then((r) => !r.ok, () => true)) {
          if (Date.now() > by) throw new Error(`the ${label} foreman did not start within 20 s`);
          await new Promise((r) => setTimeout(r, 50));
        }
        const pairWorker = start(`${label} worker`, ['worker', '--foreman', `ws://127.0.0.1:${port}/ws`, '--id', `bench-${label}-worker`, '--concurrency', String(args.concurrency),
          '--handlers', join(root, 'bench/noop-handlers.ts'), '--no-status', '--log-level', 'warn'], env);
        children.push(pairWorker);
        const pairClient = new Client({ url: pairUrl, connectTimeoutMs: 20_000 });
        pairs.push({ label, foreman, worker: pairWorker, client: pairClient });
        while (!(await pairClient.stats().then((s) => s.workers.online >= 1, () => false))) {
          if (Date.now() > by) throw new Error(`the ${label} worker did not connect within 20 s`);
          await new Promise((r) => setTimeout(r, 50));
        }
        await (await pairClient.submitMany(Array.from({ length: 2_000 }, () => ({ type: 'bench.noop' })))).result();
      }
      const rates = new Map(pairs.map((p) => [p.label, [] as number[]]));
      const cpu = new Map(pairs.map((p) => [p.label, { foreman: 0, worker: 0 }]));
      for (let r = 0; r < RUNS; r++) {
        for (const p of pairs) {
          const f0 = cpuOf(p.foreman.pid!);
          const w0 = cpuOf(p.worker.pid!);
          const t0 = performance.now();
          const results = await (await p.client.submitMany(Array.from({ length: TASKS }, () => ({ type: 'bench.noop' })))).result();
          const s = (performance.now() - t0) / 1000;
          if (results.length !== TASKS) throw new Error(`traces: got ${results.length} results`);
          rates.get(p.label)!.push(TASKS / s);
          const c = cpu.get(p.label)!;
          c.foreman += cpuOf(p.foreman.pid!) - f0;
          c.worker += cpuOf(p.worker.pid!) - w0;
        }
      }
      const n = TASKS * RUNS;
      const line = (label: 'untraced' | 'traced') => ({
        tasks_per_s: Math.round(median(rates.get(label)!)), runs_tasks_per_s: rates.get(label)!.map(Math.round),
        foreman_cpu_us_per_task: round((cpu.get(label)!.foreman * 1e6) / n, 1), worker_cpu_us_per_task: round((cpu.get(label)!.worker * 1e6) / n, 1),
      });
      // The traced pair flushes what its span processors still hold when it stops (below); what
      // the sink has now is what was exported during the runs.
      const exported = sink.received();
      console.log(JSON.stringify({ bench: 'traces', tasks: TASKS, concurrency: Number(args.concurrency), untraced: line('untraced'), traced: line('traced'),
        traced_over_untraced: round(median(rates.get('traced')!) / median(rates.get('untraced')!)),
        exported: { spans: exported.spans, requests: exported.requests, bytes: exported.bytes }, ...meta }));
    } finally {
      for (const p of pairs) await p.client.close();
      for (const p of pairs) p.worker.kill('SIGTERM');
      await Promise.all(pairs.map((p) => (p.worker.exitCode !== null ? null : new Promise((r) => p.worker.once('exit', r)))));
      for (const p of pairs) p.foreman.kill('SIGTERM');
      await Promise.all(pairs.map((p) => (p.foreman.exitCode !== null ? null : new Promise((r) => p.foreman.once('exit', r)))));
      await sink.close();
    }
  }
} finally {
  stopping = true;
  await client.close();
  for (const w of workers) w.kill('SIGTERM');
  await Promise.all(workers.map((w) => new Promise((r) => w.once('exit', r))));
  for (const f of foremen) f.kill('SIGTERM');
  await Promise.all(foremen.map((f) => new Promise((r) => (f.exitCode !== null ? r(null) : f.once('exit', r)))));
  if (database.startsWith('postgres')) {
    const { default: pg } = await import('pg');
    const c = new pg.Client({ connectionString: database.replace(/\?.*$/, '') });
    await c.connect();
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await c.end();
  }
  rmSync(dir, { recursive: true, force: true });
}
