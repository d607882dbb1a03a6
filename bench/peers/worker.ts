/**
 * The worker side of one peer, run as its own process by bench/peers/run.ts (the client stays in
 * the runner's process, as CrowdCompute's bench keeps its client apart from its worker):
 *   node --no-node-snapshot bench/peers/worker.ts <bullmq|graphile|pgboss> '<json config>'
 * config: { queue, concurrency } for BullMQ; { connectionString, schema, channel } for Graphile and pg-boss;
 * and `tuned`: the configuration the peer's own documentation advises for speed instead of its
 * defaults (see bench/peers/README.md for each, with the documentation it follows).
 *
 * Every peer runs the same three handlers, chosen by the job's data `k`:
 *   noop -> null                       (W1)
 *   echo -> i, announced on `channel`  (W2; BullMQ needs no announcement: QueueEvents)
 *   sum  -> 1 + 2 + … + 10,000 = 50005000 by a loop, stored where the client reads it (W3)
 * Prints "ready" on stdout once it is taking jobs; stops on SIGTERM.
 */
type Data = { k: 'noop' | 'echo' | 'sum'; i: number };
type Sql = { query: (text: string, values: unknown[]) => Promise<unknown> };
/**
 * The peers live in bench/peers/node_modules, installed on demand, not by the root `npm ci`: they
 * are loaded by a non-literal specifier so the root typecheck (which includes bench/) passes
 * without them, and are typed here by the little this file uses.
 */
const load = (name: string): Promise<any> => import(name);

const CONCURRENCY = 50;
const [system, rawConfig] = process.argv.slice(2);
const config = JSON.parse(rawConfig ?? '{}') as { queue?: string; concurrency?: number; connectionString?: string; schema?: string; channel?: string; tuned?: boolean };

function sum(): number {
  let s = 0;
  for (let i = 1; i <= 10_000; i++) s += i;
  return s;
}

let stop: () => Promise<void> = async () => {};
let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  const force = setTimeout(() => process.exit(0), 5_000);
  force.unref();
  stop().then(() => process.exit(0), (err) => { process.stderr.write(`${system} worker: stop failed: ${err}\n`); process.exit(1); });
});

if (system === 'bullmq') {
  const { Worker } = await load('bullmq');
  // Tuned, the runner starts several of these processes (BullMQ's recommended set-up), sharing the 50.
  const worker = new Worker(config.queue!, async (job: { data: Data }) => {
    const d = job.data as Data;
    if (d.k === 'echo') return d.i;
    if (d.k === 'sum') return sum();
    return null;
  }, { connection: { host: '127.0.0.1', port: 6379 }, concurrency: config.concurrency ?? CONCURRENCY });
  worker.on('error', (err: unknown) => process.stderr.write(`bullmq worker: ${err}\n`));
  await worker.waitUntilReady();
  stop = () => worker.close();
} else if (system === 'graphile') {
  const { run, Logger } = await load('graphile-worker');
  const schema = config.schema!;
  // Warnings and errors only: Graphile logs every job at info level.
  const logger = new Logger(() => (level: string, message: string) => { if (level === 'error' || level === 'warning') process.stderr.write(`graphile: ${message}\n`); });
  const runner = await run({
    connectionString: config.connectionString,
    schema,
    // Graphile's own settings otherwise (LISTEN/NOTIFY pickup, no local queue, no batched completion),
    // but a pool as large as the concurrency, as Graphile asks ("having maxPoolSize (10) smaller than
    // concurrency (50) may lead to non-optimal performance").
    concurrency: CONCURRENCY,
    maxPoolSize: CONCURRENCY,
    noHandleSignals: true,
    logger,
    // Tuned: the batching Graphile's performance page recommends for high-throughput queues
    // (https://worker.graphile.org/docs/performance#batching): a local queue of concurrency + 1
    // jobs fetched (and locked) in one query, and completions and failures released in batches
    // (delay 0, as in its own perfTest set-up: the next tick's worth, no added wait).
    ...(config.tuned ? { preset: { worker: { localQueue: { size: CONCURRENCY + 1 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } } } : {}),
    taskList: {
      bench: async (payload: unknown, helpers: { withPgClient: (fn: (c: Sql) => Promise<unknown>) => Promise<unknown> }) => {
        const d = payload as Data;
        // Graphile keeps no results: echo announces its value on the run's channel, sum writes a
        // row the client reads back. Both are done inside the handler, so the client can see them
        // a moment before Graphile deletes the finished job row.
        if (d.k === 'echo') await helpers.withPgClient((c: Sql) => c.query('select pg_notify($1, $2)', [config.channel, String(d.i)]));
        else if (d.k === 'sum') {
          const v = sum();
          await helpers.withPgClient((c: Sql) => c.query(`insert into "${schema}".bench_results (idx, value) values ($1, $2)`, [d.i, v]));
        }
      },
    },
  });
  runner.promise.catch((err: unknown) => { process.stderr.write(`graphile runner: ${err}\n`); process.exit(1); });
  stop = () => runner.stop();
} else if (system === 'pgboss') {
  const { default: PgBoss } = await load('pg-boss');
  const boss = new PgBoss({ connectionString: config.connectionString, schema: config.schema, supervise: false, schedule: false, migrate: false });
  boss.on('error', (err: unknown) => process.stderr.write(`pg-boss: ${err}\n`));
  await boss.start();
  const db: { executeSql: (text: string, values: unknown[]) => Promise<unknown> } = boss.getDb();
  // pg-boss 10 has no teamSize (removed in v10): a work() call is one loop that fetches up to
  // batchSize jobs, awaits the handler for the batch, then fetches again. We run LOOPS loops of
  // BATCH (default 10 x 5 = 50 jobs in flight), the handler running a batch's jobs concurrently.
  // Why not 50 loops of batchSize 1: v10's fetch reads and sorts every waiting job of the queue
  // (its index has no order), so with a 20,000-job backlog each fetch of one job costs ~15 ms and
  // W1 drained at ~60 jobs/s, past the time bound. Why not 1 loop of 50: an idle queue is then
  // polled only every 0.5 s (W2 p50 ~250 ms). 10 x 5 keeps ~50 in flight with a tenth of the fetches.
  // pollingIntervalSeconds 0.5 is v10's minimum; the loops start 50 ms apart, so an idle queue is
  // polled every ~50 ms. A loop that got jobs calls boss.notifyWorker(its id) to fetch again at
  // once instead of sleeping out its interval (v10 sleeps between fetches even with jobs waiting):
  // a public-API way to drain a backlog at full speed.
  // Results: a single-job batch stores its handler's return value as output; for larger batches
  // pg-boss stores none, so each sum job is completed on its own with its output
  // (boss.complete(name, id, value) -> output {"value": 50005000}); the rest are completed by pg-boss.
  // Tuned: batch fetching as pg-boss documents it (work()'s batchSize: up to that many jobs per
  // fetch, handed to the handler together), all 50 in one fetch loop: a fiftieth of the fetches
  // (each sorts the waiting jobs), at the cost of polling an idle queue only every 0.5 s.
  const LOOPS = config.tuned ? 1 : Number(process.env.PEERS_PGBOSS_LOOPS ?? 10);
  const BATCH = config.tuned ? CONCURRENCY : Number(process.env.PEERS_PGBOSS_BATCH ?? 5);
  const handle = async (job: { id: string; data: Data }) => {
    const d = job.data;
    if (d.k === 'echo') await db.executeSql('select pg_notify($1, $2)', [config.channel, String(d.i)]);
    else if (d.k === 'sum') await boss.complete('bench', job.id, sum());
  };
  for (let n = 0; n < LOOPS; n++) {
    let id = '';
    id = await boss.work('bench', { batchSize: BATCH, pollingIntervalSeconds: 0.5 }, async (jobs: { id: string; data: Data }[]) => {
      if (id) boss.notifyWorker(id);
      await Promise.all(jobs.map(handle));
    });
    await new Promise((r) => setTimeout(r, 500 / LOOPS));
  }
  stop = () => boss.stop({ graceful: false, wait: true });
} else {
  throw new Error(`unknown peer ${system}`);
}
process.stdout.write('ready\n');
