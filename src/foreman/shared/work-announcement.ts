/**
 * What a submission, a retry or a hand-back tells the dispatcher about new work. Its own module
 * so that the job service announces work without importing the dispatcher.
 */
import type { ActiveJob, JobRecord } from '../../store/store.ts';
import type { TraceContext } from '../../protocol/index.ts';

/** A job accepted or appended to here, and how many of the tasks it just brought are delayed (not yet due). */
export interface AnnouncedJob {
  record: JobRecord;
  delayed: number;
}

/**
 * What new work holds, as far as the announcer knows: tasks that require resources, the named
 * task types, shipped code (a map job). Without `types` and `code`, any worker may want it.
 */
export interface WorkAnnouncement {
  requiring?: boolean;
  types?: readonly string[];
  code?: boolean;
  /** The jobs accepted or appended to: the scheduler shares the workers with them from now on. */
  jobs?: readonly AnnouncedJob[];
  /**
   * Jobs another foreman accepted, as they were when it committed them: shared from now on
   * without reading the store again (that read would stand between the submission there and
   * the workers here).
   */
  accepted?: readonly ActiveJob[];
  /**
   * What another foreman's accepted jobs' tasks are sent with (not for graphs, whose plan is
   * read): known here without reading the job at its first dispatch.
   */
  sendWith?: readonly JobSendWith[];
}

/** What a job's tasks are sent to workers with, besides their own fields. */
export interface JobSendWith {
  jobId: string;
  metadata: Record<string, unknown> | null;
  traceContext: TraceContext | null;
}
