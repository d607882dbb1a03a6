import {
  CrowdComputeError, MAP_TASK_TYPES, MAX_TIME_AHEAD_MS, durationMs, formatBytes, timeMs, webhookHostAllowed, type CodeLanguage, type JobSpec, type Priority,
} from '../../protocol/index.ts';
import { chooseChunkSize, chunk } from '../../core/chunking.ts';
import { BLOCKED_UNTIL, planGraph } from '../../core/graph.ts';
import type { JobAppendParams, JobInsertParams, JobRecord, NewTask } from '../../store/store.ts';
import type { NamedTaskSpec } from '../../protocol/index.ts';
import { checkFunctionSource } from './code-check.ts';
import { checkPythonSourceShape } from './python-source-shape.ts';
import { newJobId } from './job-id.ts';

export { checkFunctionSource };

/** What a submission may be, and the default deadline of its tasks. */
export interface SubmissionLimits {
  /** Largest task input, measured as JSON. */
  maxPayloadBytes: number;
  /** Most arguments one map job may have. */
  maxArgs: number;
  /** Most named tasks one job may have. */
  maxTasksPerJob: number;
  /** Deadline of a task submitted without one. */
  defaultTimeoutMs: number;
  /** How long a finished job is kept when it does not say. */
  defaultRetentionMs: number;
  /** How long a task may wait for a worker to start it when its job does not say; null: for ever. */
  defaultQueueTimeoutMs: number | null;
  /** How long an open job may go without a part or a seal when it does not say; null: for ever. */
  defaultOpenTimeoutMs?: number | null;
  /** The hosts a job's webhook may name (`--webhook-host`); empty or omitted: any. */
  webhookHosts?: readonly string[];
}

/**
 * A job's expiry options as the store takes them: its open timeout (the job's, else the
 * foreman's default; 0 = never) and what it does, and its deadline in epoch ms. A deadline must
 * be in the future, within a year, and after the job may start (`runAt` / `delay`): a job that
 * could only fail is refused, naming the times.
 */
export function jobExpiry(spec: JobSpec, limits: SubmissionLimits, now: number): { openTimeoutMs: number | null; onOpenTimeout: 'seal' | 'cancel'; deadline: number | null } {
  const given = spec.openTimeout === undefined ? undefined : durationMs(spec.openTimeout);
  const openTimeoutMs = given ?? limits.defaultOpenTimeoutMs ?? null;
  let deadline: number | null = null;
  if (spec.deadline !== undefined) {
    deadline = timeMs(spec.deadline);
    const at = new Date(deadline).toISOString();
    if (deadline <= now) {
      throw new CrowdComputeError('CC_ERR_INVALID_JOB', `deadline ${at} has passed (it is ${new Date(now).toISOString()} on the foreman): the job could only fail; give a time in the future`, { deadline: at });
    }
    if (deadline > now + MAX_TIME_AHEAD_MS) {
      throw new CrowdComputeError('CC_ERR_INVALID_JOB', `deadline ${at} is more than a year ahead; the foreman accepts deadlines up to ${new Date(now + MAX_TIME_AHEAD_MS).toISOString()}`, { deadline: at });
    }
    const start = spec.runAt !== undefined ? timeMs(spec.runAt) : spec.delay !== undefined ? now + durationMs(spec.delay) : null;
    if (start !== null && start >= deadline) {
      throw new CrowdComputeError('CC_ERR_INVALID_JOB', `deadline ${at} is not after the job may start (${new Date(start).toISOString()}, its runAt or delay): it could only fail`, { deadline: at, start: new Date(start).toISOString() });
    }
  }
  return { openTimeoutMs: openTimeoutMs && openTimeoutMs > 0 ? openTimeoutMs : null, onOpenTimeout: spec.onOpenTimeout ?? 'cancel', deadline };
}

/**
 * What a job runs, in a few words for lists: the function's name for a map job; for named
 * tasks their type, or the first types and how many more.
 */
export function jobLabel(spec: JobSpec): string {
  if (spec.kind === 'map') {
    const declared = spec.language === 'python'
      ? /^\s*def\s+([A-Za-z_][\w]*)\s*\(/m.exec(spec.code)?.[1]
      : /^\s*(?:async\s+)?function\s*\*?\s*([A-Za-z_$][\w$]*)/.exec(spec.code)?.[1];
    return spec.functionName || declared || 'anonymous function';
  }
  const types: string[] = [];
  const list = spec.kind === 'graph' ? spec.nodes : spec.tasks;
  for (const t of list) {
    if (!types.includes(t.type)) types.push(t.type);
    if (types.length > 3) break;
  }
  const distinct = new Set(list.map((t) => t.type)).size;
  return distinct <= 3 ? types.join(', ') : `${types.slice(0, 2).join(', ')} +${distinct - 2} more`;
}

function jsonSize(v: unknown): number {
  return v === undefined ? 0 : Buffer.byteLength(JSON.stringify(v));
}

/** Arguments per task of an open map job that does not say: its size is not known yet. */
export const OPEN_MAP_CHUNK_SIZE = 100;

/** A map job's arguments as tasks of `size` arguments, the first being task `firstIndex`; each within the payload limit. */
function mapTasks(args: readonly unknown[], size: number, firstIndex: number, limits: SubmissionLimits, common: Pick<NewTask, 'priority' | 'maxAttempts' | 'timeoutMs'>, idOf: (index: number) => string | undefined, language: CodeLanguage): (Omit<NewTask, 'id'> & { id?: string })[] {
  if (args.length > limits.maxArgs) {
    throw new CrowdComputeError('CC_ERR_INVALID_JOB', `a map job (or a part of one) has ${args.length} arguments, the foreman accepts at most ${limits.maxArgs} in one message (--max-args); submit the job open and append the rest in parts`,
      { limit: limits.maxArgs, actual: args.length });
  }
  return chunk(args, size).map((part, i) => {
    const index = firstIndex + i;
    const bytes = jsonSize(part);
    if (bytes > limits.maxPayloadBytes) {
      throw new CrowdComputeError('CC_ERR_PAYLOAD_TOO_LARGE', `map job task ${index} (arguments ${index * size}..${index * size + part.length - 1}) is ${formatBytes(bytes)}, the foreman accepts at most ${formatBytes(limits.maxPayloadBytes)} per task (--max-payload); use a smaller chunkSize`);
    }
    const id = idOf(index);
    return { ...(id ? { id } : {}), index, kind: 'map' as const, type: MAP_TASK_TYPES[language], input: part, ...common };
  });
}

/**
 * When something given `runAt` or `delay` may run: epoch ms, or undefined for at once (no time
 * given, or a time already past). Both at once, or a time more than a year ahead, is refused.
 */
export function releaseTime(what: string, given: { runAt?: number | string | undefined; delay?: number | string | undefined }, now: number): number | undefined {
  if (given.runAt !== undefined && given.delay !== undefined) {
    throw new CrowdComputeError('CC_ERR_INVALID_JOB', `${what} gives both runAt and delay; give one (runAt: a time, delay: how long from now)`);
  }
  const at = given.runAt !== undefined ? timeMs(given.runAt) : given.delay !== undefined ? now + durationMs(given.delay) : undefined;
  if (at === undefined || !Number.isFinite(at) || at <= now) return undefined;
  if (at > now + MAX_TIME_AHEAD_MS) {
    throw new CrowdComputeError('CC_ERR_INVALID_JOB', `${what} may not run before ${new Date(at).toISOString()}, more than a year from now; the limit is a year ahead`,
      { limit: MAX_TIME_AHEAD_MS, runAt: at });
  }
  return at;
}

/** Tasks that may not run before `at` (undefined: at once). */
function delayed<T extends { availableAt?: number }>(tasks: T[], at: number | undefined): T[] {
  if (at !== undefined) for (const t of tasks) if (t.availableAt === undefined) t.availableAt = at;
  return tasks;
}

/** Named tasks of a job, the first being task `firstIndex`; each within the payload limit. */
function namedTasks(list: readonly NamedTaskSpec[], firstIndex: number, limits: SubmissionLimits, defaults: Pick<NewTask, 'priority' | 'maxAttempts' | 'timeoutMs'>, idOf: (index: number) => string | undefined, now = Date.now()): (Omit<NewTask, 'id'> & { id?: string })[] {
  if (list.length > limits.maxTasksPerJob) {
    throw new CrowdComputeError('CC_ERR_INVALID_JOB', `a job (or a part of one) has ${list.length} tasks, the foreman accepts at most ${limits.maxTasksPerJob} in one message (--max-args); submit the job open and append the rest in parts`,
      { limit: limits.maxTasksPerJob, actual: list.length });
  }
  return list.map((t, i) => {
    const index = firstIndex + i;
    const bytes = jsonSize(t.input);
    if (bytes > limits.maxPayloadBytes) {
      throw new CrowdComputeError('CC_ERR_PAYLOAD_TOO_LARGE', `task ${index} (${t.type}) input is ${formatBytes(bytes)}, the foreman accepts at most ${formatBytes(limits.maxPayloadBytes)} (--max-payload)`);
    }
    const id = t.taskId ?? idOf(index);
    const at = releaseTime(`task ${index} (${t.type})`, t, now);
    return {
      ...(id ? { id } : {}), ...(at !== undefined ? { availableAt: at } : {}), index, kind: 'named' as const, type: t.type, input: t.input ?? null,
      priority: t.priority ?? defaults.priority, maxAttempts: t.maxAttempts ?? defaults.maxAttempts, timeoutMs: t.timeoutMs ?? defaults.timeoutMs,
      ...(t.requires ? { requires: t.requires } : {}), ...(t.files?.length ? { files: t.files } : {}),
    };
  });
}

/**
 * A part of an open job as rows to append: named tasks for a `tasks` job, arguments in chunks
 * of the job's chunk size for a map job. The store numbers the tasks; the indexes here are
 * those the part will have if it starts where the job ends now (for error messages).
 */
export function buildPart(job: JobRecord, part: { tasks?: NamedTaskSpec[]; args?: unknown[]; at?: number; seal?: boolean }, limits: SubmissionLimits, now: number): JobAppendParams {
  const common = { priority: job.priority, maxAttempts: job.maxAttempts, timeoutMs: job.timeoutMs };
  const at = part.at ?? null;
  const none = () => undefined;
  // Appended tasks wait for the job's time, as its first ones did.
  const runAt = job.runAt !== null && job.runAt > now ? job.runAt : undefined;
  if (job.kind === 'map') {
    if (part.tasks?.length) throw new CrowdComputeError('CC_ERR_INVALID_JOB', `job ${job.id} is a map job: append arguments (args), not named tasks`, { jobId: job.id });
    const args = part.args ?? [];
    const size = job.chunkSize ?? 1;
    const tasks = delayed(mapTasks(args, size, Math.floor((at ?? job.argCount ?? 0) / size), limits, common, none, job.language ?? 'javascript').map(({ index: _, ...t }) => t), runAt);
    return { jobId: job.id, tasks, args: args.length, at, seal: part.seal === true, label: null, now };
  }
  if (job.kind !== 'tasks') throw new CrowdComputeError('CC_ERR_JOB_SEALED', `job ${job.id} is a ${job.kind} job; only map jobs and jobs of named tasks take appended parts`, { jobId: job.id });
  if (part.args?.length) throw new CrowdComputeError('CC_ERR_INVALID_JOB', `job ${job.id} is a job of named tasks: append tasks, not arguments (args)`, { jobId: job.id });
  const list = part.tasks ?? [];
  const tasks = delayed(namedTasks(list, at ?? job.counts.total, limits, common, none, now).map(({ index: _, ...t }) => t), runAt);
  return { jobId: job.id, tasks, args: 0, at, seal: part.seal === true, label: list.length ? jobLabel({ kind: 'tasks', tasks: list }) : null, now };
}

/** Turn a validated job spec into the rows to insert, enforcing the limits with errors that name them. */
export function buildJob(spec: JobSpec, limits: SubmissionLimits, now: number, owner: string | null = null): JobInsertParams {
  // Time-ordered (see job-id.ts).
  const jobId = newJobId();
  const priority: Priority = spec.priority ?? 'normal';
  const maxAttempts = spec.maxAttempts ?? 1;
  const timeoutMs = spec.timeoutMs ?? limits.defaultTimeoutMs;
  const open = spec.open === true;
  if (spec.webhook !== undefined && !webhookHostAllowed(spec.webhook, limits.webhookHosts ?? [])) {
    throw new CrowdComputeError('CC_ERR_INVALID_JOB', `webhook host ${new URL(spec.webhook).hostname} is not one this foreman calls (--webhook-host ${limits.webhookHosts!.join(', ')}); use one of those`,
      { webhook: spec.webhook });
  }
  const share = { weight: spec.weight ?? 1, maxConcurrency: spec.maxConcurrency ?? null, webhookUrl: spec.webhook ?? null, ...jobExpiry(spec, limits, now) };
  const idOf = (index: number) => `${jobId}.${index}`;
  const runAt = releaseTime('the job', spec, now);
  const time = { runAt: runAt ?? null };

  if (spec.kind === 'map') {
    if (spec.args.length === 0 && !open) throw new CrowdComputeError('CC_ERR_INVALID_JOB', 'a map job needs at least one argument (or submit it open and append them)');
    if (spec.language === 'python') checkPythonSourceShape(spec.code);
    else checkFunctionSource(spec.code);
    const size = open ? spec.chunkSize ?? OPEN_MAP_CHUNK_SIZE : chooseChunkSize(spec.args.length, spec.chunkSize);
    const tasks = delayed(mapTasks(spec.args, size, 0, limits, { priority, maxAttempts, timeoutMs }, idOf, spec.language ?? 'javascript') as NewTask[], runAt);
    return {
      job: { id: jobId, kind: 'map', name: spec.name ?? null, priority, argCount: spec.args.length, chunkSize: size, code: spec.code,
        timeoutMs, maxAttempts, idempotencyKey: spec.idempotencyKey ?? null, metadata: spec.metadata ?? null, owner, retentionMs: spec.retentionMs ?? limits.defaultRetentionMs,
        label: jobLabel(spec), queueTimeoutMs: spec.queueTimeoutMs ?? limits.defaultQueueTimeoutMs,
        runOn: spec.runOn && spec.runOn !== 'any' ? spec.runOn : null, language: spec.language ?? 'javascript', graph: null, open, ...share, ...time },
      tasks, now,
    };
  }

  if (spec.kind === 'graph') {
    if (open) throw new CrowdComputeError('CC_ERR_INVALID_JOB', 'a graph is submitted whole: it cannot be open');
    const plan = planGraph(jobId, spec);
    const tasks: NewTask[] = [];
    spec.nodes.forEach((n, index) => {
      const bytes = jsonSize(n.input);
      if (bytes > limits.maxPayloadBytes) {
        throw new CrowdComputeError('CC_ERR_PAYLOAD_TOO_LARGE', `graph node "${n.id}" (${n.type}) input is ${formatBytes(bytes)}, the foreman accepts at most ${formatBytes(limits.maxPayloadBytes)} (--max-payload)`);
      }
      const waits = plan.nodes[index].dependsOn.length > 0;
      tasks.push({
        id: plan.nodes[index].taskId, index, kind: 'named', type: n.type, input: n.input ?? null,
        priority: n.priority ?? priority, maxAttempts: n.maxAttempts ?? maxAttempts, timeoutMs: n.timeoutMs ?? timeoutMs,
        ...(waits ? { availableAt: BLOCKED_UNTIL } : runAt !== undefined ? { availableAt: runAt } : {}), ...(n.requires ? { requires: n.requires } : {}), ...(n.files?.length ? { files: n.files } : {}),
      });
    });
    return {
      job: { id: jobId, kind: 'graph', name: spec.name ?? null, priority, argCount: null, chunkSize: null, code: null,
        timeoutMs, maxAttempts, idempotencyKey: spec.idempotencyKey ?? null, metadata: spec.metadata ?? null, owner, retentionMs: spec.retentionMs ?? limits.defaultRetentionMs,
        label: jobLabel(spec), queueTimeoutMs: spec.queueTimeoutMs ?? limits.defaultQueueTimeoutMs, runOn: null, graph: plan, ...share, ...time },
      tasks, now,
    };
  }

  if (spec.tasks.length === 0 && !open) throw new CrowdComputeError('CC_ERR_INVALID_JOB', 'a job needs at least one task (or submit it open and append them)');
  const tasks = delayed(namedTasks(spec.tasks, 0, limits, { priority, maxAttempts, timeoutMs }, idOf, now) as NewTask[], runAt);
  return {
    job: { id: jobId, kind: 'tasks', name: spec.name ?? null, priority, argCount: null, chunkSize: null, code: null,
      timeoutMs, maxAttempts, idempotencyKey: spec.idempotencyKey ?? null, metadata: spec.metadata ?? null, owner, retentionMs: spec.retentionMs ?? limits.defaultRetentionMs,
      label: jobLabel(spec), queueTimeoutMs: spec.queueTimeoutMs ?? limits.defaultQueueTimeoutMs, runOn: null, graph: null, open, ...share, ...time },
    tasks, now,
  };
}
