/**
 * The dead letters on the REST API: tasks that failed for good (state `failed`, no attempt
 * left or a permanent error), grouped by task type and error, and retried in bulk by the same
 * filter. An error is grouped by its code (its name when it has none) and the first line of
 * its message, so that one stack trace per task does not make one group per task.
 */
import { z } from 'zod';

/** Most tasks one bulk retry requeues; a larger set is retried in several calls (each answer says whether `more` remain). */
export const FAILED_RETRY_MAX = 10_000;

/** Most groups one page of the failed-tasks view holds. */
export const FAILED_GROUPS_MAX = 1_000;

const time = z.union([
  z.number().int().nonnegative(),
  z.iso.datetime({ offset: true }).transform((s) => Date.parse(s)),
]).describe('ISO 8601 time or epoch milliseconds');
const queryTime = z.union([z.coerce.number().int().nonnegative(), z.iso.datetime({ offset: true }).transform((s) => Date.parse(s))])
  .describe('ISO 8601 time or epoch milliseconds');

const filter = {
  type: z.string().min(1).max(200).optional().describe('only tasks of this type (a map job\'s tasks have type "map")'),
  error_code: z.string().max(200).optional().describe("only this error code (the error's name when it has no code), exactly as a group shows it"),
  message: z.string().max(1_000).optional().describe("only this error message's first line, exactly as a group shows it (it may be empty)"),
  job_id: z.string().min(1).max(200).optional().describe('only tasks of this job'),
};

/** GET /api/failed: filters and a page of groups. */
export const FailedListQuerySchema = z.object({
  ...filter,
  since: queryTime.optional().describe('only tasks that failed at or after this time'),
  limit: z.coerce.number().int().min(1).max(FAILED_GROUPS_MAX).default(100).describe('most groups to return'),
  offset: z.coerce.number().int().min(0).default(0).describe('groups to skip (largest first)'),
});

/** POST /api/failed/retry: which failed tasks to run again, by the list's filters or by id. */
export const FailedRetryBodySchema = z.object({
  ...filter,
  since: time.optional().describe('only tasks that failed at or after this time'),
  task_ids: z.array(z.string().min(1).max(200)).min(1).max(FAILED_RETRY_MAX, `must list at most ${FAILED_RETRY_MAX.toLocaleString('en-US')} tasks a call`)
    .optional().describe('only these tasks (those not failed, or not this key\'s to see, are left out)'),
  limit: z.number().int('must be a whole number').min(1, 'must be at least 1')
    .max(FAILED_RETRY_MAX, `must be at most ${FAILED_RETRY_MAX.toLocaleString('en-US')} tasks a call: retry the rest in further calls, or narrow the filter`)
    .default(FAILED_RETRY_MAX).describe(`most tasks to requeue in this call (at most ${FAILED_RETRY_MAX})`),
});
/** POST /api/failed/retry's body. */
export type FailedRetryBody = z.input<typeof FailedRetryBodySchema>;

/** Failed tasks of one type with one error. */
export const FailedGroupViewSchema = z.object({
  type: z.string(),
  error_code: z.string().describe("the error's code, or its name when it has none"),
  message: z.string().describe("the first line of the error's message (at most 200 characters)"),
  count: z.number().int().describe('failed tasks in the group'),
  jobs: z.number().int().describe('jobs those tasks belong to'),
  first_failed_at: z.string().describe('ISO 8601 time'),
  last_failed_at: z.string().describe('ISO 8601 time'),
  task_ids: z.array(z.string()).describe('up to three of its newest tasks'),
  job_ids: z.array(z.string()).describe('the job of each of task_ids'),
});
/** One group of the failed-tasks view. */
export type FailedGroupView = z.output<typeof FailedGroupViewSchema>;

/** GET /api/failed's answer. */
export const FailedListViewSchema = z.object({
  groups: z.array(FailedGroupViewSchema).describe('largest first'),
  offset: z.number().int(),
  next_offset: z.number().int().nullable().describe('the offset of the next page; null on the last'),
});
/** GET /api/failed's answer. */
export type FailedListView = z.output<typeof FailedListViewSchema>;

/** POST /api/failed/retry's answer. */
export const FailedRetryViewSchema = z.object({
  requeued: z.number().int().describe('failed tasks put back in the queue, with fresh attempts'),
  jobs: z.number().int().describe('jobs they belong to (a finished one runs again)'),
  job_ids: z.array(z.string()),
  more: z.boolean().describe('more tasks matched than this call\'s limit: call again for the rest'),
});
/** POST /api/failed/retry's answer. */
export type FailedRetryView = z.output<typeof FailedRetryViewSchema>;
