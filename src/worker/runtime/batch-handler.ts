/**
 * Batch handlers: a task that works through its input in batches, records each batch as it
 * finishes (with its metrics, the artifacts it wrote and the latest checkpoint, in one
 * transaction on the foreman), and, when a worker dies mid-task, resumes on another worker
 * from the last checkpoint, skipping the batches already done.
 *
 * The runtime turns a {@link BatchHandler} into an ordinary task handler with
 * {@link batchTaskHandler}; everything else (routing by pattern, deadlines, cancellation,
 * retries) is the same as for plain handlers.
 */
import { CrowdComputeError } from '../../protocol/index.ts';
import type { TaskRecordMessage } from '../../protocol/index.ts';
import type { HandlerOptions, TaskContext, TaskHandler, TaskInfo } from './handler-registry.ts';
import { adapterBatches, type PulledArtifacts, type PullQuery } from './input-adapters.ts';

/** One unit of work of a task: a uid stable across attempts, and what to process. */
export interface Batch<P = any> {
  batchUid: string;
  payload: P;
}

/** What processing a batch gave: success, numbers to add up per task, and a reference to what it wrote. */
export interface BatchResult {
  success: boolean;
  /** Numbers summed per task over its batches (visible in the API). */
  metrics?: Record<string, number>;
  /** Whatever the handler wants to say about the artifacts it wrote (kept on the worker only). */
  artifactsRef?: unknown;
  /** Why it did not succeed, when `success` is false (the task fails, and may be retried). */
  error?: string;
}

/** What `finalize` may return: the task's result, and metrics to add to the task's. */
export interface FinalizationResult {
  result?: unknown;
  metrics?: Record<string, number>;
}

/** Where a run starts: the task, and whether it resumes an earlier attempt. */
export interface RunInfo {
  taskId: string;
  jobId: string;
  type: string;
  attempt: number;
  input: unknown;
  /** True when an earlier attempt left a checkpoint or batches done. */
  resumed: boolean;
}

/**
 * Why a run was asked to stop: the coordinator cancelled it (a person or a program), its
 * deadline passed, the foreman no longer counts it as this worker's (lease lost), or the worker
 * is shutting down.
 */
export type CancelReason = 'coordinator' | 'timeout' | 'lease_lost' | 'worker_shutdown';

/** A batch handler's tools, besides the task. */
export interface RunContext extends TaskContext {
  /** The task being run. */
  readonly task: TaskInfo;
  /** The last checkpoint saved, by this attempt or an earlier one; undefined when none. */
  readonly checkpoint: unknown;
  /**
   * Save the state to resume from. Within `processBatch` it is recorded with the batch, in the
   * same transaction; elsewhere, at once. Resolves once recorded.
   */
  saveCheckpoint(state: unknown): Promise<void>;
  readonly artifacts: {
    /**
     * Write an artifact under a batch uid. Within `processBatch` it is recorded with the batch;
     * elsewhere, at once. The first artifact recorded under a uid stands: a repeat (a batch
     * done again after a crash) is not counted twice.
     */
    upsertPartial(batchUid: string, data: unknown): Promise<{ taskId: string; batchUid: string }>;
    /** Say that this task will write no more artifacts. */
    complete(): Promise<void>;
  };
  /** Why the run was asked to stop, once `signal` has fired; null before. */
  readonly cancelReason: CancelReason | null;
  /** The metrics of the batches this attempt processed, summed. */
  readonly metrics: Readonly<Record<string, number>>;
  /** Batch uids done, by this attempt or an earlier one. */
  readonly batchesDone: ReadonlySet<string>;
}

/** FlowKit's handler interface: `init`, `iterBatches`, `processBatch`, `finalize`, `classifyError`. */
export interface BatchHandler<I = any, P = any> {
  init?(runInfo: RunInfo): void | Promise<void>;
  /** The task's batches, in an order that is the same on every attempt. */
  iterBatches(input: I, ctx: RunContext): AsyncIterable<Batch<P>> | Iterable<Batch<P>>;
  processBatch(batch: Batch<P>, ctx: RunContext): BatchResult | Promise<BatchResult>;
  /** After the last batch: what it returns as `result` is the task's result. */
  finalize?(ctx: RunContext): FinalizationResult | void | Promise<FinalizationResult | void>;
  /** `[reason, permanent]`: a permanent error fails the task without retry; a transient one retries from the checkpoint. */
  classifyError?(error: unknown): [reason: string, permanent: boolean];
}

/** What a batch handler sends to be recorded. */
export type RecordParts = Omit<TaskRecordMessage, 'type' | 'requestId' | 'taskId' | 'attempt'>;

/** How a batch handler reaches the foreman: record what it did, read its upstream nodes' artifacts. */
export interface BatchIo {
  /** Resolves to false when the foreman no longer counts the attempt as this worker's. */
  record(task: { taskId: string; attempt: number }, parts: RecordParts): Promise<boolean>;
  pull(task: { taskId: string; attempt: number }, query: PullQuery): Promise<PulledArtifacts>;
}

export type { PullQuery, PulledArtifacts };

/** The batch uid under which `finalize`'s metrics are recorded. */
export const FINALIZE_BATCH_UID = '#finalize';

/** True for an object that implements the batch handler interface. */
export function isBatchHandler(x: unknown): x is BatchHandler {
  return typeof x === 'object' && x !== null && typeof (x as BatchHandler).iterBatches === 'function' && typeof (x as BatchHandler).processBatch === 'function';
}

/** Why a signal fired, from the error the runtime aborted it with. */
export function cancelReasonOf(signal: AbortSignal): CancelReason | null {
  if (!signal.aborted) return null;
  const r = (signal.reason as { details?: { cancelReason?: CancelReason } } | undefined)?.details?.cancelReason;
  return r ?? 'coordinator';
}

/** A batch handler's `classifyError`, in the form plain handlers' options take. */
export function batchHandlerOptions(h: BatchHandler): HandlerOptions {
  const classify = h.classifyError;
  if (!classify) return {};
  return { classifyError: (error) => { const [reason, permanent] = classify.call(h, error); return { code: reason, retryable: !permanent }; } };
}

function addMetrics(into: Record<string, number>, m: Record<string, number> | undefined): void {
  for (const [k, v] of Object.entries(m ?? {})) if (typeof v === 'number' && Number.isFinite(v)) into[k] = (into[k] ?? 0) + v;
}

/** Turn a batch handler into a task handler that records as it goes and resumes where the last attempt stopped. */
export function batchTaskHandler(h: BatchHandler, io: BatchIo): TaskHandler {
  return async (task: TaskInfo, ctx: TaskContext) => {
    const ref = { taskId: task.id, attempt: task.attempt };
    const done = new Set(task.resume?.batches ?? []);
    let checkpoint = task.resume?.checkpoint;
    const metrics: Record<string, number> = {};
    // While processBatch runs, what it saves waits for the batch, to be recorded with it.
    let pending: { artifacts: { batchUid: string; data: unknown }[]; checkpoint?: unknown } | null = null;
    const send = async (parts: RecordParts) => {
      if (!(await io.record(ref, parts))) {
        throw new CrowdComputeError('CC_ERR_WORKER_LOST', `task ${task.id} attempt ${task.attempt} is no longer this worker's (${ctx.workerId}); stopping`, { cancelReason: 'lease_lost' });
      }
    };
    const run: RunContext = {
      signal: ctx.signal, workerId: ctx.workerId, attempt: ctx.attempt, progress: ctx.progress.bind(ctx), task,
      get checkpoint() { return checkpoint; },
      async saveCheckpoint(state: unknown) {
        if (state === undefined) throw new TypeError('saveCheckpoint(state): state must be a JSON value');
        checkpoint = state;
        if (pending) pending.checkpoint = state;
        else await send({ checkpoint: state });
      },
      artifacts: {
        async upsertPartial(batchUid: string, data: unknown) {
          if (typeof batchUid !== 'string' || batchUid.length === 0) throw new TypeError('upsertPartial(batchUid, data): batchUid must be a non-empty string');
          if (pending) pending.artifacts.push({ batchUid, data });
          else await send({ artifacts: [{ batchUid, data }] });
          return { taskId: task.id, batchUid };
        },
        async complete() { await send({ artifactsComplete: true }); },
      },
      get cancelReason() { return cancelReasonOf(ctx.signal); },
      get metrics() { return { ...metrics }; },
      batchesDone: done,
    };
    await h.init?.({ taskId: task.id, jobId: task.jobId, type: task.type, attempt: task.attempt, input: task.input, resumed: task.resume !== undefined });
    // A graph node with an input adapter reads its upstream nodes' artifacts instead of iterBatches.
    const g = task.graph;
    const batches = g?.inputAdapter && g.inputArgs
      ? adapterBatches(g.inputAdapter, g.inputArgs, (q) => io.pull(ref, q), ctx.signal, `node "${g.nodeId}" (task ${task.id})`)
      : h.iterBatches(task.input, run);
    for await (const batch of batches) {
      ctx.signal.throwIfAborted();
      if (done.has(batch.batchUid)) continue;
      pending = { artifacts: [] };
      let result: BatchResult;
      let saved: NonNullable<typeof pending>;
      try {
        result = await h.processBatch(batch, run);
      } finally {
        saved = pending;
        pending = null;
      }
      if (!result || result.success === false) {
        throw new Error(result?.error ?? `batch ${batch.batchUid} of task ${task.id} did not succeed`);
      }
      // A cancelled run records nothing more: its batch runs again on the next attempt, if any.
      ctx.signal.throwIfAborted();
      await send({
        batch: { uid: batch.batchUid, ...(result.metrics ? { metrics: result.metrics } : {}) },
        ...(saved.artifacts.length > 0 ? { artifacts: saved.artifacts } : {}),
        ...(saved.checkpoint !== undefined ? { checkpoint: saved.checkpoint } : {}),
      });
      addMetrics(metrics, result.metrics);
      done.add(batch.batchUid);
    }
    const fin = (await h.finalize?.(run)) ?? undefined;
    if (fin?.metrics && Object.keys(fin.metrics).length > 0) {
      await send({ batch: { uid: FINALIZE_BATCH_UID, metrics: fin.metrics } });
      addMetrics(metrics, fin.metrics);
    }
    return fin?.result ?? null;
  };
}
