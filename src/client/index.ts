export { Client, type ClientOptions, type JobOptions, type MapFunction, type MapOptions, type TaskOptions, type ResultsPage, type JobInfo, type TaskInfoRest, type RateLimitInfo, type KeyInfo, type TaskArtifacts, type TaskBatches, type GraphInfo, type FileInfo, type ScheduleInfo, type ScheduleRunInfo, type WebhookDeliveryInfo, type FailedGroupInfo, type FailedFilter } from './client.ts';
export type { ScheduleSpec, SchedulePatch, ScheduleOverlap, ScheduleCatchUpPolicy, JobSpec } from '../protocol/index.ts';
export { GraphHandle, JobHandle, TaskHandle, JobFailedError, type JobOutcome, type JobProgress, type JobFailure, type TaskProgressEvent } from './job-handle.ts';
export { functionSource } from './function-source.ts';
export { OpenJob } from './open-job.ts';
export { mapJobSpec, taskJobSpec, type SdkJobSpec } from './job-specs.ts';
