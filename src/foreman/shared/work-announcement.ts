/**
 * What a submission, a retry or a hand-back tells the dispatcher about new work. Its own module
 * so that the job service announces work without importing the dispatcher.
 */
import type { ActiveJob, JobRecord } from '../../store/store.ts';

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
}
