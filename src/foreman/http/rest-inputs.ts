/**
 * REST requests to what the foreman acts on. Bodies are parsed with the schemas of
 * protocol/rest.ts (zod), so REST and WebSocket submissions fail with the same codes.
 * @internal
 */
import type { z } from 'zod';
import {
  CrowdComputeError, JobSpecSchema, MAX_TRACESTATE, RestJobSpecSchema, TaskSubmitBodySchema, describeIssues, parseTraceparent, type ErrorCode, type JobSpec,
} from '../../protocol/index.ts';

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

/**
 * A REST submission's trace context: the body's `trace_context`, else the W3C `traceparent`
 * (and `tracestate`) headers an instrumented HTTP client sends. A header that is not a valid
 * traceparent is ignored, as W3C asks: the job is then traced from the foreman's span on.
 */
export function withTraceHeaders(spec: JobSpec, headers: Record<string, string | string[] | undefined>): JobSpec {
  if (spec.traceContext) return spec;
  const traceparent = headers.traceparent;
  if (typeof traceparent !== 'string' || !parseTraceparent(traceparent)) return spec;
  const tracestate = headers.tracestate;
  const state = typeof tracestate === 'string' && tracestate.length <= MAX_TRACESTATE ? tracestate : undefined;
  return { ...spec, traceContext: state ? { traceparent: traceparent.trim(), tracestate: state } : { traceparent: traceparent.trim() } };
}
