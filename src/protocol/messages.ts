/**
 * The WebSocket protocol: plain JSON objects with a `type`, so that a browser tab can speak it
 * as easily as the Node worker. Every message that crosses a socket is validated here, on
 * both sides. docs/protocol.md describes the conversation.
 */
import { z } from 'zod';
import { PRIORITIES, JOB_STATES, TASK_KINDS } from './states.ts';
import { HelloAuthSchema } from './auth.ts';
import { CAPACITY_LIMIT, JOB_LIMITS, JOB_NAME_MAX, RESOURCE_LIMITS, describeAmount, type Bound } from './limits.ts';
import { MAX_TIME_AHEAD_MS, TimeFieldSchema, durationField } from './time-fields.ts';
import { WebhookUrlSchema } from './webhooks.ts';
import { TraceContextSchema } from './trace-context.ts';

const id = z.string().min(1).max(200);
const priority = z.enum(PRIORITIES);
/** The largest attempt number: the stores keep attempts as 32-bit integers. */
export const MAX_ATTEMPT = 2_147_483_647;
const positiveInt = z.number().int().positive();
/** An attempt number, as the stores can keep it (a larger one names no attempt that exists). */
const attempt = positiveInt.max(MAX_ATTEMPT);
/** A number within one of the limits (protocol/limits.ts), refused in the limits' own words: `chunkSize: must be at most 1000000`. */
function bounded(b: Bound) {
  const n = b.fractional ? z.number() : z.number().int('must be a whole number');
  return n.min(b.min, `must be at least ${describeAmount(b.min, b.unit)}`).max(b.max, `must be at most ${describeAmount(b.max, b.unit)}`);
}
/** Any JSON value; the size limit is enforced on the frame, not here. */
const json = z.unknown();

/** An error as it travels in messages and REST bodies. */
export const WireErrorSchema = z.object({
  code: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

/** What a worker tells the foreman about the machine it runs on. */
export const ResourcesSchema = z.object({
  cpuCores: bounded({ ...RESOURCE_LIMITS.cpu, fractional: false }).optional(),
  memoryMb: bounded(RESOURCE_LIMITS.memoryMb).optional(),
  platform: z.string().max(100).optional(),
  runtime: z.string().max(100).optional(),
  gpu: bounded(RESOURCE_LIMITS.gpu).optional(),
  /** Free-form labels a task may require (`region: eu`). */
  labels: z.record(z.string().max(100), z.string().max(200)).optional(),
}).catchall(z.unknown());

/**
 * What a task needs of the worker that runs it: CPU cores, memory, GPUs (free on that worker,
 * less what its other tasks require) and labels it must have.
 */
export const RequirementsSchema = z.object({
  cpu: z.number().positive().max(RESOURCE_LIMITS.cpu.max, `must be at most ${RESOURCE_LIMITS.cpu.max}`).optional(),
  memoryMb: z.number().positive().max(RESOURCE_LIMITS.memoryMb.max, `must be at most ${describeAmount(RESOURCE_LIMITS.memoryMb.max, 'MiB')}`).optional(),
  gpu: bounded(RESOURCE_LIMITS.gpu).optional(),
  labels: z.record(z.string().max(100), z.string().max(200)).optional(),
});
/** What a task needs of the worker that runs it. */
export type Requirements = z.infer<typeof RequirementsSchema>;

/** One attempt of one task: what leases, acks and hand-backs name. */
export const TaskRefSchema = z.object({ taskId: id, attempt });
/** One attempt of one task. */
export type TaskRef = z.infer<typeof TaskRefSchema>;

// ---------------------------------------------------------------- job submission

/** Options every job takes, whatever its kind. */
export const JobOptionsSchema = z.object({
  /** A name for people (lists, the dashboard). */
  name: z.string().max(JOB_NAME_MAX).optional(),
  /** Tasks of a higher priority run first; within one, jobs share the workers. Default normal. */
  priority: priority.optional(),
  /** Per-task deadline, measured on the worker from the moment the task starts; at most 24 days. */
  timeoutMs: bounded(JOB_LIMITS.timeoutMs).optional(),
  /** Attempts per task before it fails for good (1 = no retry); at most 100. */
  maxAttempts: bounded(JOB_LIMITS.maxAttempts).optional(),
  /** Submitting again with the same key returns the same job instead of a new one. */
  idempotencyKey: z.string().min(1).max(200).optional(),
  /** Anything the caller wants kept with the job. */
  metadata: z.record(z.string(), z.unknown()).optional(),
  /** How long the job, its tasks and results are kept once it has finished; default the foreman's --retention. */
  retentionMs: bounded(JOB_LIMITS.retentionMs).optional(),
  /**
   * How long a task may wait for a worker to start it; past that it fails with CC_ERR_NO_WORKER
   * (say, no connected worker serves its type). Default the foreman's --queue-timeout (none).
   * Running tasks keep timeoutMs. At most a year.
   */
  queueTimeoutMs: bounded(JOB_LIMITS.queueTimeoutMs).optional(),
  /**
   * Open for appending: more tasks (or, for a map job, more arguments) come in later parts
   * (`append_tasks`, POST /api/jobs/{id}/tasks) until the job is sealed. An open job does not
   * finish while open, so a job larger than one message needs no raised limit. Its tasks run as
   * they arrive. Not for graphs.
   */
  open: z.boolean().optional(),
  /**
   * Its share of the workers against the same owner's other jobs of its priority: a job of
   * weight 3 runs three times as many tasks at once as one of weight 1. Default 1.
   */
  weight: bounded(JOB_LIMITS.weight).optional(),
  /** At most this many of its tasks run at once, on all workers together. Default: no cap. */
  maxConcurrency: bounded(JOB_LIMITS.maxConcurrency).optional(),
  /**
   * Not to run before this time (epoch ms or RFC 3339): its tasks wait as `scheduled` until then.
   * At most a year ahead; a time already past runs at once. Not with `delay`.
   */
  runAt: TimeFieldSchema.optional(),
  /** Not to run until this long after submission (ms, or `10m`); at most a year. Not with `runAt`. */
  delay: durationField(MAX_TIME_AHEAD_MS).optional(),
  /**
   * An open job that gets no part and no seal for this long (ms, or `1h`) is closed as
   * `onOpenTimeout` says, so that a producer that went away does not leave it open for ever.
   * Each part pushes the time back. Default the foreman's --open-timeout (1 h); 0 = never.
   * Only for open jobs; at most a year.
   */
  openTimeout: durationField(MAX_TIME_AHEAD_MS).optional(),
  /**
   * What the open timeout does: `cancel` (default) ends the job cancelled, its tasks not yet
   * finished cancelled with an error naming the timeout (results already in stay); `seal` seals
   * it, and the tasks it has run to the end as if the producer had sealed it.
   */
  onOpenTimeout: z.enum(['seal', 'cancel']).optional(),
  /**
   * A time (epoch ms or RFC 3339) by which the job must be done: past it, its tasks not yet
   * finished (scheduled, queued or running) fail with CC_ERR_DEADLINE and running ones are told
   * to stop. Must be in the future, at most a year ahead, and after `runAt` / `delay`.
   */
  deadline: TimeFieldSchema.optional(),
  /**
   * An http(s) URL the job's end is posted to (signed; retried with backoff until it answers
   * 2xx). Default: the submitting key's webhook, if it has one. See docs/operations.md, "Webhooks".
   */
  webhook: WebhookUrlSchema.optional(),
  /**
   * The submitter's span (W3C traceparent and tracestate): the foreman's and the workers' spans
   * for this job join its trace. The SDK fills it in from the active OpenTelemetry context; over
   * REST a `traceparent` header does the same.
   */
  traceContext: TraceContextSchema.optional(),
});
/** Options every job takes, whatever its kind. */
export type JobOptions = z.infer<typeof JobOptionsSchema>;

/** One named task of a `tasks` job: a type routed by handler pattern, and its input. */
export const NamedTaskSpecSchema = z.object({
  type: z.string().min(1).max(200),
  input: json.optional(),
  taskId: id.optional(),
  priority: priority.optional(),
  timeoutMs: bounded(JOB_LIMITS.timeoutMs).optional(),
  maxAttempts: bounded(JOB_LIMITS.maxAttempts).optional(),
  /** Resources the worker must have free (and labels it must have) to run it. */
  requires: RequirementsSchema.optional(),
  /** Files it carries: ids of files uploaded with POST /api/files (client.uploadFile). */
  files: z.array(id).max(100).optional(),
  /** Not to run before this time; overrides the job's `runAt` / `delay` for this task. Not with `delay`. */
  runAt: TimeFieldSchema.optional(),
  /** Not to run until this long after submission; overrides the job's. Not with `runAt`. */
  delay: durationField(MAX_TIME_AHEAD_MS).optional(),
});
/** One named task of a `tasks` job. */
export type NamedTaskSpec = z.infer<typeof NamedTaskSpecSchema>;

/** The languages a map job's function may be written in. */
export const CODE_LANGUAGES = ['javascript', 'python'] as const;
/** One of {@link CODE_LANGUAGES}. */
export type CodeLanguage = (typeof CODE_LANGUAGES)[number];
/**
 * The task type of a map job's tasks, by its function's language: what a worker's claim selects
 * by, so that a task goes only to a worker that runs its language.
 */
export const MAP_TASK_TYPES: Readonly<Record<CodeLanguage, string>> = { javascript: 'map', python: 'map.python' };
/** The map task types of these languages, each once, in a fixed order. */
export function mapTaskTypes(languages: readonly CodeLanguage[]): string[] {
  return CODE_LANGUAGES.filter((l) => languages.includes(l)).map((l) => MAP_TASK_TYPES[l]);
}

/** A map job: a self-contained function and its arguments; one call per argument. */
export const MapJobSpecSchema = z.object({
  kind: z.literal('map'),
  /**
   * Source text of a self-contained function: it sees its argument and nothing else. JavaScript:
   * a function expression or declaration. Python: exactly one top-level `def` (no decorators),
   * which may import standard-library modules inside itself.
   */
  code: z.string().min(1),
  /** The function's language (default `javascript`). Python functions run in Pyodide (CPython in WebAssembly) on Node workers and browser tabs. */
  language: z.enum(CODE_LANGUAGES).optional(),
  args: z.array(json),
  /**
   * Arguments per task; omitted = chosen by the foreman from the argument count (for an open
   * job, whose count is not known yet: 100). At most 1,000,000.
   */
  chunkSize: bounded(JOB_LIMITS.chunkSize).optional(),
  /** The function's name, for lists (the SDK sends it; source text loses a `const f = …` name). */
  functionName: z.string().max(200).optional(),
  /**
   * Where its tasks may run: on any worker (default), only on Node workers, or only in browser
   * tabs that joined through a join link. Browser tabs never run named tasks.
   */
  runOn: z.enum(['any', 'node', 'browser']).optional(),
  ...JobOptionsSchema.shape,
});

/** A job of named tasks, each routed to workers whose handler patterns match its type. */
export const TasksJobSpecSchema = z.object({
  kind: z.literal('tasks'),
  /** At least one, unless the job is open (its tasks then come in appends). */
  tasks: z.array(NamedTaskSpecSchema),
  ...JobOptionsSchema.shape,
});

/** A graph node's id: letters, digits, `_`, `-` and `.`. */
const nodeId = z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, 'a node id is 1 to 100 letters, digits, _, - or .');

/** Input adapters: how a node reads what its upstream nodes write (FlowKit's names). */
export const INPUT_ADAPTERS = ['pull.from_artifacts', 'pull.from_artifacts.rechunk:size'] as const;
/** An input adapter's name. */
export type InputAdapter = (typeof INPUT_ADAPTERS)[number];

/** What an input adapter reads, and how. */
export const InputArgsSchema = z.object({
  /** The upstream nodes whose artifacts it reads (they are dependencies too). */
  fromNodes: z.array(nodeId).min(1).max(100),
  /** How often to look for new artifacts while upstream nodes still run. Default 300 ms. */
  pollMs: bounded({ min: 1, max: 60_000, unit: 'ms' }).optional(),
  /**
   * True (default): start as soon as upstream nodes have written artifacts, and read them as
   * they come until every upstream node is done. False: start when they are all completed.
   */
  eofOnTaskDone: z.boolean().optional(),
  /** rechunk:size: items per batch. */
  size: bounded({ min: 1, max: 1_000_000 }).optional(),
  /** rechunk:size: the key of each artifact holding its list of items (default: the artifact is the list). */
  metaListKey: z.string().min(1).max(200).optional(),
});
/** What an input adapter reads, and how. */
export type InputArgs = z.infer<typeof InputArgsSchema>;

/** One node of a graph: a task type with its input, the nodes it waits for, and how it reads them. */
export const GraphNodeSpecSchema = z.object({
  id: nodeId,
  type: z.string().min(1).max(200),
  input: json.optional(),
  /** Nodes that must be completed before this one starts (or, with an adapter, that it reads). */
  dependsOn: z.array(nodeId).max(100).optional(),
  inputAdapter: z.enum(INPUT_ADAPTERS).optional(),
  inputArgs: InputArgsSchema.optional(),
  priority: priority.optional(),
  timeoutMs: bounded(JOB_LIMITS.timeoutMs).optional(),
  maxAttempts: bounded(JOB_LIMITS.maxAttempts).optional(),
  /** Resources the worker must have free (and labels it must have) to run it. */
  requires: RequirementsSchema.optional(),
  /** Its failure does not fail the graph: the nodes after it go on without what it did not write. */
  optional: z.boolean().optional(),
  /** Files it carries: ids of files uploaded with POST /api/files (client.uploadFile). */
  files: z.array(id).max(100).optional(),
});
/** One node of a graph. */
export type GraphNodeSpec = z.infer<typeof GraphNodeSpecSchema>;

/** A task graph, submitted as one job: each node a task; the job's result is the `output` node's. */
export const GraphJobSpecSchema = z.object({
  kind: z.literal('graph'),
  nodes: z.array(GraphNodeSpecSchema).min(1).max(1_000),
  /** The node whose result is the graph's; default the last node nothing depends on. */
  output: nodeId.optional(),
  ...JobOptionsSchema.shape,
});
/** A task graph as submitted. */
export type GraphJobSpec = z.infer<typeof GraphJobSpecSchema>;

/** A job as submitted: a map job, a job of named tasks, or a task graph, told apart by `kind`. */
export const JobSpecSchema = z.discriminatedUnion('kind', [MapJobSpecSchema, TasksJobSpecSchema, GraphJobSpecSchema]);
/** A map job as submitted. */
export type MapJobSpec = z.infer<typeof MapJobSpecSchema>;
/** A job of named tasks as submitted. */
export type TasksJobSpec = z.infer<typeof TasksJobSpecSchema>;
/** A job as submitted. */
export type JobSpec = z.infer<typeof JobSpecSchema>;

// ---------------------------------------------------------------- foreman -> worker

/** One task as a worker receives it. Map tasks carry a chunk of arguments as `input`. */
export const WireTaskSchema = z.object({
  taskId: id,
  jobId: id,
  index: z.number().int().nonnegative(),
  kind: z.enum(TASK_KINDS),
  type: z.string(),
  input: json,
  attempt,
  priority,
  timeoutMs: positiveInt.nullable(),
  /** Map tasks: the index of the chunk's first argument in the whole job. */
  argOffset: z.number().int().nonnegative().optional(),
  /**
   * A task that ran before and recorded batches: its last checkpoint and the batches already
   * done, so this attempt resumes where the last one stopped (batch handlers skip those batches).
   */
  resume: z.object({ checkpoint: json.optional(), batches: z.array(z.string()) }).optional(),
  /**
   * Files the task carries, with where to download them: `url` is a path on the foreman,
   * signed for this task's worker (valid for an hour), to fetch from the foreman's address.
   */
  files: z.array(z.object({ fileId: z.string(), filename: z.string(), size: z.number().int(), contentType: z.string(), url: z.string() })).optional(),
  /** The job's metadata, when it has some (`task.getMetadata(key)`). */
  metadata: z.record(z.string(), z.unknown()).optional(),
  /**
   * The foreman's span that dispatched this attempt, when the job is traced: the worker's span
   * for running it is its child, and the handler runs within that span.
   */
  traceContext: TraceContextSchema.optional(),
  /** A graph node's task: its node id and, when it reads upstream artifacts, how. */
  graph: z.object({
    nodeId: z.string(),
    inputAdapter: z.enum(INPUT_ADAPTERS).optional(),
    inputArgs: InputArgsSchema.optional(),
  }).optional(),
});
/** One task as a worker receives it. */
export type WireTask = z.infer<typeof WireTaskSchema>;

/** The foreman accepted a worker's hello: the session's timings and limits. */
export const WelcomeSchema = z.object({
  type: z.literal('welcome'),
  protocol: z.string(),
  foremanId: z.string(),
  workerId: id,
  heartbeatIntervalMs: positiveInt,
  leaseTtlMs: positiveInt,
  maxPayloadBytes: positiveInt,
});

/** Tasks for a worker, never more than its free capacity. */
export const AssignTasksSchema = z.object({
  type: z.literal('assign_tasks'),
  tasks: z.array(WireTaskSchema),
  /** Source of the function of each map job among `tasks` that this connection has not seen yet. */
  code: z.record(z.string(), z.string()).optional(),
  /** The language of each of those functions that is not JavaScript (`python`); a job not listed is JavaScript. */
  languages: z.record(z.string(), z.enum(CODE_LANGUAGES)).optional(),
  /** Names of those map jobs, for people (a browser tab shows what it works on). */
  jobNames: z.record(z.string(), z.string().max(200)).optional(),
});

/** Stop running that attempt of that task (cancelled, or taken back from the worker). */
export const CancelTaskSchema = z.object({
  type: z.literal('cancel_task'),
  taskId: id,
  attempt,
  reason: z.string(),
  /** Who stopped it: a cancellation (`coordinator`, the default), or the foreman taking it back (`lease_lost`). */
  cause: z.enum(['coordinator', 'lease_lost']).optional(),
});

/** Results the foreman has committed; the worker may forget them. */
export const ResultAckSchema = z.object({
  type: z.literal('result_ack'),
  tasks: z.array(TaskRefSchema),
  /**
   * Outcomes among `tasks` that the store could not record as sent (a value the database
   * refuses): the task failed with `error` (CC_ERR_RESULT_REFUSED) instead.
   */
  refused: z.array(TaskRefSchema.extend({ error: WireErrorSchema })).optional(),
});

/** Upstream artifacts for a graph node's input adapter, and whether the upstream nodes are done. */
export const ArtifactsPulledSchema = z.object({
  type: z.literal('artifacts_pulled'),
  requestId: z.string().max(100),
  artifacts: z.array(z.object({ seq: z.number().int(), nodeId: z.string(), batchUid: z.string(), data: json })),
  /** Every upstream node had ended before these were read: once they are consumed, nothing more will come. */
  upstreamDone: z.boolean(),
});

/** The answer to a `task_record`: recorded, or not (the attempt is no longer this worker's). */
export const TaskRecordAckSchema = z.object({
  type: z.literal('task_record_ack'),
  requestId: z.string().max(100),
  /** False when the task no longer runs under that attempt on this worker: stop working on it. */
  recorded: z.boolean(),
});

/**
 * The answer to a heartbeat. It tells a worker that the foreman still hears it, which a
 * WebSocket ping cannot do for a peer whose API does not expose pings (a browser's).
 */
export const HeartbeatAckSchema = z.object({
  type: z.literal('heartbeat_ack'),
  /** Tasks of the heartbeat whose leases were extended. */
  held: z.number().int().nonnegative(),
});

// ---------------------------------------------------------------- worker -> foreman

/** Opens a worker session: who the worker is, what it runs, and what it is still running. */
export const HelloSchema = z.object({
  type: z.literal('hello'),
  protocol: z.string(),
  role: z.literal('worker'),
  workerId: id,
  capacity: bounded(CAPACITY_LIMIT),
  patterns: z.array(z.string().min(1).max(200)).max(1000),
  allowCode: z.boolean(),
  /**
   * With `allowCode`: the languages of shipped functions it runs. Omitted: JavaScript only (a
   * worker from before Python map jobs); the Node worker and browser tabs run both.
   */
  codeLanguages: z.array(z.enum(CODE_LANGUAGES)).max(10).optional(),
  resources: ResourcesSchema.optional(),
  version: z.string().max(100).optional(),
  running: z.array(TaskRefSchema).optional(),
  /** Proof of the worker's token; required unless the foreman runs with --insecure. */
  auth: HelloAuthSchema.optional(),
});
/** A worker's hello. */
export type Hello = z.infer<typeof HelloSchema>;

/** Why an attempt failed, as a worker reports it and the store keeps it. */
export const TaskErrorSchema = z.object({
  message: z.string(),
  name: z.string().optional(),
  stack: z.string().optional(),
  code: z.string().optional(),
  /** false = permanent: do not retry (NonRetryableError or classifyError said so). */
  retryable: z.boolean().optional(),
  /** Why the attempt ended, when the system ended it: timeout, cancelled, worker_lost, lease_expired, ... */
  reason: z.string().optional(),
  /** What the error is about, for programs: e.g. a map chunk's failed arguments (`failedArguments`, `argumentIndex`). */
  details: z.record(z.string(), z.unknown()).optional(),
});
/** Why an attempt failed. */
export type TaskError = z.infer<typeof TaskErrorSchema>;

/** How one attempt of a task ended. */
export const TaskOutcomeSchema = z.object({
  taskId: id,
  attempt,
  status: z.enum(['completed', 'failed', 'cancelled']),
  result: json.optional(),
  error: TaskErrorSchema.optional(),
  durationMs: z.number().nonnegative().optional(),
  /** The worker's span that ran the attempt, when it was traced: the foreman's span for committing the outcome is its child. */
  traceContext: TraceContextSchema.optional(),
});
/** How one attempt of a task ended. */
export type TaskOutcome = z.infer<typeof TaskOutcomeSchema>;

/** One outcome as a message of its own; `task_results` carries several in one. */
export const TaskResultSchema = TaskOutcomeSchema.extend({ type: z.literal('task_result') });
/** Several outcomes in one message: what a busy worker sends. */
export const TaskResultsSchema = z.object({ type: z.literal('task_results'), results: z.array(TaskOutcomeSchema).min(1) });

/** The worker is alive and still runs these tasks: their leases are extended. */
export const HeartbeatSchema = z.object({
  type: z.literal('heartbeat'),
  running: z.array(TaskRefSchema).optional(),
  assignments: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional()
    .describe('how many assign_tasks messages the worker had read on this connection when it wrote this heartbeat: tasks sent in later ones are not expected in `running` yet (without it, the foreman judges by when heartbeats arrive, which a busy foreman reading several at once can misjudge)'),
});

/** The worker takes work again (after a drain) or changes its capacity. */
export const WorkerReadySchema = z.object({
  type: z.literal('worker_ready'),
  capacity: bounded(CAPACITY_LIMIT).optional(),
});

/** The worker is shutting down: send it nothing new. */
export const WorkerDrainingSchema = z.object({
  type: z.literal('worker_draining'),
});

/** The worker gives tasks back unfinished (drain timeout passed): requeue them, not as failures. */
export const ReleaseTasksSchema = z.object({
  type: z.literal('release_tasks'),
  tasks: z.array(TaskRefSchema).min(1),
  reason: z.string().max(500).optional(),
});

/**
 * A graph node's input adapter reads its upstream nodes' artifacts, numbered after `afterSeq`.
 * Only the worker running that attempt of a task of the graph may ask.
 */
export const PullArtifactsSchema = z.object({
  type: z.literal('pull_artifacts'),
  requestId: z.string().max(100),
  taskId: id,
  attempt,
  fromNodes: z.array(z.string()).min(1).max(100),
  afterSeq: z.number().int().nonnegative(),
  limit: positiveInt.max(10_000),
});

/** The longest batch uid, in characters. */
export const MAX_BATCH_UID = 200;

/**
 * What a batch handler records while it runs, applied in one transaction: a batch done (with
 * its metrics), artifacts written under batch uids, the latest checkpoint, and that the task's
 * artifacts are complete. Answered by `task_record_ack` (or an `error` with the `requestId`).
 */
export const TaskRecordSchema = z.object({
  type: z.literal('task_record'),
  requestId: z.string().max(100),
  taskId: id,
  attempt,
  batch: z.object({ uid: z.string().min(1).max(MAX_BATCH_UID), metrics: z.record(z.string(), z.number()).optional() }).optional(),
  artifacts: z.array(z.object({ batchUid: z.string().min(1).max(MAX_BATCH_UID), data: json })).max(1_000).optional(),
  /** The state to resume from; absent = unchanged. */
  checkpoint: json.optional(),
  artifactsComplete: z.boolean().optional(),
});
/** What a batch handler records while it runs. */
export type TaskRecordMessage = z.infer<typeof TaskRecordSchema>;

/** A handler's progress on one attempt, passed on to whoever watches the job. */
export const TaskProgressSchema = z.object({
  type: z.literal('task_progress'),
  taskId: id,
  attempt,
  progress: z.number().min(0).max(100),
  message: z.string().max(1000).optional(),
  data: z.record(z.string(), z.unknown()).optional(),
});

// ---------------------------------------------------------------- client <-> foreman

/**
 * One part of an open job, as both the WebSocket (`append_tasks`) and REST
 * (POST /api/jobs/{id}/tasks) take it.
 */
export const AppendPartShape = {
  /** Named tasks, for a `tasks` job. */
  tasks: z.array(NamedTaskSpecSchema).optional(),
  /**
   * Arguments, for a map job. Every part but the last must hold a whole number of chunks
   * (a multiple of the job's chunkSize), so each task keeps its place in the results.
   */
  args: z.array(json).optional(),
  /**
   * Where this part starts: the job's task count (named tasks) or argument count (map) before
   * it. When given, a part sent twice (a retry after a lost answer) is appended once, and a part
   * that does not follow the last one is refused. Omitted: appended at the end.
   */
  at: z.number().int().nonnegative().optional(),
  /** This is the last part: the job is sealed and finishes when its tasks do. */
  seal: z.boolean().optional(),
};

/** Submit a job; answered by `job_accepted` once it is committed (or by `error`). */
export const SubmitJobSchema = z.object({
  type: z.literal('submit_job'),
  requestId: z.string().max(100),
  job: JobSpecSchema,
  /** Also send this connection the job's progress and completion. Default true. */
  subscribe: z.boolean().optional(),
});

/** Follow a job's progress and completion (a finished job answers at once). */
export const SubscribeJobSchema = z.object({
  type: z.literal('subscribe_job'),
  requestId: z.string().max(100).optional(),
  jobId: id,
});

/** Cancel a job; answered by `cancel_ack`. */
export const CancelJobSchema = z.object({
  type: z.literal('cancel_job'),
  requestId: z.string().max(100).optional(),
  jobId: id,
});

/**
 * More of an open job: named tasks (a `tasks` job) or arguments (a map job), and whether this
 * is the last part (`seal`). Answered by `tasks_appended` once committed (or by `error`).
 */
export const AppendTasksSchema = z.object({
  type: z.literal('append_tasks'),
  requestId: z.string().max(100),
  jobId: id,
  ...AppendPartShape,
});

/** An append is committed. */
export const TasksAppendedSchema = z.object({
  type: z.literal('tasks_appended'),
  requestId: z.string(),
  jobId: id,
  /** The job's tasks (for a map job, its arguments are `argCount`) after this part. */
  totalTasks: z.number().int(),
  argCount: z.number().int().nullable(),
  /** The job takes no more parts. */
  sealed: z.boolean(),
  /** True when this part (same `at`) was already appended: nothing was added again. */
  deduplicated: z.boolean(),
});

/** A submission is committed. */
export const JobAcceptedSchema = z.object({
  type: z.literal('job_accepted'),
  requestId: z.string(),
  jobId: id,
  totalTasks: z.number().int(),
  /** Tasks ahead of this job's first task in the queue when it was accepted, counted up to 10,000. */
  position: z.number().int(),
  /** True when an idempotency key matched an existing job. */
  deduplicated: z.boolean(),
  taskIds: z.array(id).optional(),
  /** Things the submitter should know: e.g. no connected worker handles one of its task types. */
  warnings: z.array(z.string()).optional(),
});

/** How many of a job's tasks ended, and how. */
export const JobCountsSchema = z.object({
  total: z.number().int(),
  completed: z.number().int(),
  failed: z.number().int(),
  cancelled: z.number().int(),
});
/** How many of a job's tasks ended, and how. */
export type JobCounts = z.infer<typeof JobCountsSchema>;

/** A job moved (sent at most every 100 ms per job). */
export const JobProgressSchema = z.object({
  type: z.literal('job_progress'),
  jobId: id,
  state: z.enum(JOB_STATES),
  counts: JobCountsSchema,
});

/** A job ended. */
export const JobCompletedSchema = z.object({
  type: z.literal('job_completed'),
  jobId: id,
  state: z.enum(JOB_STATES),
  counts: JobCountsSchema,
  /** Ordered results, when they fit in one frame; otherwise fetch GET /api/jobs/{id}/results. */
  results: z.array(json).optional(),
});

/** A handler reported progress on one of the job's tasks. */
export const TaskProgressEventSchema = z.object({
  type: z.literal('task_progress_event'),
  jobId: id,
  taskId: id,
  progress: z.number(),
  message: z.string().optional(),
  data: z.record(z.string(), z.unknown()).optional(),
});

/** A message was refused or a request failed; `requestId` says which, when it had one. */
export const ErrorMessageSchema = z.object({
  type: z.literal('error'),
  requestId: z.string().optional(),
  code: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

/** A cancellation is committed: the job's state after it. */
export const CancelAckSchema = z.object({
  type: z.literal('cancel_ack'),
  requestId: z.string().optional(),
  jobId: id,
  state: z.enum(JOB_STATES),
});

// ---------------------------------------------------------------- unions

/** Messages only a worker sends (after its hello). */
const WORKER_MESSAGES = [
  HelloSchema, HeartbeatSchema, WorkerReadySchema, TaskResultSchema, TaskResultsSchema, TaskProgressSchema,
  WorkerDrainingSchema, ReleaseTasksSchema, TaskRecordSchema, PullArtifactsSchema,
] as const;
/** Messages any connection may send. */
const CLIENT_MESSAGES = [SubmitJobSchema, AppendTasksSchema, SubscribeJobSchema, CancelJobSchema] as const;

/** Everything a foreman accepts on /ws, from workers and clients alike. */
export const InboundSchema = z.discriminatedUnion('type', [...WORKER_MESSAGES, ...CLIENT_MESSAGES]);
/** A message the foreman accepts. */
export type Inbound = z.infer<typeof InboundSchema>;
/** A message only workers send. */
export type WorkerInbound = z.infer<(typeof WORKER_MESSAGES)[number]>;
/** A message any client may send. */
export type ClientInbound = z.infer<(typeof CLIENT_MESSAGES)[number]>;

/** Everything a foreman sends on /ws. */
export const OutboundSchema = z.discriminatedUnion('type', [
  WelcomeSchema, AssignTasksSchema, CancelTaskSchema, ResultAckSchema, HeartbeatAckSchema, TaskRecordAckSchema, ArtifactsPulledSchema,
  JobAcceptedSchema, TasksAppendedSchema, JobProgressSchema, JobCompletedSchema, TaskProgressEventSchema, ErrorMessageSchema, CancelAckSchema,
]);
/** A message the foreman sends. */
export type Outbound = z.infer<typeof OutboundSchema>;

/** The `type` of every message a foreman accepts. */
export const INBOUND_TYPES: ReadonlySet<string> = new Set(InboundSchema.options.map((o) => o.shape.type.value));
/** The `type` of every message a foreman sends. */
export const OUTBOUND_TYPES: ReadonlySet<string> = new Set(OutboundSchema.options.map((o) => o.shape.type.value));
const WORKER_TYPES: ReadonlySet<string> = new Set(WORKER_MESSAGES.map((o) => o.shape.type.value));

/** True for the messages only a worker sends; the rest are a client's. */
export function isWorkerMessage(message: Inbound): message is WorkerInbound {
  return WORKER_TYPES.has(message.type);
}
