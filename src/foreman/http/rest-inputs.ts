/**
 * REST request bodies (snake_case) and their translation into the protocol's job spec.
 * Validation is zod's, so REST and WebSocket submissions fail with the same codes.
 */
import { z } from 'zod';
import { CrowdComputeError, JobSpecSchema, PRIORITIES, type JobSpec } from '../../protocol/index.ts';

const common = {
  name: z.string().optional(),
  priority: z.enum(PRIORITIES).optional(),
  timeout_ms: z.number().optional(),
  max_attempts: z.number().optional(),
  idempotency_key: z.string().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
};

export const RestJobBody = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('map'), code: z.string(), args: z.array(z.unknown()), chunk_size: z.number().optional(), ...common }),
  z.object({
    kind: z.literal('tasks'),
    tasks: z.array(z.object({
      type: z.string(), input: z.unknown().optional(), task_id: z.string().optional(), priority: z.enum(PRIORITIES).optional(),
      timeout_ms: z.number().optional(), max_attempts: z.number().optional(),
    })),
    ...common,
  }),
]);

/** Seed 001's POST /task/submit body. `payload.function` names the task type. */
export const TaskSubmitBody = z.object({
  task_id: z.string().min(1).max(200).optional(),
  payload: z.object({
    function: z.string().min(1),
    args: z.array(z.unknown()).optional(),
    kwargs: z.record(z.string(), z.unknown()).optional(),
    /** Extension: the handler's input as is, instead of args/kwargs. */
    input: z.unknown().optional(),
  }),
  priority: z.enum(PRIORITIES).optional(),
  timeout_ms: z.number().int().positive().optional(),
  max_attempts: z.number().int().positive().optional(),
  idempotency_key: z.string().optional(),
});

function invalid(error: z.ZodError, what: string): CrowdComputeError {
  const first = error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
  return new CrowdComputeError('CC_ERR_INVALID_JOB', `invalid ${what}: ${first}`);
}

const defined = <T extends Record<string, unknown>>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

function parseSpec(candidate: unknown, what: string): JobSpec {
  const spec = JobSpecSchema.safeParse(candidate);
  if (!spec.success) throw invalid(spec.error, what);
  return spec.data;
}

export function jobSpecFromRest(body: unknown): JobSpec {
  const b = RestJobBody.safeParse(body);
  if (!b.success) throw invalid(b.error, 'job');
  const v = b.data;
  const common = defined({ name: v.name, priority: v.priority, timeoutMs: v.timeout_ms, maxAttempts: v.max_attempts, idempotencyKey: v.idempotency_key, metadata: v.metadata });
  const candidate = v.kind === 'map'
    ? { kind: 'map', code: v.code, args: v.args, ...defined({ chunkSize: v.chunk_size }), ...common }
    : { kind: 'tasks', tasks: v.tasks.map((t) => defined({ type: t.type, input: t.input, taskId: t.task_id, priority: t.priority, timeoutMs: t.timeout_ms, maxAttempts: t.max_attempts })), ...common };
  return parseSpec(candidate, 'job');
}

/**
 * A seed-001 task submission becomes a job of one named task. Its input is `payload.input`
 * if given; otherwise the kwargs object, with `args` added under that key when present
 * (so `{kwargs: {a: 1, b: 2}}` reaches a handler exactly as the SDK's `submit(type, {a: 1, b: 2})`).
 */
export function jobSpecFromTaskSubmit(body: unknown): JobSpec {
  const b = TaskSubmitBody.safeParse(body);
  if (!b.success) throw invalid(b.error, 'task submission');
  const { payload } = b.data;
  const input = payload.input !== undefined
    ? payload.input
    : { ...(payload.kwargs ?? {}), ...(payload.args && payload.args.length > 0 ? { args: payload.args } : {}) };
  return parseSpec({
    kind: 'tasks',
    tasks: [defined({ type: payload.function, input, taskId: b.data.task_id })],
    ...defined({ priority: b.data.priority, timeoutMs: b.data.timeout_ms, maxAttempts: b.data.max_attempts, idempotencyKey: b.data.idempotency_key }),
  }, 'task submission');
}
