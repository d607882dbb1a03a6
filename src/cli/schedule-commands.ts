/**
 * `crowdcompute schedule …`: recurring jobs kept by the foreman, fired at each tick of a cron
 * expression or a fixed interval. A schedule's job is written as `submit` and `map` take one
 * (the same words build the same spec), as a graph file, or as a JSON file of a job spec.
 */
import { readFileSync, existsSync } from 'node:fs';
import { Option, type Command } from 'commander';
import type { ScheduleInfo } from '../client/index.ts';
import {
  JobSpecSchema, RestJobSpecSchema, SCHEDULE_CATCH_UP, SCHEDULE_LIMITS, SCHEDULE_OVERLAP, snakeKeysOf,
  type JobSpec, type ScheduleCatchUpPolicy, type ScheduleOverlap, type ScheduleView,
} from '../protocol/index.ts';
import { foremanOption, print, withClient } from './foreman-client.ts';
import { graphFrom, jobOptionsFrom, mapFlags, mapFunctionFrom, mapInputsFrom, taskFlags, type JobFlagValues } from './job-flags.ts';
import { parseDurationFlag, parseJsonArg, parseTime } from './parse-args.ts';
import { scheduleSummary, schedulesTable, scheduleWhen } from './schedule-views.ts';
import { relativeTime, shortId, snakeKeys } from './views.ts';
import { ProgressBar } from './progress-bar.ts';

/** What the job words after a schedule's id may be. */
const JOB_WORDS = '"submit <type> [input]", "map <module> <inputs>" or "graph <file>"';

/** Keys of a job spec (and of its tasks and nodes) that name the protocol's fields, not the caller's data. */
function protocolKeys(spec: Record<string, unknown>): string[] {
  const keys = Object.keys(spec);
  for (const list of [spec.tasks, spec.nodes]) {
    if (Array.isArray(list)) for (const item of list) if (item && typeof item === 'object') keys.push(...Object.keys(item as object));
  }
  return keys;
}

/**
 * A job spec file: as POST /api/jobs takes it (snake_case: `timeout_ms`), or as the SDK and
 * `graph run` write it (camelCase: `timeoutMs`). Keys of one word are the same in both; a key
 * with `_` says the file is in the REST API's form. Checked here, so a mistake names the file.
 */
function jobFromFile(path: string): JobSpec {
  if (!existsSync(path)) throw new Error(`job file ${path} does not exist`);
  const raw = parseJsonArg(readFileSync(path, 'utf8'), path);
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${path} must hold a JSON object: a job spec with "kind" (tasks, map or graph)`);
  const rest = protocolKeys(raw as Record<string, unknown>).some((k) => k.includes('_'));
  const parsed = (rest ? RestJobSpecSchema : JobSpecSchema).safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${path} is not a job spec: ${issue.path.length ? `${issue.path.join('.')}: ` : ''}${issue.message}`);
  }
  return parsed.data;
}

interface CreateFlags extends JobFlagValues {
  cron?: string; every?: number; timezone?: string; overlap?: ScheduleOverlap; catchUp?: ScheduleCatchUpPolicy; catchUpWindow?: number;
  jitter?: number; paused?: boolean; name?: string; job?: string; export?: string; json?: boolean;
}

/**
 * The job a schedule fires, from `--job <file>` or the words after its id. It takes no start
 * time (`--at`, `--delay`): each fire is its own start.
 */
async function jobFrom(words: string[], o: CreateFlags): Promise<JobSpec> {
  if (o.job) {
    if (words.length) throw new Error(`give the job either as --job ${o.job} or as ${words[0]} …, not both`);
    return jobFromFile(o.job);
  }
  const [what, a, b, ...extra] = words;
  const options = jobOptionsFrom(o);
  if (extra.length) throw new Error(`too many words for the job: ${words.join(' ')} (give ${JOB_WORDS})`);
  const sdk = await import('../client/index.ts');
  if (what === 'submit' && a) return sdk.taskJobSpec(a, b === undefined ? null : parseJsonArg(b, 'input'), options) as JobSpec;
  if (what === 'map' && a && b) return sdk.mapJobSpec(await mapFunctionFrom(a, o.export), mapInputsFrom(b), options) as JobSpec;
  if (what === 'graph' && a && b === undefined) return { ...graphFrom(a), ...options, kind: 'graph' } as JobSpec;
  if (what === undefined) throw new Error(`a schedule needs a job: --job <file>, or after its id ${JOB_WORDS}`);
  throw new Error(`"${words.join(' ')}" is not a job: give ${JOB_WORDS}, or --job <file>`);
}

/** A schedule as the REST API shows it, from the SDK's camelCase one. */
function rest(s: ScheduleInfo): ScheduleView {
  return {
    ...(snakeKeys(s) as Omit<ScheduleView, 'job' | 'catch_up' | 'recent_runs'>),
    job: snakeKeysOf(JobSpecSchema, s.job),
    catch_up: { window_ms: s.catchUp.windowMs, policy: s.catchUp.policy },
    recent_runs: s.recentRuns.map((r) => snakeKeys(r) as ScheduleView['recent_runs'][number]),
  };
}

/** The `schedule` commands. */
export function scheduleCommands(program: Command): void {
  const schedule = program.command('schedule').description('Recurring jobs: fired at each tick of a cron expression or an interval, once per tick across every foreman');

  foremanOption(mapFlags(taskFlags(schedule.command('create')
    .description(`Create a schedule: its id, when (--cron or --every), and its job (--job <file>, or ${JOB_WORDS} after the id)`)
    .argument('<id>', 'the schedule\'s id: 1 to 200 letters, digits, _, ., : or -')
    .argument('[job...]', `the job each tick fires: ${JOB_WORDS}, as the submit, map and graph run commands take them`)
    .addOption(new Option('--cron <expression>', 'cron expression: 5 fields (minute hour day month weekday), 6 with seconds first, or @hourly, @daily, …').conflicts('every'))
    .addOption(new Option('--every <duration>', 'a fixed interval, e.g. 30s, 10m, 1h (at least 1s); ticks are aligned to the Unix epoch (every 1h fires on the hour, UTC)')
      .argParser(parseDurationFlag('--every', SCHEDULE_LIMITS.maxEveryMs, SCHEDULE_LIMITS.minEveryMs)))
    .option('--timezone <zone>', 'IANA time zone of the cron expression, e.g. Europe/Paris (default UTC)')
    .addOption(new Option('--overlap <policy>', 'when the previous run\'s job is unfinished: skip this tick (default), allow it, cancel_previous then fire, or buffer_one tick for later').choices(SCHEDULE_OVERLAP))
    .addOption(new Option('--catch-up <policy>', 'ticks missed while no foreman could fire them: latest (default: the newest fires), all (each fires, in order) or none').choices(SCHEDULE_CATCH_UP))
    .option('--catch-up-window <duration>', 'ticks later than this are never fired late (default 1h, at most 30d)', parseDurationFlag('--catch-up-window', SCHEDULE_LIMITS.maxWindowMs))
    .option('--jitter <duration>', 'fire each tick up to this much later (the same on every foreman), e.g. 30s (at most 1d)', parseDurationFlag('--jitter', SCHEDULE_LIMITS.maxJitterMs))
    .option('--paused', 'create it paused: no tick fires until it is resumed')
    .option('--name <name>', 'a name for people; its jobs are named after it (default: the id)')
    .option('--job <file>', 'the job as a JSON file: a job spec as POST /api/jobs takes it ({"kind": "tasks", "tasks": [...]}, snake_case or camelCase keys)')
    .option('--json', 'print the schedule as the REST API has it (POST /api/schedules)'))))
    .action(async (id: string, words: string[], o: CreateFlags & Parameters<typeof withClient>[0]) => {
      if (o.cron === undefined && o.every === undefined) throw new Error('a schedule needs --cron <expression> or --every <duration>');
      const job = await jobFrom(words, o);
      const catchUp = { ...(o.catchUp ? { policy: o.catchUp } : {}), ...(o.catchUpWindow !== undefined ? { window: o.catchUpWindow } : {}) };
      await withClient(o, async (client) => {
        const created = rest(await client.createSchedule({
          id, job, ...(o.cron !== undefined ? { cron: o.cron } : {}), ...(o.every !== undefined ? { every: o.every } : {}),
          ...(o.timezone ? { timezone: o.timezone } : {}), ...(o.overlap ? { overlap: o.overlap } : {}), ...(Object.keys(catchUp).length ? { catchUp } : {}),
          ...(o.jitter !== undefined ? { jitter: o.jitter } : {}), ...(o.paused ? { paused: true } : {}), ...(o.name ? { name: o.name } : {}),
        }));
        if (o.json) { print(created); return; }
        process.stderr.write(`schedule ${created.id} created: ${scheduleWhen(created)}${created.paused ? ', paused' : `, next run ${relativeTime(created.next_fire_at)}`}\n`);
        process.stdout.write(scheduleSummary(created));
      });
    });

  foremanOption(schedule.command('list')
    .description('List the schedules (yours; every owner\'s with an admin key): id, name, when, next run, last run and its job\'s state, paused')
    .option('--json', 'print them as the REST API has them (GET /api/schedules)'))
    .action(async (o) => {
      await withClient(o, async (client) => {
        const list = (await client.listSchedules()).map(rest);
        if (o.json) { print(list); return; }
        process.stdout.write(schedulesTable(list));
      });
    });

  foremanOption(schedule.command('show')
    .description('Show one schedule: when it fires, its job, its next five ticks, its recent runs with their jobs and states')
    .argument('<id>', 'the schedule\'s id')
    .option('--json', 'print it as the REST API has it (GET /api/schedules/{id})'))
    .action(async (id: string, o) => {
      await withClient(o, async (client) => {
        const s = rest(await client.getSchedule(id));
        if (o.json) { print(s); return; }
        process.stdout.write(scheduleSummary(s));
      });
    });

  foremanOption(schedule.command('pause')
    .description('Pause a schedule: no tick fires (none is caught up on later) until it is resumed; jobs already fired go on')
    .argument('<id>', 'the schedule\'s id')
    .option('--note <text>', 'why, shown with it')
    .option('--json', 'print the schedule as the REST API has it'))
    .action(async (id: string, o) => {
      await withClient(o, async (client) => {
        const s = rest(await client.pauseSchedule(id, o.note));
        if (o.json) { print(s); return; }
        process.stdout.write(`schedule ${s.id} paused${s.pause_note ? ` (${s.pause_note})` : ''}\n`);
      });
    });

  foremanOption(schedule.command('resume')
    .description('Resume a paused schedule: it fires from its next tick on')
    .argument('<id>', 'the schedule\'s id')
    .option('--json', 'print the schedule as the REST API has it'))
    .action(async (id: string, o) => {
      await withClient(o, async (client) => {
        const s = rest(await client.resumeSchedule(id));
        if (o.json) { print(s); return; }
        process.stdout.write(`schedule ${s.id} resumed: next run ${s.next_fire_at ?? '-'} (${relativeTime(s.next_fire_at)})\n`);
      });
    });

  foremanOption(schedule.command('delete')
    .description('Delete a schedule; the jobs it fired are kept')
    .argument('<id>', 'the schedule\'s id')
    .option('--json', 'print the answer as the REST API has it'))
    .action(async (id: string, o) => {
      await withClient(o, async (client) => {
        const r = await client.deleteSchedule(id);
        if (o.json) { print(snakeKeys(r)); return; }
        process.stdout.write(`schedule ${id} deleted (the jobs it fired are kept)\n`);
      });
    });

  foremanOption(schedule.command('trigger')
    .description('Fire a schedule\'s job once now, outside its ticks (its next tick stays as it was); prints the job\'s id')
    .argument('<id>', 'the schedule\'s id')
    .option('--wait', 'wait for the job to finish, with a progress bar; exits 1 unless it completed')
    .option('--json', 'print { job_id }'))
    .action(async (id: string, o) => {
      await withClient(o, async (client) => {
        const job = await client.triggerSchedule(id);
        if (o.json) print({ job_id: job.id }); else process.stdout.write(`${job.id}\n`);
        if (!o.wait) return;
        const bar = new ProgressBar(`job ${shortId(job.id)}`);
        job.onProgress((p) => bar.update(p.counts.completed + p.counts.failed + p.counts.cancelled, p.counts.total));
        const outcome = await job.outcome();
        bar.update(outcome.counts.total, outcome.counts.total);
        bar.done(`job ${job.id} ${outcome.state}`);
        if (outcome.state !== 'completed') process.exitCode = 1;
      });
    });

  foremanOption(schedule.command('backfill')
    .description(`Fire every tick t with from <= t < to, each as its own job (at most ${SCHEDULE_LIMITS.maxBackfillTicks} ticks; a tick that already fired is not fired again)`)
    .argument('<id>', 'the schedule\'s id')
    .requiredOption('--from <time>', 'the first tick: RFC 3339 with its offset (2026-05-01T00:00:00Z) or epoch ms', parseTime('--from'))
    .requiredOption('--to <time>', 'the end, not included: RFC 3339 with its offset or epoch ms', parseTime('--to'))
    .option('--json', 'print { fired, skipped, job_ids } as the REST API has it'))
    .action(async (id: string, o) => {
      await withClient(o, async (client) => {
        const r = await client.backfillSchedule(id, o.from, o.to);
        if (o.json) { print({ fired: r.fired, skipped: r.skipped, job_ids: r.jobIds }); return; }
        process.stderr.write(`schedule ${id}: ${r.fired} tick${r.fired === 1 ? '' : 's'} fired${r.skipped ? `, ${r.skipped} had fired already` : ''}\n`);
        for (const jobId of r.jobIds) process.stdout.write(`${jobId}\n`);
      });
    });
}
