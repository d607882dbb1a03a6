/**
 * The words every other part of CrowdCompute speaks in: task and job states and priorities.
 * This folder is the leaf of the dependency graph: it imports nothing else from src/.
 */

/**
 * Every state a task can be in. `scheduled`: submitted with a time (`runAt` / `delay`) not yet
 * come; it becomes `queued` then. `queued` covers both "ready now" and "waiting for a retry time".
 */
export const TASK_STATES = ['scheduled', 'queued', 'running', 'completed', 'failed', 'cancelled'] as const;
/** A task's state. */
export type TaskState = (typeof TASK_STATES)[number];

/**
 * Every state a job can be in. A job is terminal once all of its tasks are terminal. `scheduled`:
 * none of its tasks may run yet (its `runAt` has not come).
 */
export const JOB_STATES = ['scheduled', 'queued', 'running', 'completed', 'failed', 'cancelled'] as const;
/** A job's state. */
export type JobState = (typeof JOB_STATES)[number];

/** Task states nothing moves a task out of. */
export const TERMINAL_TASK_STATES: ReadonlySet<TaskState> = new Set(['completed', 'failed', 'cancelled']);
/** Job states nothing moves a job out of. */
export const TERMINAL_JOB_STATES: ReadonlySet<JobState> = new Set(['completed', 'failed', 'cancelled']);

/** Named priorities, as the FastAPI worker node names them: `critical` runs first. */
export const PRIORITIES = ['critical', 'high', 'normal', 'low'] as const;
/** A task's or job's priority. */
export type Priority = (typeof PRIORITIES)[number];
/** Lower rank runs first; the store orders the queue by (rank, submission sequence). */
export const PRIORITY_RANK: Readonly<Record<Priority, number>> = { critical: 0, high: 1, normal: 2, low: 3 };
/** The priority of each rank, the inverse of {@link PRIORITY_RANK}. */
export const PRIORITY_BY_RANK: readonly Priority[] = ['critical', 'high', 'normal', 'low'];

/** A job either ships a function and a list of arguments (`map`) or lists named tasks (`tasks`). */
export const JOB_KINDS = ['map', 'tasks', 'graph'] as const;
/** A job's kind. */
export type JobKind = (typeof JOB_KINDS)[number];

/** A map task runs shipped code in a sandbox; a named task runs a handler registered on a worker. */
export const TASK_KINDS = ['map', 'named'] as const;
/** A task's kind. */
export type TaskKind = (typeof TASK_KINDS)[number];

/** Version of the WebSocket protocol. A foreman refuses a hello whose major version differs. */
export const PROTOCOL_VERSION = '1.0';
