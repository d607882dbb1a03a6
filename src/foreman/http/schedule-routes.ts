import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  JobSpecSchema, RestSchedulePatchSchema, RestScheduleSpecSchema, ScheduleBackfillBodySchema, ScheduleBackfillViewSchema, ScheduleDeleteViewSchema,
  ScheduleIdParamsSchema, SchedulePauseBodySchema, ScheduleTriggerViewSchema, ScheduleViewSchema, snakeKeysOf,
  type ScheduleBackfillView, type ScheduleDeleteView, type ScheduleTriggerView, type ScheduleView,
} from '../../protocol/index.ts';
import { dueAt } from '../../core/schedule-plan.ts';
import { nextTicks } from '../../core/schedule-ticks.ts';
import type { ScheduleRecord, Store } from '../../store/store.ts';
import type { ScheduleService } from '../schedules/schedule-service.ts';
import { ruleOf } from '../schedules/schedule-spec.ts';
import { routeSchema } from './openapi.ts';
import { parseRequest } from './rest-inputs.ts';

/** What the schedule routes act through. */
export interface ScheduleRouteDeps {
  store: Store;
  schedules: ScheduleService;
  /** What time it is for the schedules. */
  clock: () => number;
}

/** Runs a schedule's view lists. */
const RECENT_RUNS = 20;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** A schedule as the REST API shows it: its spec, where it stands, its next ticks and its recent runs. */
export async function scheduleView(s: ScheduleRecord, store: Store, now: number): Promise<ScheduleView> {
  const runs = await store.scheduleRunList({ scheduleId: s.id, limit: RECENT_RUNS });
  const nextFires = nextTicks(ruleOf(s), s.paused ? now : (s.nextTick ?? now) - 1, 5);
  return {
    id: s.id, name: s.name, owner: s.owner, cron: s.cron, every_ms: s.everyMs, timezone: s.timezone,
    job: snakeKeysOf(JobSpecSchema, s.job), overlap: s.overlap,
    catch_up: { window_ms: s.windowMs, policy: s.policy }, jitter_ms: s.jitterMs,
    paused: s.paused, pause_note: s.pauseNote, created_at: new Date(s.createdAt).toISOString(), updated_at: new Date(s.updatedAt).toISOString(),
    next_fire_at: s.paused || s.nextTick === null ? null : iso(s.dueAt ?? dueAt(s, s.nextTick)),
    next_fires: nextFires.map((t) => new Date(t).toISOString()),
    buffered_tick: iso(s.bufferedTick),
    recent_runs: runs.map((r) => ({
      tick_at: new Date(r.tickAt).toISOString(), fired_at: iso(r.firedAt), reason: r.reason, outcome: r.outcome, job_id: r.jobId, job_state: r.jobState,
    })),
  };
}

const idOf = (params: unknown): string => parseRequest(ScheduleIdParamsSchema, params, 'path').id;

/** Recurring schedules under /api/schedules: create, list, read, change, pause, resume, delete, trigger, backfill. */
export function registerScheduleRoutes(app: FastifyInstance, deps: ScheduleRouteDeps): void {
  const { store, schedules, clock } = deps;
  const view = (s: ScheduleRecord) => scheduleView(s, store, clock());
  const tags = ['schedules'];

  app.post('/api/schedules', {
    schema: routeSchema({
      operationId: 'createSchedule', tags, summary: 'Create a schedule: a job fired at each tick of a cron expression or a fixed interval',
      description: 'Its first tick is the first after now. The job is a job spec as POST /api/jobs takes it, without idempotency_key, open, run_at or delay; each fire is a job of its own, owned by this key, with the idempotency key schedule:<id>:<tick epoch ms>.',
      body: RestScheduleSpecSchema, response: { 201: ScheduleViewSchema }, errors: [400, 401, 403, 409],
    }),
  }, async (req, reply): Promise<ScheduleView> => {
    const spec = parseRequest(RestScheduleSpecSchema, req.body, 'schedule', 'CC_ERR_INVALID_SCHEDULE');
    const made = await schedules.create(spec, req.principal);
    reply.status(201);
    return view(made);
  });

  app.get('/api/schedules', {
    schema: routeSchema({ operationId: 'listSchedules', tags, summary: "Schedules, by id: the key's own, or every owner's for admin", response: { 200: z.array(ScheduleViewSchema) }, errors: [401] }),
  }, async (req): Promise<ScheduleView[]> => Promise.all((await schedules.list(req.principal)).map(view)));

  app.get('/api/schedules/:id', {
    schema: routeSchema({ operationId: 'getSchedule', tags, summary: 'One schedule: its spec, next ticks and recent runs', params: ScheduleIdParamsSchema, response: { 200: ScheduleViewSchema }, errors: [401, 404] }),
  }, async (req): Promise<ScheduleView> => view(await schedules.visible(idOf(req.params), req.principal)));

  app.patch('/api/schedules/:id', {
    schema: routeSchema({
      operationId: 'updateSchedule', tags, summary: 'Change a schedule: any field but its id',
      description: '`cron` replaces `every` and the other way round. A new rule, time zone or jitter starts from the first tick after now; other changes keep the tick it waits for.',
      params: ScheduleIdParamsSchema, body: RestSchedulePatchSchema, response: { 200: ScheduleViewSchema }, errors: [400, 401, 403, 404],
    }),
  }, async (req): Promise<ScheduleView> => {
    const patch = parseRequest(RestSchedulePatchSchema, req.body ?? {}, 'schedule change', 'CC_ERR_INVALID_SCHEDULE');
    return view(await schedules.update(idOf(req.params), patch, req.principal));
  });

  app.delete('/api/schedules/:id', {
    schema: routeSchema({ operationId: 'deleteSchedule', tags, summary: 'Delete a schedule and its run history; the jobs it fired stay', params: ScheduleIdParamsSchema, response: { 200: ScheduleDeleteViewSchema }, errors: [401, 403, 404] }),
  }, async (req): Promise<ScheduleDeleteView> => {
    const id = idOf(req.params);
    await schedules.delete(id, req.principal);
    return { deleted: true, id };
  });

  app.post('/api/schedules/:id/pause', {
    schema: routeSchema({ operationId: 'pauseSchedule', tags, summary: 'Pause a schedule: no tick fires until it is resumed', params: ScheduleIdParamsSchema, body: SchedulePauseBodySchema, response: { 200: ScheduleViewSchema }, errors: [400, 401, 403, 404] }),
  }, async (req): Promise<ScheduleView> => {
    const body = parseRequest(SchedulePauseBodySchema, req.body ?? {}, 'pause', 'CC_ERR_INVALID_SCHEDULE');
    return view(await schedules.pause(idOf(req.params), body.note, req.principal));
  });

  app.post('/api/schedules/:id/resume', {
    schema: routeSchema({
      operationId: 'resumeSchedule', tags, summary: 'Resume a paused schedule from its first tick after now',
      description: 'Ticks that came while it was paused are not fired (backfill them if they should be).',
      params: ScheduleIdParamsSchema, response: { 200: ScheduleViewSchema }, errors: [401, 403, 404],
    }),
  }, async (req): Promise<ScheduleView> => view(await schedules.resume(idOf(req.params), req.principal)));

  app.post('/api/schedules/:id/trigger', {
    schema: routeSchema({
      operationId: 'triggerSchedule', tags, summary: "Fire the schedule's job now, outside its ticks",
      description: 'The next tick stays as it was. Overlap cancel_previous cancels the previous run\'s job; skip and buffer_one do not hold an explicit trigger back. The job\'s idempotency key is schedule:<id>:trigger:<fire time ms>.',
      params: ScheduleIdParamsSchema, response: { 201: ScheduleTriggerViewSchema }, errors: [401, 403, 404],
    }),
  }, async (req, reply): Promise<ScheduleTriggerView> => {
    const res = await schedules.trigger(idOf(req.params), req.principal);
    reply.status(201);
    return { job_id: res.jobId, fire_at: new Date(res.fireAt).toISOString() };
  });

  app.post('/api/schedules/:id/backfill', {
    schema: routeSchema({
      operationId: 'backfillSchedule', tags, summary: 'Fire every past tick t with from <= t < to, each as its own job (at most 1,000)',
      description: 'Overlap does not apply. A tick that fired already is not fired again (its job is found by its idempotency key, and counted in `skipped`).',
      params: ScheduleIdParamsSchema, body: ScheduleBackfillBodySchema, response: { 201: ScheduleBackfillViewSchema }, errors: [400, 401, 403, 404],
    }),
  }, async (req, reply): Promise<ScheduleBackfillView> => {
    const body = parseRequest(ScheduleBackfillBodySchema, req.body, 'backfill', 'CC_ERR_INVALID_SCHEDULE');
    const res = await schedules.backfill(idOf(req.params), body, req.principal);
    reply.status(201);
    return { fired: res.fired, skipped: res.skipped, job_ids: res.jobIds };
  });
}
