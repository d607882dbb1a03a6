/**
 * The WebSocket protocol: plain JSON objects with a `type`, so that a browser tab can speak it
 * as easily as the Node worker. Every message that crosses a socket is validated here, on
 * both sides. docs/protocol.md describes the conversation.
 */
import { z } from 'zod';
import { PRIORITIES, JOB_STATES, TASK_KINDS } from './states.ts';

const id = z.string().min(1).max(200);
const priority = z.enum(PRIORITIES);
const positiveInt = z.number().int().positive();
/** Any JSON value; the size limit is enforced on the frame, not here. */
const json = z.unknown();

export const WireErrorSchema = z.object({
  code: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

/** What a worker tells the foreman about the machine it runs on (used for placement later). */
export const ResourcesSchema = z.object({
  cpuCores: z.number().int().nonnegative().optional(),
  memoryMb: z.number().nonnegative().optional(),
  platform: z.string().max(100).optional(),
  runtime: z.string().max(100).optional(),
  gpu: z.number().int().nonnegative().optional(),
}).catchall(z.unknown());

/** A task the worker is still running, reported on hello so a reconnect keeps its leases. */
const RunningRef = z.object({ taskId: id, attempt: positiveInt });

// ---------------------------------------------------------------- job submission

const commonJobOptions = {
  name: z.string().max(200).optional(),
  priority: priority.optional(),
  /** Per-task deadline, measured on the worker from the moment the task starts. */
  timeoutMs: positiveInt.optional(),
  /** Attempts per task before it fails for good (1 = no retry). */
  maxAttempts: positiveInt.max(100).optional(),
  idempotencyKey: z.string().min(1).max(200).optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
};

export const NamedTaskSpecSchema = z.object({
  type: z.string().min(1).max(200),
  input: json.optional(),
  taskId: id.optional(),
  priority: priority.optional(),
  timeoutMs: positiveInt.optional(),
  maxAttempts: positiveInt.max(100).optional(),
});
export type NamedTaskSpec = z.infer<typeof NamedTaskSpecSchema>;

export const MapJobSpecSchema = z.object({
  kind: z.literal('map'),
  /** Source text of a self-contained function: it sees its argument and nothing else. */
  code: z.string().min(1),
  args: z.array(json),
  /** Arguments per task; omitted = chosen by the foreman from the argument count. */
  chunkSize: positiveInt.optional(),
  ...commonJobOptions,
});

export const TasksJobSpecSchema = z.object({
  kind: z.literal('tasks'),
  tasks: z.array(NamedTaskSpecSchema).min(1),
  ...commonJobOptions,
});

export const JobSpecSchema = z.discriminatedUnion('kind', [MapJobSpecSchema, TasksJobSpecSchema]);
export type MapJobSpec = z.infer<typeof MapJobSpecSchema>;
export type TasksJobSpec = z.infer<typeof TasksJobSpecSchema>;
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
  attempt: positiveInt,
  priority,
  timeoutMs: positiveInt.nullable(),
});
export type WireTask = z.infer<typeof WireTaskSchema>;

export const WelcomeSchema = z.object({
  type: z.literal('welcome'),
  protocol: z.string(),
  foremanId: z.string(),
  workerId: id,
  heartbeatIntervalMs: positiveInt,
  leaseTtlMs: positiveInt,
  maxPayloadBytes: positiveInt,
});

export const AssignTasksSchema = z.object({
  type: z.literal('assign_tasks'),
  tasks: z.array(WireTaskSchema),
  /** Source of the function of each map job among `tasks` that this connection has not seen yet. */
  code: z.record(z.string(), z.string()).optional(),
});

export const CancelTaskSchema = z.object({
  type: z.literal('cancel_task'),
  taskId: id,
  attempt: positiveInt,
  reason: z.string(),
});

/** Results the foreman has committed; the worker may forget them. */
export const ResultAckSchema = z.object({
  type: z.literal('result_ack'),
  tasks: z.array(RunningRef),
});

// ---------------------------------------------------------------- worker -> foreman

export const HelloSchema = z.object({
  type: z.literal('hello'),
  protocol: z.string(),
  role: z.literal('worker'),
  workerId: id,
  capacity: positiveInt.max(10_000),
  patterns: z.array(z.string().min(1).max(200)).max(1000),
  allowCode: z.boolean(),
  resources: ResourcesSchema.optional(),
  version: z.string().max(100).optional(),
  running: z.array(RunningRef).optional(),
});
export type Hello = z.infer<typeof HelloSchema>;

export const TaskErrorSchema = z.object({
  message: z.string(),
  name: z.string().optional(),
  stack: z.string().optional(),
  code: z.string().optional(),
  /** false = permanent: do not retry (NonRetryableError or classifyError said so). */
  retryable: z.boolean().optional(),
  /** Why the attempt ended, when the system ended it: timeout, cancelled, worker_lost, lease_expired, ... */
  reason: z.string().optional(),
});
export type TaskError = z.infer<typeof TaskErrorSchema>;

export const TaskOutcomeSchema = z.object({
  taskId: id,
  attempt: positiveInt,
  status: z.enum(['completed', 'failed', 'cancelled']),
  result: json.optional(),
  error: TaskErrorSchema.optional(),
  durationMs: z.number().nonnegative().optional(),
});
export type TaskOutcome = z.infer<typeof TaskOutcomeSchema>;

/** A single result, the shape seed 000 names; `task_results` carries several per frame. */
export const TaskResultSchema = TaskOutcomeSchema.extend({ type: z.literal('task_result') });
export const TaskResultsSchema = z.object({ type: z.literal('task_results'), results: z.array(TaskOutcomeSchema).min(1) });

export const HeartbeatSchema = z.object({
  type: z.literal('heartbeat'),
  running: z.array(RunningRef).optional(),
});

export const WorkerReadySchema = z.object({
  type: z.literal('worker_ready'),
  capacity: positiveInt.max(10_000).optional(),
});

/** The worker is shutting down: send it nothing new. */
export const WorkerDrainingSchema = z.object({
  type: z.literal('worker_draining'),
});

/** The worker gives tasks back unfinished (drain timeout passed): requeue them, not as failures. */
export const ReleaseTasksSchema = z.object({
  type: z.literal('release_tasks'),
  tasks: z.array(RunningRef).min(1),
  reason: z.string().max(500).optional(),
});

export const TaskProgressSchema = z.object({
  type: z.literal('task_progress'),
  taskId: id,
  attempt: positiveInt,
  progress: z.number().min(0).max(100),
  message: z.string().max(1000).optional(),
  data: z.record(z.string(), z.unknown()).optional(),
});

// ---------------------------------------------------------------- client <-> foreman

export const SubmitJobSchema = z.object({
  type: z.literal('submit_job'),
  requestId: z.string().max(100),
  job: JobSpecSchema,
  /** Also send this connection the job's progress and completion. Default true. */
  subscribe: z.boolean().optional(),
});

export const SubscribeJobSchema = z.object({
  type: z.literal('subscribe_job'),
  requestId: z.string().max(100).optional(),
  jobId: id,
});

export const CancelJobSchema = z.object({
  type: z.literal('cancel_job'),
  requestId: z.string().max(100).optional(),
  jobId: id,
});

export const JobAcceptedSchema = z.object({
  type: z.literal('job_accepted'),
  requestId: z.string(),
  jobId: id,
  totalTasks: z.number().int(),
  /** Tasks ahead of this job's first task in the queue when it was accepted. */
  position: z.number().int(),
  /** True when an idempotency key matched an existing job. */
  deduplicated: z.boolean(),
  taskIds: z.array(id).optional(),
});

export const JobCountsSchema = z.object({
  total: z.number().int(),
  completed: z.number().int(),
  failed: z.number().int(),
  cancelled: z.number().int(),
});
export type JobCounts = z.infer<typeof JobCountsSchema>;

export const JobProgressSchema = z.object({
  type: z.literal('job_progress'),
  jobId: id,
  state: z.enum(JOB_STATES),
  counts: JobCountsSchema,
});

export const JobCompletedSchema = z.object({
  type: z.literal('job_completed'),
  jobId: id,
  state: z.enum(JOB_STATES),
  counts: JobCountsSchema,
  /** Ordered results, when they fit in one frame; otherwise fetch GET /api/jobs/{id}/results. */
  results: z.array(json).optional(),
});

export const TaskProgressEventSchema = z.object({
  type: z.literal('task_progress_event'),
  jobId: id,
  taskId: id,
  progress: z.number(),
  message: z.string().optional(),
  data: z.record(z.string(), z.unknown()).optional(),
});

export const ErrorMessageSchema = z.object({
  type: z.literal('error'),
  requestId: z.string().optional(),
  code: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});

export const CancelAckSchema = z.object({
  type: z.literal('cancel_ack'),
  requestId: z.string().optional(),
  jobId: id,
  state: z.enum(JOB_STATES),
});

// ---------------------------------------------------------------- unions

/** Everything a foreman accepts on /ws, from workers and clients alike. */
export const InboundSchema = z.discriminatedUnion('type', [
  HelloSchema, HeartbeatSchema, WorkerReadySchema, TaskResultSchema, TaskResultsSchema, TaskProgressSchema,
  WorkerDrainingSchema, ReleaseTasksSchema, SubmitJobSchema, SubscribeJobSchema, CancelJobSchema,
]);
export type Inbound = z.infer<typeof InboundSchema>;

/** Everything a foreman sends on /ws. */
export const OutboundSchema = z.discriminatedUnion('type', [
  WelcomeSchema, AssignTasksSchema, CancelTaskSchema, ResultAckSchema,
  JobAcceptedSchema, JobProgressSchema, JobCompletedSchema, TaskProgressEventSchema, ErrorMessageSchema, CancelAckSchema,
]);
export type Outbound = z.infer<typeof OutboundSchema>;

export const INBOUND_TYPES: ReadonlySet<string> = new Set(InboundSchema.options.map((o) => o.shape.type.value));
export const OUTBOUND_TYPES: ReadonlySet<string> = new Set(OutboundSchema.options.map((o) => o.shape.type.value));
