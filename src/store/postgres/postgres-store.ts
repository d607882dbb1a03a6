/**
 * The PostgreSQL store, for several foremen on one database.
 *
 * Claims use `FOR UPDATE SKIP LOCKED`, so foremen claiming at once take different tasks and
 * never wait on each other. Batches are set-based (`unnest` of arrays) so a group commit of
 * fifty results is one statement, not fifty round trips. Transactions that deadlock or fail
 * serialization are retried. Every change other foremen must hear about (new work, a job that
 * moved, a running task to cancel) is announced with NOTIFY inside the transaction that made
 * it, so it is delivered exactly when it commits (see `listen`).
 */
import pg from 'pg';
import {
  CODE_LANGUAGES, PRIORITY_BY_RANK, PRIORITY_RANK, TERMINAL_JOB_STATES, mapTaskTypes, taskError,
  type JobCounts, type JobState, type TaskError, type TaskState, type Requirements,
} from '../../protocol/index.ts';
import { deriveJobState, isJobDone } from '../../core/job-state.ts';
import { BLOCKED_UNTIL, graphState, releasable, type GraphPlan } from '../../core/graph.ts';
import { fits, take, type ResourceAmounts } from '../../core/resources.ts';
import { afterFailure, afterLoss, canTake, initialTaskState } from '../../core/task-transitions.ts';
import type {
  ActiveJob, ClaimedTask, CodeLanguage, CredentialInsertParams, CredentialRecord, ExpiredLease, JobListParams, JobPruneParams, JobRetryResult, JobPruneResult, JobCancelResult, JobChange, JobInsertParams, JobInsertOutcome, JobInsertResult, JobAppendParams, JobAppendResult, NewTask, ResultPage, JobRecord,  JobResults, Store, StoreNotifications, StoreStats,
  TaskClaimParams, TaskFinishResult, TaskReleaseParams, TaskOutcomeParams, TaskRecord, TaskRef, TaskRequeueParams, TaskRequeueResult, WorkerRecord, WorkerSeenParams, ForemanReapResult,
  ArtifactListParams, ArtifactRecord, FileRecord, TaskBatchRecord, TaskRecordParams, TaskResumeState, Sweep, SweepFilter,
  JobOpenExpiry, JobDeadlinePassed, OpenTimeoutAction, FailedTaskFilter, FailedTaskGroup, FailedTaskRef,
  ScheduleChange, ScheduleFireOutcome, ScheduleFireParams, ScheduleInsertParams, ScheduleRecord, ScheduleRunRecord,
  WebhookAttemptParams, WebhookClaim, WebhookDeliveryRecord,
  VacuumRun,
} from '../store.ts';
import { ACTIVE_JOBS_WINDOW, POSITION_COUNT_CAP, SCHEDULE_RUNS_KEPT, lastJobOf, trimsRuns, type JobCode, type JobCursor, type RateLimit, type SchedulerSnapshot } from '../store.ts';
import { RATE_SLACK, tokensAt, withinRates } from '../../core/rate-limits.ts';
import { typesFromLabel, withinCaps, type JobCaps } from '../../core/fair-share.ts';
import { stateGuard as guard, targetState as to } from '../transition-sql.ts';
import { deadlineError, openTimeoutColumns, openTimeoutError } from '../row-mapping.ts';
import { resultsInHand, failedGroupFromRow, activeJobFromRow, artifactFromRow, claimedFromRow, requirementsOf, artifactQuery, batchFromRow, bucketFromRow, cursorOf, windowStart, fileFromRow, nodeStatus, credentialFromRow, flattenResults, fromJson, jobFromRow, jsonbText, refusedAppend, resultTasks, taskCountsFromJobs, taskFromRow, toJson, workerFromRow, scheduleFromRow, scheduleRunFromRow, SCHEDULE_COLUMNS, webhookDeliveryFromRow, traceContextOf, type Row } from '../row-mapping.ts';
import { POSTGRES_MIGRATIONS } from './migrations.ts';
import { isConnectionError, isStoreOutage, storeError } from '../store-errors.ts';
import { retryDelayMs } from '../../core/retry.ts';

/** Where the PostgreSQL store lives. */
export interface PostgresStoreOptions {
  /** postgres://user@host:port/db; a `schema` query parameter selects the schema. */
  url: string;
  /** Schema holding the tables (created if missing). Default `crowdcompute`, or the URL's `schema` parameter. */
  schema?: string;
  /** Pool size. Default 10. */
  poolSize?: number;
  /** Identifies this store's notifications so its own foreman can ignore them. */
  instanceId?: string;
  /**
   * How long a call whose connection dropped is tried again before it fails with
   * CC_ERR_STORE_UNAVAILABLE (only calls that are safe to repeat). Default 2 s.
   */
  retryWindowMs?: number;
  /**
   * The server ends a session of this store left inside a transaction with nothing sent for
   * this long. A foreman that froze (stopped, cut off by a network that drops packets) in the
   * middle of a transaction would otherwise hold its row locks until the server's TCP
   * keep-alive noticed, two hours by default, and every other foreman would wait on them.
   * The store's own transactions never pause between statements for more than a moment.
   * Default 60 s.
   */
  idleInTransactionTimeoutMs?: number;
}

const CHANNEL = 'crowdcompute';
/**
 * Queue reads must walk the (priority, seq) or lease index and stop at LIMIT. A queue table's
 * statistics are always stale (its rows churn faster than autoanalyze), and with stale ones the
 * planner bitmap-scans every queued row and sorts them: measured 14.6 ms per claim with 20,000
 * queued instead of 0.15 ms. So claim transactions forbid those two plans; sent with BEGIN, in
 * one round trip.
 */
const BEGIN_QUEUE_READ = 'BEGIN; SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off';
/**
 * The statements every task goes through are prepared once per connection (named): PostgreSQL
 * parses and plans them once instead of at every call.
 */
const preparedNames = new Map<string, string>();
/**
 * The rest of a claim after `picked` (the ids chosen): claim them, mark their jobs started,
 * and return the claimed rows ($1 worker, $2 now, $3 lease expiry).
 */
const CLAIM_REST = `claimed AS (UPDATE tasks t SET state = ${to('claim')}, attempt = t.attempt + 1, worker_id = $1, started_at = $2, lease_expires_at = $3,
      progress = NULL, progress_message = NULL
    FROM picked WHERE t.id = picked.id AND t.${guard('claim')}
    RETURNING t.seq, t.id, t.job_id, t.idx, t.kind, t.type, t.input, t.priority, t.attempt, t.timeout_ms, t.created_at, t.available_at, t.files),
  started AS (UPDATE jobs SET state = 'running', started_at = $2 WHERE id IN (SELECT job_id FROM claimed) AND state = 'queued')
  SELECT * FROM claimed`;

/**
 * In the RETURNING of an update of jobs' counters: announce the job's new counts to other
 * foremen ($channel, from $from) in the same statement, unless the update leaves every task
 * ended (the job is then settled and announced after). `announced` is NULL when it did not.
 */
const ANNOUNCE_JOB_UNLESS_ENDING = (channel: string, from: string, endedHere = 'false') => `CASE WHEN NOT ${endedHere} AND (state IN ('completed', 'failed', 'cancelled') OR open OR completed + failed + cancelled < total)
        THEN pg_notify(${channel}, json_build_object('kind', 'job', 'from', ${from}::text, 'change', json_build_object('jobId', id, 'state', state,
          'counts', json_build_object('total', total, 'completed', completed, 'failed', failed, 'cancelled', cancelled), 'finished', false))::text) IS NULL
        END AS announced`;

/**
 * Completions that end a job settle it in the statement that counts them (one round trip fewer
 * per job end): the same rule as core's deriveJobState for a job whose every task has ended —
 * cancelled if a cancel was asked or a task was cancelled, else failed if one failed, else
 * completed — and the same columns settleCounts writes. Graphs (whose state follows their
 * nodes), open jobs and jobs already ended are left to settleCounts. The SET expressions read
 * the row as it was, before `n` (the completions counted) is added.
 */
const ENDS_ON_COMPLETION = (n: string) => `(kind <> 'graph' AND NOT open AND state NOT IN ('completed', 'failed', 'cancelled')
  AND completed + ${n} + failed + cancelled >= total)`;
const SETTLE_ON_COMPLETION = (n: string, now: string) => `
  state = CASE WHEN ${ENDS_ON_COMPLETION(n)} THEN (CASE WHEN cancel_requested OR cancelled > 0 THEN 'cancelled' WHEN failed > 0 THEN 'failed' ELSE 'completed' END) ELSE state END,
  completed_at = CASE WHEN ${ENDS_ON_COMPLETION(n)} THEN ${now}::bigint ELSE completed_at END,
  prune_after = CASE WHEN ${ENDS_ON_COMPLETION(n)} THEN ${now}::bigint + retention_ms ELSE prune_after END`;
/**
 * In RETURNING, after SETTLE_ON_COMPLETION: whether that statement ended the job (`ended_here`:
 * terminal now, not in `oldState`, its state as locked before the update), announced to other
 * foremen as settleCounts announces an end, and whether its end wrote a webhook delivery (the
 * jobs_webhook trigger's condition).
 */
const ENDED = (oldState: string) => `(${oldState} NOT IN ('completed', 'failed', 'cancelled') AND state IN ('completed', 'failed', 'cancelled'))`;
const WROTE_WEBHOOK = `(webhook_url IS NOT NULL OR EXISTS (SELECT 1 FROM credentials k WHERE k.id = jobs.owner AND k.kind = 'key' AND k.revoked_at IS NULL AND k.webhook_url IS NOT NULL))`;
/**
 * The announcement also says whether the end wrote a webhook delivery (so that other foremen's
 * webhook senders need not look), and carries a one-task job's results when they are small
 * (resultsInHand's rule; `results` names a relation of the completed tasks' `job_id` and
 * `result` text), so that another foreman's client gets its completion without a read.
 */
const ENDED_HERE = (oldState: string, channel: string, from: string, results: string) => {
  const ended = ENDED(oldState);
  return `
  ${ended} AS ended_here,
  CASE WHEN ${ended} THEN pg_notify(${channel}, json_build_object('kind', 'job', 'from', ${from}::text, 'change', json_build_object('jobId', id, 'state', state,
      'counts', json_build_object('total', total, 'completed', completed, 'failed', failed, 'cancelled', cancelled), 'finished', true,
      'webhook', ${WROTE_WEBHOOK},
      'results', CASE WHEN state = 'completed' AND total = 1 AND completed = 1 AND kind IN ('tasks', 'map') THEN
        (SELECT CASE WHEN jobs.kind = 'tasks' THEN json_build_array(r.result::json) WHEN json_typeof(r.result::json) = 'array' THEN r.result::json END
          FROM ${results} r WHERE r.job_id = jobs.id AND octet_length(r.result) <= ${NOTIFIED_RESULT_BYTES} LIMIT 1) END))::text) IS NULL
  END AS ended_announced,
  ${WROTE_WEBHOOK} AS webhook`;
};
/** The largest result an end's notification carries (its payload must stay under 8,000 bytes). */
const NOTIFIED_RESULT_BYTES = 4_000;

/** The jobs to claim from, their numbers cut so that they add up to at most `limit`. */
function withinLimit(jobs: readonly { jobId: string; limit: number; capped?: boolean }[], limit: number): { jobId: string; limit: number; capped?: boolean }[] {
  const out: { jobId: string; limit: number; capped?: boolean }[] = [];
  let room = limit;
  for (const j of jobs) {
    if (room <= 0) break;
    const n = Math.min(j.limit, room);
    if (n > 0) out.push({ ...j, limit: n });
    room -= n;
  }
  return out;
}

/** A failed task's error code (its name when it has none) and message's first line, as the dead-letter groups show them. */
/** The FROM and WHERE of a dead-letter query, and its parameters (the jobs are joined only to filter by owner). */
function failedWhere(f: FailedTaskFilter): { from: string; where: string; values: unknown[] } {
  const where = [`t.state = 'failed'`];
  const values: unknown[] = [];
  const add = (sql: (n: string) => string, v: unknown) => { if (v !== undefined) { values.push(v); where.push(sql(`$${values.length}`)); } };
  add((n) => `j.owner = ${n}`, f.owner);
  add((n) => `t.type = ${n}`, f.type);
  add((n) => `t.error_code = ${n}`, f.errorCode);
  add((n) => `t.error_line = ${n}`, f.message);
  add((n) => `t.job_id = ${n}`, f.jobId);
  add((n) => `t.completed_at >= ${n}`, f.since);
  add((n) => `t.id = ANY(${n}::text[])`, f.taskIds);
  return { from: `tasks t${f.owner !== undefined ? ' JOIN jobs j ON j.id = t.job_id' : ''}`, where: where.join(' AND '), values };
}

function prepared(text: string, values: unknown[]): pg.QueryConfig {
  let name = preparedNames.get(text);
  if (!name) { name = `cc_${preparedNames.size}`; preparedNames.set(text, name); }
  return { name, text, values };
}

/** The same planner settings as connection options, for the claims' own connections. */
const QUEUE_READ_OPTIONS = ' -c enable_sort=off -c enable_bitmapscan=off -c synchronous_commit=off';
const RETRYABLE = new Set(['40001', '40P01']);
/** Thrown inside the space probe's transaction to roll it back. */
const ROLLBACK_PROBE = Symbol('rollback');

/** Open jobs past their open timeout at $1. */
const OPEN_EXPIRED = 'WHERE open_expires_at IS NOT NULL AND open_expires_at <= $1 AND open';
/** Unfinished jobs past their deadline at $1. */
const PAST_DEADLINE = `WHERE deadline IS NOT NULL AND deadline <= $1 AND state IN ('scheduled', 'queued', 'running')`;

/** The values a sweep's filter binds, in the order {@link sweepFilter} numbers them. */
function sweepParams(f: SweepFilter): string[][] {
  return [...(f.except?.length ? [[...f.except]] : []), ...(f.only ? [[...f.only]] : [])];
}

/** `AND` clauses keeping a sweep to its filter, with parameters numbered from `first`. */
function sweepFilter(f: SweepFilter, first: number): string {
  let n = first;
  return `${f.except?.length ? `AND NOT (id = ANY($${n++}::text[]))` : ''} ${f.only ? `AND id = ANY($${n}::text[])` : ''}`;
}

/** The map task types a claim takes: those of the languages the worker runs, none without allowCode. */
function claimedMapTypes(p: TaskClaimParams): string[] {
  return p.allowCode ? mapTaskTypes(p.codeLanguages ?? CODE_LANGUAGES) : [];
}

/** Our globs (`*`, `?`) as a LIKE pattern with `\` as escape. */
export function toLikePattern(glob: string): string {
  return glob.replace(/[\\%_]/g, (c) => `\\${c}`).replace(/\*/g, '%').replace(/\?/g, '_');
}

function parseUrl(url: string, schema?: string): { connectionString: string; schema: string } {
  const u = new URL(url);
  const fromUrl = u.searchParams.get('schema');
  u.searchParams.delete('schema');
  const name = schema ?? fromUrl ?? 'crowdcompute';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`schema name "${name}" must be lowercase letters, digits and _`);
  return { connectionString: u.toString(), schema: name };
}

/** Queued tasks per priority rank, counted once per submission group (see jobInsertMany). */
interface QueueCounts { byPriority: Map<number, number>; counted: boolean }

/**
 * The first queued tasks in queue order (up to the cap, `$1`), counted per priority, as one JSON
 * object: a job's position is the queued tasks of its first task's priority or better.
 */
const QUEUE_COUNT_JSON = `(SELECT coalesce(json_object_agg(priority, n), '{}')::text FROM (SELECT priority, count(*) AS n
  FROM (SELECT priority FROM tasks WHERE state = 'queued' ORDER BY priority, seq LIMIT $1) first GROUP BY priority) counts)`;

function readQueueCounts(queued: QueueCounts, text: string): void {
  for (const [rank, n] of Object.entries(JSON.parse(text) as Record<string, number>)) queued.byPriority.set(Number(rank), Number(n));
  queued.counted = true;
}

/** A job's position: the queued tasks of its first task's priority or better; then its own queued tasks join the counts. */
function positionOf(params: JobInsertParams, queued: QueueCounts): number {
  const { job, tasks, now } = params;
  const firstRank = PRIORITY_RANK[tasks[0]?.priority ?? job.priority];
  let position = 0;
  for (const [rank, n] of queued.byPriority) if (rank <= firstRank) position += n;
  // Counted only once the job is in: a job refused adds nothing.
  const by = queued.byPriority;
  for (const t of tasks) if (initialTaskState(t.availableAt, now) === 'queued') by.set(PRIORITY_RANK[t.priority], (by.get(PRIORITY_RANK[t.priority]) ?? 0) + 1);
  return Math.min(position, POSITION_COUNT_CAP);
}

/**
 * A job's tasks in one INSERT: arrays in, unnest, in index order (which is also seq order).
 * `job`, `now` and `runOn` are SQL expressions; the arrays of {@link taskInsertValues} are the
 * parameters from `$first` on; `where` may hold the insert back.
 */
function taskInsertSql(job: string, now: string, runOn: string, first: number, where = ''): string {
  const p = (i: number) => `$${first + i}`;
  return `INSERT INTO tasks (id, job_id, idx, kind, type, input, priority, state, max_attempts, timeout_ms, created_at, run_on, available_at, requires, files)
        SELECT t.id, ${job}, t.idx, t.kind, t.type, t.input, t.priority,
          CASE WHEN t.available_at > ${now} AND t.available_at < ${BLOCKED_UNTIL} THEN 'scheduled' ELSE 'queued' END, t.max_attempts, t.timeout_ms, ${now}, ${runOn}, t.available_at, t.requires, t.files
        FROM unnest(${p(0)}::text[], ${p(1)}::int[], ${p(2)}::text[], ${p(3)}::text[], ${p(4)}::text[], ${p(5)}::int[], ${p(6)}::int[], ${p(7)}::int[], ${p(8)}::bigint[], ${p(9)}::text[], ${p(10)}::text[])
          AS t(id, idx, kind, type, input, priority, max_attempts, timeout_ms, available_at, requires, files)
        ${where} ORDER BY t.idx`;
}

/** The parameters of {@link taskInsertSql}, in its order. */
function taskInsertValues(tasks: readonly NewTask[]): unknown[] {
  return [tasks.map((t) => t.id), tasks.map((t) => t.index), tasks.map((t) => t.kind), tasks.map((t) => t.type),
    tasks.map((t) => toJson(t.input)), tasks.map((t) => PRIORITY_RANK[t.priority]), tasks.map((t) => t.maxAttempts), tasks.map((t) => t.timeoutMs),
    tasks.map((t) => t.availableAt ?? 0), tasks.map((t) => (t.requires ? JSON.stringify(t.requires) : null)),
    tasks.map((t) => (t.files?.length ? JSON.stringify(t.files) : null))];
}

/** The PostgreSQL store (see the file's comment). @internal */
export class PostgresStore implements Store {
  readonly driver = 'postgres' as const;
  readonly schema: string;
  readonly pool: pg.Pool;
  private readonly instanceId: string;
  private listener: pg.Client | null = null;
  private readonly connectionString: string;

  constructor(options: PostgresStoreOptions) {
    const { connectionString, schema } = parseUrl(options.url, options.schema);
    this.schema = schema;
    this.connectionString = connectionString;
    this.instanceId = options.instanceId ?? Math.random().toString(36).slice(2);
    this.retryWindowMs = options.retryWindowMs ?? 2_000;
    this.idleInTransactionTimeoutMs = Math.max(1, Math.round(options.idleInTransactionTimeoutMs ?? 60_000));
    this.pool = this.makePool(options.poolSize ?? 10, '');
    // Claims run on connections of their own whose planner may not sort the queue or bitmap-scan
    // it (see QUEUE_READ_OPTIONS): a claim is then one statement, committed on its own, instead
    // of BEGIN, SET LOCAL, the claim and COMMIT.
    this.claimPool = this.makePool(2, QUEUE_READ_OPTIONS);
  }

  /** The claims' connections (see the constructor). */
  private readonly claimPool: pg.Pool;

  private readonly idleInTransactionTimeoutMs: number;

  private makePool(max: number, extraOptions: string): pg.Pool {
    const pool = new pg.Pool({
      connectionString: this.connectionString, max,
      // A database that does not answer is not waited for forever: connecting gives up after 5 s,
      // a query after two minutes (a million-task submission is one statement), and TCP
      // keep-alive notices a connection whose peer vanished.
      connectionTimeoutMillis: 5_000, query_timeout: 120_000, keepAlive: true,
      // The schema is a startup parameter of every connection: no extra statement, no race with the first query.
      options: `-c search_path="${this.schema}" -c idle_in_transaction_session_timeout=${this.idleInTransactionTimeoutMs}${extraOptions}`,
      // pg_stat_activity names the foreman each connection belongs to.
      application_name: `crowdcompute ${this.instanceId}`.slice(0, 63),
      // BIGINT (epoch ms) and COUNT come back as strings by default; ours fit in a double.
      types: { getTypeParser: (oid: number, format?: any) => (oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) } as any,
    });
    pool.on('connect', (client) => {
      // A connection that dies (the server restarts, the network cuts) emits 'error' on its
      // client; unheard, that would end the process. The query in flight fails on its own,
      // and the pool replaces the connection.
      client.on('error', () => {});
      // Every statement is a round trip to the server: counted, for the statements-per-task figure.
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as { query: unknown }).query = (...args: unknown[]) => { this.statementCount++; return query(...args); };
    });
    pool.on('error', () => { /* a dropped idle connection; the pool replaces it */ });
    return pool;
  }

  /** Statements sent to the server since the store opened (each one round trip; BEGIN and COMMIT count). */
  statementCount = 0;

  private readonly retryWindowMs: number;

  // ------------------------------------------------------------------ plumbing

  /**
   * Run `fn` in a transaction. A deadlock or serialization failure is tried again at once; a
   * dropped connection, with backoff for up to `retryWindowMs` when `retry` (the call is safe
   * to repeat: guarded updates, reads, a submission with its idempotency key); then
   * CC_ERR_STORE_UNAVAILABLE.
   */
  private async tx<T>(fn: (c: pg.PoolClient) => Promise<T>, opts: { begin?: string; retry?: boolean } = {}): Promise<T> {
    const deadline = Date.now() + this.retryWindowMs;
    for (let attempt = 1; ; attempt++) {
      let c: pg.PoolClient | null = null;
      try {
        c = await this.pool.connect();
        await c.query(opts.begin ?? 'BEGIN');
        const out = await fn(c);
        await c.query('COMMIT');
        c.release();
        return out;
      } catch (err) {
        if (c) {
          // A connection that failed is destroyed rather than handed to the next caller.
          const broken = isConnectionError(err) || !(await c.query('ROLLBACK').then(() => true, () => false));
          c.release(broken ? (err as Error) : undefined);
        }
        if (attempt < 5 && RETRYABLE.has((err as { code?: string }).code ?? '')) continue;
        if (isConnectionError(err) && opts.retry !== false && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, retryDelayMs(attempt, { baseMs: 50, maxMs: 500 })));
          continue;
        }
        throw storeError(err, 'writing to the database');
      }
    }
  }

  /** One statement outside a transaction, tried again like `tx` when its connection dropped. */
  private async q(text: string | pg.QueryConfig, params: unknown[] = [], retry = true, pool: pg.Pool = this.pool): Promise<pg.QueryResult> {
    const deadline = Date.now() + this.retryWindowMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await (typeof text === 'string' ? pool.query(text, params) : pool.query(text));
      } catch (err) {
        if (isConnectionError(err) && retry && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, retryDelayMs(attempt, { baseMs: 50, maxMs: 500 })));
          continue;
        }
        throw storeError(err, /^\s*select/i.test(typeof text === 'string' ? text : text.text) ? 'reading from the database' : 'writing to the database');
      }
    }
  }

  private notify(c: pg.PoolClient, payload: Record<string, unknown>): Promise<unknown> {
    return c.query('SELECT pg_notify($1, $2)', [CHANNEL, JSON.stringify({ ...payload, from: this.instanceId })]);
  }

  /** Whether the schema holds a store already (its migrations table): what `migrate()` would otherwise create. */
  async isSetUp(): Promise<boolean> {
    const r = await this.q('SELECT to_regclass($1) IS NOT NULL AS present', [`"${this.schema}".cc_migrations`], false);
    return r.rows[0].present === true;
  }

  async migrate(): Promise<void> {
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      // One foreman migrates at a time; the others wait here, then find nothing to do.
      await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`crowdcompute:${this.schema}`]);
      await c.query(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
      await c.query(`SET LOCAL search_path TO "${this.schema}"`);
      await c.query('CREATE TABLE IF NOT EXISTS cc_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
      const applied = new Set((await c.query('SELECT version FROM cc_migrations')).rows.map((r) => r.version));
      for (const m of POSTGRES_MIGRATIONS) {
        if (applied.has(m.version)) continue;
        await c.query(m.sql);
        await c.query('INSERT INTO cc_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
      }
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }

  /**
   * Listen for other foremen's announcements on a dedicated connection (LISTEN needs one
   * that is not returned to a pool). Returns a function that stops listening.
   */
  async listen(handlers: StoreNotifications): Promise<() => Promise<void>> {
    let stopped = false;
    let retry: NodeJS.Timeout | null = null;
    let attempts = 0;
    // A lost LISTEN connection is opened again, with backoff while the database stays away;
    // what was announced meanwhile is caught by the foreman's own sweeps (work every second,
    // watched jobs every few seconds), and onWork on reconnecting starts one at once.
    const reconnect = () => {
      if (stopped || retry) return;
      retry = setTimeout(() => {
        retry = null;
        if (stopped) return;
        connect().then(() => { attempts = 0; handlers.onWork(); }, reconnect);
      }, retryDelayMs(++attempts, { baseMs: 250, maxMs: 5_000 }));
      retry.unref();
    };
    const connect = async (): Promise<void> => {
      const client = new pg.Client({
        connectionString: this.connectionString, keepAlive: true, connectionTimeoutMillis: 5_000,
        application_name: `crowdcompute ${this.instanceId} listen`.slice(0, 63),
      });
      const lost = () => {
        if (this.listener !== client) return;
        this.listener = null;
        reconnect();
      };
      // Heard before connect() so that no 'error' of this client goes unhandled.
      client.on('error', lost);
      client.on('end', lost);
      client.on('notification', (n) => {
        if (n.channel !== CHANNEL || !n.payload) return;
        let m: any;
        try { m = JSON.parse(n.payload); } catch { return; }
        if (m.from === this.instanceId) return;
        if (m.kind === 'work') {
          handlers.onWork(m.job && typeof m.job.jobId === 'string'
            ? { job: m.job as ActiveJob, requiring: m.requiring === true, ...(m.sendWith && typeof m.sendWith === 'object' ? { sendWith: m.sendWith } : {}) }
            : undefined);
        } else if (m.kind === 'job') {
          // Built in SQL, an end's notification says null for what it does not carry.
          const change = m.change as JobChange;
          if (change.results === null) delete change.results;
          if (change.webhook === null) delete change.webhook;
          handlers.onJobChange(change);
        }
        else if (m.kind === 'cancel') handlers.onCancel(m.task);
        else if (m.kind === 'credentials') handlers.onCredentials?.();
        else if (m.kind === 'release' && typeof m.at === 'number') handlers.onRelease?.(m.at);
        else if (m.kind === 'schedules') handlers.onSchedules?.();
      });
      try {
        await client.connect();
        await client.query(`LISTEN ${CHANNEL}`);
      } catch (err) {
        await client.end().catch(() => {});
        throw err;
      }
      if (stopped) { await client.end().catch(() => {}); return; }
      this.listener = client;
    };
    await connect();
    return async () => {
      stopped = true;
      if (retry) clearTimeout(retry);
      const client = this.listener;
      this.listener = null;
      await client?.end().catch(() => {});
    };
  }

  async close(): Promise<void> {
    await this.listener?.end().catch(() => {});
    this.listener = null;
    await Promise.all([this.pool.end(), this.claimPool.end()]);
  }

  /** Drop the whole schema (tests). */
  async dropSchema(): Promise<void> {
    await this.pool.query(`DROP SCHEMA IF EXISTS "${this.schema}" CASCADE`);
  }

  // ------------------------------------------------------------------ jobs

  async jobInsert(params: JobInsertParams): Promise<JobInsertResult> {
    const [outcome] = await this.jobInsertMany([params]);
    if ('error' in outcome) throw outcome.error;
    return outcome;
  }

  /**
   * The group in one transaction: one commit (one WAL flush) and one announcement to other
   * foremen for all. A job whose task ids the submitter chose may find one taken: it goes in a
   * savepoint, so its refusal undoes only its own rows. Repeating the group after a lost
   * connection is safe only when every job carries an idempotency key (the repeat finds them).
   */
  async jobInsertMany(list: JobInsertParams[]): Promise<JobInsertOutcome[]> {
    if (list.length === 1 && PostgresStore.insertsAlone(list[0]!)) {
      const alone = await this.insertJobAlone(list[0]!);
      if (alone) return [alone];
    }
    return this.tx(async (c) => {
      const out: JobInsertOutcome[] = [];
      // Queued tasks per priority, counted once for the group (the first ones in queue order, up
      // to the cap) and kept up to date as it inserts: a job's position is the queued tasks of
      // its first task's priority or better. Other foremen hear of each new job from the
      // statement that inserts it (see insertJobRows).
      // The count rides on the first job's insert (one round trip fewer per group), or, when that
      // insert returns no row (an idempotency key taken), is asked for on its own.
      const queued: QueueCounts = { byPriority: new Map(), counted: false };
      for (const params of list) {
        const chosenIds = params.tasks.some((t) => !t.id.startsWith(`${params.job.id}.`));
        if (!chosenIds) { out.push(await this.insertJobRows(c, params, queued)); continue; }
        await c.query('SAVEPOINT job_insert');
        try {
          out.push(await this.insertJobRows(c, params, queued));
          await c.query('RELEASE SAVEPOINT job_insert');
        } catch (err) {
          if ((err as { code?: string }).code !== '23505') throw err;
          await c.query('ROLLBACK TO SAVEPOINT job_insert');
          out.push({ error: err as Error });
        }
      }
      return out;
    }, { retry: list.every((p) => p.job.idempotencyKey !== null) });
  }

  /** The queue counted by priority for a group's positions, once (see jobInsertMany). */
  private async countQueue(c: pg.PoolClient, queued: QueueCounts): Promise<void> {
    if (queued.counted) return;
    for (const r of (await c.query(prepared(`SELECT ${QUEUE_COUNT_JSON} AS queued_counts`, [POSITION_COUNT_CAP + 1]))).rows) readQueueCounts(queued, r.queued_counts);
  }

  /** One job's rows, inside the group's transaction; `queued` counts the queue by priority (see jobInsertMany). */
  private async insertJobRows(c: pg.PoolClient, params: JobInsertParams, queued: QueueCounts): Promise<JobInsertResult> {
    const { job, tasks, now } = params;
    // The group's first insert also counts the queue, in its statement's snapshot: before this job's tasks.
    const count = !queued.counted;
    const statement = this.jobInsertStatement(params, count);
    const insertJob = () => c.query(prepared(statement.text, statement.values));
    // The common case is one statement: a new key (or none) inserts. A taken key means an
    // existing job: returned while its key lives, else the key moves to the new job.
    let jr = (await insertJob()).rows[0];
    if (jr && count) readQueueCounts(queued, jr.queued_counts);
    if (!jr) {
      const existing = (await c.query('SELECT * FROM jobs WHERE idempotency_key = $1 FOR UPDATE', [job.idempotencyKey])).rows[0];
      if (existing && (params.dedupSince === undefined || existing.created_at >= params.dedupSince)) {
        return { job: jobFromRow(existing), position: 0, deduplicated: true };
      }
      if (existing) await c.query('UPDATE jobs SET idempotency_key = NULL WHERE id = $1', [existing.id]);
      await this.countQueue(c, queued);
      jr = (await insertJob()).rows[0];
    }
    if (tasks.length > 0) await this.insertTasks(c, job.id, job.runOn, tasks, now);
    const files = [...new Set(tasks.flatMap((t) => t.files ?? []))];
    if (files.length > 0) await c.query('UPDATE files SET job_id = $1 WHERE id = ANY($2::text[]) AND job_id IS NULL', [job.id, files]);
    return { job: jobFromRow(jr), position: positionOf(params, queued), deduplicated: false };
  }

  /**
   * A group of one job with default task ids, no files and no delayed tasks (a client's
   * everyday submission) in one statement, committed on its own: the job's insert, its tasks'
   * insert and the queue count, instead of BEGIN, two INSERTs and COMMIT (three round trips
   * fewer). Null when its idempotency key is taken: nothing was written, and the group goes
   * the transactional way, which finds the existing job.
   */
  private async insertJobAlone(params: JobInsertParams): Promise<JobInsertResult | null> {
    const job = this.jobInsertStatement(params, true);
    // $1 is the job's id, $13 the time, $18 its run_on; the tasks' arrays follow the job's values.
    const tasks = taskInsertSql('$1', '$13::bigint', '$18::text', job.values.length + 1, 'WHERE EXISTS (SELECT 1 FROM j)');
    const r = (await this.q(prepared(`WITH j AS (${job.text}), t AS (${tasks}) SELECT * FROM j`, [...job.values, ...taskInsertValues(params.tasks)]),
      [], params.job.idempotencyKey !== null)).rows[0];
    if (!r) return null;
    const queued: QueueCounts = { byPriority: new Map(), counted: false };
    readQueueCounts(queued, r.queued_counts);
    return { job: jobFromRow(r), position: positionOf(params, queued), deduplicated: false };
  }

  /** Whether a group of this one job may go as one statement (see insertJobAlone). */
  private static insertsAlone(params: JobInsertParams): boolean {
    const { job, tasks, now } = params;
    return tasks.length > 0 && tasks.every((t) => t.id.startsWith(`${job.id}.`) && !t.files?.length && initialTaskState(t.availableAt, now) === 'queued');
  }

  /** A job's INSERT, doing nothing when its idempotency key is taken; with `count`, it also counts the queue ($32). */
  private jobInsertStatement(params: JobInsertParams, count: boolean): { text: string; values: unknown[] } {
    const { job, tasks, now } = params;
    const timeouts = openTimeoutColumns(job);
    return {
      text: `INSERT INTO jobs (id, kind, name, state, priority, total, arg_count, chunk_size, code, timeout_ms,
        max_attempts, idempotency_key, metadata, created_at, owner, retention_ms, label, queue_timeout_ms, queue_deadline, run_on, graph, open, weight, max_concurrency, language,
        open_timeout_ms, on_open_timeout, open_expires_at, deadline, run_at, webhook_url, trace_context)
        VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, greatest($13::bigint, coalesce($27::bigint, 0)) + $17::bigint, $18, $19, $20, $21, $22, $23,
          $24, $25, $13::bigint + $24::bigint, $26, $27, $28, $29)
        ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING *, pg_notify($30, $31) AS announced${count ? `, ${QUEUE_COUNT_JSON.replaceAll('$1', '$32')} AS queued_counts` : ''}`,
      values: [job.id, job.kind, job.name, PRIORITY_RANK[job.priority], tasks.length, job.argCount, job.chunkSize, job.code, job.timeoutMs,
        job.maxAttempts, job.idempotencyKey, toJson(job.metadata ?? undefined), now, job.owner, job.retentionMs, job.label, job.queueTimeoutMs, job.runOn,
        job.graph ? JSON.stringify(job.graph) : null, job.open === true, job.weight ?? 1, job.maxConcurrency ?? null,
        job.kind === 'map' ? job.language ?? 'javascript' : null, timeouts.openTimeoutMs, timeouts.onOpenTimeout, job.deadline ?? null, job.runAt ?? null, job.webhookUrl ?? null,
        toJson(job.traceContext ?? undefined), CHANNEL, this.acceptedWork(params), ...(count ? [POSITION_COUNT_CAP + 1] : [])],
    };
  }

  /**
   * What other foremen are told of a new job, sent by the statement that inserts it (so only
   * for a job actually inserted, and delivered when the transaction commits): the job as their
   * schedulers share it, so that they hand its tasks out without reading the store first. A
   * job too large to describe in one notification (its label) is announced as plain work.
   */
  private acceptedWork(params: JobInsertParams): string {
    const { job, tasks, now } = params;
    let scheduled = 0;
    for (const t of tasks) if (initialTaskState(t.availableAt, now) === 'scheduled') scheduled++;
    const active: ActiveJob = {
      jobId: job.id, kind: job.kind, owner: job.owner, priority: job.priority, weight: job.weight ?? 1, maxConcurrency: job.maxConcurrency ?? null,
      waiting: tasks.length - scheduled, scheduled, running: 0, runOn: job.runOn, language: job.kind === 'map' ? job.language ?? 'javascript' : null,
      types: typesFromLabel({ kind: job.kind, label: job.label, open: job.open === true }), createdAt: now,
    };
    const requiring = tasks.some((t) => t.requires);
    // What its tasks are sent with, so that another foreman's dispatcher need not read the job.
    const sendWith = job.kind === 'graph' ? undefined : { metadata: job.metadata ?? null, traceContext: job.traceContext ?? null };
    // NOTIFY payloads must stay under 8,000 bytes: what does not fit is read instead.
    for (const m of [{ job: active, requiring, sendWith }, { job: active, requiring }]) {
      const text = JSON.stringify({ kind: 'work', from: this.instanceId, ...m });
      if (Buffer.byteLength(text) < 7_000) return text;
    }
    return JSON.stringify({ kind: 'work', from: this.instanceId });
  }

  /**
   * A job's tasks in one statement: arrays in, unnest, in index order (which is also seq order).
   * Delayed ones are announced with the earliest's time, so that every foreman's releaser knows.
   */
  private async insertTasks(c: pg.PoolClient, jobId: string, runOn: string | null, tasks: NewTask[], now: number): Promise<void> {
    let earliest = Infinity;
    for (const t of tasks) if (t.availableAt !== undefined && t.availableAt < earliest && initialTaskState(t.availableAt, now) === 'scheduled') earliest = t.availableAt;
    if (earliest < Infinity) await this.notify(c, { kind: 'release', at: earliest });
    await c.query(prepared(taskInsertSql('$1', '$2::bigint', '$3::text', 4), [jobId, now, runOn, ...taskInsertValues(tasks)]));
  }

  async jobAppend(params: JobAppendParams): Promise<JobAppendResult | null> {
    return this.tx(async (c) => {
      const p = params;
      // Only if it is still open, the part starts where the job ends (when it says where), and a
      // map job's earlier parts were whole chunks. Queued tasks wait afresh, and the open timeout
      // starts again (a seal ends it).
      const r = (await c.query(`UPDATE jobs SET total = total + $2, arg_count = CASE WHEN kind = 'map' THEN arg_count + $3 ELSE arg_count END,
          open = NOT $4, label = coalesce(nullif(label, ''), $6),
          open_expires_at = CASE WHEN $4 THEN NULL ELSE $7::bigint + open_timeout_ms END, closed_by = CASE WHEN $4 THEN 'seal' ELSE NULL END,
          queue_deadline = CASE WHEN queue_timeout_ms IS NULL THEN queue_deadline ELSE $7::bigint + queue_timeout_ms END
        WHERE id = $1 AND open AND ($5::bigint IS NULL OR $5::bigint = CASE WHEN kind = 'map' THEN arg_count ELSE total END)
          AND (kind <> 'map' OR $3 = 0 OR arg_count % chunk_size = 0) RETURNING *`,
      [p.jobId, p.tasks.length, p.args, p.seal, p.at, p.label, p.now])).rows[0];
      if (!r) {
        const job = (await c.query('SELECT * FROM jobs WHERE id = $1', [p.jobId])).rows[0];
        return job ? refusedAppend(job, p) : null;
      }
      const first = r.total - p.tasks.length;
      if (p.tasks.length > 0) {
        const tasks = p.tasks.map((t, i) => ({ ...t, id: t.id ?? `${p.jobId}.${first + i}`, index: first + i }));
        await this.insertTasks(c, p.jobId, r.run_on, tasks, p.now);
        const files = [...new Set(tasks.flatMap((t) => t.files ?? []))];
        if (files.length > 0) await c.query('UPDATE files SET job_id = $1 WHERE id = ANY($2::text[]) AND job_id IS NULL', [p.jobId, files]);
        await this.notify(c, { kind: 'work' });
      }
      // Sealing may finish a job whose tasks have all ended already.
      const change = p.seal ? await this.applyCounts(c, p.jobId, { completed: 0, failed: 0, cancelled: 0 }, p.now) : null;
      const job = change?.finished ? (await c.query('SELECT * FROM jobs WHERE id = $1', [p.jobId])).rows[0] : r;
      return { job: jobFromRow(job), deduplicated: false, change, firstIndex: first };
    });
  }

  async jobGet(jobId: string): Promise<JobRecord | null> {
    const r = (await this.q('SELECT * FROM jobs WHERE id = $1', [jobId])).rows[0];
    return r ? jobFromRow(r) : null;
  }

  async jobList(params: JobListParams): Promise<JobRecord[]> {
    const where: string[] = [];
    const values: unknown[] = [];
    const add = (sql: (n: string) => string, v: unknown) => { values.push(v); where.push(sql(`$${values.length}`)); };
    // A scheduled job is stored queued, with its time ahead.
    if (params.state === 'scheduled') add((n) => `state = 'queued' AND run_at > ${n}`, Date.now());
    else if (params.state === 'queued') add((n) => `state = 'queued' AND (run_at IS NULL OR run_at <= ${n})`, Date.now());
    else if (params.state !== undefined) add((n) => `state = ${n}`, params.state);
    if (params.owner !== undefined) add((n) => `owner = ${n}`, params.owner);
    if (params.search !== undefined) add((n) => `(strpos(lower(coalesce(label, '')), lower(${n})) > 0 OR strpos(lower(coalesce(name, '')), lower(${n})) > 0 OR id = ${n})`, params.search);
    if (params.createdAfter !== undefined) add((n) => `created_at >= ${n}`, params.createdAfter);
    if (params.createdBefore !== undefined) add((n) => `created_at < ${n}`, params.createdBefore);
    values.push(params.limit, params.offset);
    return (await this.q(`SELECT * FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC
      LIMIT $${values.length - 1} OFFSET $${values.length}`, values)).rows.map(jobFromRow);
  }

  async taskFailedGroups(params: FailedTaskFilter & { limit: number; offset: number }): Promise<FailedTaskGroup[]> {
    const { from, where, values } = failedWhere(params);
    values.push(params.limit, params.offset);
    // Read from the index of failed tasks by type and error (migration 15), errors unread; the
    // three newest tasks of each group are a few steps down the same index (LATERAL).
    const rows = (await this.q(`WITH g AS (SELECT t.type, t.error_code AS code, t.error_line AS message, count(*) AS n, count(DISTINCT t.job_id) AS jobs,
          min(t.completed_at) AS first_at, max(t.completed_at) AS last_at
        FROM ${from} WHERE ${where} GROUP BY t.type, t.error_code, t.error_line
        ORDER BY n DESC, t.type COLLATE "C", t.error_code COLLATE "C", t.error_line COLLATE "C" LIMIT $${values.length - 1} OFFSET $${values.length})
      SELECT g.*, (SELECT json_agg(json_build_array(e.id, e.job_id, e.completed_at)) FROM (SELECT t.id, t.job_id, t.completed_at FROM ${from}
          WHERE ${where} AND t.type = g.type AND t.error_code = g.code AND t.error_line = g.message ORDER BY t.seq DESC LIMIT 3) e) AS examples
      FROM g ORDER BY g.n DESC, g.type COLLATE "C", g.code COLLATE "C", g.message COLLATE "C"`, values)).rows;
    return rows.map((r) => failedGroupFromRow(r, r.examples ?? []));
  }

  async taskFailedPage(params: FailedTaskFilter & { afterSeq: number; limit: number }): Promise<FailedTaskRef[]> {
    const { from, where, values } = failedWhere(params);
    values.push(params.afterSeq, params.limit);
    const rows = (await this.q(`SELECT t.seq, t.id, t.job_id FROM ${from} WHERE ${where} AND t.seq > $${values.length - 1} ORDER BY t.seq LIMIT $${values.length}`, values)).rows;
    return rows.map((r) => ({ seq: Number(r.seq), taskId: r.id, jobId: r.job_id }));
  }

  async jobRetry(params: { jobId: string; taskId?: string; taskIds?: readonly string[]; now: number }): Promise<JobRetryResult | null> {
    return this.tx(async (c) => {
      const job = (await c.query('SELECT * FROM jobs WHERE id = $1 FOR UPDATE', [params.jobId])).rows[0];
      if (!job) return null;
      // RETURNING the old state (through a self-join): the counters hold failed and cancelled tasks.
      const rows = (await c.query(`UPDATE tasks t SET state = ${to('rerun')}, failures = 0, lost = 0, error = NULL, result = NULL, worker_id = NULL,
          started_at = NULL, completed_at = NULL, lease_expires_at = NULL, progress = NULL, progress_message = NULL, available_at = $3
        FROM tasks old WHERE t.id = old.id AND t.job_id = $1 AND ${guard('rerun', 't.state')} AND ($2::text IS NULL OR t.id = $2)
          AND ($4::text[] IS NULL OR t.id = ANY($4::text[]))
        RETURNING old.state AS was`, [params.jobId, params.taskId ?? null, params.now, params.taskIds ?? null])).rows;
      if (rows.length === 0) return { job: jobFromRow(job), retried: 0, change: null };
      const failed = rows.filter((r) => r.was === 'failed').length;
      const r = (await c.query(`UPDATE jobs SET failed = failed - $2, cancelled = cancelled - $3,
          state = CASE WHEN started_at IS NULL THEN 'queued' ELSE 'running' END, completed_at = NULL, prune_after = NULL,
          cancel_requested = FALSE, queue_deadline = $4::bigint + queue_timeout_ms WHERE id = $1 RETURNING *`,
      [params.jobId, failed, rows.length - failed, params.now])).rows[0];
      const counts: JobCounts = { total: r.total, completed: r.completed, failed: r.failed, cancelled: r.cancelled };
      const change: JobChange = { jobId: params.jobId, state: r.state, counts, finished: false };
      await this.notify(c, { kind: 'job', change });
      await this.notify(c, { kind: 'work' });
      return { job: jobFromRow(r), retried: rows.length, change };
    });
  }

  async taskReleaseDue(params: TaskReleaseParams): Promise<{ released: number; jobIds: string[] }> {
    return this.tx(async (c) => {
      // SKIP LOCKED: foremen releasing at once take different tasks.
      const rows = (await c.query(prepared(`WITH due AS (SELECT id FROM tasks WHERE state = 'scheduled' AND available_at <= $1
          ORDER BY available_at LIMIT $2 FOR UPDATE SKIP LOCKED)
        UPDATE tasks t SET state = ${to('release')}, available_at = least(t.available_at, $3::bigint) FROM due
        WHERE t.id = due.id AND ${guard('release', 't.state')} RETURNING t.job_id`, [params.now, params.limit, params.wallNow]))).rows;
      // Other foremen's workers may take them too.
      if (rows.length > 0) await this.notify(c, { kind: 'work' });
      return { released: rows.length, jobIds: [...new Set(rows.map((r) => r.job_id as string))] };
    });
  }

  async taskNextRelease(): Promise<number | null> {
    const at = (await this.q(`SELECT min(available_at) AS at FROM tasks WHERE state = 'scheduled'`)).rows[0]?.at;
    return at === null || at === undefined ? null : Number(at);
  }

  async taskExpireQueued(params: { now: number; limit: number } & SweepFilter): Promise<{ failed: number; jobs: JobChange[] }> {
    return this.tx(async (c) => {
      const out = { failed: 0, jobs: [] as JobChange[] };
      // SKIP LOCKED: foremen sweeping at once take different jobs.
      const due = (await c.query(`SELECT id FROM jobs WHERE queue_deadline IS NOT NULL AND queue_deadline <= $1
        AND state IN ('queued', 'running') ${sweepFilter(params, 3)} ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`, [params.now, params.limit, ...sweepParams(params)])).rows;
      for (const { id } of due) {
        const error = toJson(taskError('CC_ERR_NO_WORKER', `no worker started this task of job ${id} before its queue deadline`, { reason: 'queue_timeout' }));
        const n = (await c.query(`UPDATE tasks SET state = ${to('expire')}, error = $3, completed_at = $2
          WHERE job_id = $1 AND ${guard('expire')} AND started_at IS NULL`, [id, params.now, error])).rowCount ?? 0;
        // Whatever started in time runs on; the deadline is spent.
        await c.query('UPDATE jobs SET queue_deadline = NULL WHERE id = $1', [id]);
        out.failed += n;
        if (n === 0) continue;
        const change = await this.applyCounts(c, id, { completed: 0, failed: n, cancelled: 0 }, params.now);
        if (change) out.jobs.push(change);
      }
      return out;
    });
  }

  async jobExpireOpen(params: { now: number; limit: number } & SweepFilter): Promise<JobOpenExpiry[]> {
    return this.tx(async (c) => {
      const out: JobOpenExpiry[] = [];
      // SKIP LOCKED: foremen sweeping at once take different jobs; an append waits for this
      // commit and then finds the job closed (its guard is open = TRUE), or committed first and
      // pushed the time back, so that the row no longer matches here.
      const due = (await c.query(`SELECT id, open_timeout_ms, on_open_timeout FROM jobs ${OPEN_EXPIRED} ${sweepFilter(params, 3)}
        ORDER BY open_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED`, [params.now, params.limit, ...sweepParams(params)])).rows;
      for (const r of due) {
        const jobId = r.id as string;
        const action: OpenTimeoutAction = r.on_open_timeout === 'seal' ? 'seal' : 'cancel';
        let running: JobOpenExpiry['running'] = [];
        let cancelled = 0;
        if (action === 'cancel') {
          const rows = (await c.query(`UPDATE tasks t SET state = ${to('cancel')}, completed_at = $2, lease_expires_at = NULL, error = $3
              FROM tasks old WHERE t.id = old.id AND t.job_id = $1 AND ${guard('cancel', 't.state')}
              RETURNING t.id, t.attempt, t.worker_id, old.state AS was`, [jobId, params.now, toJson(openTimeoutError(jobId, r.open_timeout_ms))])).rows;
          cancelled = rows.length;
          running = rows.filter((t) => t.was === 'running').map((t) => ({ taskId: t.id as string, attempt: t.attempt as number, workerId: t.worker_id as string | null }));
          for (const t of running) await this.notify(c, { kind: 'cancel', task: { ...t, reason: `job ${jobId} was cancelled: it got no part and no seal for its openTimeout` } });
        }
        await c.query(`UPDATE jobs SET open = FALSE, open_expires_at = NULL, closed_by = 'open_timeout', cancel_requested = cancel_requested OR $2 WHERE id = $1`, [jobId, action === 'cancel']);
        // Sealing may finish a job whose tasks have all ended already; cancelling ends it.
        const change = await this.applyCounts(c, jobId, { completed: 0, failed: 0, cancelled }, params.now);
        out.push({ jobId, action, openTimeoutMs: r.open_timeout_ms, running, change });
      }
      return out;
    });
  }

  async jobFailPastDeadline(params: { now: number; limit: number } & SweepFilter): Promise<JobDeadlinePassed[]> {
    return this.tx(async (c) => {
      const out: JobDeadlinePassed[] = [];
      const due = (await c.query(`SELECT id, deadline FROM jobs ${PAST_DEADLINE} ${sweepFilter(params, 3)}
        ORDER BY deadline LIMIT $2 FOR UPDATE SKIP LOCKED`, [params.now, params.limit, ...sweepParams(params)])).rows;
      for (const r of due) {
        const jobId = r.id as string;
        const error = deadlineError(jobId, r.deadline);
        const rows = (await c.query(`UPDATE tasks t SET state = ${to('deadline')}, completed_at = $2, lease_expires_at = NULL, error = $3
            FROM tasks old WHERE t.id = old.id AND t.job_id = $1 AND ${guard('deadline', 't.state')}
            RETURNING t.id, t.attempt, t.worker_id, old.state AS was`, [jobId, params.now, toJson(error)])).rows;
        const running = rows.filter((t) => t.was === 'running').map((t) => ({ taskId: t.id as string, attempt: t.attempt as number, workerId: t.worker_id as string | null }));
        for (const t of running) await this.notify(c, { kind: 'cancel', task: { ...t, reason: error.message } });
        // An open job takes no more parts: it ends now, with what it has.
        await c.query(`UPDATE jobs SET open = FALSE, open_expires_at = NULL, closed_by = CASE WHEN open THEN 'deadline' ELSE closed_by END WHERE id = $1`, [jobId]);
        const change = await this.applyCounts(c, jobId, { completed: 0, failed: rows.length, cancelled: 0 }, params.now);
        out.push({ jobId, deadline: r.deadline, failed: rows.length, running, change });
      }
      return out;
    });
  }

  async jobNextExpiry(): Promise<number | null> {
    // least() passes over NULLs; each min() reads the front of its partial index.
    const r = (await this.q(`SELECT least((SELECT min(open_expires_at) FROM jobs WHERE open_expires_at IS NOT NULL),
      (SELECT min(deadline) FROM jobs WHERE deadline IS NOT NULL AND state IN ('scheduled', 'queued', 'running'))) AS at`)).rows[0];
    return r?.at ?? null;
  }

  async jobCode(jobId: string): Promise<JobCode | null> {
    const r = (await this.q('SELECT code, chunk_size, name, label, language, trace_context FROM jobs WHERE id = $1', [jobId])).rows[0];
    return r?.code ? { code: r.code, chunkSize: r.chunk_size, name: r.name ?? r.label ?? null, language: r.language ?? 'javascript', traceContext: traceContextOf(r.trace_context) } : null;
  }


  /**
   * One read (a job's end reaches its client through it): the job's shape, and its tasks in a
   * range that holds the page's (with a map job's chunks, up to one more), cut to the page's
   * tasks here (`resultTasks`).
   */
  async jobResults(jobId: string, page?: ResultPage): Promise<JobResults | null> {
    const offset = page?.offset ?? 0;
    const end = page ? page.offset + page.limit : 2 ** 53;
    const rows = (await this.q(prepared(`SELECT j.kind, j.chunk_size, j.arg_count, j.total, t.id, t.idx, t.kind AS task_kind, t.state, t.result, t.error
        FROM jobs j LEFT JOIN LATERAL (SELECT id, idx, kind, state, result, error FROM tasks
          WHERE job_id = j.id AND idx >= CASE WHEN j.kind = 'map' THEN $2::bigint / j.chunk_size ELSE $2::bigint END
            AND idx < CASE WHEN j.kind = 'map' THEN $3::bigint / j.chunk_size + 1 ELSE $3::bigint END) t ON true
        WHERE j.id = $1`, [jobId, offset, end]))).rows;
    if (rows.length === 0) return null;
    const job = rows[0];
    const { from, to } = resultTasks(job, page);
    const tasks = rows.filter((r) => r.id !== null && r.idx >= from && r.idx < to)
      .map((r) => ({ id: r.id, idx: r.idx, kind: r.task_kind, state: r.state, result: r.result, error: r.error }));
    return flattenResults(job, tasks, page);
  }

  /** Add to a job's counters and settle its state when every task is terminal; announce the change. */
  private async applyCounts(c: pg.PoolClient, jobId: string, d: { completed: number; failed: number; cancelled: number }, now: number, inHand?: { result: unknown }): Promise<JobChange | null> {
    // Other foremen hear of the change in the same statement, unless it ends the job (the
    // common case: one round trip). A job it ends is settled below and announced then.
    const r = (await c.query(prepared(`UPDATE jobs SET completed = completed + $2, failed = failed + $3, cancelled = cancelled + $4
      WHERE id = $1 RETURNING *, ${ANNOUNCE_JOB_UNLESS_ENDING('$5', '$6')}`, [jobId, d.completed, d.failed, d.cancelled, CHANNEL, this.instanceId]))).rows[0];
    return r ? this.settleCounts(c, r, now, inHand) : null;
  }

  /**
   * After a job's counters moved (`r` its row, with `announced`): settle its state when every
   * task is terminal, and announce it if not done yet. A job the completions' statement ended
   * itself (`ended_here`, see SETTLE_ON_COMPLETION) is settled and announced already.
   */
  private async settleCounts(c: pg.PoolClient, r: Row, now: number, inHand?: { result: unknown }): Promise<JobChange> {
    const jobId = r.id as string;
    if (this.graphJobs.size > 10_000) this.graphJobs.clear();
    this.graphJobs.set(jobId, r.kind === 'graph');
    const counts: JobCounts = { total: r.total, completed: r.completed, failed: r.failed, cancelled: r.cancelled };
    if (r.ended_here === true) {
      const change: JobChange = { jobId, state: r.state, counts, finished: true, webhook: r.webhook === true };
      const results = inHand ? resultsInHand(r as { kind: string; total: number }, change, inHand.result) : undefined;
      return results ? { ...change, results } : change;
    }
    let state: JobState = r.state;
    if (!TERMINAL_JOB_STATES.has(state) && !r.open && isJobDone(counts)) {
      state = r.kind === 'graph' && r.graph
        ? graphState(JSON.parse(r.graph) as GraphPlan, (await c.query(`SELECT id FROM tasks WHERE job_id = $1 AND state = 'failed'`, [jobId])).rows.map((x) => x.id as string), r.cancel_requested)
        : deriveJobState(counts, { started: true, cancelRequested: r.cancel_requested });
      // A finished job may be pruned once its retention has passed (jobs from before retention:
      // never on their own). Other foremen hear of its end from the same statement.
      const change: JobChange = { jobId, state, counts, finished: true };
      // Whether the end wrote a webhook delivery: the jobs_webhook trigger's own condition.
      const ended = (await c.query(prepared(`UPDATE jobs SET state = $1, completed_at = $2, prune_after = $2::bigint + retention_ms WHERE id = $3
        RETURNING pg_notify($4, $5), ${WROTE_WEBHOOK} AS webhook`,
      [state, now, jobId, CHANNEL, JSON.stringify({ kind: 'job', change, from: this.instanceId })]))).rows[0];
      change.webhook = ended?.webhook === true;
      // Not in the notification: its size is bounded; other foremen read the results.
      const results = inHand ? resultsInHand(r as { kind: string; total: number }, change, inHand.result) : undefined;
      return results ? { ...change, results } : change;
    }
    const change = { jobId, state, counts, finished: false };
    if (r.announced === null) await this.notify(c, { kind: 'job', change });
    return change;
  }

  async jobFail(params: { jobId: string; now: number; error: TaskError }): Promise<JobCancelResult | null> {
    return this.tx(async (c) => {
      const row = (await c.query('SELECT * FROM jobs WHERE id = $1 FOR UPDATE', [params.jobId])).rows[0];
      if (!row) return null;
      if (TERMINAL_JOB_STATES.has(row.state)) return { job: jobFromRow(row), running: [], change: null };
      const rows = (await c.query(`UPDATE tasks t SET state = ${to('halt')}, completed_at = $2, lease_expires_at = NULL, error = $3
          FROM tasks old WHERE t.id = old.id AND t.job_id = $1 AND ${guard('halt', 't.state')}
          RETURNING t.id, t.attempt, t.worker_id, old.state AS was`, [params.jobId, params.now, toJson(params.error)])).rows;
      await c.query(`UPDATE jobs SET open = FALSE, open_expires_at = NULL, closed_by = CASE WHEN open THEN 'failure' ELSE closed_by END WHERE id = $1`, [params.jobId]);
      const change = await this.applyCounts(c, params.jobId, { completed: 0, failed: rows.length, cancelled: 0 }, params.now);
      const running = rows.filter((r) => r.was === 'running').map((r) => ({ taskId: r.id as string, attempt: r.attempt as number, workerId: r.worker_id as string | null }));
      for (const t of running) await this.notify(c, { kind: 'cancel', task: { ...t, reason: `job ${params.jobId} failed: ${params.error.message}` } });
      const job = (await c.query('SELECT * FROM jobs WHERE id = $1', [params.jobId])).rows[0];
      return { job: jobFromRow(job), running, change };
    });
  }

  async jobCancel(params: { jobId: string; now: number }): Promise<JobCancelResult | null> {
    return this.tx(async (c) => {
      const row = (await c.query('SELECT * FROM jobs WHERE id = $1 FOR UPDATE', [params.jobId])).rows[0];
      if (!row) return null;
      if (TERMINAL_JOB_STATES.has(row.state)) return { job: jobFromRow(row), running: [], change: null };
      const error = toJson(taskError('CC_ERR_CANCELLED', `job ${params.jobId} was cancelled`, { reason: 'cancelled' }));
      const rows = (await c.query(`UPDATE tasks t SET state = ${to('cancel')}, completed_at = $2, lease_expires_at = NULL, error = $3
          FROM tasks old WHERE t.id = old.id AND t.job_id = $1 AND ${guard('cancel', 't.state')}
          RETURNING t.id, t.attempt, t.worker_id, old.state AS was`, [params.jobId, params.now, error])).rows;
      // A cancelled job takes no more parts.
      await c.query(`UPDATE jobs SET cancel_requested = TRUE, open = FALSE, open_expires_at = NULL, closed_by = CASE WHEN open THEN 'cancel' ELSE closed_by END WHERE id = $1`, [params.jobId]);
      const change = await this.applyCounts(c, params.jobId, { completed: 0, failed: 0, cancelled: rows.length }, params.now);
      const running = rows.filter((r) => r.was === 'running').map((r) => ({ taskId: r.id as string, attempt: r.attempt as number, workerId: r.worker_id as string | null }));
      for (const t of running) await this.notify(c, { kind: 'cancel', task: { ...t, reason: `job ${params.jobId} was cancelled` } });
      const job = (await c.query('SELECT * FROM jobs WHERE id = $1', [params.jobId])).rows[0];
      return { job: jobFromRow(job), running, change };
    });
  }

  // ------------------------------------------------------------------ tasks

  async taskGet(taskId: string): Promise<TaskRecord | null> {
    const r = (await this.q('SELECT * FROM tasks WHERE id = $1', [taskId])).rows[0];
    return r ? taskFromRow(r) : null;
  }

  async jobQueuedTypes(params: { jobId: string; sample: number }): Promise<string[]> {
    // From the job's queue index (job_id, priority, seq), which holds its queued tasks that require nothing.
    return (await this.q(`SELECT DISTINCT type FROM (SELECT type FROM tasks WHERE job_id = $1 AND state = 'queued' AND requires IS NULL LIMIT $2) s`,
      [params.jobId, params.sample])).rows.map((r: { type: string }) => r.type);
  }

  async taskList(params: { jobId: string; limit: number; offset: number; state?: TaskState }): Promise<TaskRecord[]> {
    // From an index, not OFFSET: page 1,000 of a 100,000-task job costs what page 1 does.
    return (await this.q('SELECT * FROM tasks WHERE job_id = $1 AND idx >= $2 AND ($4::text IS NULL OR state = $4) ORDER BY idx LIMIT $3',
      [params.jobId, params.offset, params.limit, params.state ?? null])).rows.map(taskFromRow);
  }

  async taskClaimMany(p: TaskClaimParams): Promise<ClaimedTask[]> {
    if (p.limit <= 0 || (!p.allowCode && p.patterns.length === 0)) return [];
    if (p.jobs) p = { ...p, jobs: withinLimit(p.jobs, p.limit) };
    if (p.rateLimits || p.jobs?.some((j) => j.capped)) return this.claimGuarded(p);
    // One statement text for every worker: $5 is the array of LIKE patterns (empty matches
    // nothing), $6 the map task types of the languages it runs (empty: it runs no shipped code).
    // One statement, committed on its own: pick, claim, and mark the jobs started.
    const rows = p.jobs
      ? (await this.q(prepared(`WITH want AS (SELECT * FROM unnest($4::text[], $8::int[]) AS w(job_id, n)),
        picked AS (SELECT one.id FROM want CROSS JOIN LATERAL (SELECT id FROM tasks WHERE job_id = want.job_id AND ${guard('claim')} AND available_at <= $2
            AND ((kind = 'map' AND type = ANY ($6::text[])) OR (kind = 'named' AND type LIKE ANY ($5::text[])))
            AND (run_on IS NULL OR run_on = $7) AND requires IS NULL
          ORDER BY priority, seq LIMIT want.n FOR UPDATE SKIP LOCKED) one),
        ${CLAIM_REST}`,
      [p.workerId, p.now, p.now + p.leaseMs, p.jobs.map((j) => j.jobId), p.patterns.map(toLikePattern), claimedMapTypes(p), p.kind ?? 'node', p.jobs.map((j) => j.limit)]), [], true, this.claimPool)).rows
      : (await this.q(prepared(`WITH picked AS (
        SELECT id FROM tasks WHERE ${guard('claim')} AND available_at <= $2
          AND ((kind = 'map' AND type = ANY ($6::text[])) OR (kind = 'named' AND type LIKE ANY ($5::text[])))
          AND (run_on IS NULL OR run_on = $7) AND requires IS NULL
        ORDER BY priority, seq LIMIT $4 FOR UPDATE SKIP LOCKED),
        ${CLAIM_REST}`,
      [p.workerId, p.now, p.now + p.leaseMs, p.limit, p.patterns.map(toLikePattern), claimedMapTypes(p), p.kind ?? 'node']), [], true, this.claimPool)).rows;
    // In queue order (each chosen job's tasks together, in the order the jobs were chosen).
    const jobOrder = new Map(p.jobs?.map((j, i) => [j.jobId, i]));
    rows.sort((a, b) => (jobOrder.get(a.job_id) ?? 0) - (jobOrder.get(b.job_id) ?? 0) || a.priority - b.priority || a.seq - b.seq);
    return rows.map(claimedFromRow);
  }

  /**
   * A claim that caps or rate limits bound, in one transaction: the capped jobs (and their
   * owners' keys) are locked and their running tasks counted, so that foremen claiming at the
   * same time take turns and no cap is passed; the candidates are locked and read (a few more
   * than wanted under rate limits); the rate limits' buckets are locked, and spent by what is
   * claimed.
   */
  private async claimGuarded(p: TaskClaimParams): Promise<ClaimedTask[]> {
    return this.tx(async (c) => {
      let jobs = p.jobs;
      if (jobs?.some((j) => j.capped)) {
        const capped = jobs.filter((j) => j.capped).map((j) => j.jobId);
        const rows = (await c.query(`SELECT j.id, j.owner, j.max_concurrency, k.max_concurrency AS owner_max FROM jobs j
          LEFT JOIN credentials k ON k.id = j.owner AND k.kind = 'key' AND k.revoked_at IS NULL WHERE j.id = ANY($1::text[])`, [capped])).rows;
        // Keys first, then jobs, each in id order: claims lock in one order and never wait on each other in a circle.
        const owners = [...new Set(rows.filter((r) => r.owner_max !== null).map((r) => r.owner as string))].sort();
        if (owners.length > 0) await c.query('SELECT 1 FROM credentials WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE', [owners]);
        await c.query('SELECT 1 FROM jobs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE', [capped]);
        // Every running task, not only these jobs' (OFFSET 0 keeps the filter out, so the small
        // partial index of running tasks is read rather than each job's whole range).
        const running = (await c.query(`SELECT r.job_id, j.owner, count(*)::int AS n FROM (SELECT job_id FROM tasks WHERE state = 'running' OFFSET 0) r
          JOIN jobs j ON j.id = r.job_id WHERE r.job_id = ANY($1::text[]) OR j.owner = ANY($2::text[]) GROUP BY r.job_id, j.owner`, [capped, owners])).rows;
        const caps = new Map<string, JobCaps>(rows.map((r) => [r.id as string, { owner: r.owner ?? null, maxConcurrency: r.max_concurrency ?? null, ownerMaxConcurrency: r.owner_max ?? null }]));
        jobs = withinCaps(jobs, caps, running.map((r) => ({ jobId: r.job_id as string, owner: r.owner as string | null, n: Number(r.n) })));
        if (jobs.length === 0) return [];
      }
      const buckets = p.rateLimits ? (await c.query('SELECT pattern, max, per_ms, tokens, refilled_at FROM rate_limits ORDER BY pattern FOR UPDATE')).rows.map(bucketFromRow) : [];
      const left = buckets.length > 0 ? buckets.map((b) => ({ pattern: b.pattern, left: Math.floor(tokensAt(b, p.now)) })) : null;
      const pick = <R extends { type: string }>(rows: R[], n: number): R[] => (left ? withinRates(rows, n, left) : rows.slice(0, n));
      const slack = left ? RATE_SLACK : 0;
      const filter = `${guard('claim')} AND available_at <= $1 AND ((kind = 'map' AND type = ANY ($3::text[])) OR (kind = 'named' AND type LIKE ANY ($2::text[])))
        AND (run_on IS NULL OR run_on = $4) AND requires IS NULL`;
      const common = [p.now, p.patterns.map(toLikePattern), claimedMapTypes(p), p.kind ?? 'node'];
      const chosen: string[] = [];
      if (jobs) {
        const rows = (await c.query(`SELECT want.ord, one.id, one.type FROM unnest($5::text[], $6::int[]) WITH ORDINALITY AS want(job_id, n, ord)
          CROSS JOIN LATERAL (SELECT id, seq, type, priority FROM tasks WHERE job_id = want.job_id AND ${filter} ORDER BY priority, seq LIMIT want.n + ${slack} FOR UPDATE SKIP LOCKED) one
          ORDER BY want.ord, one.priority, one.seq`, [...common, jobs.map((j) => j.jobId), jobs.map((j) => j.limit)])).rows;
        jobs.forEach((j, i) => {
          for (const r of pick(rows.filter((r) => Number(r.ord) === i + 1), Math.min(j.limit, p.limit - chosen.length))) chosen.push(r.id as string);
        });
      } else {
        const rows = (await c.query(`SELECT id, type FROM tasks WHERE ${filter} ORDER BY priority, seq LIMIT $5 FOR UPDATE SKIP LOCKED`,
          [...common, p.limit + slack])).rows;
        for (const r of pick(rows, p.limit)) chosen.push(r.id as string);
      }
      for (const [i, b] of buckets.entries()) {
        const spent = Math.floor(tokensAt(b, p.now)) - left![i].left;
        if (spent > 0) await c.query('UPDATE rate_limits SET tokens = $1, refilled_at = $2 WHERE pattern = $3', [tokensAt(b, p.now) - spent, p.now, b.pattern]);
      }
      if (chosen.length === 0) return [];
      const rows = (await c.query(`WITH picked AS (SELECT unnest($4::text[]) AS id), ${CLAIM_REST}`, [p.workerId, p.now, p.now + p.leaseMs, chosen])).rows;
      const order = new Map(chosen.map((id, i) => [id, i]));
      rows.sort((a, b) => order.get(a.id)! - order.get(b.id)!);
      return rows.map(claimedFromRow);
    });
  }

  async schedulerSnapshot(params: { after?: JobCursor | null; window?: number } = {}): Promise<SchedulerSnapshot> {
    const window = params.window ?? ACTIVE_JOBS_WINDOW;
    // Separate reads, not one transaction: the counts are a moment's view anyway, and other
    // foremen move them all the time.
    const [jobs, running, scheduled, caps, limits] = await Promise.all([
      this.q(`SELECT id, kind, owner, priority, weight, max_concurrency, total, completed, failed, cancelled, run_on, label, open, language, created_at
        FROM jobs WHERE state IN ('queued', 'running') ORDER BY created_at, id LIMIT $1`, [window]),
      this.q(`SELECT job_id, count(*)::int AS n FROM tasks WHERE state = 'running' GROUP BY job_id`),
      this.q(`SELECT job_id, count(*)::int AS n FROM tasks WHERE state = 'scheduled' GROUP BY job_id`),
      this.q(`SELECT id, max_concurrency FROM credentials WHERE kind = 'key' AND max_concurrency IS NOT NULL AND revoked_at IS NULL`),
      this.q('SELECT pattern, max, per_ms, tokens, refilled_at FROM rate_limits ORDER BY pattern'),
    ]);
    const byJob = new Map(running.rows.map((r) => [r.job_id as string, Number(r.n)]));
    const delayed = new Map(scheduled.rows.map((r) => [r.job_id as string, Number(r.n)]));
    const oldest = jobs.rows;
    let more: pg.QueryResultRow[] = [];
    if (oldest.length === window) {
      const from = windowStart(cursorOf(oldest.at(-1)!), params.after);
      more = (await this.q(`SELECT id, kind, owner, priority, weight, max_concurrency, total, completed, failed, cancelled, run_on, label, open, language, created_at
        FROM jobs WHERE state IN ('queued', 'running') AND (created_at, id) > ($1::bigint, $2::text) ORDER BY created_at, id LIMIT $3`,
      [from.createdAt, from.jobId, window])).rows;
    }
    return {
      jobs: [...oldest, ...more].map((r) => activeJobFromRow(r, byJob.get(r.id) ?? 0, delayed.get(r.id) ?? 0)),
      next: more.length === window ? cursorOf(more.at(-1)!) : null,
      ownerCaps: caps.rows.map((r) => ({ owner: r.id, maxConcurrency: r.max_concurrency })),
      rateLimits: limits.rows.map(bucketFromRow).map((b) => ({ pattern: b.pattern, max: b.max, perMs: b.perMs, available: Math.floor(tokensAt(b, Date.now())) })),
    };
  }

  async rateLimitList(): Promise<RateLimit[]> {
    return (await this.q('SELECT pattern, max, per_ms FROM rate_limits ORDER BY pattern')).rows.map((r) => ({ pattern: r.pattern, max: r.max, perMs: Number(r.per_ms) }));
  }

  // A change is announced as work: other foremen read the limits again within moments.
  async rateLimitSet(l: RateLimit, now: number): Promise<void> {
    await this.tx(async (c) => {
      await c.query(`INSERT INTO rate_limits (pattern, max, per_ms, tokens, refilled_at) VALUES ($1, $2::int, $3, $2::double precision, $4)
        ON CONFLICT (pattern) DO UPDATE SET max = excluded.max, per_ms = excluded.per_ms, tokens = excluded.tokens, refilled_at = excluded.refilled_at`, [l.pattern, l.max, l.perMs, now]);
      await this.notify(c, { kind: 'work' });
    });
  }

  async rateLimitDelete(pattern: string): Promise<boolean> {
    return this.tx(async (c) => {
      const n = (await c.query('DELETE FROM rate_limits WHERE pattern = $1', [pattern])).rowCount ?? 0;
      if (n > 0) await this.notify(c, { kind: 'work' });
      return n > 0;
    });
  }

  async taskClaimFitting(p: TaskClaimParams & { free: ResourceAmounts }): Promise<ClaimedTask[]> {
    if (p.limit <= 0 || p.patterns.length === 0) return [];
    return this.tx(async (c) => {
      const candidates = (await c.query(`SELECT id, requires FROM tasks WHERE ${guard('claim')} AND available_at <= $1
          AND kind = 'named' AND type LIKE ANY ($2::text[]) AND (run_on IS NULL OR run_on = $3) AND requires IS NOT NULL
          ORDER BY priority, seq LIMIT 100 FOR UPDATE SKIP LOCKED`, [p.now, p.patterns.map(toLikePattern), p.kind ?? 'node'])).rows;
      let free = p.free;
      const chosen = new Map<string, Requirements>();
      for (const r of candidates) {
        if (chosen.size >= p.limit) break;
        const req = requirementsOf(r.requires);
        if (!req || !fits(req, free)) continue;
        free = take(free, req);
        chosen.set(r.id as string, req);
      }
      if (chosen.size === 0) return [];
      const rows = (await c.query(`UPDATE tasks t SET state = ${to('claim')}, attempt = t.attempt + 1, worker_id = $1, started_at = $2, lease_expires_at = $3,
          progress = NULL, progress_message = NULL WHERE t.id = ANY($4::text[]) AND ${guard('claim')}
          RETURNING t.seq, t.id, t.job_id, t.idx, t.kind, t.type, t.input, t.priority, t.attempt, t.timeout_ms, t.created_at, t.available_at, t.files`,
        [p.workerId, p.now, p.now + p.leaseMs, [...chosen.keys()]])).rows;
      rows.sort((a, b) => a.priority - b.priority || a.seq - b.seq);
      await c.query(`UPDATE jobs SET state = 'running', started_at = $1 WHERE id = ANY($2::text[]) AND state = 'queued'`, [p.now, [...new Set(rows.map((r) => r.job_id))]]);
      return rows.map((r) => ({ ...claimedFromRow(r), requires: chosen.get(r.id as string)! }));
    });
  }

  async taskFinishMany(params: { outcomes: TaskOutcomeParams[]; now: number }): Promise<TaskFinishResult> {
    const { outcomes, now } = params;
    return this.tx(async (c) => {
      const out: TaskFinishResult = { recorded: [], rejected: [], jobs: [], released: 0 };
      const deltas = new Map<string, { completed: number; failed: number; cancelled: number }>();
      const perWorker = new Map<string, { failed: number; other: number }>();
      const bump = (jobId: string, key: 'completed' | 'failed' | 'cancelled', o: TaskOutcomeParams, retried: boolean) => {
        if (!retried) {
          const d = deltas.get(jobId) ?? { completed: 0, failed: 0, cancelled: 0 };
          d[key]++;
          deltas.set(jobId, d);
        }
        out.recorded.push({ taskId: o.taskId, attempt: o.attempt, retried });
        const w = perWorker.get(o.workerId) ?? { failed: 0, other: 0 };
        if (o.status !== 'completed') w.other++;
        if (o.status === 'failed') w.failed++;
        perWorker.set(o.workerId, w);
      };
      // Completions, the bulk of any batch: one set-based statement, which also adds them to
      // their jobs' and workers' counters (announcing each job's new counts, as applyCounts does).
      // Jobs and workers are locked in id order, so two foremen recording results of the same
      // jobs take their rows in one order and never wait on each other in a circle.
      const done = outcomes.filter((o) => o.status === 'completed');
      const recordedKeys = new Set<string>();
      const counted = new Map<string, Row>();
      // A job's last completion in this batch: a one-task job's results are this (resultsInHand).
      const lastResult = new Map<string, { result: unknown }>();
      if (done.length > 0) {
        const rows = (await c.query(prepared(`WITH done AS (UPDATE tasks t SET state = ${to('complete')}, result = v.result, error = NULL, completed_at = $5, lease_expires_at = NULL
            FROM unnest($1::text[], $2::int[], $3::text[], $4::text[]) AS v(id, attempt, worker, result)
            WHERE t.id = v.id AND ${guard('complete', 't.state')} AND t.attempt = v.attempt AND t.worker_id = v.worker
            RETURNING t.id, t.attempt, t.job_id, t.worker_id, v.result),
          per_job AS (SELECT job_id, count(*)::int AS n FROM done GROUP BY job_id),
          job_locks AS (SELECT id AS locked_id, state AS old_state FROM jobs WHERE id IN (SELECT job_id FROM per_job) ORDER BY id FOR UPDATE),
          counted AS (UPDATE jobs SET completed = completed + per_job.n, ${SETTLE_ON_COMPLETION('per_job.n', '$5')}
            FROM job_locks JOIN per_job ON per_job.job_id = job_locks.locked_id
            WHERE jobs.id = job_locks.locked_id RETURNING jobs.*, ${ANNOUNCE_JOB_UNLESS_ENDING('$6', '$7', ENDED('job_locks.old_state'))}, ${ENDED_HERE('job_locks.old_state', '$6', '$7', 'done')}),
          per_worker AS (SELECT worker_id, count(*)::int AS n FROM done GROUP BY worker_id),
          worker_locks AS (SELECT id AS locked_id FROM workers WHERE id IN (SELECT worker_id FROM per_worker) ORDER BY id FOR UPDATE),
          seen AS (UPDATE workers SET tasks_completed = tasks_completed + per_worker.n, last_seen_at = $5 FROM worker_locks JOIN per_worker ON per_worker.worker_id = worker_locks.locked_id
            WHERE workers.id = worker_locks.locked_id)
          SELECT id, attempt, job_id, NULL AS job FROM done UNION ALL SELECT NULL, NULL, NULL, row_to_json(counted)::text FROM counted`,
          [done.map((o) => o.taskId), done.map((o) => o.attempt), done.map((o) => o.workerId), done.map((o) => toJson(o.result) ?? 'null'), now, CHANNEL, this.instanceId]))).rows;
        const byKey = new Map(done.map((o) => [`${o.taskId}#${o.attempt}`, o]));
        for (const r of rows) {
          if (r.job !== null) {
            const job = JSON.parse(r.job) as Row;
            counted.set(job.id as string, job);
            continue;
          }
          const key = `${r.id}#${r.attempt}`;
          if (recordedKeys.has(key)) continue;
          recordedKeys.add(key);
          bump(r.job_id, 'completed', byKey.get(key)!, false);
          lastResult.set(r.job_id, { result: byKey.get(key)!.result });
        }
      }
      // Failures and cancels are rare: one statement each.
      for (const o of outcomes) {
        if (o.status === 'completed') continue;
        const key = `${o.taskId}#${o.attempt}`;
        if (recordedKeys.has(key)) continue;
        const base = [o.taskId, o.attempt, o.workerId, now];
        if (o.status === 'failed') {
          // Read the row, let core/ decide between retry and fail, apply that one transition.
          const row = (await c.query(`SELECT job_id, failures, max_attempts FROM tasks
            WHERE id = $1 AND ${guard('fail')} AND attempt = $2 AND worker_id = $3 FOR UPDATE`, [o.taskId, o.attempt, o.workerId])).rows[0];
          if (!row) continue;
          const err = o.error ?? { message: 'unknown error' };
          const entry = jsonbText({ attempt: o.attempt, workerId: o.workerId, error: err, at: now });
          const hist = `errors = (COALESCE(errors::jsonb, '[]'::jsonb) || jsonb_build_array($6::jsonb || jsonb_build_object('workerId', worker_id, 'startedAt', started_at)))::text`;
          const next = o.retryAt === undefined ? 'fail' : afterFailure({ failures: row.failures, maxAttempts: row.max_attempts }, err);
          if (next === 'retry') {
            await c.query(`UPDATE tasks SET state = ${to('retry')}, error = $5, failures = failures + 1, worker_id = NULL, lease_expires_at = NULL,
                available_at = $7, ${hist}
              WHERE id = $1 AND ${guard('retry')} AND attempt = $2 AND worker_id = $3 AND $4::bigint IS NOT NULL`, [...base, toJson(err), entry, o.retryAt]);
          } else {
            // A failed map chunk keeps the results of its arguments that did not throw.
            await c.query(`UPDATE tasks SET state = ${to('fail')}, error = $5, result = $7, failures = failures + 1, completed_at = $4, lease_expires_at = NULL, ${hist}
              WHERE id = $1 AND ${guard('fail')} AND attempt = $2 AND worker_id = $3`, [...base, toJson(err), entry, toJson(o.result) ?? null]);
          }
          recordedKeys.add(key);
          bump(row.job_id, 'failed', o, next === 'retry');
        } else {
          const r = (await c.query(`UPDATE tasks SET state = ${to('stop')}, error = $5, completed_at = $4, lease_expires_at = NULL
            WHERE id = $1 AND ${guard('stop')} AND attempt = $2 AND worker_id = $3 RETURNING job_id`,
          [...base, toJson(o.error ?? taskError('CC_ERR_CANCELLED', `task ${o.taskId} was cancelled`))])).rows[0];
          if (r) { recordedKeys.add(key); bump(r.job_id, 'cancelled', o, false); }
        }
      }
      const rejected = outcomes.filter((o) => !recordedKeys.has(`${o.taskId}#${o.attempt}`));
      if (rejected.length > 0) {
        const cur = new Map((await c.query('SELECT id, state, attempt FROM tasks WHERE id = ANY($1::text[])', [rejected.map((o) => o.taskId)])).rows.map((r) => [r.id, r]));
        for (const o of rejected) {
          const r = cur.get(o.taskId);
          out.rejected.push({ taskId: o.taskId, attempt: o.attempt, currentState: (r?.state as TaskState) ?? null, currentAttempt: r?.attempt ?? null });
        }
      }
      // Jobs in a fixed order, so two foremen committing into the same jobs cannot deadlock.
      // Completions are counted already: a job with only those is settled from its row.
      for (const jobId of [...deltas.keys()].sort()) {
        const d = deltas.get(jobId)!;
        const row = counted.get(jobId);
        const change = row && d.failed === 0 && d.cancelled === 0
          ? await this.settleCounts(c, row, now, lastResult.get(jobId))
          : await this.applyCounts(c, jobId, { ...d, completed: row ? 0 : d.completed }, now, lastResult.get(jobId));
        if (change) out.jobs.push(change);
        if (await this.isGraph(c, jobId)) out.released += await this.releaseGraph(c, jobId, now);
      }
      if (out.released > 0) await this.notify(c, { kind: 'work' });
      // Workers with other outcomes than completions (counted above): their failures, and that they were seen.
      for (const workerId of [...perWorker.keys()].sort()) {
        const w = perWorker.get(workerId)!;
        if (w.other === 0) continue;
        await c.query(prepared('UPDATE workers SET tasks_failed = tasks_failed + $2, last_seen_at = $3 WHERE id = $1', [workerId, w.failed, now]));
      }
      if (out.recorded.some((r) => r.retried)) await this.notify(c, { kind: 'work' });
      return out;
    });
  }

  private async requeueIn(c: pg.PoolClient, p: TaskRequeueParams): Promise<TaskRequeueResult> {
    const out: TaskRequeueResult = { requeued: [], failed: [], jobs: [] };
    // Lock the rows in id order (two foremen taking back overlapping tasks cannot deadlock),
    // let core/ decide each one's fate, then apply each transition to its set in one statement.
    const rows = (await c.query(`SELECT t.id, t.attempt, t.job_id, t.lost FROM tasks t
        JOIN unnest($1::text[], $2::int[]) AS v(id, attempt) ON t.id = v.id AND t.attempt = v.attempt
        WHERE ${guard('requeue', 't.state')} ORDER BY t.id FOR UPDATE OF t`,
    [p.tasks.map((t) => t.taskId), p.tasks.map((t) => t.attempt)])).rows;
    const sets = { requeue: [] as Row[], abandon: [] as Row[] };
    for (const r of rows) {
      const next = afterLoss({ lost: r.lost }, { maxLost: p.maxLost, countAsLost: p.countAsLost !== false });
      sets[next.transition].push({ ...r, lost: next.lost });
    }
    const hist = `errors = (COALESCE(t.errors::jsonb, '[]'::jsonb) || jsonb_build_array(v.entry::jsonb || jsonb_build_object('workerId', t.worker_id, 'startedAt', t.started_at)))::text`;
    const arrays = (rs: Row[]) => [rs.map((r) => r.id), rs.map((r) => r.attempt), rs.map((r) => r.lost),
      rs.map((r) => JSON.stringify({ attempt: r.attempt, workerId: null, error: p.error, at: p.now })), p.now];
    if (sets.requeue.length > 0) {
      await c.query(`UPDATE tasks t SET state = ${to('requeue')}, lost = v.lost, worker_id = NULL, completed_at = NULL,
          lease_expires_at = NULL, available_at = $5, ${hist}
        FROM unnest($1::text[], $2::int[], $3::int[], $4::text[]) AS v(id, attempt, lost, entry)
        WHERE t.id = v.id AND t.attempt = v.attempt AND ${guard('requeue', 't.state')}`, arrays(sets.requeue));
      for (const r of sets.requeue) out.requeued.push({ taskId: r.id, attempt: r.attempt });
    }
    if (sets.abandon.length > 0) {
      await c.query(`UPDATE tasks t SET state = ${to('abandon')}, lost = v.lost, error = $6, completed_at = $5, lease_expires_at = NULL, ${hist}
        FROM unnest($1::text[], $2::int[], $3::int[], $4::text[]) AS v(id, attempt, lost, entry)
        WHERE t.id = v.id AND t.attempt = v.attempt AND ${guard('abandon', 't.state')}`, [...arrays(sets.abandon), toJson(p.error)]);
      for (const r of sets.abandon) out.failed.push({ taskId: r.id, attempt: r.attempt });
    }
    const failedByJob = new Map<string, number>();
    for (const r of sets.abandon) failedByJob.set(r.job_id, (failedByJob.get(r.job_id) ?? 0) + 1);
    for (const jobId of [...failedByJob.keys()].sort()) {
      const change = await this.applyCounts(c, jobId, { completed: 0, failed: failedByJob.get(jobId)!, cancelled: 0 }, p.now);
      if (change) out.jobs.push(change);
    }
    if (out.requeued.length > 0) await this.notify(c, { kind: 'work' });
    return out;
  }

  async taskRequeueMany(params: TaskRequeueParams): Promise<TaskRequeueResult> {
    if (params.tasks.length === 0) return { requeued: [], failed: [], jobs: [] };
    return this.tx((c) => this.requeueIn(c, params));
  }

  async taskRequeueExpired(params: { now: number; maxLost?: number; limit: number } & SweepFilter): Promise<TaskRequeueResult & { expired: ExpiredLease[] }> {
    return this.tx(async (c) => {
      // SKIP LOCKED: two foremen reaping at once split the expired tasks between them.
      const expired = (await c.query(`SELECT id, attempt, worker_id FROM tasks WHERE state = 'running' AND lease_expires_at < $1 ${sweepFilter(params, 3)}
          ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED`, [params.now, params.limit, ...sweepParams(params)])).rows
        .map((r): ExpiredLease => ({ taskId: r.id, attempt: r.attempt, workerId: r.worker_id }));
      if (expired.length === 0) return { requeued: [], failed: [], jobs: [], expired };
      const res = await this.requeueIn(c, {
        tasks: expired, now: params.now, ...(params.maxLost !== undefined ? { maxLost: params.maxLost } : {}),
        error: taskError('CC_ERR_WORKER_LOST', 'the lease expired (no heartbeat from the worker in time)', { reason: 'lease_expired' }),
      });
      return { ...res, expired };
    }, { begin: BEGIN_QUEUE_READ });
  }

  async taskLeaseExtend(params: { workerId: string; tasks: TaskRef[]; until: number }): Promise<number> {
    if (params.tasks.length === 0) return 0;
    const r = await this.q(`UPDATE tasks t SET lease_expires_at = $1
      FROM unnest($2::text[], $3::int[]) AS v(id, attempt)
      WHERE t.id = v.id AND t.attempt = v.attempt AND t.state = 'running' AND t.worker_id = $4`,
      [params.until, params.tasks.map((t) => t.taskId), params.tasks.map((t) => t.attempt), params.workerId]);
    return r.rowCount ?? 0;
  }

  async taskCancel(params: { taskId: string; now: number }) {
    return this.tx(async (c) => {
      const before = (await c.query('SELECT * FROM tasks WHERE id = $1 FOR UPDATE', [params.taskId])).rows[0];
      if (!before) return null;
      if (!canTake('cancel', before.state)) return { task: taskFromRow(before), running: null, change: null };
      const error = toJson(taskError('CC_ERR_CANCELLED', `task ${params.taskId} was cancelled`, { reason: 'cancelled' }));
      const after = (await c.query(`UPDATE tasks SET state = ${to('cancel')}, completed_at = $2, lease_expires_at = NULL, error = $3
        WHERE id = $1 AND ${guard('cancel')} RETURNING *`,
        [params.taskId, params.now, error])).rows[0];
      const change = await this.applyCounts(c, before.job_id, { completed: 0, failed: 0, cancelled: 1 }, params.now);
      const running = before.state === 'running' ? { attempt: before.attempt as number, workerId: before.worker_id as string | null } : null;
      if (running) await this.notify(c, { kind: 'cancel', task: { taskId: params.taskId, ...running, reason: `task ${params.taskId} was cancelled` } });
      return { task: taskFromRow(after), running, change };
    });
  }

  async taskListRunningByWorker(workerId: string): Promise<TaskRef[]> {
    return (await this.q(`SELECT id, attempt FROM tasks WHERE worker_id = $1 AND state = 'running'`, [workerId])).rows
      .map((r) => ({ taskId: r.id, attempt: r.attempt }));
  }

  async taskProgressSet(params: { taskId: string; attempt: number; progress: number; message: string | null }): Promise<boolean> {
    const r = await this.q(`UPDATE tasks SET progress = $3, progress_message = $4 WHERE id = $1 AND state = 'running' AND attempt = $2`,
      [params.taskId, params.attempt, params.progress, params.message]);
    return (r.rowCount ?? 0) > 0;
  }

  /** Whether a job is a graph (cached: a job's kind never changes). */
  private readonly graphJobs = new Map<string, boolean>();
  private async isGraph(c: pg.PoolClient, jobId: string): Promise<boolean> {
    let g = this.graphJobs.get(jobId);
    if (g === undefined) {
      g = (await c.query('SELECT kind FROM jobs WHERE id = $1', [jobId])).rows[0]?.kind === 'graph';
      if (this.graphJobs.size > 10_000) this.graphJobs.clear();
      this.graphJobs.set(jobId, g);
    }
    return g;
  }

  /** Make the graph's nodes whose upstream nodes allow it available now; inside a transaction. */
  private async releaseGraph(c: pg.PoolClient, jobId: string, now: number): Promise<number> {
    const text = (await c.query('SELECT graph FROM jobs WHERE id = $1', [jobId])).rows[0]?.graph;
    if (!text) return 0;
    const plan = JSON.parse(text) as GraphPlan;
    const rows = (await c.query('SELECT id, state, available_at FROM tasks WHERE job_id = $1', [jobId])).rows;
    const writers = new Set((await c.query('SELECT DISTINCT task_id FROM artifacts WHERE job_id = $1', [jobId])).rows.map((r) => r.task_id as string));
    const ready = releasable(plan, nodeStatus(plan, rows, writers));
    if (ready.length === 0) return 0;
    const r = await c.query(`UPDATE tasks SET available_at = $1 WHERE id = ANY($2) AND state = 'queued' AND available_at >= ${BLOCKED_UNTIL}`, [now, ready]);
    return r.rowCount ?? 0;
  }

  async jobGraph(jobId: string): Promise<GraphPlan | null> {
    const text = (await this.q('SELECT graph FROM jobs WHERE id = $1', [jobId])).rows[0]?.graph;
    return text ? JSON.parse(text) as GraphPlan : null;
  }

  async taskRecord(p: TaskRecordParams): Promise<{ recorded: boolean; released: number }> {
    return this.tx(async (c) => {
      const owner = (await c.query(`SELECT job_id FROM tasks WHERE id = $1 AND state = 'running' AND attempt = $2 AND worker_id = $3`,
        [p.taskId, p.attempt, p.workerId])).rows[0];
      if (!owner) return { recorded: false, released: 0 };
      if (p.artifacts?.length) {
        // The job's row lock orders its artifacts: numbers taken under it commit in order, so a
        // reader that has seen number n will never later find a smaller one appear.
        await c.query('SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE', [owner.job_id]);
        for (const a of p.artifacts) {
          const text = toJson(a.data) ?? 'null';
          await c.query(`INSERT INTO artifacts (job_id, task_id, batch_uid, data, size, attempt, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (task_id, batch_uid) DO NOTHING`, [owner.job_id, p.taskId, a.batchUid, text, Buffer.byteLength(text), p.attempt, p.now]);
        }
      }
      if (p.batch) {
        await c.query(`INSERT INTO task_batches (task_id, batch_uid, job_id, attempt, metrics, created_at) VALUES ($1, $2, $3, $4, $5, $6)
          ON CONFLICT (task_id, batch_uid) DO NOTHING`, [p.taskId, p.batch.uid, owner.job_id, p.attempt, p.batch.metrics ? JSON.stringify(p.batch.metrics) : null, p.now]);
      }
      if (p.checkpoint !== undefined || p.artifactsComplete) {
        await c.query(`UPDATE tasks SET checkpoint = CASE WHEN $2::boolean THEN $3 ELSE checkpoint END,
          artifacts_complete = artifacts_complete OR $4 WHERE id = $1`,
        [p.taskId, p.checkpoint !== undefined, toJson(p.checkpoint) ?? 'null', p.artifactsComplete === true]);
      }
      let released = 0;
      if (p.artifacts?.length && await this.isGraph(c, owner.job_id)) {
        released = await this.releaseGraph(c, owner.job_id, p.now);
        if (released > 0) await this.notify(c, { kind: 'work' });
      }
      return { recorded: true, released };
    });
  }

  async taskResume(taskIds: string[]): Promise<Map<string, TaskResumeState>> {
    const out = new Map<string, TaskResumeState>();
    if (taskIds.length === 0) return out;
    const cps = (await this.q('SELECT id, checkpoint FROM tasks WHERE id = ANY($1)', [taskIds])).rows;
    const batches = (await this.q('SELECT task_id, batch_uid FROM task_batches WHERE task_id = ANY($1)', [taskIds])).rows;
    const byTask = new Map<string, string[]>();
    for (const b of batches) (byTask.get(b.task_id) ?? byTask.set(b.task_id, []).get(b.task_id)!).push(b.batch_uid);
    for (const r of cps) {
      const done = byTask.get(r.id) ?? [];
      if (r.checkpoint !== null || done.length > 0) out.set(r.id, { checkpoint: r.checkpoint === null ? undefined : fromJson(r.checkpoint), batches: done });
    }
    return out;
  }

  async taskBatches(taskId: string): Promise<TaskBatchRecord[]> {
    return (await this.q('SELECT * FROM task_batches WHERE task_id = $1 ORDER BY created_at, batch_uid', [taskId])).rows.map(batchFromRow);
  }

  async artifactList(params: ArtifactListParams): Promise<ArtifactRecord[]> {
    const { sql, args } = artifactQuery(params, '$');
    return (await this.q(sql, args)).rows.map(artifactFromRow);
  }

  async artifactCounts(jobId: string): Promise<Map<string, number>> {
    const rows = (await this.q('SELECT task_id, count(*) AS n FROM artifacts WHERE job_id = $1 GROUP BY task_id', [jobId])).rows;
    return new Map(rows.map((r) => [r.task_id as string, Number(r.n)]));
  }

  async fileInsert(p: Omit<FileRecord, 'jobId'> & { data: Uint8Array }): Promise<void> {
    await this.q(`INSERT INTO files (id, owner, filename, size, content_type, sha256, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [p.id, p.owner, p.filename, p.size, p.contentType, p.sha256, Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength), p.createdAt]);
  }

  async fileList(ids: readonly string[]): Promise<FileRecord[]> {
    if (ids.length === 0) return [];
    return (await this.q('SELECT id, owner, job_id, filename, size, content_type, sha256, created_at FROM files WHERE id = ANY($1::text[])', [ids])).rows.map(fileFromRow);
  }

  async fileData(id: string): Promise<Uint8Array | null> {
    const r = (await this.q('SELECT data FROM files WHERE id = $1', [id])).rows[0];
    return r ? new Uint8Array(r.data as Buffer) : null;
  }

  async taskFiles(taskId: string): Promise<FileRecord[]> {
    const text = (await this.q('SELECT files FROM tasks WHERE id = $1', [taskId])).rows[0]?.files;
    if (!text) return [];
    const ids = JSON.parse(text) as string[];
    const byId = new Map((await this.fileList(ids)).map((f) => [f.id, f]));
    return ids.map((id) => byId.get(id)).filter((f): f is FileRecord => f !== undefined);
  }

  // ------------------------------------------------------------------ workers, stats

  async workerUpsert(p: Omit<WorkerRecord, 'tasksCompleted' | 'tasksFailed' | 'disconnectedAt'>): Promise<void> {
    await this.q(`INSERT INTO workers (id, state, capacity, patterns, allow_code, resources, version, foreman_id, connected_at, last_seen_at)
      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
      ON CONFLICT (id) DO UPDATE SET state = excluded.state, capacity = excluded.capacity, patterns = excluded.patterns,
        allow_code = excluded.allow_code, resources = excluded.resources, version = excluded.version, foreman_id = excluded.foreman_id,
        connected_at = excluded.connected_at, last_seen_at = excluded.last_seen_at, disconnected_at = NULL`,
    [p.id, p.state, p.capacity, JSON.stringify(p.patterns), p.allowCode, JSON.stringify(p.resources), p.version, p.foremanId, p.connectedAt, p.lastSeenAt]);
  }

  async workerDisconnected(params: { workerId: string; now: number }): Promise<void> {
    await this.q(`UPDATE workers SET state = 'offline', disconnected_at = $2, last_seen_at = $2 WHERE id = $1`, [params.workerId, params.now]);
  }

  async workerSeen(params: WorkerSeenParams): Promise<void> {
    if (params.workers.length === 0) return;
    await this.q(`UPDATE workers w SET last_seen_at = GREATEST(w.last_seen_at, s.at)
      FROM unnest($2::text[], $3::bigint[]) AS s(id, at) WHERE w.id = s.id AND w.state = 'online' AND w.foreman_id = $1`,
    [params.foremanId, params.workers.map((w) => w.id), params.workers.map((w) => w.at)]);
  }

  async workerList(): Promise<WorkerRecord[]> {
    return (await this.q('SELECT * FROM workers ORDER BY state DESC, id')).rows.map(workerFromRow);
  }

  // ------------------------------------------------------------------ foremen's leases

  async foremanLeaseTake(params: { foremanId: string; now: number; until: number }): Promise<number> {
    return this.tx(async (c) => {
      await c.query(`INSERT INTO foreman_leases (foreman_id, expires_at) VALUES ($1, $2)
        ON CONFLICT (foreman_id) DO UPDATE SET expires_at = excluded.expires_at`, [params.foremanId, params.until]);
      // An earlier run under the same id: gone some time after they were last seen.
      const r = await c.query(`UPDATE workers SET state = 'offline', disconnected_at = last_seen_at WHERE state = 'online' AND foreman_id = $1`, [params.foremanId]);
      return r.rowCount ?? 0;
    });
  }

  async foremanLeaseRenew(params: { foremanId: string; until: number }): Promise<boolean> {
    // xmax is 0 on a row this statement inserted, and set on one it updated: whether the lease
    // was still there, in one statement.
    const r = await this.q(`INSERT INTO foreman_leases (foreman_id, expires_at) VALUES ($1, $2)
      ON CONFLICT (foreman_id) DO UPDATE SET expires_at = excluded.expires_at RETURNING (xmax = 0) AS inserted`, [params.foremanId, params.until]);
    return r.rows[0].inserted !== true;
  }

  async foremanLeaseEnd(params: { foremanId: string; now: number }): Promise<void> {
    await this.tx(async (c) => {
      await c.query('DELETE FROM foreman_leases WHERE foreman_id = $1', [params.foremanId]);
      await c.query(`UPDATE workers SET state = 'offline', disconnected_at = $2 WHERE state = 'online' AND foreman_id = $1`, [params.foremanId, params.now]);
    });
  }

  async foremanReapLapsed(params: { now: number }): Promise<ForemanReapResult> {
    return this.tx(async (c) => {
      // Reaps one at a time, and no lease is taken or renewed meanwhile (the lock conflicts with
      // every write to the table): each statement below sees every renewal committed before,
      // and none commits between the two, so a foreman that renewed in time keeps its workers;
      // one reaped finds its lease gone at its next renewal and records its workers again.
      await c.query('LOCK TABLE foreman_leases IN SHARE ROW EXCLUSIVE MODE');
      const lapsed = await c.query('DELETE FROM foreman_leases WHERE expires_at < $1 RETURNING foreman_id', [params.now]);
      const offline = await c.query(`UPDATE workers w SET state = 'offline', disconnected_at = w.last_seen_at
        WHERE w.state = 'online' AND NOT EXISTS (SELECT 1 FROM foreman_leases l WHERE l.foreman_id = w.foreman_id)`);
      return { foremen: lapsed.rows.map((r) => r.foreman_id as string), workers: offline.rowCount ?? 0 };
    });
  }

  // ------------------------------------------------------------------ credentials

  private readonly bumpVersion = `INSERT INTO cc_meta (key, value) VALUES ('credentials_version', '1')
    ON CONFLICT (key) DO UPDATE SET value = (cc_meta.value::bigint + 1)::text`;

  async credentialInsert(p: CredentialInsertParams): Promise<void> {
    await this.tx(async (c) => {
      await c.query(`INSERT INTO credentials (id, kind, name, scopes, worker_id, secret_hash, created_at, expires_at, max_workers, max_concurrency, webhook_url) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
        [p.id, p.kind, p.name, JSON.stringify(p.scopes), p.workerId, p.secretHash, p.createdAt, p.expiresAt ?? null, p.maxWorkers ?? null, p.maxConcurrency ?? null, p.webhookUrl ?? null]);
      await c.query(this.bumpVersion);
      await this.notify(c, { kind: 'credentials' });
    });
  }

  async credentialGet(id: string): Promise<CredentialRecord | null> {
    const r = (await this.q('SELECT * FROM credentials WHERE id = $1', [id])).rows[0];
    return r ? credentialFromRow(r) : null;
  }

  async credentialList(params: { kind?: CredentialRecord['kind'] }): Promise<CredentialRecord[]> {
    return (await this.q('SELECT * FROM credentials WHERE ($1::text IS NULL OR kind = $1) ORDER BY created_at DESC, id', [params.kind ?? null])).rows.map(credentialFromRow);
  }

  async credentialSetMaxConcurrency(params: { id: string; maxConcurrency: number | null }): Promise<CredentialRecord | null> {
    const r = (await this.q(`UPDATE credentials SET max_concurrency = $2 WHERE id = $1 AND kind = 'key' RETURNING *`, [params.id, params.maxConcurrency])).rows[0];
    return r ? credentialFromRow(r) : null;
  }

  async credentialSetWebhook(params: { id: string; webhookUrl: string | null }): Promise<CredentialRecord | null> {
    const r = (await this.q(`UPDATE credentials SET webhook_url = $2 WHERE id = $1 AND kind = 'key' RETURNING *`, [params.id, params.webhookUrl])).rows[0];
    return r ? credentialFromRow(r) : null;
  }

  async credentialRevoke(params: { id: string; now: number }): Promise<CredentialRecord | null> {
    return this.tx(async (c) => {
      const r = (await c.query('UPDATE credentials SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING *', [params.id, params.now])).rows[0];
      if (!r) return null;
      await c.query(this.bumpVersion);
      // Every foreman hears it now and cuts what the credential still holds open.
      await this.notify(c, { kind: 'credentials' });
      return credentialFromRow(r);
    });
  }

  async credentialTouch(params: { id: string; now: number; from: string }): Promise<void> {
    await this.q('UPDATE credentials SET last_used_at = $2, last_used_from = $3 WHERE id = $1', [params.id, params.now, params.from]);
  }

  async credentialsVersion(): Promise<number> {
    return Number((await this.q(`SELECT value FROM cc_meta WHERE key = 'credentials_version'`)).rows[0]?.value ?? 0);
  }

  async sweepCandidates(p: { sweep: Sweep; now: number; limit: number; completedBefore?: number } & SweepFilter): Promise<string[]> {
    const sql = p.sweep === 'leases'
      ? `SELECT id FROM tasks WHERE state = 'running' AND lease_expires_at < $1 ${sweepFilter(p, 3)} ORDER BY lease_expires_at LIMIT $2`
      : p.sweep === 'queue_deadlines'
        ? `SELECT id FROM jobs WHERE queue_deadline IS NOT NULL AND queue_deadline <= $1 AND state IN ('queued', 'running') ${sweepFilter(p, 3)} ORDER BY id LIMIT $2`
        : p.sweep === 'open_timeouts' ? `SELECT id FROM jobs ${OPEN_EXPIRED} ${sweepFilter(p, 3)} ORDER BY open_expires_at LIMIT $2`
        : p.sweep === 'deadlines' ? `SELECT id FROM jobs ${PAST_DEADLINE} ${sweepFilter(p, 3)} ORDER BY deadline LIMIT $2`
        : p.completedBefore !== undefined
          ? `SELECT id FROM jobs WHERE completed_at IS NOT NULL AND completed_at <= $1 ${sweepFilter(p, 3)} ORDER BY completed_at LIMIT $2`
          : `SELECT id FROM jobs WHERE prune_after IS NOT NULL AND prune_after <= $1 ${sweepFilter(p, 3)} ORDER BY prune_after LIMIT $2`;
    const at = p.sweep === 'prune' && p.completedBefore !== undefined ? p.completedBefore : p.now;
    return (await this.q(sql, [at, p.limit, ...sweepParams(p)])).rows.map((r) => r.id as string);
  }

  async jobPrune(p: JobPruneParams & SweepFilter): Promise<JobPruneResult> {
    return this.tx(async (c) => {
      // SKIP LOCKED: foremen pruning at once take different jobs.
      const due = (p.unfinishedBefore !== undefined
        ? await c.query('SELECT id, owner FROM jobs WHERE completed_at IS NULL AND created_at <= $1 ORDER BY created_at LIMIT 50 FOR UPDATE SKIP LOCKED', [p.unfinishedBefore])
        : p.completedBefore !== undefined
        ? await c.query(`SELECT id, owner FROM jobs WHERE completed_at IS NOT NULL AND completed_at <= $1 ${sweepFilter(p, 2)} ORDER BY completed_at LIMIT 50 FOR UPDATE SKIP LOCKED`, [p.completedBefore, ...sweepParams(p)])
        : await c.query(`SELECT id, owner FROM jobs WHERE prune_after IS NOT NULL AND prune_after <= $1 ${sweepFilter(p, 2)} ORDER BY prune_after LIMIT 50 FOR UPDATE SKIP LOCKED`, [p.now, ...sweepParams(p)])).rows;
      let budget = p.maxTasks;
      const out: JobPruneResult = { jobs: 0, tasks: 0, more: due.length === 50 };
      for (const job of due) {
        const n = (await c.query('DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE job_id = $1 LIMIT $2)', [job.id, budget])).rowCount ?? 0;
        budget -= n;
        out.tasks += n;
        if ((await c.query('SELECT 1 FROM tasks WHERE job_id = $1 LIMIT 1', [job.id])).rows.length > 0) { out.more = true; break; }
        await c.query('DELETE FROM jobs WHERE id = $1', [job.id]);
        await c.query('DELETE FROM task_batches WHERE job_id = $1', [job.id]);
        await c.query('DELETE FROM artifacts WHERE job_id = $1', [job.id]);
        await c.query('DELETE FROM files WHERE job_id = $1', [job.id]);
        await c.query('DELETE FROM webhook_deliveries WHERE job_id = $1', [job.id]);
        await c.query('INSERT INTO pruned_jobs (id, owner, pruned_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET pruned_at = $3', [job.id, job.owner, p.now]);
        out.jobs++;
        if (budget <= 0) { out.more = true; break; }
      }
      if (p.forgetPrunedBefore !== undefined) {
        await c.query('DELETE FROM pruned_jobs WHERE id IN (SELECT id FROM pruned_jobs WHERE pruned_at < $1 LIMIT 1000)', [p.forgetPrunedBefore]);
        // Files uploaded and never carried by a job go as old tombstones do.
        await c.query('DELETE FROM files WHERE id IN (SELECT id FROM files WHERE job_id IS NULL AND created_at < $1 LIMIT 1000)', [p.forgetPrunedBefore]);
      }
      for (const [key, n] of [['pruned_jobs', out.jobs], ['pruned_tasks', out.tasks]] as const) {
        if (n > 0) await c.query(`INSERT INTO cc_meta (key, value) VALUES ($1, $2::bigint::text) ON CONFLICT (key) DO UPDATE SET value = (cc_meta.value::bigint + $2::bigint)::text`, [key, n]);
      }
      return out;
    });
  }

  async jobPruned(jobId: string): Promise<{ owner: string | null; prunedAt: number } | null> {
    const r = (await this.q('SELECT owner, pruned_at FROM pruned_jobs WHERE id = $1', [jobId])).rows[0];
    return r ? { owner: r.owner, prunedAt: Number(r.pruned_at) } : null;
  }

  async setupWarnings(): Promise<string[]> {
    const on = (await this.q(`SELECT current_setting('autovacuum') AS v`)).rows[0]?.v;
    return on === 'off'
      ? ['autovacuum is off on this PostgreSQL server: the foreman vacuums the tasks and jobs tables itself once 1% of their rows are dead (unless started with --no-vacuum), but nothing vacuums the other tables, whose space pruning frees is then never reused; turn autovacuum on, or run VACUUM on the crowdcompute schema regularly']
      : [];
  }

  async vacuumDue(params: { threshold: number; fraction: number }): Promise<VacuumRun[]> {
    const c = await this.pool.connect();
    try {
      if ((await c.query(`SELECT current_setting('autovacuum') AS v`)).rows[0]?.v !== 'off') return [];
      // A session lock on this connection: one foreman of the database vacuums at a time, the
      // others skip the round rather than queue a second vacuum of the same table behind it.
      const lock = `crowdcompute:vacuum:${this.schema}`;
      if (!(await c.query('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [lock])).rows[0].ok) return [];
      try {
        const tables = (await c.query(`SELECT relname, n_dead_tup::float8 AS dead, n_live_tup::float8 AS live FROM pg_stat_user_tables
          WHERE schemaname = $1 AND relname IN ('tasks', 'jobs') ORDER BY relname DESC`, [this.schema])).rows;
        const out: VacuumRun[] = [];
        for (const t of tables) {
          if (t.dead <= params.threshold + params.fraction * t.live) continue;
          const started = performance.now();
          // SKIP_LOCKED: a table another session holds an exclusive lock on is left for the next round.
          await c.query(`VACUUM (SKIP_LOCKED) "${this.schema}".${t.relname === 'tasks' ? 'tasks' : 'jobs'}`);
          out.push({ table: t.relname, deadRows: t.dead, ms: Math.round(performance.now() - started) });
        }
        return out;
      } finally {
        await c.query('SELECT pg_advisory_unlock(hashtext($1))', [lock]);
      }
    } finally {
      c.release();
    }
  }

  async probeSpace(): Promise<void> {
    await this.tx(async (c) => {
      await c.query(`INSERT INTO cc_meta (key, value) VALUES ('space_probe', (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 2048)))`);
      // Undone at once: only whether the write could be made matters.
      throw ROLLBACK_PROBE;
    }).catch((err: unknown) => { if (err !== ROLLBACK_PROBE) throw err; });
  }

  async metaSetIfAbsent(params: { key: string; value: string }): Promise<string> {
    await this.q('INSERT INTO cc_meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING', [params.key, params.value]);
    return (await this.q('SELECT value FROM cc_meta WHERE key = $1', [params.key])).rows[0].value;
  }

  // ------------------------------------------------------------------ webhooks

  async webhookClaimDue(params: { now: number; limit: number; leaseMs: number }): Promise<WebhookClaim[]> {
    // SKIP LOCKED: foremen claiming at once take different rows instead of waiting on each other;
    // the guard on state and time in the update keeps a row from being claimed twice. The rows
    // are chosen once, in a materialized CTE: a locking subquery the planner rescans (the inner
    // side of a join) skips the rows it has just locked and returns more than its LIMIT. Not
    // retried on a dropped connection: a claim that did commit would then be taken again.
    const r = await this.q(`WITH due AS MATERIALIZED (
          SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
        UPDATE webhook_deliveries d SET attempts = d.attempts + 1, in_flight = TRUE, next_attempt_at = $1::bigint + $3::bigint
        FROM due WHERE d.id = due.id AND d.state = 'pending' AND d.next_attempt_at <= $1
        RETURNING d.id, d.job_id, d.url, d.attempts, d.job_state, d.created_at`, [params.now, params.limit, params.leaseMs], false);
    return r.rows.map((row) => ({ id: Number(row.id), jobId: row.job_id, url: row.url, attempts: row.attempts, jobState: row.job_state, createdAt: Number(row.created_at) }))
      .sort((a, b) => a.id - b.id);
  }

  async webhookRecordAttempt(p: WebhookAttemptParams): Promise<boolean> {
    const done = p.next.state !== 'pending';
    const r = await this.q(`UPDATE webhook_deliveries SET state = $2, last_status = $3, last_error = $4, attempt_log = attempt_log || jsonb_build_array($5::jsonb),
        next_attempt_at = $6, finished_at = $7, in_flight = FALSE WHERE id = $1 AND state = 'pending' AND in_flight AND attempts = $8`,
    [p.id, p.next.state, p.attempt.status, p.attempt.error, JSON.stringify(p.attempt), p.next.state === 'pending' ? p.next.retryAt : null,
      done ? p.attempt.at + p.attempt.durationMs : null, p.attempt.attempt], false);
    return (r.rowCount ?? 0) > 0;
  }

  async webhookNextDue(): Promise<number | null> {
    const r = (await this.q(`SELECT next_attempt_at FROM webhook_deliveries WHERE state = 'pending' ORDER BY next_attempt_at LIMIT 1`)).rows[0];
    return r ? Number(r.next_attempt_at) : null;
  }

  async webhookDeliveryList(jobId: string): Promise<WebhookDeliveryRecord[]> {
    return (await this.q('SELECT * FROM webhook_deliveries WHERE job_id = $1 ORDER BY id', [jobId])).rows.map(webhookDeliveryFromRow);
  }

  // ------------------------------------------------------------------ schedules

  /** A schedule with its last job's state. */
  private static readonly SCHEDULE_SELECT = 'SELECT s.*, j.state AS last_job_state FROM schedules s LEFT JOIN jobs j ON j.id = s.last_job_id';

  async scheduleCreate(p: ScheduleInsertParams): Promise<ScheduleRecord | null> {
    return this.tx(async (c) => {
      const r = await c.query(`INSERT INTO schedules (id, owner, name, cron, every_ms, timezone, job, overlap, window_ms, catch_up, jitter_ms, paused, pause_note,
          next_tick, due_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16) ON CONFLICT (id) DO NOTHING`,
      [p.id, p.owner, p.name, p.cron, p.everyMs, p.timezone, JSON.stringify(p.job), p.overlap, p.windowMs, p.policy, p.jitterMs, p.paused, p.pauseNote,
        p.nextTick, p.dueAt, p.createdAt]);
      if (r.rowCount === 0) return null;
      // Other foremen re-arm their timer for the earliest schedule.
      await this.notify(c, { kind: 'schedules' });
      return scheduleFromRow((await c.query(`${PostgresStore.SCHEDULE_SELECT} WHERE s.id = $1`, [p.id])).rows[0]);
    });
  }

  async scheduleGet(id: string): Promise<ScheduleRecord | null> {
    const r = (await this.q(`${PostgresStore.SCHEDULE_SELECT} WHERE s.id = $1`, [id])).rows[0];
    return r ? scheduleFromRow(r) : null;
  }

  async scheduleList(params: { owner?: string }): Promise<ScheduleRecord[]> {
    const rows = params.owner !== undefined
      ? (await this.q(`${PostgresStore.SCHEDULE_SELECT} WHERE s.owner = $1 ORDER BY s.id`, [params.owner])).rows
      : (await this.q(`${PostgresStore.SCHEDULE_SELECT} ORDER BY s.id`)).rows;
    return rows.map(scheduleFromRow);
  }

  async scheduleUpdate(p: { id: string; change: ScheduleChange; expectVersion?: number; now: number }): Promise<ScheduleRecord | null> {
    const keys = (Object.keys(p.change) as (keyof ScheduleChange)[]).filter((k) => p.change[k] !== undefined);
    const values: unknown[] = [p.id, p.now, p.expectVersion ?? null];
    const set = keys.map((k) => {
      const v = p.change[k];
      values.push(k === 'job' ? JSON.stringify(v) : v);
      return `${SCHEDULE_COLUMNS[k]} = $${values.length}`;
    }).join(', ');
    return this.tx(async (c) => {
      const r = await c.query(`UPDATE schedules SET ${set ? `${set}, ` : ''}version = version + 1, updated_at = $2
        WHERE id = $1 AND ($3::int IS NULL OR version = $3::int)`, values);
      if (r.rowCount === 0) return null;
      await this.notify(c, { kind: 'schedules' });
      return scheduleFromRow((await c.query(`${PostgresStore.SCHEDULE_SELECT} WHERE s.id = $1`, [p.id])).rows[0]);
    });
  }

  async scheduleDelete(id: string): Promise<boolean> {
    return this.tx(async (c) => {
      await c.query('DELETE FROM schedule_runs WHERE schedule_id = $1', [id]);
      const n = (await c.query('DELETE FROM schedules WHERE id = $1', [id])).rowCount ?? 0;
      if (n > 0) await this.notify(c, { kind: 'schedules' });
      return n > 0;
    });
  }

  async scheduleNextDue(): Promise<number | null> {
    return (await this.q('SELECT min(due_at) AS due FROM schedules WHERE NOT paused AND due_at IS NOT NULL')).rows[0].due ?? null;
  }

  async scheduleDue(p: { now: number; limit: number; except?: readonly string[] }): Promise<ScheduleRecord[]> {
    const except = [...(p.except ?? [])];
    // Two reads, each on its own index: ticks due, and buffered ticks whose previous job is done.
    const due = (await this.q(`${PostgresStore.SCHEDULE_SELECT} WHERE NOT s.paused AND s.due_at <= $1 AND NOT (s.id = ANY($3::text[]))
      ORDER BY s.due_at LIMIT $2`, [p.now, p.limit, except])).rows;
    const buffered = (await this.q(`${PostgresStore.SCHEDULE_SELECT} WHERE s.buffered_tick IS NOT NULL AND NOT s.paused
      AND (j.state IS NULL OR j.state IN ('completed', 'failed', 'cancelled')) AND NOT (s.id = ANY($2::text[])) LIMIT $1`, [p.limit, except])).rows;
    const seen = new Set(due.map((r) => r.id));
    return [...due, ...buffered.filter((r) => !seen.has(r.id))].slice(0, p.limit).map(scheduleFromRow);
  }

  /**
   * The group in one transaction. Repeating it after a lost connection is safe: a guarded step
   * that committed finds its guard changed, and every fired job carries an idempotency key.
   */
  async scheduleFire(list: ScheduleFireParams[]): Promise<ScheduleFireOutcome[]> {
    const group = (savepoints: boolean) => this.tx(async (c) => {
      const out: ScheduleFireOutcome[] = [];
      for (const p of list) {
        if (!savepoints) { out.push(await this.fireOne(c, p)); continue; }
        await c.query('SAVEPOINT schedule_fire');
        try {
          out.push(await this.fireOne(c, p));
          await c.query('RELEASE SAVEPOINT schedule_fire');
        } catch (err) {
          if (isConnectionError(err)) throw err;
          await c.query('ROLLBACK TO SAVEPOINT schedule_fire');
          out.push({ applied: false, error: err as Error });
        }
      }
      if (out.some((o) => o.applied && o.jobs.some((j) => !j.deduplicated))) await this.notify(c, { kind: 'work' });
      return out;
    });
    try {
      return await group(false);
    } catch (err) {
      // Something the database refuses in one step: the group again, each step in a savepoint,
      // so that the one that fails fails alone and the others fire.
      if (isStoreOutage(err)) throw err;
      return group(true);
    }
  }

  /** One schedule's step, inside scheduleFire's transaction. */
  private async fireOne(c: pg.PoolClient, p: ScheduleFireParams): Promise<ScheduleFireOutcome> {
    const last = lastJobOf(p);
    const guard = '($2::boolean IS FALSE OR (version = $3::int AND next_tick IS NOT DISTINCT FROM $4::bigint))';
    const base = [p.scheduleId, p.guard !== null, p.guard?.version ?? null, p.guard?.nextTick ?? null, last];
    const r = p.advance
      ? await c.query(prepared(`UPDATE schedules SET next_tick = $6, due_at = $7, buffered_tick = $8, last_job_id = coalesce($5, last_job_id), version = version + 1 WHERE id = $1 AND ${guard}`,
        [...base, p.advance.nextTick, p.advance.dueAt, p.advance.bufferedTick]))
      : await c.query(prepared(`UPDATE schedules SET last_job_id = coalesce($5, last_job_id), version = version + 1 WHERE id = $1 AND ${guard}`, base));
    if (r.rowCount === 0) return { applied: false };
    const jobs: (JobInsertResult & { tickAt: number })[] = [];
    for (const run of p.runs) {
      // A fired job's position is not asked for: nothing is counted.
      const res = run.job ? await this.insertJobRows(c, run.job, { byPriority: new Map(), counted: true }) : null;
      if (res) jobs.push({ ...res, tickAt: run.tickAt });
      await c.query(prepared('INSERT INTO schedule_runs (schedule_id, tick_at, fired_at, reason, outcome, job_id) VALUES ($1, $2, $3, $4, $5, $6)',
        [p.scheduleId, run.tickAt, run.firedAt, run.reason, run.outcome, res?.job.id ?? null]));
    }
    // A job found by its key (a tick fired already) is the previous run instead of the one built.
    const actual = p.setsLastJob ? jobs.at(-1)?.job.id ?? null : null;
    if (actual !== last) await c.query('UPDATE schedules SET last_job_id = $1 WHERE id = $2', [actual, p.scheduleId]);
    if (trimsRuns(p)) {
      await c.query(prepared(`DELETE FROM schedule_runs WHERE schedule_id = $1 AND seq < (SELECT seq FROM schedule_runs WHERE schedule_id = $1 ORDER BY seq DESC LIMIT 1 OFFSET $2)`,
        [p.scheduleId, SCHEDULE_RUNS_KEPT - 1]));
    }
    return { applied: true, jobs };
  }

  async scheduleRunList(p: { scheduleId: string; limit: number }): Promise<ScheduleRunRecord[]> {
    return (await this.q(`SELECT r.*, j.state AS job_state FROM schedule_runs r LEFT JOIN jobs j ON j.id = r.job_id
      WHERE r.schedule_id = $1 ORDER BY r.seq DESC LIMIT $2`, [p.scheduleId, p.limit])).rows.map(scheduleRunFromRow);
  }

  async stats(): Promise<StoreStats> {
    const jobs = { scheduled: 0, queued: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
    const workers = { online: 0, offline: 0 };
    // Tasks by state from the jobs' counters (see taskCountsFromJobs): O(jobs), not O(tasks).
    const [j, t, w] = await Promise.all([
      this.q(`SELECT CASE WHEN state = 'queued' AND run_at > $1 THEN 'scheduled' ELSE state END AS state, count(*) AS n, sum(total) AS total,
        sum(completed) AS completed, sum(failed) AS failed, sum(cancelled) AS cancelled FROM jobs GROUP BY 1`, [Date.now()]),
      this.q(`SELECT count(*) FILTER (WHERE state = 'running') AS n, count(*) FILTER (WHERE state = 'scheduled') AS scheduled FROM tasks WHERE state IN ('running', 'scheduled')`),
      this.q('SELECT state, count(*) AS n FROM workers GROUP BY state'),
    ]);
    for (const r of j.rows) (jobs as any)[r.state] = Number(r.n);
    const tasks = taskCountsFromJobs(j.rows, Number(t.rows[0].n), Number(t.rows[0].scheduled));
    for (const r of w.rows) (workers as any)[r.state] = Number(r.n);
    const pruned = { jobs: 0, tasks: 0 };
    for (const r of (await this.q(`SELECT key, value FROM cc_meta WHERE key IN ('pruned_jobs', 'pruned_tasks')`)).rows) pruned[r.key === 'pruned_jobs' ? 'jobs' : 'tasks'] = Number(r.value);
    const size = await this.q(`SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) AS bytes FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'`);
    return { jobs, tasks, workers, pruned, storageBytes: Number(size.rows[0].bytes) };
  }
}
