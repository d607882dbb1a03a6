import type { Logger } from 'pino';
import { commitInParts } from '../../core/commit-in-parts.ts';
import { isStoreWideError } from '../../store/store-errors.ts';
import type { Store, Sweep, SweepFilter } from '../../store/store.ts';
import type { LoopTracker } from '../shared/loop-health.ts';

/** How long an item that failed on its own is left out of its sweep before it is tried again. */
const QUARANTINE_MS = 10 * 60_000;
/** Most items left out at once, per loop (the oldest are tried again first). */
const QUARANTINE_MAX = 1_000;

/**
 * Items a maintenance loop set aside because they fail on their own: left out of its sweeps
 * for a while, so that they neither fail every round nor fill its batch, then tried again (the
 * database may have been mended meanwhile).
 */
export class PoisonQuarantine {
  private readonly until = new Map<string, number>();

  /** The ids left out now. */
  ids(now: number): string[] {
    for (const [id, t] of this.until) if (t <= now) this.until.delete(id);
    return [...this.until.keys()];
  }

  add(id: string, now: number): void {
    this.until.delete(id);
    if (this.until.size >= QUARANTINE_MAX) this.until.delete(this.until.keys().next().value!);
    this.until.set(id, now + QUARANTINE_MS);
  }
}

/** What one sweep needs: its loop, the store, what it sweeps, and the call that takes a batch. */
export interface IsolatedSweep<R> {
  loop: string;
  sweep: Sweep;
  store: Store;
  now: number;
  limit: number;
  /** For `prune` on demand: jobs finished before this time. */
  completedBefore?: number;
  quarantine: PoisonQuarantine;
  tracker: LoopTracker | null;
  log: Logger;
  /** Take one batch (one transaction), kept to `filter`. */
  run: (filter: SweepFilter) => Promise<R>;
}

/**
 * One sweep of a maintenance loop (lease reaper, queue deadlines, pruner), such that one item
 * that fails on its own cannot stop it: the batch is taken in one transaction as usual, and
 * when that fails for anything but the store as a whole, the items it would take are read and
 * committed in parts (core/commit-in-parts.ts); those that fail alone are logged, counted and
 * left out of the sweeps for a while. Returns what each committed transaction returned, and the
 * store-wide error that stopped it, if one did (the caller handles the first, then throws).
 */
export async function sweepIsolating<R>(s: IsolatedSweep<R>): Promise<{ values: R[]; error?: unknown }> {
  const except = s.quarantine.ids(s.now);
  try {
    return { values: [await s.run(except.length > 0 ? { except } : {})] };
  } catch (err) {
    if (isStoreWideError(err)) return { values: [], error: err };
    const ids = await s.store.sweepCandidates({ sweep: s.sweep, now: s.now, limit: s.limit, except,
      ...(s.completedBefore !== undefined ? { completedBefore: s.completedBefore } : {}) });
    const r = await commitInParts(ids, (only) => s.run({ only }), isStoreWideError);
    for (const { item, error } of r.poisoned) {
      s.quarantine.add(item, s.now);
      s.log.error({ err: error, loop: s.loop, [s.sweep === 'leases' ? 'taskId' : 'jobId']: item },
        `${s.loop}: the store refused to change this ${s.sweep === 'leases' ? 'task' : 'job'}; it is left out for ${QUARANTINE_MS / 60_000} minutes and the rest goes on`);
    }
    s.tracker?.poisoned(r.poisoned.length);
    return { values: r.done.map((d) => d.value), ...(r.error !== undefined ? { error: r.error } : {}) };
  }
}
