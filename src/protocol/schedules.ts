/**
 * Recurring schedules: a job fired at each tick of a cron expression or a fixed interval. The
 * spec is camelCase (the TS SDK); the REST API takes the same fields in snake_case through
 * {@link snakeCaseSchema}. These schemas check shapes; the foreman checks what needs more than
 * a shape (a cron expression that parses, exactly one of `cron` and `every`, a job without the
 * options a fire sets itself) and answers CC_ERR_INVALID_SCHEDULE naming the field and the rule.
 */
import { z } from 'zod';
import { JOB_STATES } from './states.ts';
import { JobSpecSchema } from './messages.ts';
import { snakeCaseSchema } from './case-keys.ts';
import { UNITS } from './limits.ts';
import { TimeFieldSchema, durationField } from './time-fields.ts';

const { SECOND, MINUTE, HOUR, DAY } = UNITS;

/** What happens to a tick while the previous run's job is unfinished. */
export const SCHEDULE_OVERLAP = ['skip', 'allow', 'cancel_previous', 'buffer_one'] as const;
/** One of {@link SCHEDULE_OVERLAP}. */
export type ScheduleOverlap = (typeof SCHEDULE_OVERLAP)[number];

/** Which ticks missed while no foreman could fire them (down, store out) fire late. */
export const SCHEDULE_CATCH_UP = ['none', 'latest', 'all'] as const;
/** One of {@link SCHEDULE_CATCH_UP}. */
export type ScheduleCatchUpPolicy = (typeof SCHEDULE_CATCH_UP)[number];

/** Why a run happened: its tick on time, a tick caught up late, an explicit trigger, a backfill. */
export const SCHEDULE_RUN_REASONS = ['schedule', 'catch_up', 'trigger', 'backfill'] as const;
/** One of {@link SCHEDULE_RUN_REASONS}. */
export type ScheduleRunReason = (typeof SCHEDULE_RUN_REASONS)[number];

/** What became of a tick: a job fired, skipped (overlap), missed (catch-up), held for later (buffer_one). */
export const SCHEDULE_RUN_OUTCOMES = ['fired', 'skipped', 'missed', 'buffered'] as const;
/** One of {@link SCHEDULE_RUN_OUTCOMES}. */
export type ScheduleRunOutcome = (typeof SCHEDULE_RUN_OUTCOMES)[number];

/** The limits of a schedule's fields. */
export const SCHEDULE_LIMITS = {
  /** The shortest interval of `every`. */
  minEveryMs: SECOND,
  /** The longest interval of `every`. */
  maxEveryMs: 365 * DAY,
  /** The longest catch-up window. */
  maxWindowMs: 30 * DAY,
  /** The default catch-up window. */
  defaultWindowMs: HOUR,
  /** The longest jitter. */
  maxJitterMs: DAY,
  /** Most ticks one backfill request fires. */
  maxBackfillTicks: 1_000,
  /** A tick found due this late (or the window, if shorter) still fires under catch-up policy `none`. */
  noneGraceMs: MINUTE,
} as const;

/** A schedule's id: chosen by the user, unique across owners. */
export const ScheduleIdSchema = z.string().regex(/^[A-Za-z0-9_.:-]{1,200}$/, 'a schedule id is 1 to 200 letters, digits, _, ., : or -');

/** True when `tz` is an IANA time zone name this runtime knows (Intl). */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const timezone = z.string().min(1).max(100).refine(isTimeZone, 'must be an IANA time zone name such as UTC, Europe/Paris or America/New_York')
  .describe('IANA time zone of the cron expression (default UTC)');

/** Which late ticks fire. */
export const ScheduleCatchUpSchema = z.object({
  /** Ticks found due later than this are never fired (recorded `missed`). Default 1 h; at most 30 days. */
  window: durationField(SCHEDULE_LIMITS.maxWindowMs).optional(),
  /** Within the window: `all` late ticks fire in order, only the `latest`, or `none` (only a tick found due within a minute). Default latest. */
  policy: z.enum(SCHEDULE_CATCH_UP).optional(),
});

const scheduleFields = {
  /** A name for people; fired jobs are named after it (or after the id). */
  name: z.string().max(200).optional(),
  /** A cron expression (croner syntax): 5 fields, or 6 with seconds first; or @hourly, @daily, @weekly, @monthly, @yearly. Not with `every`. */
  cron: z.string().min(1).max(200).optional(),
  /** A fixed interval (ms, or `30s`, `1h`), at least 1 s; ticks are aligned to the Unix epoch (every 1h fires on the UTC hour). Not with `cron`. */
  every: durationField(SCHEDULE_LIMITS.maxEveryMs, SCHEDULE_LIMITS.minEveryMs).optional(),
  /** The cron expression's time zone (IANA name); default UTC. */
  timezone: timezone.optional(),
  /** The job each fire submits: a job spec as POST /api/jobs takes it, without idempotencyKey, open, runAt or delay. */
  job: JobSpecSchema,
  /** While the previous run's job is unfinished: `skip` this tick (default), `allow` it, `cancel_previous` then fire, or `buffer_one` tick to fire when it finishes. */
  overlap: z.enum(SCHEDULE_OVERLAP).optional(),
  /** Which ticks missed while no foreman could fire them fire late. */
  catchUp: ScheduleCatchUpSchema.optional(),
  /** Each tick fires up to this much later (the same delay on every foreman, derived from the id and the tick). Default 0; at most a day. */
  jitter: durationField(SCHEDULE_LIMITS.maxJitterMs).optional(),
  /** Created paused: no tick fires until it is resumed. */
  paused: z.boolean().optional(),
};

/** A schedule as created (the TS SDK's `createSchedule`). */
export const ScheduleSpecSchema = z.object({
  /** Chosen by the user: 1 to 200 letters, digits, `_`, `.`, `:` or `-`; unique. */
  id: ScheduleIdSchema,
  ...scheduleFields,
});
/** A schedule as created. */
export type ScheduleSpec = z.infer<typeof ScheduleSpecSchema>;

/** A change to a schedule: any field but the id; `cron` replaces `every` and the other way round. */
export const SchedulePatchSchema = z.object({
  ...scheduleFields,
  job: JobSpecSchema.optional(),
});
/** A change to a schedule. */
export type SchedulePatch = z.infer<typeof SchedulePatchSchema>;

/** POST /api/schedules: a schedule spec, snake_case (`catch_up`, and the job as POST /api/jobs takes it). */
export const RestScheduleSpecSchema = snakeCaseSchema(ScheduleSpecSchema);

/** PATCH /api/schedules/{id}: any spec field but the id, snake_case. */
export const RestSchedulePatchSchema = snakeCaseSchema(SchedulePatchSchema);

/** POST /api/schedules/{id}/pause: why, for people. */
export const SchedulePauseBodySchema = z.object({
  note: z.string().max(500).optional().describe('why it is paused (shown with it)'),
});

/** POST /api/schedules/{id}/backfill: fire every tick t with from <= t < to, each as its own job. */
export const ScheduleBackfillBodySchema = z.object({
  from: TimeFieldSchema,
  to: TimeFieldSchema,
});

/** Path parameter of the endpoints about one schedule. */
export const ScheduleIdParamsSchema = z.object({ id: z.string().min(1).max(200) });

// ---------------------------------------------------------------- responses

const isoTime = z.string().describe('ISO 8601 time');

/** One tick of a schedule and what became of it. */
export const ScheduleRunViewSchema = z.object({
  tick_at: isoTime.describe('the tick (for a trigger: when it was asked)'),
  fired_at: isoTime.nullable().describe('when its job was submitted; null when none was'),
  reason: z.enum(SCHEDULE_RUN_REASONS),
  outcome: z.enum(SCHEDULE_RUN_OUTCOMES),
  job_id: z.string().nullable(),
  job_state: z.enum(JOB_STATES).nullable().describe("its job's state now; null without a job, or once the job was pruned"),
});
/** One run of a schedule, as the REST API shows it. */
export type ScheduleRunView = z.output<typeof ScheduleRunViewSchema>;

/** A schedule. */
export const ScheduleViewSchema = z.object({
  id: z.string(),
  name: z.string().nullable(),
  owner: z.string().nullable().describe('the API key that created it; its fired jobs are that key\'s'),
  cron: z.string().nullable(),
  every_ms: z.number().int().nullable(),
  timezone: z.string(),
  job: z.record(z.string(), z.unknown()).describe('the job each fire submits, as POST /api/jobs takes it'),
  overlap: z.enum(SCHEDULE_OVERLAP),
  catch_up: z.object({ window_ms: z.number().int(), policy: z.enum(SCHEDULE_CATCH_UP) }),
  jitter_ms: z.number().int(),
  paused: z.boolean(),
  pause_note: z.string().nullable(),
  created_at: isoTime,
  updated_at: isoTime,
  next_fire_at: isoTime.nullable().describe('when the next tick fires (its jitter included); null while paused'),
  next_fires: z.array(isoTime).describe('the next five ticks (also while paused)'),
  buffered_tick: isoTime.nullable().describe('overlap buffer_one: the tick held until the previous run\'s job finishes'),
  recent_runs: z.array(ScheduleRunViewSchema).describe('newest first, at most 20'),
});
/** A schedule, as the REST API shows it. */
export type ScheduleView = z.output<typeof ScheduleViewSchema>;

/** DELETE /api/schedules/{id}. */
export const ScheduleDeleteViewSchema = z.object({ deleted: z.literal(true), id: z.string() });
/** DELETE /api/schedules/{id}'s answer. */
export type ScheduleDeleteView = z.output<typeof ScheduleDeleteViewSchema>;

/** POST /api/schedules/{id}/trigger: the job fired now. */
export const ScheduleTriggerViewSchema = z.object({ job_id: z.string(), fire_at: isoTime });
/** POST /api/schedules/{id}/trigger's answer. */
export type ScheduleTriggerView = z.output<typeof ScheduleTriggerViewSchema>;

/** POST /api/schedules/{id}/backfill: ticks fired, ticks that had fired already, and the jobs. */
export const ScheduleBackfillViewSchema = z.object({
  fired: z.number().int(),
  skipped: z.number().int().describe('ticks that had fired already (their job is listed too)'),
  job_ids: z.array(z.string()).describe('one per tick, in tick order'),
});
/** POST /api/schedules/{id}/backfill's answer. */
export type ScheduleBackfillView = z.output<typeof ScheduleBackfillViewSchema>;
