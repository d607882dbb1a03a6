/**
 * Route schemas for the OpenAPI document, generated from the zod schemas of protocol/rest.ts
 * (zod's own JSON Schema output), so the document cannot drift from what the routes parse
 * and return. Fastify does not validate or serialize with them: requests are parsed with the
 * same zod schemas in the handlers, so REST and WebSocket share one set of rules and codes.
 * @internal
 */
import { z } from 'zod';
import { ErrorBodySchema } from '../../protocol/index.ts';

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io, target: 'openapi-3.0', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

const ERROR_DESCRIPTIONS: Record<number, string> = {
  401: 'No API key, or one that is wrong or revoked (CC_ERR_UNAUTHORIZED)',
  403: 'The API key lacks the scope this needs (CC_ERR_FORBIDDEN)',
  400: 'Bad input: the message names the field and the rule (CC_ERR_INVALID_JOB, CC_ERR_INVALID_SCHEDULE, CC_ERR_BAD_JSON, CC_ERR_BAD_MESSAGE, CC_ERR_CODE_COMPILE)',
  404: 'No such job, task or schedule (CC_ERR_JOB_NOT_FOUND, CC_ERR_TASK_NOT_FOUND, CC_ERR_SCHEDULE_NOT_FOUND), or a job pruned after its retention (CC_ERR_JOB_PRUNED)',
  409: 'Conflict: a task or schedule with this id exists (CC_ERR_TASK_EXISTS, CC_ERR_SCHEDULE_EXISTS), nothing failed or was cancelled to retry (CC_ERR_NOTHING_TO_RETRY), the job takes no more tasks (CC_ERR_JOB_SEALED), or a part does not start where the job ends (CC_ERR_APPEND_CONFLICT)',
  413: 'Too large: the message names the limit (CC_ERR_PAYLOAD_TOO_LARGE)',
  429: 'Too many failed credential checks from this address (CC_ERR_RATE_LIMITED)',
  503: 'The database cannot be reached right now (CC_ERR_STORE_UNAVAILABLE, with Retry-After), or the foreman is shutting down (CC_ERR_SHUTTING_DOWN)',
  507: 'The database cannot grow: full disk or size limit (CC_ERR_STORE_FULL)',
};

/** Every route may answer these: the store away, the foreman stopping, and the unexpected. */
const ALWAYS = [503, 500];

/** What a route documents. */
export interface RouteDoc {
  /** The operation's id in the OpenAPI document: a verb and a noun, camelCase (listJobs). */
  operationId: string;
  tags: string[];
  summary: string;
  description?: string;
  params?: z.ZodType;
  querystring?: z.ZodType;
  body?: z.ZodType;
  /** Success status and shape of the answer. */
  response: Record<number, z.ZodType>;
  /** Error statuses this route answers with (besides 500). */
  errors?: number[];
}

/** A Fastify route schema (for @fastify/swagger) from zod schemas. */
export function routeSchema(doc: RouteDoc): Record<string, unknown> {
  const response: Record<string, unknown> = {};
  for (const [status, schema] of Object.entries(doc.response)) response[status] = jsonSchema(schema, 'output');
  for (const status of new Set([...(doc.errors ?? []), ...ALWAYS])) {
    response[status] = { description: ERROR_DESCRIPTIONS[status] ?? 'Internal error (CC_ERR_INTERNAL); the log has the details', ...jsonSchema(ErrorBodySchema, 'output') };
  }
  return {
    operationId: doc.operationId,
    tags: doc.tags,
    summary: doc.summary,
    ...(doc.description ? { description: doc.description } : {}),
    ...(doc.params ? { params: jsonSchema(doc.params, 'input') } : {}),
    ...(doc.querystring ? { querystring: jsonSchema(doc.querystring, 'input') } : {}),
    ...(doc.body ? { body: jsonSchema(doc.body, 'input') } : {}),
    response,
  };
}
