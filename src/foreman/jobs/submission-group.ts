import type { JobInsertOutcome, JobInsertParams, JobInsertResult } from '../../store/store.ts';
import { commitInParts } from '../../core/commit-in-parts.ts';
import { isStoreWideError } from '../../store/store-errors.ts';

interface Pending {
  params: JobInsertParams;
  resolve: (r: JobInsertResult) => void;
  reject: (err: Error) => void;
}

/**
 * Group commit for submissions: those that arrive while the event loop is busy (many REST
 * requests parsed in one turn, many WebSocket messages) are inserted in one transaction, so a
 * burst of small jobs pays for one commit instead of one each. A submission still resolves
 * only after the transaction holding it commits, and a job refused alone (its task id taken, or
 * a value the database will not store) fails alone. A group holds at most `maxTasks` tasks, so one big job does not delay the rest
 * by much; a bigger job goes in a group of its own.
 */
export class SubmissionGroup {
  private pending: Pending[] = [];
  private scheduled = false;
  private running = false;
  private readonly insertMany: (list: JobInsertParams[]) => Promise<JobInsertOutcome[]>;
  private readonly maxTasks: number;

  constructor(insertMany: (list: JobInsertParams[]) => Promise<JobInsertOutcome[]>, options: { maxTasks?: number } = {}) {
    this.insertMany = insertMany;
    this.maxTasks = options.maxTasks ?? 10_000;
  }

  insert(params: JobInsertParams): Promise<JobInsertResult> {
    return new Promise((resolve, reject) => {
      this.pending.push({ params, resolve, reject });
      if (this.scheduled || this.running) return;
      this.scheduled = true;
      // After the I/O callbacks of this turn: every request already read joins the group.
      setImmediate(() => { this.scheduled = false; void this.flush(); });
    });
  }

  private async flush(): Promise<void> {
    this.running = true;
    try {
      while (this.pending.length > 0) {
        let tasks = 0;
        let n = 0;
        while (n < this.pending.length && (n === 0 || tasks + this.pending[n].params.tasks.length <= this.maxTasks)) tasks += this.pending[n++].params.tasks.length;
        const group = this.pending.splice(0, n);
        // One submission the database refuses (a value it cannot store) fails alone; the store
        // failing as a whole fails the rest of the group, which its callers may send again.
        const r = await commitInParts(group, (part) => this.insertMany(part.map((p) => p.params)), isStoreWideError);
        for (const { items, value } of r.done) {
          items.forEach((p, i) => {
            const o = value[i];
            if ('error' in o) p.reject(o.error); else p.resolve(o);
          });
        }
        for (const { item, error } of r.poisoned) item.reject(error as Error);
        for (const p of r.rest) p.reject(r.error as Error);
      }
    } finally {
      this.running = false;
    }
  }
}
