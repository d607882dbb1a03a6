/**
 * What a submission, a retry or a hand-back tells the dispatcher about new work. Its own module
 * so that the job service announces work without importing the dispatcher.
 */
import type { JobRecord } from '../../store/store.ts';

/**
 * What new work holds, as far as the announcer knows: tasks that require resources, the named
 * task types, shipped code (a map job). Without `types` and `code`, any worker may want it.
 */
export interface WorkAnnouncement {
  requiring?: boolean;
  types?: readonly string[];
  code?: boolean;
  /** The jobs accepted or appended to: the scheduler shares the workers with them from now on. */
  jobs?: readonly JobRecord[];
}
