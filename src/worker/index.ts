export { Worker, type WorkerOptions, type WorkerStatus, type WorkerStats } from './worker.ts';
export { NonRetryableError, type TaskHandler, type TaskContext, type TaskInfo, type HandlerOptions } from './handler-registry.ts';
export { SandboxExecutor, type SandboxOptions } from './executors/sandbox-executor.ts';
