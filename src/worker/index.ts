/**
 * Workers: `new Worker({ foremanUrl })`, `worker.handle(pattern, handler)`, `await worker.start()`.
 * `WorkerRuntime` is the same worker without Node (for other hosts).
 * @packageDocumentation
 */
export { Worker, type WorkerOptions } from './worker.ts';
export { WorkerRuntime, type WorkerRuntimeOptions, type WorkerStatus, type WorkerStats } from './runtime/worker-runtime.ts';
export { WORKER_DEFAULTS } from './runtime/worker-defaults.ts';
export { NonRetryableError, type TaskHandler, type TaskContext, type TaskInfo, type TaskFile, type HandlerOptions } from './runtime/handler-registry.ts';
export { SandboxCrashError, type CodeExecutor, type CodeRun } from './runtime/code-executor.ts';
export {
  isBatchHandler, FINALIZE_BATCH_UID,
  type Batch, type BatchHandler, type BatchResult, type CancelReason, type FinalizationResult, type RunContext, type RunInfo,
} from './runtime/batch-handler.ts';
export type { RunningTaskInfo, TaskSpan, TaskTracer, SpanEnding } from './runtime/task-runner.ts';
export { SandboxExecutor, type SandboxOptions } from './executors/sandbox-executor.ts';
export { ProcessSandboxExecutor, type ProcessSandboxOptions } from './executors/process-sandbox-executor.ts';
