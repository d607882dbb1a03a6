import { bestPattern } from '../../core/pattern.ts';
import { CrowdComputeError, type TaskError, type WireTask } from '../../protocol/index.ts';

/** What a handler receives: the task, as the worker sees it. */
export interface TaskInfo<I = any> {
  id: string;
  jobId: string;
  /** The task type (`image.resize`), matched against the handler's pattern. */
  type: string;
  input: I;
  /** 1 on the first run, then one more per retry or reassignment. */
  attempt: number;
  priority: string;
  /** The task's deadline, counted from its start on this worker; null = none. */
  timeoutMs: number | null;
  /** A task that ran before and recorded batches: its last checkpoint and the batches done. */
  resume?: { checkpoint?: unknown; batches: string[] };
  /** A graph node's task: its node id and, when it reads upstream artifacts, its input adapter. */
  graph?: WireTask['graph'];
  /** A field of an object input, or `fallback` when the input has no such field. */
  getInput<T = any>(key: string, fallback?: T): T;
  /** The job's metadata (given at submission), or {}. */
  metadata: Record<string, unknown>;
  /** A field of the job's metadata, or `fallback`. */
  getMetadata<T = any>(key: string, fallback?: T): T;
  /** Files the task carries: id, name, size, type, and the link to download them. */
  files: TaskFile[];
  /** The file with this id, if the task carries it. */
  getFileById(fileId: string): TaskFile | undefined;
  /** The files of this name the task carries. */
  getFilesByName(filename: string): TaskFile[];
  /** A file's bytes, downloaded from the foreman (by id, or as listed in `files`). */
  readFile(file: string | TaskFile): Promise<Uint8Array>;
}

/** A file a task carries. */
export interface TaskFile {
  fileId: string;
  filename: string;
  size: number;
  contentType: string;
  /** Where to download it: a link on the foreman, signed for this task's worker. */
  url: string;
}

const NO_FILES: TaskFile[] = [];
const NO_METADATA: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;

/** A task as its handler sees it; the helpers live on the prototype, so a task costs one object. */
class ArrivedTask implements TaskInfo {
  readonly id: string;
  readonly jobId: string;
  readonly type: string;
  readonly input: any;
  readonly attempt: number;
  readonly priority: string;
  readonly timeoutMs: number | null;
  readonly resume?: { checkpoint?: unknown; batches: string[] };
  readonly graph?: WireTask['graph'];
  readonly files: TaskFile[];
  readonly metadata: Record<string, unknown>;

  constructor(t: WireTask) {
    this.id = t.taskId;
    this.jobId = t.jobId;
    this.type = t.type;
    this.input = t.input;
    this.attempt = t.attempt;
    this.priority = t.priority;
    this.timeoutMs = t.timeoutMs;
    if (t.resume) this.resume = t.resume;
    if (t.graph) this.graph = t.graph;
    this.files = t.files ?? NO_FILES;
    this.metadata = t.metadata ?? NO_METADATA;
  }

  getInput<T = any>(key: string, fallback?: T): T {
    const input = this.input as unknown;
    return input !== null && typeof input === 'object' && !Array.isArray(input) && Object.hasOwn(input, key)
      ? (input as Record<string, T>)[key] : fallback as T;
  }

  getMetadata<T = any>(key: string, fallback?: T): T {
    return Object.hasOwn(this.metadata, key) ? this.metadata[key] as T : fallback as T;
  }

  getFileById(fileId: string): TaskFile | undefined { return this.files.find((f) => f.fileId === fileId); }

  getFilesByName(filename: string): TaskFile[] { return this.files.filter((f) => f.filename === filename); }

  async readFile(file: string | TaskFile): Promise<Uint8Array> {
    const f = typeof file === 'string' ? this.getFileById(file) : file;
    if (!f) throw new CrowdComputeError('CC_ERR_TASK_NOT_FOUND', `task ${this.id} carries no file ${String(file)}`);
    const res = await fetch(f.url);
    if (!res.ok) throw new CrowdComputeError('CC_ERR_CONNECTION', `downloading file ${f.fileId} (${f.filename}) for task ${this.id} failed: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
}

/** What a handler sees of a task as it arrives. */
export function taskInfo(t: WireTask): TaskInfo {
  return new ArrivedTask(t);
}

/** Tools a handler gets besides its input. */
export interface TaskContext {
  /** Fires when the task is cancelled, times out, or the worker drains past its deadline. */
  signal: AbortSignal;
  /** Report progress (0–100) with an optional message and data; sent to the job's watchers. */
  progress(percent: number, message?: string, data?: Record<string, unknown>): void;
  workerId: string;
  attempt: number;
}

/** A handler: runs one task, returns its result (any JSON value) or throws. */
export type TaskHandler<I = any, O = unknown> = (task: TaskInfo<I>, ctx: TaskContext) => O | Promise<O>;

/** How a handler's errors are judged. */
export interface HandlerOptions {
  /**
   * Decide whether an error is permanent (no retry) or transient (FlowKit's classify_error).
   * Return `{ retryable: false }` to fail the task at once.
   */
  classifyError?: (error: unknown) => { code?: string; retryable: boolean };
}

/** Throw this from a handler to fail the task without retrying it. */
export class NonRetryableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NonRetryableError';
  }
}

/** A registered handler. */
export interface HandlerEntry {
  pattern: string;
  handler: TaskHandler;
  options: HandlerOptions;
}

/** Handlers by pattern (`image.*`); the most specific pattern matching a type wins. */
export class HandlerRegistry {
  private readonly entries = new Map<string, HandlerEntry>();

  /** Register (or replace) the handler of a pattern. */
  add(pattern: string, handler: TaskHandler, options: HandlerOptions = {}): void {
    if (!pattern || typeof handler !== 'function') throw new TypeError('handle(pattern, handler): pattern must be a non-empty string and handler a function');
    this.entries.set(pattern, { pattern, handler, options });
  }

  /** The registered patterns, in registration order. */
  get patterns(): string[] { return [...this.entries.keys()]; }

  /** The handler whose pattern matches `type` most specifically. */
  find(type: string): HandlerEntry | undefined {
    const p = bestPattern(this.patterns, type);
    return p === undefined ? undefined : this.entries.get(p);
  }

  /** Turn whatever a handler threw into the wire form, classified. */
  static describe(error: unknown, options: HandlerOptions): TaskError {
    const e = error instanceof Error ? error : new Error(typeof error === 'string' ? error : JSON.stringify(error));
    let retryable: boolean | undefined = error instanceof NonRetryableError ? false : undefined;
    let code: string | undefined = (e as { code?: unknown }).code !== undefined ? String((e as { code?: unknown }).code) : undefined;
    if (options.classifyError && retryable === undefined) {
      try {
        const c = options.classifyError(error);
        retryable = c.retryable;
        code = c.code ?? code;
      } catch { /* a broken classifier does not hide the original error */ }
    }
    return { message: e.message, name: e.name, ...(e.stack ? { stack: e.stack } : {}), ...(code ? { code } : {}), ...(retryable !== undefined ? { retryable } : {}) };
  }
}
