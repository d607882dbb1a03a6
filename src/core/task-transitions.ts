/**
 * Every way a task changes state, in one table, and the rules that choose between them. The
 * store drivers apply a transition as one guarded update (`… WHERE state IN (from) AND
 * attempt = ?`), so a late or repeated message can never move a task twice; the rules (retry
 * or fail, requeue or give up on a lost task) are decided here, once, from the row the driver
 * read in the same transaction. docs/guarantees.md draws the same machine.
 */
import type { TaskState } from '../protocol/index.ts';
import { shouldRetry } from './retry.ts';
import { BLOCKED_UNTIL } from './graph.ts';

/** One edge of the task state machine. */
export interface TaskTransition {
  /** States the task must be in for the transition to apply (the update's guard). */
  readonly from: readonly TaskState[];
  readonly to: TaskState;
  /** Whether the guard also requires the attempt (and, for worker reports, the worker) to match. */
  readonly fenced: boolean;
  /** What the transition means, for people. */
  readonly means: string;
}

/** The task state machine: every transition the drivers may apply. */
export const TASK_TRANSITIONS = {
  release: { from: ['scheduled'], to: 'queued', fenced: false, means: 'its time (runAt / delay) came: it joins the queue' },
  claim: { from: ['queued'], to: 'running', fenced: false, means: 'a worker was given the task; the attempt number goes up' },
  complete: { from: ['running'], to: 'completed', fenced: true, means: 'the worker reported a result' },
  retry: { from: ['running'], to: 'queued', fenced: true, means: 'the attempt failed and attempts remain; it runs again after a backoff' },
  fail: { from: ['running'], to: 'failed', fenced: true, means: 'the attempt failed and no attempt remains, or the error is permanent' },
  stop: { from: ['running'], to: 'cancelled', fenced: true, means: 'the worker reported the attempt cancelled' },
  requeue: { from: ['running'], to: 'queued', fenced: true, means: 'the worker went away, its lease expired, or it handed the task back' },
  abandon: { from: ['running'], to: 'failed', fenced: true, means: 'the task lost its worker too many times (CC_ERR_WORKER_LOST)' },
  cancel: { from: ['scheduled', 'queued', 'running'], to: 'cancelled', fenced: false, means: 'the task or its job was cancelled' },
  rerun: { from: ['failed', 'cancelled'], to: 'queued', fenced: false, means: 'someone retried the failed or cancelled task: it runs again with fresh attempts' },
  expire: { from: ['queued'], to: 'failed', fenced: false, means: 'no worker started it before its queue deadline (CC_ERR_NO_WORKER)' },
  deadline: { from: ['scheduled', 'queued', 'running'], to: 'failed', fenced: false, means: 'its job\'s deadline passed before it finished (CC_ERR_DEADLINE); a running one is told to stop' },
  halt: { from: ['scheduled', 'queued', 'running'], to: 'failed', fenced: false, means: 'its job was failed as a whole: its tasks kept crashing their sandboxes (CC_ERR_SANDBOX_CRASHED)' },
} as const satisfies Record<string, TaskTransition>;

/** The name of a transition of {@link TASK_TRANSITIONS}. */
export type TaskTransitionName = keyof typeof TASK_TRANSITIONS;

/** Which transition a failed attempt takes: `retry` while attempts remain and the error is not permanent, else `fail`. */
export function afterFailure(task: { failures: number; maxAttempts: number }, error: { retryable?: boolean | undefined }): 'retry' | 'fail' {
  return shouldRetry({ failures: task.failures + 1, maxAttempts: task.maxAttempts, retryable: error.retryable }) ? 'retry' : 'fail';
}

/**
 * Which transition an attempt that ended without an outcome takes. A worker that vanished
 * (`countAsLost`) uses up one of the task's `maxLost` chances; past them the task is abandoned.
 * A worker that handed the task back on purpose does not count.
 */
export function afterLoss(task: { lost: number }, params: { maxLost?: number | undefined; countAsLost: boolean }): { transition: 'requeue' | 'abandon'; lost: number } {
  const lost = task.lost + (params.countAsLost ? 1 : 0);
  return { transition: params.maxLost !== undefined && lost >= params.maxLost ? 'abandon' : 'requeue', lost };
}

/** True when `state` may take `transition` (what the drivers' guards check, for code that holds a row). */
export function canTake(transition: TaskTransitionName, state: TaskState): boolean {
  return (TASK_TRANSITIONS[transition].from as readonly TaskState[]).includes(state);
}

/**
 * The state a new task is stored in: `scheduled` while its time is ahead (it is released to
 * the queue then), `queued` otherwise, including a graph node blocked on its upstream nodes.
 */
export function initialTaskState(availableAt: number | undefined, now: number): 'scheduled' | 'queued' {
  return availableAt !== undefined && availableAt > now && availableAt < BLOCKED_UNTIL ? 'scheduled' : 'queued';
}
