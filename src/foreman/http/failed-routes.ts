import type { FastifyInstance } from 'fastify';
import {
  FailedListQuerySchema, FailedListViewSchema, FailedRetryBodySchema, FailedRetryViewSchema,
  type FailedListView, type FailedRetryView,
} from '../../protocol/index.ts';
import type { FailedTaskFilter } from '../../store/store.ts';
import type { FailedTasks } from '../jobs/failed-tasks.ts';
import { routeSchema } from './openapi.ts';
import { parseRequest } from './rest-inputs.ts';

const iso = (ms: number): string => new Date(ms).toISOString();

/** The REST filter in the store's words. */
function filterOf(q: { type?: string | undefined; error_code?: string | undefined; message?: string | undefined; job_id?: string | undefined; since?: number | undefined; task_ids?: string[] | undefined }): FailedTaskFilter {
  return {
    ...(q.type !== undefined ? { type: q.type } : {}), ...(q.error_code !== undefined ? { errorCode: q.error_code } : {}),
    ...(q.message !== undefined ? { message: q.message } : {}), ...(q.job_id !== undefined ? { jobId: q.job_id } : {}),
    ...(q.since !== undefined ? { since: q.since } : {}), ...(q.task_ids !== undefined ? { taskIds: q.task_ids } : {}),
  };
}

/** The dead letters under /api/failed: failed-for-good tasks grouped by type and error, and their retry in bulk. */
export function registerFailedRoutes(app: FastifyInstance, deps: { failed: FailedTasks }): void {
  const tags = ['tasks'];

  app.get('/api/failed', {
    schema: routeSchema({
      operationId: 'listFailedTasks', tags, summary: "Tasks that failed for good, grouped by task type and error: the key's own, or every owner's for admin",
      description: "An error is grouped by its code (its name when it has none) and the first line of its message. Groups come largest first; page with offset and limit.",
      querystring: FailedListQuerySchema, response: { 200: FailedListViewSchema }, errors: [400, 401],
    }),
  }, async (req): Promise<FailedListView> => {
    const q = parseRequest(FailedListQuerySchema, req.query, 'query');
    const groups = await deps.failed.list(filterOf(q), { limit: q.limit + 1, offset: q.offset }, req.principal);
    return {
      groups: groups.slice(0, q.limit).map((g) => ({
        type: g.type, error_code: g.errorCode, message: g.message, count: g.count, jobs: g.jobs,
        first_failed_at: iso(g.firstAt), last_failed_at: iso(g.lastAt), task_ids: g.taskIds, job_ids: g.jobIds,
      })),
      offset: q.offset,
      next_offset: groups.length > q.limit ? q.offset + q.limit : null,
    };
  });

  app.post('/api/failed/retry', {
    schema: routeSchema({
      operationId: 'retryFailedTasks', tags, summary: 'Run failed tasks again in bulk, with fresh attempts: those the filter (as GET /api/failed takes it) or task_ids name',
      description: "At most `limit` tasks a call (10,000 at most); `more` says whether others matched. A finished job runs again and ends when its retried tasks do; results already recorded stay. A key retries only its own jobs' tasks.",
      body: FailedRetryBodySchema, response: { 200: FailedRetryViewSchema }, errors: [400, 401, 403],
    }),
  }, async (req): Promise<FailedRetryView> => {
    const body = parseRequest(FailedRetryBodySchema, req.body ?? {}, 'retry');
    const res = await deps.failed.retry(filterOf(body), body.limit, req.principal);
    return { requeued: res.requeued, jobs: res.jobIds.length, job_ids: res.jobIds, more: res.more };
  });
}
