import { randomUUID } from 'node:crypto';
import {
  CrowdComputeError, formatBytes, type JobSpec, type Priority,
} from '../../protocol/index.ts';
import { chooseChunkSize, chunk } from '../../core/chunking.ts';
import { BLOCKED_UNTIL, planGraph } from '../../core/graph.ts';
import type { JobInsertParams, NewTask } from '../../store/store.ts';
import { checkFunctionSource } from './code-check.ts';

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
}

/**
 * What a job runs, in a few words for lists: the function's name for a map job; for named
 * tasks their type, or the first types and how many more.
 */
export function jobLabel(spec: JobSpec): string {
  if (spec.kind === 'map') {
    const declared = /^\s*(?:async\s+)?function\s*\*?\s*([A-Za-z_$][\w$]*)/.exec(spec.code)?.[1];
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

/** Turn a validated job spec into the rows to insert, enforcing the limits with errors that name them. */
export function buildJob(spec: JobSpec, limits: SubmissionLimits, now: number, owner: string | null = null): JobInsertParams {
  const jobId = randomUUID();
  const priority: Priority = spec.priority ?? 'normal';
  const maxAttempts = spec.maxAttempts ?? 1;
  const timeoutMs = spec.timeoutMs ?? limits.defaultTimeoutMs;
  const tasks: NewTask[] = [];

  if (spec.kind === 'map') {
    if (spec.args.length === 0) throw new CrowdComputeError('CC_ERR_INVALID_JOB', 'a map job needs at least one argument');
    if (spec.args.length > limits.maxArgs) {
      throw new CrowdComputeError('CC_ERR_INVALID_JOB', `a map job has ${spec.args.length} arguments, the foreman accepts at most ${limits.maxArgs} (--max-args); split it into several jobs`,
        { limit: limits.maxArgs, actual: spec.args.length });
    }
    checkFunctionSource(spec.code);
    const size = chooseChunkSize(spec.args.length, spec.chunkSize);
    chunk(spec.args, size).forEach((args, index) => {
      const bytes = jsonSize(args);
      if (bytes > limits.maxPayloadBytes) {
        throw new CrowdComputeError('CC_ERR_PAYLOAD_TOO_LARGE', `map job task ${index} (arguments ${index * size}..${index * size + args.length - 1}) is ${formatBytes(bytes)}, the foreman accepts at most ${formatBytes(limits.maxPayloadBytes)} per task (--max-payload); use a smaller chunkSize`);
      }
      tasks.push({ id: `${jobId}.${index}`, index, kind: 'map', type: 'map', input: args, priority, maxAttempts, timeoutMs });
    });
    return {
      job: { id: jobId, kind: 'map', name: spec.name ?? null, priority, argCount: spec.args.length, chunkSize: size, code: spec.code,
        timeoutMs, maxAttempts, idempotencyKey: spec.idempotencyKey ?? null, metadata: spec.metadata ?? null, owner, retentionMs: spec.retentionMs ?? limits.defaultRetentionMs,
        label: jobLabel(spec), queueTimeoutMs: spec.queueTimeoutMs ?? limits.defaultQueueTimeoutMs,
        runOn: spec.runOn && spec.runOn !== 'any' ? spec.runOn : null, graph: null },
      tasks, now,
    };
  }

  if (spec.kind === 'graph') {
    const plan = planGraph(jobId, spec);
    spec.nodes.forEach((n, index) => {
      const bytes = jsonSize(n.input);
      if (bytes > limits.maxPayloadBytes) {
        throw new CrowdComputeError('CC_ERR_PAYLOAD_TOO_LARGE', `graph node "${n.id}" (${n.type}) input is ${formatBytes(bytes)}, the foreman accepts at most ${formatBytes(limits.maxPayloadBytes)} (--max-payload)`);
      }
      const waits = plan.nodes[index].dependsOn.length > 0;
      tasks.push({
        id: plan.nodes[index].taskId, index, kind: 'named', type: n.type, input: n.input ?? null,
        priority: n.priority ?? priority, maxAttempts: n.maxAttempts ?? maxAttempts, timeoutMs: n.timeoutMs ?? timeoutMs,
        ...(waits ? { availableAt: BLOCKED_UNTIL } : {}), ...(n.requires ? { requires: n.requires } : {}), ...(n.files?.length ? { files: n.files } : {}),
      });
    });
    return {
      job: { id: jobId, kind: 'graph', name: spec.name ?? null, priority, argCount: null, chunkSize: null, code: null,
        timeoutMs, maxAttempts, idempotencyKey: spec.idempotencyKey ?? null, metadata: spec.metadata ?? null, owner, retentionMs: spec.retentionMs ?? limits.defaultRetentionMs,
        label: jobLabel(spec), queueTimeoutMs: spec.queueTimeoutMs ?? limits.defaultQueueTimeoutMs, runOn: null, graph: plan },
      tasks, now,
    };
  }

  if (spec.tasks.length > limits.maxTasksPerJob) {
    throw new CrowdComputeError('CC_ERR_INVALID_JOB', `a job has ${spec.tasks.length} tasks, the foreman accepts at most ${limits.maxTasksPerJob} per job (--max-args)`,
      { limit: limits.maxTasksPerJob, actual: spec.tasks.length });
  }
  spec.tasks.forEach((t, index) => {
    const bytes = jsonSize(t.input);
    if (bytes > limits.maxPayloadBytes) {
      throw new CrowdComputeError('CC_ERR_PAYLOAD_TOO_LARGE', `task ${index} (${t.type}) input is ${formatBytes(bytes)}, the foreman accepts at most ${formatBytes(limits.maxPayloadBytes)} (--max-payload)`);
    }
    tasks.push({
      id: t.taskId ?? `${jobId}.${index}`, index, kind: 'named', type: t.type, input: t.input ?? null,
      priority: t.priority ?? priority, maxAttempts: t.maxAttempts ?? maxAttempts, timeoutMs: t.timeoutMs ?? timeoutMs,
      ...(t.requires ? { requires: t.requires } : {}), ...(t.files?.length ? { files: t.files } : {}),
    });
  });
  return {
    job: { id: jobId, kind: 'tasks', name: spec.name ?? null, priority, argCount: null, chunkSize: null, code: null,
      timeoutMs, maxAttempts, idempotencyKey: spec.idempotencyKey ?? null, metadata: spec.metadata ?? null, owner, retentionMs: spec.retentionMs ?? limits.defaultRetentionMs,
      label: jobLabel(spec), queueTimeoutMs: spec.queueTimeoutMs ?? limits.defaultQueueTimeoutMs, runOn: null, graph: null },
    tasks, now,
  };
}
