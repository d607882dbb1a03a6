/**
 * The task state machine of core/task-transitions.ts as SQL fragments, so both drivers build
 * their guarded updates from the one table: adding a state or an edge there changes the SQL
 * here, not in two drivers.
 * @internal
 */
import { TASK_TRANSITIONS, type TaskTransitionName } from '../core/task-transitions.ts';

/** The guard of a transition: `state = 'running'`, or `state IN ('queued', 'running')`. */
export function stateGuard(name: TaskTransitionName, column = 'state'): string {
  const from: readonly string[] = TASK_TRANSITIONS[name].from;
  return from.length === 1 ? `${column} = '${from[0]}'` : `${column} IN (${from.map((s) => `'${s}'`).join(', ')})`;
}

/** The state a transition sets, as an SQL literal: `'completed'`. */
export function targetState(name: TaskTransitionName): string {
  return `'${TASK_TRANSITIONS[name].to}'`;
}
