/**
 * How a map job's arguments are split into tasks. One task per argument is the clearest
 * (an error names one argument), but every task costs a row, a dispatch and a result commit,
 * so large jobs are chunked: the aim is enough tasks to spread over many workers and to
 * show progress, without paying per-row costs for every argument.
 */

/** Tasks a large map job is split into when the caller gives no chunk size. */
export const TARGET_TASKS_PER_JOB = 256;
/** Jobs up to this many arguments get one task per argument. */
export const ONE_PER_TASK_UP_TO = 256;

/** Arguments per task: the caller's `requested` size, else one per task for small jobs and about TARGET_TASKS_PER_JOB tasks for large ones. */
export function chooseChunkSize(argCount: number, requested?: number): number {
  if (requested !== undefined) return Math.max(1, Math.floor(requested));
  if (argCount <= ONE_PER_TASK_UP_TO) return 1;
  return Math.ceil(argCount / TARGET_TASKS_PER_JOB);
}

/** Split `args` into consecutive chunks of `size`, preserving order. */
export function chunk<T>(args: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < args.length; i += size) out.push(args.slice(i, i + size));
  return out;
}
