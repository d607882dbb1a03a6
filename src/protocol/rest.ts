/**
 * The REST API's request and response shapes, in one place: the foreman validates requests
 * with them, its OpenAPI document is generated from them, and the client SDK's types are
 * derived from them (camelCased). Field names are snake_case and times ISO 8601 strings, as
 * the HTTP task services CrowdCompute stands in for document them.
 */
import { z } from 'zod';
import { JOB_KINDS, JOB_STATES, PRIORITIES, TASK_KINDS, TASK_STATES } from './states.ts';
import { AppendPartShape, CODE_LANGUAGES, JobSpecSchema, TaskErrorSchema } from './messages.ts';
import { snakeCaseSchema } from './case-keys.ts';
import { JOB_LIMITS, describeAmount } from './limits.ts';
import { MAX_WEBHOOK_URL_LENGTH, WEBHOOK_DELIVERY_STATES, WebhookUrlSchema } from './webhooks.ts';
import { SCOPES } from './auth.ts';

const isoTime = z.string().describe('ISO 8601 time');
const nullableTime = isoTime.nullable();

// ---------------------------------------------------------------- requests

/** POST /api/jobs: the protocol's job spec with snake_case keys (`chunk_size`, `timeout_ms`, `tasks[].task_id`). */
export const RestJobSpecSchema = snakeCaseSchema(JobSpecSchema);

/** POST /api/jobs/{id}/tasks: a part of an open job (`tasks` or `args`, `at`, `seal`), snake_case like a job spec. */
export const RestAppendPartSchema = snakeCaseSchema(z.object(AppendPartShape));

/** GET /api/jobs/{id}/results: a page of results, by result index (argument index for a map job). */
export const ResultsQuerySchema = z.object({
  offset: z.coerce.number().int().min(0).default(0).describe('the first result to return (an argument index for a map job, a task index otherwise)'),
  limit: z.coerce.number().int().min(1).max(1_000_000).optional().describe('most results to return; omitted: all from offset on (page large jobs)'),
});

/** POST /task/submit: one named task, as FastAPI-style task services take it. `payload.function` is the task type. */
export const TaskSubmitBodySchema = z.object({
  task_id: z.string().min(1).max(200).optional(),
  payload: z.object({
    function: z.string().min(1).describe('the task type, routed to a handler pattern'),
    args: z.array(z.unknown()).optional(),
    kwargs: z.record(z.string(), z.unknown()).optional(),
    input: z.unknown().optional().describe("the handler's input as it is, instead of args and kwargs"),
  }),
  priority: z.enum(PRIORITIES).optional(),
  timeout_ms: z.number().int('must be a whole number').min(1, 'must be at least 1 ms')
    .max(JOB_LIMITS.timeoutMs.max, `must be at most ${describeAmount(JOB_LIMITS.timeoutMs.max, 'ms')}`).optional(),
  max_attempts: z.number().int('must be a whole number').min(1, 'must be at least 1').max(JOB_LIMITS.maxAttempts.max, `must be at most ${JOB_LIMITS.maxAttempts.max}`).optional(),
  idempotency_key: z.string().min(1).max(200).optional(),
  webhook: WebhookUrlSchema.optional().describe("an http(s) URL the job's end is posted to, signed (see docs/operations.md, \"Webhooks\"); default the key's webhook"),
});
/** POST /task/submit's body. */
export type TaskSubmitBody = z.output<typeof TaskSubmitBodySchema>;

/** Paging of list endpoints. */
export const PageQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(10_000).default(100),
  offset: z.coerce.number().int().min(0).default(0),
});

/** A time in a query: ISO 8601, or epoch milliseconds. */
const queryTime = z.union([z.coerce.number().int().nonnegative(), z.iso.datetime({ offset: true }).transform((s) => Date.parse(s))])
  .describe('ISO 8601 time or epoch milliseconds');

/** GET /api/jobs: paging and filters. */
export const JobListQuerySchema = PageQuerySchema.extend({
  status: z.enum(JOB_STATES).optional(),
  search: z.string().min(1).max(200).optional().describe("jobs whose task type(s), function name or name contain this text, or whose id is this"),
  since: queryTime.optional().describe('created at or after this time'),
  until: queryTime.optional().describe('created before this time'),
});

/** GET /api/jobs/{id}/tasks: tasks from an index on, optionally of one state. */
export const TaskListQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(10_000).default(100),
  offset: z.coerce.number().int().min(0).default(0).describe('the first task index to return (tasks come in index order)'),
  status: z.enum(TASK_STATES).optional(),
});

/** POST /api/jobs/{id}/retry: optionally one task of the job. */
export const RetryQuerySchema = z.object({
  task_id: z.string().min(1).max(200).optional().describe('retry only this task of the job'),
});

/** Path parameter of the endpoints about one job or task. */
export const IdParamsSchema = z.object({ id: z.string().min(1).max(200) });

// ---------------------------------------------------------------- responses

/** One try at posting a job's end to its webhook. */
export const WebhookAttemptViewSchema = z.object({
  attempt: z.number().int(),
  at: isoTime.describe('when it was sent'),
  status: z.number().int().nullable().describe("the receiver's HTTP status; null when no answer came"),
  error: z.string().nullable().describe('why it did not count as delivered (a status other than 2xx, a refused connection, a timeout); null when it did'),
  duration_ms: z.number().int(),
});

/** The announcement of one end of a job to its webhook, with its attempts. */
export const WebhookDeliveryViewSchema = z.object({
  id: z.number().int(),
  url: z.string(),
  state: z.enum(WEBHOOK_DELIVERY_STATES).describe('pending: being tried (again); delivered: the receiver answered 2xx; failed: given up after the last attempt'),
  job_status: z.enum(JOB_STATES).describe('the state the job ended in, which this delivery announces'),
  attempts: z.number().int().describe('attempts made so far (one in flight counts)'),
  next_attempt_at: nullableTime.describe('when the next attempt is due; null once delivered or given up'),
  last_status: z.number().int().nullable(),
  last_error: z.string().nullable(),
  created_at: isoTime.describe('when the job ended'),
  finished_at: nullableTime.describe('when it was delivered or given up'),
  attempt_log: z.array(WebhookAttemptViewSchema).describe('every attempt that came back, oldest first'),
});
/** A webhook delivery, as the REST API shows it. */
export type WebhookDeliveryView = z.output<typeof WebhookDeliveryViewSchema>;

/** A job. */
export const JobViewSchema = z.object({
  id: z.string(),
  job_id: z.string().describe('the same as id'),
  kind: z.enum(JOB_KINDS),
  name: z.string().nullable(),
  language: z.enum(CODE_LANGUAGES).nullable().describe("a map job's function's language (javascript, python); null for other jobs"),
  status: z.enum(JOB_STATES),
  priority: z.enum(PRIORITIES),
  total_tasks: z.number().int(),
  completed_tasks: z.number().int(),
  failed_tasks: z.number().int(),
  cancelled_tasks: z.number().int(),
  progress: z.number().min(0).max(1).describe('finished tasks over all tasks, 0..1'),
  running_progress: z.number().min(0).max(1).describe("how far running tasks have come by their handlers' progress reports, as a share of the whole job (0..1)"),
  arg_count: z.number().int().nullable(),
  chunk_size: z.number().int().nullable(),
  timeout_ms: z.number().int().nullable(),
  max_attempts: z.number().int(),
  idempotency_key: z.string().nullable(),
  metadata: z.record(z.string(), z.unknown()).nullable(),
  cancel_requested: z.boolean(),
  created_at: isoTime,
  started_at: nullableTime,
  completed_at: nullableTime,
  label: z.string().nullable().describe('what the job runs: its tasks\' type(s), or the shipped function\'s name'),
  queue_timeout_ms: z.number().int().nullable().describe('tasks not started this long after submission (or a retry) fail with CC_ERR_NO_WORKER'),
  run_at: nullableTime.describe('not to run before this time (its run_at or delay); the job is `scheduled` until then; null: at once'),
  retention_ms: z.number().int().nullable().describe('how long the job is kept once finished; null for jobs from before retention, kept until pruned on demand'),
  prune_at: nullableTime.describe('when the finished job may be pruned (completed_at + retention_ms); null while it runs'),
  open: z.boolean().describe('takes more tasks (POST /api/jobs/{id}/tasks) until sealed; an open job does not finish'),
  weight: z.number().describe("its share of the workers against its owner's other jobs of the same priority (default 1)"),
  max_concurrency: z.number().int().nullable().describe('at most this many of its tasks run at once; null: no cap'),
  open_timeout_ms: z.number().int().nullable().describe('an open job that gets no part and no seal this long is closed (on_open_timeout); null: never'),
  on_open_timeout: z.enum(['seal', 'cancel']).nullable().describe('what the open timeout does to the job: seal it, or cancel it; null when it has no open timeout'),
  open_expires_at: nullableTime.describe('when the open job is closed unless a part or a seal comes first; null once it is closed'),
  closed_by: z.enum(['seal', 'open_timeout', 'cancel', 'deadline', 'failure']).nullable()
    .describe('why an open job stopped taking parts: sealed by its producer, closed by its open timeout, cancelled, failed at its deadline, or failed as a whole; null while open and for jobs never open'),
  deadline: nullableTime.describe('past this time its unfinished tasks fail with CC_ERR_DEADLINE; null: none'),
  webhook_url: z.string().nullable().describe("the URL its end is posted to; null: its key's webhook, if the key has one"),
  webhook: WebhookDeliveryViewSchema.nullable().optional()
    .describe('GET /api/jobs/{id} only: the latest announcement of its end to a webhook (null: none yet, or no webhook); every one is at /api/jobs/{id}/webhook-deliveries'),
  trace_id: z.string().nullable().describe('the OpenTelemetry trace of the job (32 hex digits), to look it up in a tracing backend; null when it was not traced'),
  warnings: z.array(z.string()).optional()
    .describe('GET /api/jobs/{id} only: what keeps its queued tasks waiting beyond their turn among the workers connected now, e.g. that no connected worker handles their type (empty when nothing does)'),
});
/** A job, as the REST API shows it. */
export type JobView = z.output<typeof JobViewSchema>;

/** POST /api/jobs: the job, where its first task stands in the queue, and whether its idempotency key matched. */
export const JobSubmitViewSchema = JobViewSchema.extend({
  position: z.number().int().describe('queued tasks of its first task\'s priority or better when it was accepted, counted up to 10,000: at most how many could run before it (jobs of a priority share the workers)'),
  deduplicated: z.boolean().describe('true when the idempotency key matched an existing job, which is returned'),
  warnings: z.array(z.string()).describe('things to know, e.g. that no connected worker handles one of its task types'),
});

/** POST /api/jobs/{id}/tasks and /seal: the job after the part. */
export const JobAppendViewSchema = JobViewSchema.extend({
  deduplicated: z.boolean().describe('true when this part (same `at`) had been appended already: nothing was added again'),
  first_index: z.number().int().describe("the index of the part's first task"),
});
/** POST /api/jobs/{id}/tasks's answer. */
export type JobAppendView = z.output<typeof JobAppendViewSchema>;

/** POST /api/jobs/{id}/retry and /api/tasks/{id}/retry: the job, and how many tasks went back to the queue. */
export const JobRetryViewSchema = JobViewSchema.extend({
  retried: z.number().int().describe('failed and cancelled tasks put back in the queue'),
});
/** A retry's answer. */
export type JobRetryView = z.output<typeof JobRetryViewSchema>;
/** POST /api/jobs' answer. */
export type JobSubmitView = z.output<typeof JobSubmitViewSchema>;

/** One failed or lost attempt of a task. */
export const AttemptErrorViewSchema = z.object({
  attempt: z.number().int(),
  worker_id: z.string().nullable(),
  error: TaskErrorSchema,
  started_at: nullableTime,
  at: isoTime,
});

/** One attempt of a task, however it ended (or that it is still running). */
export const AttemptViewSchema = z.object({
  attempt: z.number().int(),
  worker_id: z.string().nullable(),
  status: z.enum(['running', 'completed', 'failed', 'cancelled', 'lost']).describe('lost: its worker went away, handed it back as it stopped, or its lease expired (not counted against max_attempts)'),
  started_at: nullableTime,
  ended_at: nullableTime,
  duration_ms: z.number().nullable(),
  error: TaskErrorSchema.nullable(),
});

/** One attempt of a task, as the REST API shows it. */
export type AttemptView = z.output<typeof AttemptViewSchema>;

/** A task. */
export const TaskViewSchema = z.object({
  task_id: z.string(),
  job_id: z.string(),
  index: z.number().int(),
  kind: z.enum(TASK_KINDS),
  type: z.string(),
  status: z.enum(TASK_STATES),
  priority: z.enum(PRIORITIES),
  attempt: z.number().int().describe('how many times it was started, every attempt counted (lost ones, and those before a retry by hand, too)'),
  failures: z.number().int().describe('failed attempts (errors, timeouts) counted against max_attempts since it was last retried by hand'),
  max_attempts: z.number().int().describe('failed attempts that end the task; attempts lost with their worker are not counted'),
  timeout_ms: z.number().int().nullable(),
  worker_id: z.string().nullable(),
  input: z.unknown().optional(),
  result: z.unknown(),
  error: TaskErrorSchema.nullable(),
  attempt_errors: z.array(AttemptErrorViewSchema).describe('every failed or lost attempt, oldest first'),
  attempts: z.array(AttemptViewSchema).describe('every attempt, oldest first: its worker, how it ended, its timings'),
  progress: z.number().nullable(),
  progress_message: z.string().nullable(),
  queued_at: isoTime,
  started_at: nullableTime,
  completed_at: nullableTime,
  lease_expires_at: nullableTime,
  available_at: nullableTime.describe('not to run before this time: a delayed task (`scheduled` until then) or a retry waiting for its backoff; null: at once'),
});
/** A task, as the REST API shows it. */
export type TaskView = z.output<typeof TaskViewSchema>;

/** GET /api/jobs/{id}/results: results in argument or task order, null where a task did not complete. */
export const JobResultsViewSchema = z.object({
  job_id: z.string(),
  status: z.enum(JOB_STATES),
  results: z.array(z.unknown()),
  offset: z.number().int().describe('the index of the first result in this page'),
  total: z.number().int().describe('results the job has (its arguments for a map job, its tasks otherwise)'),
  next_offset: z.number().int().nullable().describe('where the next page starts; null when this page reaches the end'),
  failures: z.array(z.object({
    task_id: z.string(),
    index: z.number().int().describe('task index, or the first argument index of a failed map chunk'),
    status: z.enum(TASK_STATES),
    error: TaskErrorSchema.nullable(),
  })),
});
/** A job's results, as the REST API shows them. */
export type JobResultsView = z.output<typeof JobResultsViewSchema>;

/** A worker. */
export const WorkerViewSchema = z.object({
  worker_id: z.string(),
  status: z.enum(['online', 'offline']),
  capacity: z.number().int(),
  running_tasks: z.number().int(),
  patterns: z.array(z.string()),
  allow_code: z.boolean(),
  resources: z.record(z.string(), z.unknown()),
  version: z.string().nullable(),
  foreman_id: z.string().nullable(),
  connected_at: isoTime,
  last_seen_at: isoTime.describe('when it was last heard from (a heartbeat, a result): live for a worker connected to the foreman that answers; for one connected elsewhere, as its foreman last wrote it (once a minute)'),
  disconnected_at: nullableTime,
  tasks_completed: z.number().int(),
  tasks_failed: z.number().int(),
  kind: z.enum(['node', 'browser', 'python', 'other']).describe('a Node process, a browser tab that joined through a join link, or a Python process (from its resources.runtime)'),
  user_agent: z.string().nullable().describe("browser tabs: the browser's user agent"),
});
/** A worker, as the REST API shows it. */
export type WorkerView = z.output<typeof WorkerViewSchema>;

/**
 * GET /api/workers/{id}: the worker, what it runs now, and its last connections to this
 * foreman. A key that is not admin sees only the running tasks of its own jobs listed; the
 * others are counted in `running_others`.
 */
export const WorkerDetailViewSchema = WorkerViewSchema.extend({
  running: z.array(z.object({ task_id: z.string(), job_id: z.string(), type: z.string(), attempt: z.number().int(), assigned_at: isoTime }))
    .describe("tasks it runs now (known when it is connected to this foreman): every one for an admin key, else those of the key's own jobs"),
  running_others: z.number().int().describe("tasks it runs now of jobs the key may not see, counted and not listed (0 for an admin key, or with authentication off)"),
  connections: z.array(z.object({
    event: z.enum(['connected', 'disconnected']), at: isoTime, remote: z.string().nullable(), detail: z.string().nullable(),
  })).describe('its last connections and disconnections on this foreman, newest first'),
});
/** A worker in detail, as the REST API shows it. */
export type WorkerDetailView = z.output<typeof WorkerDetailViewSchema>;

/** POST /api/join-links: a join link for browser tabs. */
export const JoinLinkCreateSchema = z.object({
  name: z.string().max(200).optional().describe('what the link is for (shown in lists)'),
  expires_in_ms: z.number().int().positive().max(365 * 86_400_000).optional().describe('how long the link works; default 24 h'),
  max_workers: z.number().int().positive().max(100_000).optional().describe('most browsers connected with it at once; default 100'),
});

/** Which artifacts: those numbered after `after`, at most `limit`. */
export const ArtifactListQuerySchema = z.object({
  after: z.coerce.number().int().min(0).optional().describe('only artifacts numbered after this seq (for reading as they arrive)'),
  limit: z.coerce.number().int().min(1).max(10_000).default(1_000),
});

/** One artifact a task wrote under a batch uid. */
export const ArtifactViewSchema = z.object({
  seq: z.number().int().describe("its number in the job, in the order artifacts were recorded"),
  task_id: z.string(),
  batch_uid: z.string(),
  data: z.unknown(),
  size: z.number().int().describe('bytes of JSON'),
  attempt: z.number().int(),
  created_at: isoTime,
});
/** One artifact, as the REST API shows it. */
export type ArtifactView = z.infer<typeof ArtifactViewSchema>;

/** A task's artifacts, and whether it said it will write no more. */
export const TaskArtifactsViewSchema = z.object({
  task_id: z.string(),
  complete: z.boolean().describe('the task said it will write no more artifacts, or it ended'),
  artifacts: z.array(ArtifactViewSchema),
});
/** A task's artifacts, as the REST API shows them. */
export type TaskArtifactsView = z.infer<typeof TaskArtifactsViewSchema>;

/** A task's batches done, and their metrics summed. */
export const TaskBatchesViewSchema = z.object({
  task_id: z.string(),
  checkpoint: z.unknown().describe('the last checkpoint saved, or null'),
  metrics: z.record(z.string(), z.number()).describe("the batches' metrics, summed"),
  batches: z.array(z.object({ batch_uid: z.string(), attempt: z.number().int(), metrics: z.record(z.string(), z.number()).nullable(), created_at: isoTime })),
});
/** A task's batches, as the REST API shows them. */
export type TaskBatchesView = z.infer<typeof TaskBatchesViewSchema>;

/** POST /api/files: the file's name. */
export const FileUploadQuerySchema = z.object({
  filename: z.string().min(1).max(255).describe("the file's name, as tasks will see it"),
});

/** An uploaded file. */
export const FileViewSchema = z.object({
  file_id: z.string(),
  filename: z.string(),
  size: z.number().int(),
  content_type: z.string(),
  sha256: z.string(),
  job_id: z.string().nullable().describe('the job whose tasks carry it, once one does (it is pruned with that job)'),
  created_at: isoTime,
});
/** An uploaded file, as the REST API shows it. */
export type FileView = z.infer<typeof FileViewSchema>;

/** GET /api/jobs/{id}/code: a map job's shipped function. */
export const JobCodeViewSchema = z.object({
  job_id: z.string(),
  language: z.enum(CODE_LANGUAGES),
  function_name: z.string().nullable().describe("the function's name, as the submitter or its source gives it"),
  source: z.string().describe("the function's source, as shipped to the workers"),
});
/** A map job's shipped function, as the REST API shows it. */
export type JobCodeView = z.infer<typeof JobCodeViewSchema>;

/** A task graph's nodes and where each stands. */
export const GraphViewSchema = z.object({
  job_id: z.string(),
  status: z.enum(JOB_STATES),
  output: z.string().describe("the node whose result is the graph's"),
  nodes: z.array(z.object({
    node_id: z.string(),
    task_id: z.string(),
    type: z.string(),
    depends_on: z.array(z.string()),
    input_adapter: z.string().nullable(),
    status: z.enum(TASK_STATES),
    waiting: z.boolean().describe('queued until its upstream nodes allow it to start'),
    attempt: z.number().int(),
    worker_id: z.string().nullable(),
    artifacts: z.number().int().describe('artifacts it has written'),
    started_at: nullableTime,
    completed_at: nullableTime,
    error: z.unknown().nullable(),
  })),
});
/** A task graph, as the REST API shows it. */
export type GraphView = z.infer<typeof GraphViewSchema>;

/** A join link: where a browser goes to lend itself, and what it allows. */
export const JoinLinkViewSchema = z.object({
  id: z.string(),
  name: z.string().nullable(),
  url: z.string().nullable().describe('the link to open in a browser (only when it is created: its secret is shown once)'),
  expires_at: nullableTime,
  max_workers: z.number().int().nullable(),
  connected: z.number().int().describe('browsers connected with it to this foreman now'),
  created_at: isoTime,
  revoked_at: nullableTime,
});
/** A join link, as the REST API shows it. */
export type JoinLinkView = z.output<typeof JoinLinkViewSchema>;

/** PUT /api/keys/{id}/webhook: where the end of the key's jobs that name no webhook is posted. */
export const KeyWebhookBodySchema = z.object({
  url: WebhookUrlSchema.describe(`an http or https URL, at most ${MAX_WEBHOOK_URL_LENGTH} characters, on a host the foreman calls (--webhook-host)`),
});

/** An API key as the REST API shows it: what it may do and where its jobs' ends go, never its secret (only a hash is stored). */
export const KeyViewSchema = z.object({
  id: z.string().describe('the public part of the key (cck_<id>_…)'),
  name: z.string().nullable(),
  scopes: z.array(z.enum(SCOPES)),
  max_concurrency: z.number().int().nullable().describe("at most this many tasks of its jobs run at once, on all workers together; null: no cap"),
  webhook_url: z.string().nullable().describe('where the end of its jobs that name no webhook is posted; null: nowhere'),
  created_at: isoTime,
  last_used_at: nullableTime,
  last_used_from: z.string().nullable().describe('the address it was last used from'),
  revoked_at: nullableTime,
});
/** An API key, as the REST API shows it. */
export type KeyView = z.output<typeof KeyViewSchema>;

/** GET /api/series: tasks recorded per 10-second bucket over the last hour, oldest first. */
export const SeriesViewSchema = z.array(z.object({ t: z.number().int().describe('bucket start, epoch ms'), completed: z.number().int(), failed: z.number().int() }));

const perState = <T extends readonly [string, ...string[]]>(states: T) =>
  z.object(Object.fromEntries(states.map((s) => [s, z.number().int()])) as { [K in T[number]]: z.ZodNumber });

/** PUT /api/rate-limits: at most so many tasks of the types a pattern matches start per window. */
export const RateLimitBodySchema = z.object({
  pattern: z.string().min(1).max(200).describe('task types it applies to: a name, or a glob such as image.*'),
  limit: z.string().min(1).max(40).describe('<count>/<window>: 100/s, 6000/10m, 5/1500ms (a burst of up to count, then count per window)'),
});

/** A rate limit as the REST API shows it. */
export const RateLimitViewSchema = z.object({
  pattern: z.string(),
  limit: z.string().describe('as written: 100/s'),
  max: z.number().int().describe('tasks per window'),
  per_ms: z.number().int().describe('the window, in milliseconds'),
});
/** A rate limit as the REST API shows it. */
export type RateLimitView = z.output<typeof RateLimitViewSchema>;

/** GET /api/rate-limits. */
export const RateLimitListViewSchema = z.object({ rate_limits: z.array(RateLimitViewSchema) });

/** DELETE /api/rate-limits: which pattern's limit to remove. */
export const RateLimitDeleteQuerySchema = z.object({ pattern: z.string().min(1).max(200) });

/**
 * Running tasks against fair shares (GET /api/stats `sharing`, and the dashboard). An admin key
 * (or a foreman with authentication off) sees every owner and job; any other key sees its own
 * owner row and jobs, and every other owner only summed in `others`, without ids.
 */
export const SharingViewSchema = z.object({
  owners: z.array(z.object({
    owner: z.string().nullable().describe('the API key id; null: jobs submitted with authentication off'),
    running: z.number().int(),
    waiting: z.number().int().describe('tasks of its unfinished jobs not yet started'),
    share: z.number().describe('its fair share of running tasks, 0 to 1, were every job with work to keep running'),
    max_concurrency: z.number().int().nullable(),
    jobs: z.number().int().describe('its unfinished jobs'),
  })).describe("every owner with unfinished jobs; for a key that is not admin, only its own (none when it has no unfinished job)"),
  jobs: z.array(z.object({
    job_id: z.string(),
    owner: z.string().nullable(),
    priority: z.enum(PRIORITIES),
    weight: z.number(),
    max_concurrency: z.number().int().nullable(),
    running: z.number().int(),
    waiting: z.number().int().describe('tasks not yet started (some may wait for a retry or upstream nodes)'),
    share: z.number(),
  })).describe('the 100 unfinished jobs running the most; for a key that is not admin, the 100 of its own'),
  others: z.object({
    owners: z.number().int().describe('other owners with unfinished jobs'),
    jobs: z.number().int().describe('their unfinished jobs'),
    running: z.number().int(),
    waiting: z.number().int(),
    share: z.number().describe('their fair shares together, 0 to 1'),
  }).nullable().describe("for a key that is not admin: every other owner's unfinished jobs, summed, with no ids; null when `owners` and `jobs` list everyone (an admin key, or authentication off)"),
  rate_limits: z.array(RateLimitViewSchema.extend({ available: z.number().int().describe('tasks that may start now on this foreman') })),
}).describe("as this foreman's scheduler sees it (with several foremen, the others' running tasks as of its last look, within a second)");

/** GET /api/stats. */
export const StatsViewSchema = z.object({
  connected_workers: z.number().int(),
  total_capacity: z.number().int(),
  running_tasks: z.number().int(),
  total_jobs: z.number().int(),
  active_jobs: z.number().int(),
  completed_jobs: z.number().int(),
  failed_jobs: z.number().int(),
  cancelled_jobs: z.number().int(),
  total_tasks: z.number().int(),
  queued_tasks: z.number().int(),
  completed_tasks: z.number().int(),
  failed_tasks: z.number().int(),
  jobs: perState(JOB_STATES),
  tasks: perState(TASK_STATES),
  workers: z.object({ online: z.number().int(), offline: z.number().int() }),
  uptime_seconds: z.number().int(),
  retention: z.object({
    default_seconds: z.number().describe('how long a finished job is kept unless it set retentionMs'),
    retained_jobs: z.number().int().describe('finished jobs still kept'),
    retained_tasks: z.number().int().describe('tasks of finished jobs still kept (approximately: tasks of running jobs are counted by state too)'),
    pruned_jobs: z.number().int().describe('finished jobs pruned since the database was made'),
    pruned_tasks: z.number().int(),
    storage_bytes: z.number().int().nullable().describe('space the database takes (SQLite: file and WAL; PostgreSQL: tables and indexes)'),
  }),
  sharing: SharingViewSchema,
});
/** The foreman's statistics, as the REST API shows them. */
export type StatsView = z.output<typeof StatsViewSchema>;

/** GET /health: the fields health checks of task services read, plus the store and the connected workers. */
export const HealthViewSchema = z.object({
  status: z.enum(['healthy', 'degraded', 'stopping']).describe('degraded: the store cannot be reached or cannot grow, or a loop of the foreman makes no progress (see reason)'),
  reason: z.string().optional(),
  stalled_loops: z.array(z.string()).optional().describe('The loops that made no progress for --stall-after: dispatcher, lease reaper, pruner, …'),
  store: z.object({
    state: z.enum(['ok', 'unavailable', 'full']),
    since: isoTime,
    last_ok_at: isoTime,
    unreachable_for_seconds: z.number(),
  }),
  active_tasks: z.number().int(),
  queue_size: z.number().int(),
  cpu_percent: z.number(),
  memory_percent: z.number(),
  connected_workers: z.number().int(),
  database: z.enum(['sqlite', 'postgres']),
  timestamp: isoTime,
});
/** The foreman's health, as the REST API shows it. */
export type HealthView = z.output<typeof HealthViewSchema>;

/** POST /task/submit's answer. */
export const TaskSubmitViewSchema = z.object({
  status: z.enum(TASK_STATES),
  task_id: z.string(),
  position: z.number().int(),
  job_id: z.string(),
});
/** POST /task/submit's answer. */
export type TaskSubmitView = z.output<typeof TaskSubmitViewSchema>;

/** Every error answer: a stable `code`, a `message` that names the problem and the limit, and `detail` repeating it for FastAPI-style clients. */
export const ErrorBodySchema = z.object({
  code: z.string().describe('a stable CC_ERR_* code'),
  message: z.string(),
  detail: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});
/** An error answer of the REST API. */
export type ErrorBody = z.output<typeof ErrorBodySchema>;
