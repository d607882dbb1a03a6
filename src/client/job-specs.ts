/**
 * Job specs as the SDK builds them from what a caller gives: a function and its arguments, a
 * task type and its input. `Client` submits them; the command line builds them too, for a
 * schedule's job, so both send the same thing for the same words.
 */
import type { JobOptions as WireJobOptions, JobSpec, MapJobSpec, Requirements, TasksJobSpec } from '../protocol/index.ts';
import { functionSource } from './function-source.ts';
import type { JobProgress } from './job-handle.ts';

/**
 * Options every job takes. `runAt` (a `Date`, epoch ms or an RFC 3339 string) or `delay` (ms,
 * or `'10m'`): the job's tasks wait in state `scheduled` until then; at most a year ahead.
 */
export interface JobOptions extends Omit<WireJobOptions, 'runAt'> {
  /** Not to run before this time; its tasks wait as `scheduled` until then. Not with `delay`. */
  runAt?: Date | number | string;
}

/** Options of a map job. */
export interface MapOptions extends JobOptions {
  /** Arguments per task; default chosen by the foreman from the argument count. */
  chunkSize?: number;
  /**
   * Where its tasks may run: `'any'` worker (default), only `'node'` workers, or only
   * `'browser'` tabs that joined through a join link.
   */
  runOn?: 'any' | 'node' | 'browser';
  onProgress?: (p: JobProgress) => void;
}

/** Options of a single named task. */
export interface TaskOptions extends JobOptions {
  taskId?: string;
  /** Resources its worker must have free (`{ cpu, memoryMb, gpu, labels }`). */
  requires?: Requirements;
  /** Files it carries (ids from `uploadFile`). */
  files?: string[];
}

/**
 * What `map` ships: a JavaScript function (or its source), or a Python function's source as
 * `{ python: source, name? }`, which runs in Pyodide on Node workers and browser tabs.
 */
export type MapFunction<T, R> = ((arg: T) => R | Promise<R>) | string | { python: string; name?: string };

/** A job spec as the SDK takes it: the protocol's, with `runAt` also a `Date`. */
export type SdkJobSpec = JobSpec extends infer S ? S extends JobSpec ? Omit<S, 'runAt'> & { runAt?: Date | number | string } : never : never;

/**
 * A `runAt` the wire takes: a `Date` becomes its RFC 3339 text (the foreman checks the rest,
 * naming the field). An invalid `Date` is refused here: it has no time to send.
 */
export function wireRunAt(runAt: Date | number | string): number | string {
  if (!(runAt instanceof Date)) return runAt;
  if (Number.isNaN(runAt.getTime())) throw new TypeError('runAt is an invalid Date');
  return runAt.toISOString();
}

/** `spec` with its `runAt` (if any) as the wire takes it. */
export function wireSpec(spec: SdkJobSpec): JobSpec {
  if (spec.runAt === undefined) return spec as JobSpec;
  return { ...spec, runAt: wireRunAt(spec.runAt) } as JobSpec;
}

/** A map job's `code`, `language` and `functionName`, from what `map` was given. */
function shippedFunction(fn: MapFunction<never, unknown>): { code: string; language?: 'python'; functionName?: string } {
  if (typeof fn === 'object' && fn !== null && typeof (fn as { python?: unknown }).python === 'string') {
    const { python, name } = fn as { python: string; name?: string };
    return { code: python, language: 'python', ...(name ? { functionName: name.slice(0, 200) } : {}) };
  }
  // The function's name goes along for lists: source text loses it for `const square = (x) => …`.
  return { code: functionSource(fn as never), ...(typeof fn === 'function' && fn.name ? { functionName: fn.name.slice(0, 200) } : {}) };
}

/** The spec of a map job: `fn` over `args` (chunked by the foreman unless `chunkSize` says). */
export function mapJobSpec<T, R>(fn: MapFunction<T, R>, args: readonly T[], options: Omit<MapOptions, 'onProgress'> = {}): Omit<MapJobSpec, 'runAt'> & { runAt?: Date | number | string } {
  const { chunkSize, ...common } = options;
  return { kind: 'map', ...shippedFunction(fn as MapFunction<never, unknown>), args: [...args] as MapJobSpec['args'], ...(chunkSize ? { chunkSize } : {}), ...common };
}

/** The spec of a job of one named task, `type` with its `input`. */
export function taskJobSpec(type: string, input: unknown, options: TaskOptions = {}): Omit<TasksJobSpec, 'runAt'> & { runAt?: Date | number | string } {
  const { taskId, requires, files, ...common } = options;
  return { kind: 'tasks', tasks: [{ type, input: input as TasksJobSpec['tasks'][number]['input'], ...(taskId ? { taskId } : {}), ...(requires ? { requires } : {}), ...(files ? { files } : {}) }], ...common };
}
