/**
 * PostgreSQL schema, applied in order on start under an advisory lock (so several foremen
 * starting at once do not race), each migration once, recorded in `cc_migrations`.
 * Times are epoch milliseconds (BIGINT); inputs and results are JSON text, as in SQLite, so
 * both drivers return exactly what was stored.
 */
export const POSTGRES_MIGRATIONS: { version: number; name: string; sql: string }[] = [
  {
    version: 1,
    name: 'jobs, tasks, workers',
    sql: `
      CREATE TABLE jobs (
        seq BIGSERIAL,
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
        cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
        created_at BIGINT NOT NULL,
        started_at BIGINT,
        completed_at BIGINT
      );
      CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (idempotency_key) WHERE idempotency_key IS NOT NULL;
      CREATE INDEX jobs_seq ON jobs (seq);

      CREATE TABLE tasks (
        seq BIGSERIAL PRIMARY KEY,
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
        lost INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        timeout_ms INTEGER,
        worker_id TEXT,
        result TEXT,
        error TEXT,
        errors TEXT,
        progress DOUBLE PRECISION,
        progress_message TEXT,
        created_at BIGINT NOT NULL,
        started_at BIGINT,
        completed_at BIGINT,
        lease_expires_at BIGINT,
        available_at BIGINT NOT NULL DEFAULT 0
      );
      CREATE INDEX tasks_queue ON tasks (priority, seq) WHERE state = 'queued';
      CREATE INDEX tasks_job ON tasks (job_id, idx);
      CREATE INDEX tasks_running_worker ON tasks (worker_id) WHERE state = 'running';
      CREATE INDEX tasks_lease ON tasks (lease_expires_at) WHERE state = 'running';

      CREATE TABLE workers (
        id TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        capacity INTEGER NOT NULL,
        patterns TEXT NOT NULL,
        allow_code BOOLEAN NOT NULL,
        resources TEXT NOT NULL,
        version TEXT,
        foreman_id TEXT,
        connected_at BIGINT NOT NULL,
        last_seen_at BIGINT NOT NULL,
        disconnected_at BIGINT,
        tasks_completed INTEGER NOT NULL DEFAULT 0,
        tasks_failed INTEGER NOT NULL DEFAULT 0
      );
    `,
  },
  {
    version: 2,
    name: 'credentials, job owners',
    sql: `
      -- API keys (kind 'key': secret_hash is the SHA-256 of the key's secret) and worker tokens
      -- (kind 'token': no secret here at all; the token is derived from the foremen's secret).
      CREATE TABLE credentials (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        name TEXT,
        scopes TEXT,
        worker_id TEXT,
        secret_hash TEXT,
        created_at BIGINT NOT NULL,
        revoked_at BIGINT,
        last_used_at BIGINT,
        last_used_from TEXT
      );
      -- Settings of this database: the fingerprint of the foremen's secret, the credentials version.
      CREATE TABLE cc_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      -- The API key that submitted a job (NULL: submitted without credentials, under --insecure).
      ALTER TABLE jobs ADD COLUMN owner TEXT;
      CREATE INDEX jobs_owner ON jobs (owner, seq) WHERE owner IS NOT NULL;
    `,
  },
  {
    version: 3,
    name: 'retention',
    sql: `
      -- How long a finished job is kept, and from when it may be pruned (completed_at + retention_ms).
      ALTER TABLE jobs ADD COLUMN retention_ms BIGINT;
      ALTER TABLE jobs ADD COLUMN prune_after BIGINT;
      CREATE INDEX jobs_prune ON jobs (prune_after) WHERE prune_after IS NOT NULL;
      CREATE INDEX jobs_finished ON jobs (completed_at) WHERE completed_at IS NOT NULL;
      -- Pruned jobs, remembered a while so that asking for one says "pruned", not "no such job".
      CREATE TABLE pruned_jobs (id TEXT PRIMARY KEY, owner TEXT, pruned_at BIGINT NOT NULL);
      CREATE INDEX pruned_jobs_at ON pruned_jobs (pruned_at);
    `,
  },
  {
    version: 4,
    name: 'job labels, queue deadlines',
    sql: `
      -- What the job runs, for lists: the tasks' type(s), or the shipped function's name.
      ALTER TABLE jobs ADD COLUMN label TEXT;
      CREATE INDEX jobs_state_created ON jobs (state, created_at);
      -- Tasks not started by queue_deadline fail with CC_ERR_NO_WORKER (created_at + queue_timeout_ms).
      ALTER TABLE jobs ADD COLUMN queue_timeout_ms BIGINT;
      ALTER TABLE jobs ADD COLUMN queue_deadline BIGINT;
      CREATE INDEX jobs_queue_deadline ON jobs (queue_deadline) WHERE queue_deadline IS NOT NULL;
    `,
  },
  {
    version: 5,
    name: 'browser workers',
    sql: `
      -- Where a map job may run: NULL (anywhere), 'node' or 'browser'; copied to its tasks for the claim.
      ALTER TABLE jobs ADD COLUMN run_on TEXT;
      ALTER TABLE tasks ADD COLUMN run_on TEXT;
      -- Join links (kind 'join'): when they stop working, and how many browsers may use one at once.
      ALTER TABLE credentials ADD COLUMN expires_at BIGINT;
      ALTER TABLE credentials ADD COLUMN max_workers INTEGER;
    `,
  },
  {
    version: 6,
    name: 'batches, checkpoints, artifacts',
    sql: `
      -- A batch handler's state to resume from, and whether its artifacts are complete.
      ALTER TABLE tasks ADD COLUMN checkpoint TEXT;
      ALTER TABLE tasks ADD COLUMN artifacts_complete BOOLEAN NOT NULL DEFAULT false;
      -- Batches a task has done: a later attempt skips them. One row per (task, batch uid).
      CREATE TABLE task_batches (
        task_id TEXT NOT NULL,
        batch_uid TEXT NOT NULL,
        job_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        metrics TEXT,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (task_id, batch_uid)
      );
      CREATE INDEX task_batches_job ON task_batches (job_id);
      -- Artifacts, one per (task, batch uid), numbered in the order they were recorded (the
      -- recording transaction locks the job's row, so a job's numbers commit in order).
      CREATE TABLE artifacts (
        seq BIGSERIAL PRIMARY KEY,
        job_id TEXT NOT NULL,
        task_id TEXT NOT NULL,
        batch_uid TEXT NOT NULL,
        data TEXT NOT NULL,
        size INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        UNIQUE (task_id, batch_uid)
      );
      CREATE INDEX artifacts_job ON artifacts (job_id, seq);
    `,
  },
  {
    version: 7,
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
    version: 8,
    name: 'files',
    sql: `
      -- Files uploaded for tasks; a job's tasks carry them, and they are pruned with that job.
      CREATE TABLE files (
        id TEXT PRIMARY KEY,
        owner TEXT,
        job_id TEXT,
        filename TEXT NOT NULL,
        size BIGINT NOT NULL,
        content_type TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        data BYTEA NOT NULL,
        created_at BIGINT NOT NULL
      );
      CREATE INDEX files_job ON files (job_id);
      CREATE INDEX files_unattached ON files (created_at) WHERE job_id IS NULL;
      -- The files a task carries, in order (JSON array of file ids).
      ALTER TABLE tasks ADD COLUMN files TEXT;
    `,
  },
  {
    version: 9,
    name: 'open jobs',
    sql: `
      -- A job submitted open takes more tasks in appends until sealed, and does not finish while open.
      ALTER TABLE jobs ADD COLUMN open BOOLEAN NOT NULL DEFAULT FALSE;
    `,
  },
  {
    version: 10,
    name: 'fair sharing, limits',
    sql: `
      -- A job's share of the workers among jobs of its priority (and owner), and its cap on tasks running at once.
      ALTER TABLE jobs ADD COLUMN weight DOUBLE PRECISION NOT NULL DEFAULT 1;
      ALTER TABLE jobs ADD COLUMN max_concurrency INTEGER;
      -- An API key's cap on its jobs' tasks running at once.
      ALTER TABLE credentials ADD COLUMN max_concurrency INTEGER;
      -- Each job's own queue, in dispatch order: the scheduler takes from the jobs it chooses.
      CREATE INDEX tasks_job_queue ON tasks (job_id, priority, seq) WHERE state = 'queued' AND requires IS NULL;
      -- Per task type (a pattern), how many tasks may start per window: a token bucket, spent by claims.
      CREATE TABLE rate_limits (pattern TEXT PRIMARY KEY, max INTEGER NOT NULL, per_ms BIGINT NOT NULL, tokens DOUBLE PRECISION NOT NULL, refilled_at BIGINT NOT NULL);
    `,
  },
  {
    version: 11,
    name: 'map jobs in Python',
    sql: `
      -- The language of a map job's shipped function; NULL (jobs from before) is JavaScript.
      ALTER TABLE jobs ADD COLUMN language TEXT;
    `,
  },
  {
    version: 12,
    name: 'delayed tasks',
    sql: `
      -- A job's runAt: its tasks (and those appended later) wait as 'scheduled' until then.
      ALTER TABLE jobs ADD COLUMN run_at BIGINT;
      -- Scheduled tasks by release time: the next release is the index's first entry, and
      -- releasing reads only what is due. They stay out of the queue indexes until released, so
      -- claims never step over tasks that may not run yet.
      CREATE INDEX tasks_scheduled ON tasks (available_at) WHERE state = 'scheduled';
    `,
  },
  {
    version: 13,
    name: 'open timeouts, deadlines',
    sql: `
      -- An open job with no part and no seal for open_timeout_ms is sealed or cancelled (on_open_timeout)
      -- at open_expires_at, which each part pushes back and which is NULL once the job is closed.
      ALTER TABLE jobs ADD COLUMN open_timeout_ms BIGINT;
      ALTER TABLE jobs ADD COLUMN on_open_timeout TEXT;
      ALTER TABLE jobs ADD COLUMN open_expires_at BIGINT;
      -- Why an open job stopped taking parts: seal, open_timeout, cancel, deadline, failure.
      ALTER TABLE jobs ADD COLUMN closed_by TEXT;
      -- Past it, the job's unfinished tasks fail with CC_ERR_DEADLINE.
      ALTER TABLE jobs ADD COLUMN deadline BIGINT;
      -- The next one due is read from the front of these (the expiry timer), so finished jobs stay out of them.
      CREATE INDEX jobs_open_expires ON jobs (open_expires_at) WHERE open_expires_at IS NOT NULL;
      CREATE INDEX jobs_deadline ON jobs (deadline) WHERE deadline IS NOT NULL AND state IN ('scheduled', 'queued', 'running');
    `,
  },
  {
    version: 14,
    name: 'recurring schedules',
    sql: `
      -- A schedule fires a job at each tick. next_tick is the first tick not handled yet, due_at
      -- when it is due (its jitter included); a fire moves them on under a guard on version.
      CREATE TABLE schedules (
        id TEXT PRIMARY KEY, owner TEXT, name TEXT, cron TEXT, every_ms BIGINT, timezone TEXT NOT NULL, job TEXT NOT NULL,
        overlap TEXT NOT NULL, window_ms BIGINT NOT NULL, catch_up TEXT NOT NULL, jitter_ms BIGINT NOT NULL,
        paused BOOLEAN NOT NULL DEFAULT FALSE, pause_note TEXT, next_tick BIGINT, due_at BIGINT, buffered_tick BIGINT, last_job_id TEXT,
        version INTEGER NOT NULL DEFAULT 1, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL
      );
      CREATE INDEX schedules_due ON schedules (due_at) WHERE NOT paused AND due_at IS NOT NULL;
      CREATE INDEX schedules_buffered ON schedules (id) WHERE buffered_tick IS NOT NULL;
      CREATE INDEX schedules_owner ON schedules (owner, id);
      -- Each tick and what became of it; the newest runs of each schedule are kept.
      CREATE TABLE schedule_runs (
        seq BIGSERIAL PRIMARY KEY, schedule_id TEXT NOT NULL, tick_at BIGINT NOT NULL, fired_at BIGINT,
        reason TEXT NOT NULL, outcome TEXT NOT NULL, job_id TEXT
      );
      CREATE INDEX schedule_runs_schedule ON schedule_runs (schedule_id, seq);
    `,
  },
  {
    version: 15,
    name: 'webhooks',
    sql: `
      -- The URL a job's end is posted to (its webhook); NULL: its key's default, if any.
      ALTER TABLE jobs ADD COLUMN webhook_url TEXT;
      -- An API key's default webhook, for its jobs that name none.
      ALTER TABLE credentials ADD COLUMN webhook_url TEXT;
      -- One row per job end to announce. An attempt is claimed by counting it (attempts + 1), marking
      -- it in flight and pushing next_attempt_at past the send's timeout, in one guarded update (FOR UPDATE SKIP
      -- LOCKED): one foreman sends each attempt, and an attempt whose foreman died is claimed
      -- again once that time passes.
      CREATE TABLE webhook_deliveries (
        id BIGSERIAL PRIMARY KEY, job_id TEXT NOT NULL, url TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0, in_flight BOOLEAN NOT NULL DEFAULT FALSE, next_attempt_at BIGINT, last_status INTEGER, last_error TEXT,
        attempt_log JSONB NOT NULL DEFAULT '[]', job_state TEXT NOT NULL, created_at BIGINT NOT NULL, finished_at BIGINT
      );
      CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
      CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id, id);
      -- A delivery is written in the same transaction as the job's end, whichever statement ends
      -- it (a result, a cancel, a deadline, a queue timeout...): the end cannot happen without it,
      -- even if the foreman stops right after. A retried job that ends again is announced again.
      CREATE FUNCTION jobs_webhook() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        target TEXT := NEW.webhook_url;
        at BIGINT := coalesce(NEW.completed_at, (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
      BEGIN
        IF target IS NULL AND NEW.owner IS NOT NULL THEN
          SELECT webhook_url INTO target FROM credentials WHERE id = NEW.owner AND kind = 'key' AND revoked_at IS NULL;
        END IF;
        IF target IS NOT NULL THEN
          INSERT INTO webhook_deliveries (job_id, url, job_state, next_attempt_at, created_at) VALUES (NEW.id, target, NEW.state, at, at);
        END IF;
        RETURN NULL;
      END $$;
      CREATE TRIGGER jobs_webhook AFTER UPDATE OF state ON jobs FOR EACH ROW
        WHEN (NEW.state IN ('completed', 'failed', 'cancelled') AND OLD.state NOT IN ('completed', 'failed', 'cancelled'))
        EXECUTE FUNCTION jobs_webhook();
    `,
  },
  {
    version: 16,
    name: 'trace context of jobs',
    sql: `
      -- The foreman's span that accepted the job (W3C traceparent and tracestate, as JSON): the
      -- spans of its dispatches, and the workers' spans, join that trace. NULL: not traced.
      ALTER TABLE jobs ADD COLUMN trace_context TEXT;
    `,
  },
  {
    version: 17,
    name: 'failed tasks by type and error',
    sql: `
      -- The dead letters (failed for good), grouped by type and error for the failed-tasks view
      -- and walked in storage order by a bulk retry. A failed task's error code (its name when it
      -- has none) and its message's first line (at most 200 characters) are kept in columns, set
      -- by a trigger when a task fails, and indexed for failed tasks only: grouping reads the
      -- index, never the errors themselves. Errors are JSON text, where a handler's NUL or lone
      -- surrogate is an escape that text keeps but jsonb refuses: each becomes the escape of U+FFFD
      -- first (the replacement has the escape's shape, so the text stays valid JSON).
      ALTER TABLE tasks ADD COLUMN error_code TEXT, ADD COLUMN error_line TEXT;
      CREATE FUNCTION cc_task_error_group() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE e jsonb := regexp_replace(NEW.error, '\\\\u(0000|[dD][89a-fA-F][0-9a-fA-F]{2})', '\\\\ufffd', 'g')::jsonb;
      BEGIN
        NEW.error_code := coalesce(e ->> 'code', e ->> 'name', 'Error');
        NEW.error_line := left(split_part(coalesce(e ->> 'message', ''), E'\\n', 1), 200);
        RETURN NEW;
      END $$;
      CREATE TRIGGER tasks_error_group BEFORE INSERT OR UPDATE OF state, error ON tasks
        FOR EACH ROW WHEN (NEW.state = 'failed') EXECUTE FUNCTION cc_task_error_group();
      -- Tasks that failed before this version: the trigger sets their columns.
      UPDATE tasks SET state = state WHERE state = 'failed';
      CREATE INDEX tasks_failed ON tasks (seq) WHERE state = 'failed';
      CREATE INDEX tasks_failed_groups ON tasks (type, error_code, error_line, seq) INCLUDE (job_id, completed_at) WHERE state = 'failed';
    `,
  },
  {
    version: 18,
    name: 'delayed tasks by job',
    sql: `
      -- The scheduler counts each unfinished job's delayed tasks (not yet due): they are not
      -- waiting to be claimed. Counted from this index alone, without reading the tasks.
      CREATE INDEX tasks_scheduled_job ON tasks (job_id) WHERE state = 'scheduled';
    `,
  },
  {
    version: 19,
    name: 'fewer index writes per task',
    sql: `
      -- A claim and a result each change a task's state, which the partial indexes test, so
      -- neither update can be HOT: each writes a new version of the row, with a new entry in
      -- every index that holds it. Fewer indexes over every row, less written per task.
      -- Running tasks by worker (read on a worker's hello) come from tasks_lease, which holds the
      -- same rows (the running ones): one entry per claim instead of two.
      DROP INDEX tasks_running_worker;
      -- Tasks are found by id (unique); seq orders the queues inside their own partial indexes,
      -- and a unique index on it too was a third entry for each of a task's three versions.
      ALTER TABLE tasks DROP CONSTRAINT tasks_pkey;
    `,
  },
  {
    version: 20,
    name: 'vacuum the tasks table sooner',
    sql: `
      -- Every task leaves two dead row versions behind (queued, then running), and their entries
      -- stay in the indexes until a vacuum removes them: a claim reads past the dead entries at
      -- the front of the queue index, so it slows as they pile up. The server's defaults wait for
      -- 20% of the table to be dead (200,000 rows of a million); here 1% and 1,000 rows. Tables
      -- that only grow (a large submission) are vacuumed after 5% new rows instead of 20%, which
      -- marks their pages all-visible sooner. These take effect only where autovacuum runs (see
      -- docs/operations.md for a server with it off).
      ALTER TABLE tasks SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_vacuum_insert_threshold = 10000);
    `,
  },
  {
    version: 21,
    name: 'foreman leases',
    sql: `
      -- Each foreman's lease (see Store.foremanLeaseTake): one whose lease ran out is gone, and
      -- the workers recorded online at it are not connected any more.
      CREATE TABLE foreman_leases (foreman_id TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);
      -- Online workers by foreman: a reap reads those of foremen without a lease.
      CREATE INDEX workers_online ON workers (foreman_id) WHERE state = 'online';
      -- Foremen of the version before hold no lease: those with workers online get ten minutes,
      -- time for a rolling upgrade to replace them, before their workers are taken for gone.
      INSERT INTO foreman_leases (foreman_id, expires_at)
        SELECT DISTINCT foreman_id, (extract(epoch FROM clock_timestamp()) * 1000)::bigint + 600000
        FROM workers WHERE state = 'online' AND foreman_id IS NOT NULL;
    `,
  },
];
