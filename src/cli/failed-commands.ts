/**
 * `crowdcompute failed`: the dead letters, tasks that failed for good (no attempt left, or a
 * permanent error), grouped by task type and error; `crowdcompute failed retry` runs them
 * again in bulk, by the same filters. A key sees and retries its own jobs' tasks; admin every
 * owner's.
 */
import { createInterface } from 'node:readline/promises';
import { InvalidArgumentError, Option, type Command } from 'commander';
import ms from 'ms';
import type { Client, FailedFilter, FailedGroupInfo } from '../client/index.ts';
import { FAILED_GROUPS_MAX, FAILED_RETRY_MAX, type FailedGroupView } from '../protocol/index.ts';
import { foremanOption, print, withClient } from './foreman-client.ts';
import { parseIntArg, within } from './parse-args.ts';
import { relativeTime, snakeKeys, table } from './views.ts';

interface FilterFlags { type?: string; error?: string; message?: string; job?: string; since?: number }

/** `--since`: an RFC 3339 time, epoch milliseconds, or how long ago (`1h`, `2d`). */
export function parseSince(value: string, now = Date.now()): number {
  const v = value.trim();
  if (/^\d{4}-\d{2}-\d{2}T/.test(v)) {
    const t = Date.parse(v);
    if (Number.isFinite(t) && /(Z|[+-]\d{2}:\d{2})$/i.test(v)) return t;
  } else if (/^\d{12,}$/.test(v)) {
    return Number(v);
  } else {
    const d = ms(v as ms.StringValue);
    if (typeof d === 'number' && Number.isFinite(d) && d > 0) return now - Math.round(d);
  }
  throw new InvalidArgumentError(`--since "${value}" is not a time: give how long ago (30m, 2h, 7d), an RFC 3339 time (2026-12-06T20:00:00Z) or epoch milliseconds`);
}

/** The filter flags `failed` and `failed retry` share. */
const filterFlags = (cmd: Command) => cmd
  .option('--type <type>', 'only tasks of this type (a map job\'s tasks have type "map")')
  .option('--error <code>', "only this error code (the error's name when it has none), as the ERROR column shows it")
  .option('--message <text>', "only this error message's first line, exactly as `failed --json` shows it (the table cuts long ones)")
  .option('--job <id>', 'only tasks of this job')
  .option('--since <time>', 'only tasks that failed since then: how long ago (1h, 7d), an RFC 3339 time or epoch ms', (v) => parseSince(v));

function filterOf(o: FilterFlags): FailedFilter {
  return {
    ...(o.type !== undefined ? { type: o.type } : {}), ...(o.error !== undefined ? { errorCode: o.error } : {}),
    ...(o.message !== undefined ? { message: o.message } : {}), ...(o.job !== undefined ? { jobId: o.job } : {}),
    ...(o.since !== undefined ? { since: o.since } : {}),
  };
}

/** A group as the REST API has it. */
const rest = (g: FailedGroupInfo): FailedGroupView => snakeKeys(g) as FailedGroupView;

/** Long messages are cut in the table; `--json` has them whole. */
const cut = (text: string, max = 72): string => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** `crowdcompute failed`: one row per type and error, largest first. */
export function failedTable(groups: FailedGroupView[], now = Date.now(), tty?: boolean): string {
  if (groups.length === 0) return 'no failed tasks\n';
  return table(['TYPE', 'ERROR', 'MESSAGE', 'TASKS', 'JOBS', 'LAST FAILED', 'EXAMPLE TASK'],
    groups.map((g) => [g.type, g.error_code, cut(g.message) || '-', g.count, g.jobs, relativeTime(g.last_failed_at, now), g.task_ids[0] ?? '-']), tty);
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** How many failed tasks the filter matches now: the sum of its groups (at least, when there are more groups than one page). */
async function matching(client: Client, filter: FailedFilter): Promise<{ tasks: number; groups: number; atLeast: boolean }> {
  const page = await client.listFailed({ ...filter, limit: FAILED_GROUPS_MAX });
  return { tasks: page.groups.reduce((n, g) => n + g.count, 0), groups: page.groups.length, atLeast: page.nextOffset !== null };
}

/** Ask on the terminal; anything but y or yes is a no. */
async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
  } finally {
    rl.close();
  }
}

/** The `failed` commands. */
export function failedCommands(program: Command): void {
  const failed = program.command('failed').description('Tasks that failed for good, grouped by type and error (yours; every owner\'s with an admin key), and their retry in bulk');

  foremanOption(filterFlags(failed.command('list', { isDefault: true })
    .description('List failed tasks grouped by task type and error: how many, in how many jobs, when last, an example task (the default of `failed`)'))
    .addOption(new Option('--limit <n>', `most groups to show (at most ${FAILED_GROUPS_MAX})`).argParser(within(parseIntArg, '--limit', { min: 1, max: FAILED_GROUPS_MAX })).default(100))
    .option('--json', 'print the answer as the REST API has it (GET /api/failed)'))
    .action(async (o: FilterFlags & { limit: number; json?: boolean } & Parameters<typeof withClient>[0]) => {
      await withClient(o, async (client) => {
        const page = await client.listFailed({ ...filterOf(o), limit: o.limit });
        const groups = page.groups.map(rest);
        if (o.json) { print({ groups, offset: page.offset, next_offset: page.nextOffset }); return; }
        process.stdout.write(failedTable(groups));
        if (page.nextOffset !== null) process.stderr.write(`more groups than --limit ${o.limit}: narrow the filters, or raise --limit (at most ${FAILED_GROUPS_MAX})\n`);
      });
    });

  foremanOption(filterFlags(failed.command('retry')
    .description(`Run failed tasks again with fresh attempts: those the filters match (all yours without one), at most --limit a call; their jobs run again`))
    .addOption(new Option('--limit <n>', `most tasks to requeue in this call (at most ${FAILED_RETRY_MAX.toLocaleString('en-US')})`)
      .argParser(within(parseIntArg, '--limit', { min: 1, max: FAILED_RETRY_MAX })).default(FAILED_RETRY_MAX, FAILED_RETRY_MAX.toLocaleString('en-US')))
    .option('-y, --yes', 'do not ask for confirmation (needed when not run on a terminal)')
    .option('--json', 'print the answer as the REST API has it (POST /api/failed/retry)'))
    .action(async (o: FilterFlags & { limit: number; yes?: boolean; json?: boolean } & Parameters<typeof withClient>[0]) => {
      const filter = filterOf(o);
      await withClient(o, async (client) => {
        if (!o.yes) {
          const m = await matching(client, filter);
          if (m.tasks === 0) { process.stdout.write('no failed tasks match: nothing to retry\n'); return; }
          const what = `${m.atLeast ? 'at least ' : ''}${plural(Math.min(m.tasks, o.limit), 'failed task')} in ${plural(m.groups, 'group')}`;
          if (!process.stdin.isTTY) throw new Error(`this would requeue ${what}: add --yes to confirm (there is no terminal to ask on)`);
          if (!await confirm(`requeue ${what}?`)) { process.stderr.write('nothing retried\n'); return; }
        }
        const r = await client.retryFailed({ ...filter, limit: o.limit });
        if (o.json) { print({ requeued: r.requeued, jobs: r.jobs, job_ids: r.jobIds, more: r.more }); return; }
        process.stdout.write(`requeued ${plural(r.requeued, 'task')} in ${plural(r.jobs, 'job')}${r.more ? "; more match: run it again for the rest" : ''}\n`);
      });
    });
}
