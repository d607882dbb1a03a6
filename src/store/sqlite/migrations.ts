/**
 * SQLite schema, applied in order on start. Each entry runs once, inside a transaction,
 * and is recorded in `cc_migrations`.
 */
export const SQLITE_MIGRATIONS: { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'jobs, tasks, workers',
    sql: `
      CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        name TEXT,
        state TEXT NOT NULL,
        priority INTEGER NOT NULL,
        total INTEGER NOT NULL,
        completed INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0,
        cancelled INTEGER NOT NULL DEFAULT 0,
        arg_count INTEGER,
        chunk_size INTEGER,
        code TEXT,
        timeout_ms INTEGER,
        max_attempts INTEGER NOT NULL,
        idempotency_key TEXT,
        metadata TEXT,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        completed_at INTEGER
      );
      CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
      CREATE INDEX jobs_created ON jobs (created_at);

      -- seq is the rowid: submission order, and the tie-breaker after priority.
      CREATE TABLE tasks (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        job_id TEXT NOT NULL,
        idx INTEGER NOT NULL,
        kind TEXT NOT NULL,
        type TEXT NOT NULL,
        input TEXT,
        priority INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempt INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        timeout_ms INTEGER,
        worker_id TEXT,
        result TEXT,
        error TEXT,
        progress REAL,
        progress_message TEXT,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        completed_at INTEGER,
        lease_expires_at INTEGER,
        available_at INTEGER NOT NULL DEFAULT 0
      );
      -- The queue: a partial index holds only queued rows, already in dispatch order.
      CREATE INDEX tasks_queue ON tasks (priority, seq) WHERE state = 'queued';
      CREATE INDEX tasks_job ON tasks (job_id, idx);
      CREATE INDEX tasks_running_worker ON tasks (worker_id) WHERE state = 'running';

      CREATE TABLE workers (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        capacity INTEGER NOT NULL,
        patterns TEXT NOT NULL,
        allow_code INTEGER NOT NULL,
        resources TEXT NOT NULL,
        version TEXT,
        foreman_id TEXT,
        connected_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        disconnected_at INTEGER,
        tasks_completed INTEGER NOT NULL DEFAULT 0,
        tasks_failed INTEGER NOT NULL DEFAULT 0
      );
    `,
  },
  {
    version: 2,
    name: 'attempt history, lease index',
    sql: `
      -- Every failed or lost attempt, oldest first: [{attempt, workerId, error, at}].
      ALTER TABLE tasks ADD COLUMN errors TEXT;
      -- Attempts that ended without an outcome because the worker was lost (bounded by maxLost).
      ALTER TABLE tasks ADD COLUMN lost INTEGER NOT NULL DEFAULT 0;
      -- The lease reaper looks for running tasks whose lease ran out.
      CREATE INDEX tasks_lease ON tasks (lease_expires_at) WHERE state = 'running';
    `,
  },
  {
    version: 3,
    name: 'one index for running tasks',
    sql: `
      -- Claims and results each maintained two partial indexes over running tasks; the lookup
      -- by worker (only on a worker's hello) reads the lease index instead, which holds just
      -- the running tasks.
      DROP INDEX tasks_running_worker;
    `,
  },
  {
    version: 4,
    name: 'credentials, job owners',
    sql: `
      -- API keys (kind 'key': secret_hash is the SHA-256 of the key's secret) and worker tokens
      -- (kind 'token': no secret here at all; the token is derived from the foreman's secret).
      CREATE TABLE credentials (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        name TEXT,
        scopes TEXT,
        worker_id TEXT,
        secret_hash TEXT,
        created_at INTEGER NOT NULL,
        revoked_at INTEGER,
        last_used_at INTEGER,
        last_used_from TEXT
      );
      -- Settings of this database: the fingerprint of the foremen's secret, the credentials version.
      CREATE TABLE cc_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      -- The API key that submitted a job (NULL: submitted without credentials, under --insecure).
      ALTER TABLE jobs ADD COLUMN owner TEXT;
      CREATE INDEX jobs_owner ON jobs (owner, created_at) WHERE owner IS NOT NULL;
    `,
  },
  {
    version: 5,
    name: 'retention',
    sql: `
      -- How long a finished job is kept, and from when it may be pruned (completed_at + retention_ms).
      ALTER TABLE jobs ADD COLUMN retention_ms INTEGER;
      ALTER TABLE jobs ADD COLUMN prune_after INTEGER;
      CREATE INDEX jobs_prune ON jobs (prune_after) WHERE prune_after IS NOT NULL;
      CREATE INDEX jobs_finished ON jobs (completed_at) WHERE completed_at IS NOT NULL;
      -- Pruned jobs, remembered a while so that asking for one says "pruned", not "no such job".
      CREATE TABLE pruned_jobs (id TEXT PRIMARY KEY, owner TEXT, pruned_at INTEGER NOT NULL);
      CREATE INDEX pruned_jobs_at ON pruned_jobs (pruned_at);
    `,
  },
  {
    version: 6,
    name: 'job labels, queue deadlines',
    sql: `
      -- What the job runs, for lists: the tasks' type(s), or the shipped function's name.
      ALTER TABLE jobs ADD COLUMN label TEXT;
      CREATE INDEX jobs_state_created ON jobs (state, created_at);
      -- Tasks not started by queue_deadline fail with CC_ERR_NO_WORKER (created_at + queue_timeout_ms).
      ALTER TABLE jobs ADD COLUMN queue_timeout_ms INTEGER;
      ALTER TABLE jobs ADD COLUMN queue_deadline INTEGER;
      CREATE INDEX jobs_queue_deadline ON jobs (queue_deadline) WHERE queue_deadline IS NOT NULL;
    `,
  },
  {
    version: 7,
    name: 'browser workers',
    sql: `
      -- Where a map job may run: NULL (anywhere), 'node' or 'browser'; copied to its tasks for the claim.
      ALTER TABLE jobs ADD COLUMN run_on TEXT;
      ALTER TABLE tasks ADD COLUMN run_on TEXT;
      -- Join links (kind 'join'): when they stop working, and how many browsers may use one at once.
      ALTER TABLE credentials ADD COLUMN expires_at INTEGER;
      ALTER TABLE credentials ADD COLUMN max_workers INTEGER;
    `,
  },
  {
    version: 8,
    name: 'batches, checkpoints, artifacts',
    sql: `
      -- A batch handler's state to resume from, and whether its artifacts are complete.
      ALTER TABLE tasks ADD COLUMN checkpoint TEXT;
      ALTER TABLE tasks ADD COLUMN artifacts_complete INTEGER NOT NULL DEFAULT 0;
      -- Batches a task has done: a later attempt skips them. One row per (task, batch uid).
      CREATE TABLE task_batches (
        task_id TEXT NOT NULL,
        batch_uid TEXT NOT NULL,
        job_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        metrics TEXT,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (task_id, batch_uid)
      );
      CREATE INDEX task_batches_job ON task_batches (job_id);
      -- Artifacts, one per (task, batch uid), numbered in the order they were recorded.
      CREATE TABLE artifacts (
        seq INTEGER PRIMARY KEY,
        job_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        batch_uid TEXT NOT NULL,
        data TEXT NOT NULL,
        size INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (task_id, batch_uid)
      );
      CREATE INDEX artifacts_job ON artifacts (job_id, seq);
    `,
  },
  {
    version: 9,
    name: 'task graphs, resources',
    sql: `
      -- A graph job's nodes: their tasks, dependencies and input adapters (JSON).
      ALTER TABLE jobs ADD COLUMN graph TEXT;
      -- What a task requires of its worker (JSON: cpu, memoryMb, gpu, labels); NULL for most.
      ALTER TABLE tasks ADD COLUMN requires TEXT;
      CREATE INDEX tasks_requiring ON tasks (priority, seq) WHERE state = 'queued' AND requires IS NOT NULL;
    `,
  },
  {
    version: 10,
    name: 'files',
    sql: `
      -- Files uploaded for tasks; a job's tasks carry them, and they are pruned with that job.
      CREATE TABLE files (
        id TEXT PRIMARY KEY,
        owner TEXT,
        job_id TEXT,
        filename TEXT NOT NULL,
        size INTEGER NOT NULL,
        content_type TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        data BLOB NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE INDEX files_job ON files (job_id);
      CREATE INDEX files_unattached ON files (created_at) WHERE job_id IS NULL;
      -- The files a task carries, in order (JSON array of file ids).
      ALTER TABLE tasks ADD COLUMN files TEXT;
    `,
  },
  {
    version: 11,
    name: 'open jobs',
    sql: `
      -- A job submitted open takes more tasks in appends until sealed, and does not finish while open.
      ALTER TABLE jobs ADD COLUMN open INTEGER NOT NULL DEFAULT 0;
    `,
  },
  {
    version: 12,
    name: 'fair sharing, limits',
    sql: `
      -- A job's share of the workers among jobs of its priority (and owner), and its cap on tasks running at once.
      ALTER TABLE jobs ADD COLUMN weight REAL NOT NULL DEFAULT 1;
      ALTER TABLE jobs ADD COLUMN max_concurrency INTEGER;
      -- An API key's cap on its jobs' tasks running at once.
      ALTER TABLE credentials ADD COLUMN max_concurrency INTEGER;
      -- The queue by priority, then job: each job's own queue at a priority is a range of it (the
      -- scheduler takes from the jobs it chooses), and queued tasks by priority are counted from
      -- its front. One index where two would cost every insert and claim a second update.
      DROP INDEX tasks_queue;
      CREATE INDEX tasks_queue ON tasks (priority, job_id, seq) WHERE state = 'queued';
      -- Per task type (a pattern), how many tasks may start per window: a token bucket, spent by claims.
      CREATE TABLE rate_limits (pattern TEXT PRIMARY KEY, max INTEGER NOT NULL, per_ms INTEGER NOT NULL, tokens REAL NOT NULL, refilled_at INTEGER NOT NULL);
    `,
  },
  {
    version: 13,
    name: 'map jobs in Python',
    sql: `
      -- The language of a map job's shipped function; NULL (jobs from before) is JavaScript.
      ALTER TABLE jobs ADD COLUMN language TEXT;
    `,
  },
  {
    version: 14,
    name: 'delayed tasks',
    sql: `
      -- A job's runAt: its tasks (and those appended later) wait as 'scheduled' until then.
      ALTER TABLE jobs ADD COLUMN run_at INTEGER;
      -- Scheduled tasks by release time: the next release is the index's first entry, and
      -- releasing reads only what is due. They stay out of the queue index until released, so
      -- claims never step over tasks that may not run yet.
      CREATE INDEX tasks_scheduled ON tasks (available_at) WHERE state = 'scheduled';
    `,
  },
  {
    version: 15,
    name: 'open timeouts, deadlines',
    sql: `
      -- An open job with no part and no seal for open_timeout_ms is sealed or cancelled (on_open_timeout)
      -- at open_expires_at, which each part pushes back and which is NULL once the job is closed.
      ALTER TABLE jobs ADD COLUMN open_timeout_ms INTEGER;
      ALTER TABLE jobs ADD COLUMN on_open_timeout TEXT;
      ALTER TABLE jobs ADD COLUMN open_expires_at INTEGER;
      -- Why an open job stopped taking parts: seal, open_timeout, cancel, deadline, failure.
      ALTER TABLE jobs ADD COLUMN closed_by TEXT;
      -- Past it, the job's unfinished tasks fail with CC_ERR_DEADLINE.
      ALTER TABLE jobs ADD COLUMN deadline INTEGER;
      -- The next one due is read from the front of these (the expiry timer), so finished jobs stay out of them.
      CREATE INDEX jobs_open_expires ON jobs (open_expires_at) WHERE open_expires_at IS NOT NULL;
      CREATE INDEX jobs_deadline ON jobs (deadline) WHERE deadline IS NOT NULL AND state IN ('scheduled', 'queued', 'running');
    `,
  },
  {
    version: 16,
    name: 'recurring schedules',
    sql: `
      -- A schedule fires a job at each tick. next_tick is the first tick not handled yet, due_at
      -- when it is due (its jitter included); a fire moves them on under a guard on version.
      CREATE TABLE schedules (
        id TEXT PRIMARY KEY, owner TEXT, name TEXT, cron TEXT, every_ms INTEGER, timezone TEXT NOT NULL, job TEXT NOT NULL,
        overlap TEXT NOT NULL, window_ms INTEGER NOT NULL, catch_up TEXT NOT NULL, jitter_ms INTEGER NOT NULL,
        paused INTEGER NOT NULL DEFAULT 0, pause_note TEXT, next_tick INTEGER, due_at INTEGER, buffered_tick INTEGER, last_job_id TEXT,
        version INTEGER NOT NULL DEFAULT 1, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL
      );
      CREATE INDEX schedules_due ON schedules (due_at) WHERE paused = 0 AND due_at IS NOT NULL;
      CREATE INDEX schedules_buffered ON schedules (id) WHERE buffered_tick IS NOT NULL;
      CREATE INDEX schedules_owner ON schedules (owner, id);
      -- Each tick and what became of it; the newest runs of each schedule are kept.
      CREATE TABLE schedule_runs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, schedule_id TEXT NOT NULL, tick_at INTEGER NOT NULL, fired_at INTEGER,
        reason TEXT NOT NULL, outcome TEXT NOT NULL, job_id TEXT
      );
      CREATE INDEX schedule_runs_schedule ON schedule_runs (schedule_id, seq);
    `,
  },
  {
    version: 17,
    name: 'webhooks',
    sql: `
      -- The URL a job's end is posted to (its webhook); NULL: its key's default, if any.
      ALTER TABLE jobs ADD COLUMN webhook_url TEXT;
      -- An API key's default webhook, for its jobs that name none.
      ALTER TABLE credentials ADD COLUMN webhook_url TEXT;
      -- One row per job end to announce. An attempt is claimed by counting it (attempts + 1), marking
      -- it in flight and pushing next_attempt_at past the send's timeout, in one guarded update: one foreman sends
      -- each attempt, and an attempt whose foreman died is claimed again once that time passes.
      CREATE TABLE webhook_deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, url TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0, in_flight INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER, last_status INTEGER, last_error TEXT,
        attempt_log TEXT NOT NULL DEFAULT '[]', job_state TEXT NOT NULL, created_at INTEGER NOT NULL, finished_at INTEGER
      );
      CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
      CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id, id);
      -- A delivery is written in the same transaction as the job's end, whichever statement ends
      -- it (a result, a cancel, a deadline, a queue timeout...): the end cannot happen without it,
      -- even if the foreman stops right after. A retried job that ends again is announced again.
      CREATE TRIGGER jobs_webhook AFTER UPDATE OF state ON jobs
        WHEN NEW.state IN ('completed', 'failed', 'cancelled') AND OLD.state NOT IN ('completed', 'failed', 'cancelled')
      BEGIN
        INSERT INTO webhook_deliveries (job_id, url, job_state, next_attempt_at, created_at)
          SELECT NEW.id, u.url, NEW.state, coalesce(NEW.completed_at, CAST(unixepoch('subsec') * 1000 AS INTEGER)), coalesce(NEW.completed_at, CAST(unixepoch('subsec') * 1000 AS INTEGER))
          FROM (SELECT coalesce(NEW.webhook_url,
            (SELECT webhook_url FROM credentials WHERE id = NEW.owner AND kind = 'key' AND revoked_at IS NULL)) AS url) u
          WHERE u.url IS NOT NULL;
      END;
    `,
  },
  {
    version: 18,
    name: 'trace context of jobs',
    sql: `
      -- The foreman's span that accepted the job (W3C traceparent and tracestate, as JSON): the
      -- spans of its dispatches, and the workers' spans, join that trace. NULL: not traced.
      ALTER TABLE jobs ADD COLUMN trace_context TEXT;
    `,
  },
  {
    version: 19,
    name: 'failed tasks by type and error',
    sql: `
      -- The dead letters (failed for good), grouped by type and error for the failed-tasks view
      -- and walked in storage order by a bulk retry. A failed task's error code (its name when it
      -- has none) and its message's first line (at most 200 characters) are columns computed
      -- from its error, kept in an index of failed tasks only: grouping reads the index, never
      -- the errors themselves.
      ALTER TABLE tasks ADD COLUMN error_code TEXT GENERATED ALWAYS AS (CASE WHEN state = 'failed' AND json_valid(error)
        THEN coalesce(json_extract(error, '$.code'), json_extract(error, '$.name'), 'Error') END) VIRTUAL;
      ALTER TABLE tasks ADD COLUMN error_line TEXT GENERATED ALWAYS AS (CASE WHEN state = 'failed' AND json_valid(error)
        THEN substr(substr(coalesce(json_extract(error, '$.message'), ''), 1,
          instr(coalesce(json_extract(error, '$.message'), '') || char(10), char(10)) - 1), 1, 200) END) VIRTUAL;
      CREATE INDEX tasks_failed_groups ON tasks (type, error_code, error_line, seq, job_id, completed_at) WHERE state = 'failed';
    `,
  },
  {
    version: 20,
    name: 'delayed tasks by job',
    sql: `
      -- The scheduler counts each unfinished job's delayed tasks (not yet due): they are not
      -- waiting to be claimed. Counted from this index alone, without reading the tasks.
      CREATE INDEX tasks_scheduled_job ON tasks (job_id) WHERE state = 'scheduled';
    `,
  },
  {
    version: 21,
    name: 'foreman leases',
    sql: `
      -- Each foreman's lease (see Store.foremanLeaseTake): one whose lease ran out is gone, and
      -- the workers recorded online at it are not connected any more. A SQLite file serves one
      -- foreman, which drops every other lease when it starts: workers of foremen before this
      -- migration go offline then.
      CREATE TABLE foreman_leases (foreman_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);
      -- Online workers by foreman: a reap reads those of foremen without a lease.
      CREATE INDEX workers_online ON workers (foreman_id) WHERE state = 'online';
    `,
  },
];
