import type { TaskError } from './messages.ts';

/**
 * Stable error codes. Each one is a string a program can match on; the message next to it
 * is for people and names the job, task or worker and the limit involved.
 * docs/guarantees.md lists them in one table.
 */
export const ERROR_CODES = {
  CC_ERR_BAD_JSON: 'A WebSocket frame was not valid JSON.',
  CC_ERR_BAD_MESSAGE: 'A message failed schema validation.',
  CC_ERR_UNKNOWN_MESSAGE: 'A message had a `type` the receiver does not know.',
  CC_ERR_PAYLOAD_TOO_LARGE: 'A frame, task input or result exceeded the configured size limit.',
  CC_ERR_TOO_DEEP: 'A frame, request body or value nested JSON deeper than the limit (64 levels for a value).',
  CC_ERR_RATE_LIMITED: 'A connection sent more messages per second than the foreman allows.',
  CC_ERR_PROTOCOL_VERSION: 'The peer speaks an incompatible protocol version.',
  CC_ERR_NOT_HELLO: 'A worker sent work messages before its hello handshake.',
  CC_ERR_DUPLICATE_WORKER: 'A worker with this id is already connected.',
  CC_ERR_UNAUTHORIZED: 'No credential, or one that is wrong, revoked or expired (HTTP 401).',
  CC_ERR_FORBIDDEN: 'The credential lacks the scope the request needs (HTTP 403).',
  CC_ERR_NOT_FOUND: 'No route answers this method and path (HTTP 404).',
  CC_ERR_JOB_NOT_FOUND: 'No job has this id.',
  CC_ERR_JOB_PRUNED: 'The job finished and was pruned after its retention period (HTTP 404).',
  CC_ERR_STORE_UNAVAILABLE: 'The database cannot be reached right now; retry shortly (HTTP 503 with Retry-After).',
  CC_ERR_STORE_FULL: 'The database cannot grow (disk full, size limit, or read-only); free space or prune (HTTP 507).',
  CC_ERR_TASK_NOT_FOUND: 'No task has this id.',
  CC_ERR_WORKER_NOT_FOUND: 'No worker with this id is known to the store (HTTP 404).',
  CC_ERR_RATE_LIMIT_NOT_FOUND: 'No rate limit is set for this task type pattern (HTTP 404).',
  CC_ERR_KEY_NOT_FOUND: 'No API key has this id (HTTP 404).',
  CC_ERR_TASK_EXISTS: 'A task with this id already exists.',
  CC_ERR_JOB_SEALED: 'The job takes no more tasks: it was not submitted open, or it was sealed, cancelled, closed by its open timeout or failed at its deadline (HTTP 409).',
  CC_ERR_APPEND_CONFLICT: 'A part of an open job said where it starts (`at`), and that is not where the job ends now (HTTP 409).',
  CC_ERR_NOTHING_TO_RETRY: 'A retry found no failed or cancelled task to run again (HTTP 409).',
  CC_ERR_NO_WORKER: 'No worker started the task before its queue deadline (queueTimeoutMs): no connected worker serves its type, or none had room.',
  CC_ERR_DEADLINE: 'The job\'s deadline passed before the task finished: its scheduled, queued and running tasks failed, and running ones were told to stop (not retried).',
  CC_ERR_INVALID_JOB: 'A job submission is malformed (empty, too many arguments, bad options).',
  CC_ERR_INVALID_SCHEDULE: 'A schedule is malformed: the message names the field and the rule (a cron expression that does not parse, both or neither of cron and every, an unknown time zone) (HTTP 400).',
  CC_ERR_SCHEDULE_NOT_FOUND: 'No schedule has this id, or it is another owner\'s (HTTP 404).',
  CC_ERR_SCHEDULE_EXISTS: 'A schedule with this id exists already; ids are unique across owners (HTTP 409).',
  CC_ERR_CODE_COMPILE: 'The shipped function does not compile.',
  CC_ERR_CODE_NOT_ALLOWED: 'Shipped code reached a worker started without allowCode.',
  CC_ERR_NO_HANDLER: 'The worker has no handler for the task type.',
  CC_ERR_HANDLER_FAILED: 'The task handler or shipped function threw.',
  CC_ERR_TIMEOUT: 'The task did not finish within its timeoutMs.',
  CC_ERR_MEMORY_LIMIT: 'Shipped code exceeded the sandbox memory limit (not retried).',
  CC_ERR_SANDBOX_CRASHED: 'The process running shipped code died while running it (not retried); a job whose function does so repeatedly fails as a whole.',
  CC_ERR_WORKER_LOST: 'The worker running the task went away.',
  CC_ERR_STALE_ATTEMPT: 'A result arrived for an attempt that no longer holds the task.',
  CC_ERR_RESULT_REFUSED: 'The store could not record a task\'s result or error as sent (a value the database refuses); the task failed with this code instead.',
  CC_ERR_CANCELLED: 'The task or job was cancelled.',
  CC_ERR_JOB_FAILED: 'At least one task of the job failed.',
  CC_ERR_SHUTTING_DOWN: 'The foreman or worker is shutting down.',
  CC_ERR_CONNECTION: 'The connection to the foreman failed.',
  CC_ERR_INTERNAL: 'An unexpected internal error; the log has the details.',
} as const;

/** One of the stable error codes of {@link ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** True when `code` is one of ours (a peer may send anything). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/** The shape of an error as it travels in messages and REST bodies. */
export interface WireError {
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

/** `CC_ERR_X: what happened` → `what happened`; other text is returned as it is. */
function withoutCode(message: string, code: string): string {
  return message.startsWith(`${code}: `) ? message.slice(code.length + 2) : message;
}

/**
 * An error with a stable code. Its `message` starts with the code (`CC_ERR_TIMEOUT: task …`),
 * so a log line or a stack trace says which one it is; on the wire it travels as
 * `{ code, message, details }` and {@link CrowdComputeError.fromWire} rebuilds it.
 */
export class CrowdComputeError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>) {
    super(`${code}: ${withoutCode(message, code)}`);
    this.name = 'CrowdComputeError';
    this.code = code;
    this.details = details;
  }

  /** Rebuild an error received from a peer; an unknown code becomes CC_ERR_INTERNAL. */
  static fromWire(wire: WireError, extraDetails?: Record<string, unknown>): CrowdComputeError {
    const code = isErrorCode(wire.code) ? wire.code : 'CC_ERR_INTERNAL';
    const details = wire.details || extraDetails ? { ...wire.details, ...extraDetails } : undefined;
    return new CrowdComputeError(code, withoutCode(wire.message, wire.code), details);
  }

  /** The wire form: `{ code, message, details? }`. */
  toJSON(): WireError {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }

  /** This error as a task attempt's error (what a worker reports, what the store keeps). */
  toTaskError(extra: TaskErrorExtra = {}): TaskError {
    return { message: this.message, name: this.name, code: this.code, ...(this.stack ? { stack: this.stack } : {}), ...(this.details ? { details: this.details } : {}), ...extra };
  }
}

/** What a task error may carry besides its code and message. */
export type TaskErrorExtra = Omit<TaskError, 'message' | 'code'>;

/**
 * The error of a task attempt that the system ended (a lost worker, a timeout, a cancel):
 * the one place such errors are made, so every one has the same shape and says its code first.
 */
export function taskError(code: ErrorCode, message: string, extra: TaskErrorExtra = {}): TaskError {
  return { message: `${code}: ${withoutCode(message, code)}`, code, ...extra };
}

/** Format a byte count the way error messages quote limits: `12.4 MiB`. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
}
