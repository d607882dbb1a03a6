import type { Command } from 'commander';
import ms from 'ms';
import { FOREMAN_BOUNDS } from '../foreman/foreman-options.ts';
import { parseDuration, within } from './parse-args.ts';
import { openCliStore, storeFlags, type StoreFlagValues } from './store-flags.ts';

/**
 * `crowdcompute prune`: delete finished jobs now, from the command line. It works beside a
 * running foreman (the foreman's own lock on a SQLite file excludes other foremen, not this),
 * in the same short steps the foreman's pruner takes, so dispatch does not stall behind it.
 */
export function pruneCommand(program: Command): void {
  storeFlags(program.command('prune')
    .description('Delete finished jobs with their tasks, results and attempt history: those past their retention, or with --older-than, all that finished longer ago than that (in the local foreman\'s database unless --database says another)'))
    .option('--older-than <duration>', 'prune every job that finished longer ago than this (e.g. 1d, 6h, 0s for all finished jobs), whatever its retention', within(parseDuration, '--older-than', FOREMAN_BOUNDS.retentionMs))
    .option('--unfinished', 'also delete jobs that have not finished (queued or running; with --older-than, those submitted longer ago than that): '
      + 'their tasks never run, and results still coming for them are refused. It only deletes, so it works on a database too full to cancel in')
    .option('--json', 'print the outcome as JSON')
    .action(async (o: StoreFlagValues & { olderThan?: number; unfinished?: boolean; json?: boolean }) => {
      const { store, described } = await openCliStore(o);
      if (!o.json) process.stderr.write(`pruning ${described}\n`);
      const started = Date.now();
      const total = { jobs: 0, tasks: 0, unfinished: 0 };
      let shown = started;
      try {
        // Unfinished jobs first (only when asked): on a full database they are what fills it.
        for (const unfinished of o.unfinished ? [true, false] : [false]) {
          for (;;) {
            const now = Date.now();
            const before = now - (o.olderThan ?? 0);
            const r = await store.jobPrune({ now, maxTasks: 5_000,
              ...(unfinished ? { unfinishedBefore: before } : o.olderThan !== undefined ? { completedBefore: before } : {}) });
            total.jobs += r.jobs;
            total.tasks += r.tasks;
            if (unfinished) total.unfinished += r.jobs;
            if (!r.more) break;
            if (!o.json && now - shown >= 1_000) {
              shown = now;
              process.stderr.write(`pruning… ${total.jobs} jobs, ${total.tasks} tasks so far\n`);
            }
          }
        }
        const stats = await store.stats();
        const seconds = (Date.now() - started) / 1000;
        if (o.json) {
          process.stdout.write(`${JSON.stringify({ pruned_jobs: total.jobs, pruned_tasks: total.tasks, pruned_unfinished_jobs: total.unfinished, seconds, retained_jobs: stats.jobs, storage_bytes: stats.storageBytes })}\n`);
        } else {
          const finished = stats.jobs.completed + stats.jobs.failed + stats.jobs.cancelled;
          const what = (o.olderThan !== undefined ? `that finished more than ${ms(o.olderThan, { long: true })} ago` : 'past their retention')
            + (o.unfinished ? ` or had not finished (${total.unfinished} of them)` : '');
          process.stdout.write(`pruned ${total.jobs} jobs ${what} (${total.tasks} tasks) in ${seconds.toFixed(1)} s; ${finished} finished jobs retained` +
            `${stats.storageBytes !== null ? `, database ${(stats.storageBytes / 1024 ** 2).toFixed(1)} MiB` : ''}\n`);
        }
      } finally {
        await store.close();
      }
    });
}
