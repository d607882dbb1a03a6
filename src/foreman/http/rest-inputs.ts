/**
 * REST requests to what the foreman acts on. Bodies are parsed with the schemas of
 * protocol/rest.ts (zod), so REST and WebSocket submissions fail with the same codes.
 * @internal
 */
import type { z } from 'zod';
import { CrowdComputeError, JobSpecSchema, RestJobSpecSchema, TaskSubmitBodySchema, describeIssues, type ErrorCode, type JobSpec } from '../../protocol/index.ts';

/** Parse a request part with its schema; a failure names the field and the rule, under `code`. */
export function parseRequest<S extends z.ZodType>(schema: S, value: unknown, what: string, code: ErrorCode = 'CC_ERR_BAD_MESSAGE'): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new CrowdComputeError(code, `invalid ${what}: ${describeIssues(parsed.error)}`);
}

/** POST /api/jobs: a snake_case job spec. */
export function jobSpecFromRest(body: unknown): JobSpec {
  return parseRequest(RestJobSpecSchema, body, 'job', 'CC_ERR_INVALID_JOB');
}

const defined = <T extends Record<string, unknown>>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/**
 * POST /task/submit becomes a job of one named task. Its input is `payload.input` if given;
 * otherwise the kwargs object, with `args` added under that key when present (so
 * `{kwargs: {a: 1, b: 2}}` reaches a handler exactly as the SDK's `submit(type, {a: 1, b: 2})`).
 */
export function jobSpecFromTaskSubmit(body: unknown): JobSpec {
  const b = parseRequest(TaskSubmitBodySchema, body, 'task submission', 'CC_ERR_INVALID_JOB');
  const { payload } = b;
  const input = payload.input !== undefined
    ? payload.input
    : { ...(payload.kwargs ?? {}), ...(payload.args && payload.args.length > 0 ? { args: payload.args } : {}) };
  return parseRequest(JobSpecSchema, {
    kind: 'tasks',
    tasks: [defined({ type: payload.function, input, taskId: b.task_id })],
    ...defined({ priority: b.priority, timeoutMs: b.timeout_ms, maxAttempts: b.max_attempts, idempotencyKey: b.idempotency_key, webhook: b.webhook }),
  }, 'task submission', 'CC_ERR_INVALID_JOB');
}
