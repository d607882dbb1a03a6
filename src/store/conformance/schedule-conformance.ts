/**
 * The schedules part of the conformance suite: what the foreman's scheduler relies on of every
 * driver. Registered by runStoreConformance, inside its describe (a fresh store per test).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobInsertParams, ScheduleFireParams, ScheduleInsertParams, Store } from '../store.ts';
import { SCHEDULE_RUNS_KEPT } from '../store.ts';

let counter = 0;

function schedule(id: string, over: Partial<ScheduleInsertParams> = {}): ScheduleInsertParams {
  const now = Date.now();
  return {
    id, owner: null, name: null, cron: null, everyMs: 60_000, timezone: 'UTC', job: { kind: 'tasks', tasks: [{ type: 'report.build' }] },
    overlap: 'skip', windowMs: 3_600_000, policy: 'latest', jitterMs: 0, paused: false, pauseNote: null, nextTick: 60_000, dueAt: 60_000, createdAt: now, ...over,
  };
}

function tickJob(scheduleId: string, tick: number, taskId?: string): JobInsertParams {
  const id = `sjob-${process.pid}-${++counter}`;
  return {
    job: { id, kind: 'tasks', name: scheduleId, priority: 'normal', argCount: null, chunkSize: null, code: null, timeoutMs: null, maxAttempts: 1,
      idempotencyKey: `schedule:${scheduleId}:${tick}`, metadata: { schedule: { id: scheduleId, tick } }, owner: null, retentionMs: 60_000, label: 'report.build', queueTimeoutMs: null, runOn: null },
    tasks: [{ id: taskId ?? `${id}.0`, index: 0, kind: 'named', type: 'report.build', input: null, priority: 'normal', maxAttempts: 1, timeoutMs: null }],
    now: Date.now(),
  };
}

/** A fire of `tick`, guarded by the schedule as read. */
function fireOf(s: { id: string; version: number; nextTick: number | null }, tick: number, next: number): ScheduleFireParams {
  return {
    scheduleId: s.id, guard: { version: s.version, nextTick: s.nextTick }, advance: { nextTick: next, dueAt: next, bufferedTick: null },
    runs: [{ tickAt: tick, firedAt: Date.now(), reason: 'schedule', outcome: 'fired', job: tickJob(s.id, tick) }], setsLastJob: true, now: Date.now(),
  };
}

/** Register the schedule cases; `store()` is the fresh store of the running test. */
export function scheduleConformance(store: () => Store): void {
  test('schedules: created once per id, read, listed by id (per owner), changed under a version guard, deleted', async () => {
    const s = store();
    const made = await s.scheduleCreate(schedule('b-nightly', { owner: 'k1', name: 'Nightly', cron: '0 3 * * *', everyMs: null, timezone: 'Europe/Paris' }));
    assert.ok(made);
    assert.deepEqual([made.id, made.owner, made.cron, made.everyMs, made.timezone, made.version, made.lastJobId, made.lastJobState],
      ['b-nightly', 'k1', '0 3 * * *', null, 'Europe/Paris', 1, null, null]);
    assert.deepEqual(made.job, { kind: 'tasks', tasks: [{ type: 'report.build' }] });
    assert.equal(await s.scheduleCreate(schedule('b-nightly', { owner: 'k2' })), null, 'the id is taken, whoever asks');
    await s.scheduleCreate(schedule('a-hourly', { owner: 'k2' }));
    await s.scheduleCreate(schedule('c-minutely', { owner: 'k1' }));
    assert.deepEqual((await s.scheduleList({})).map((x) => x.id), ['a-hourly', 'b-nightly', 'c-minutely']);
    assert.deepEqual((await s.scheduleList({ owner: 'k1' })).map((x) => x.id), ['b-nightly', 'c-minutely']);

    const changed = await s.scheduleUpdate({ id: 'b-nightly', change: { paused: true, pauseNote: 'maintenance', jitterMs: 500 }, expectVersion: 1, now: Date.now() });
    assert.deepEqual([changed?.paused, changed?.pauseNote, changed?.jitterMs, changed?.version], [true, 'maintenance', 500, 2]);
    assert.equal(await s.scheduleUpdate({ id: 'b-nightly', change: { paused: false }, expectVersion: 1, now: Date.now() }), null, 'a stale version changes nothing');
    assert.equal((await s.scheduleGet('b-nightly'))?.paused, true);
    assert.equal(await s.scheduleUpdate({ id: 'nope', change: { paused: false }, now: Date.now() }), null);

    assert.equal(await s.scheduleDelete('b-nightly'), true);
    assert.equal(await s.scheduleDelete('b-nightly'), false);
    assert.equal(await s.scheduleGet('b-nightly'), null);
  });

  test('schedules: the next due is the earliest unpaused; due ones are read earliest first, some set aside', async () => {
    const s = store();
    assert.equal(await s.scheduleNextDue(), null);
    await s.scheduleCreate(schedule('late', { nextTick: 5_000, dueAt: 5_000 }));
    await s.scheduleCreate(schedule('early', { nextTick: 2_000, dueAt: 2_400 }));
    await s.scheduleCreate(schedule('paused', { nextTick: 1_000, dueAt: 1_000, paused: true }));
    await s.scheduleCreate(schedule('never', { nextTick: null, dueAt: null }));
    assert.equal(await s.scheduleNextDue(), 2_400);
    assert.deepEqual((await s.scheduleDue({ now: 2_399, limit: 10 })).map((x) => x.id), []);
    assert.deepEqual((await s.scheduleDue({ now: 10_000, limit: 10 })).map((x) => x.id), ['early', 'late']);
    assert.deepEqual((await s.scheduleDue({ now: 10_000, limit: 1 })).map((x) => x.id), ['early']);
    assert.deepEqual((await s.scheduleDue({ now: 10_000, limit: 10, except: ['early'] })).map((x) => x.id), ['late']);
  });

  test('schedules: two foremen firing the same tick make one job and one run record; the schedule moves on once', async () => {
    const s = store();
    const read = (await s.scheduleCreate(schedule('race')))!;
    const [a, b] = await Promise.all([s.scheduleFire([fireOf(read, 60_000, 120_000)]), s.scheduleFire([fireOf(read, 60_000, 120_000)])]);
    const applied = [a[0], b[0]].filter((o) => o.applied);
    assert.equal(applied.length, 1, 'one fire applied');
    const after = (await s.scheduleGet('race'))!;
    assert.deepEqual([after.nextTick, after.dueAt, after.version], [120_000, 120_000, read.version + 1]);
    const runs = await s.scheduleRunList({ scheduleId: 'race', limit: 10 });
    assert.equal(runs.length, 1);
    const jobs = (await s.jobList({ limit: 10, offset: 0 })).filter((j) => j.idempotencyKey === 'schedule:race:60000');
    assert.equal(jobs.length, 1, 'one job for the tick');
    assert.deepEqual([runs[0].jobId, runs[0].jobState, runs[0].outcome, runs[0].reason], [jobs[0].id, 'queued', 'fired', 'schedule']);
    assert.deepEqual([after.lastJobId, after.lastJobState], [jobs[0].id, 'queued']);
    // A stale read fires nothing, even of a later tick.
    assert.deepEqual(await s.scheduleFire([fireOf(read, 120_000, 180_000)]), [{ applied: false }]);
  });

  test('schedules: one step refused by the database leaves the others of its group', async () => {
    const s = store();
    const first = (await s.scheduleCreate(schedule('ok')))!;
    const second = (await s.scheduleCreate(schedule('clash')))!;
    await s.jobInsert(tickJob('other', 1, 'taken-task-id'));
    const clash = fireOf(second, 60_000, 120_000);
    clash.runs[0].job = tickJob('clash', 60_000, 'taken-task-id');
    const [ok, refused] = await s.scheduleFire([fireOf(first, 60_000, 120_000), clash]);
    assert.equal(ok.applied, true);
    assert.equal(refused.applied, false);
    assert.ok(!refused.applied && refused.error, 'the refusal says why');
    assert.equal((await s.scheduleGet('clash'))!.nextTick, 60_000, 'the refused step changed nothing');
    assert.equal((await s.scheduleRunList({ scheduleId: 'clash', limit: 10 })).length, 0);
    assert.equal((await s.scheduleGet('ok'))!.nextTick, 120_000);
  });

  test('schedules: a tick fired again (a backfill) finds its job by key; unguarded steps set the previous job', async () => {
    const s = store();
    const read = (await s.scheduleCreate(schedule('again')))!;
    const [fired] = await s.scheduleFire([fireOf(read, 60_000, 120_000)]);
    assert.ok(fired.applied);
    const [backfill] = await s.scheduleFire([{
      scheduleId: 'again', guard: null, runs: [60_000, 0].map((tick) => ({ tickAt: tick, firedAt: Date.now(), reason: 'backfill' as const, outcome: 'fired' as const, job: tickJob('again', tick) })),
      setsLastJob: false, now: Date.now(),
    }]);
    assert.ok(backfill.applied);
    assert.deepEqual(backfill.jobs.map((j) => [j.tickAt, j.deduplicated]), [[60_000, true], [0, false]]);
    assert.equal(backfill.jobs[0].job.id, fired.jobs[0].job.id);
    const after = (await s.scheduleGet('again'))!;
    assert.equal(after.lastJobId, fired.jobs[0].job.id, 'a backfill is not the previous run');
    assert.equal(after.nextTick, 120_000, 'nor does it move the schedule');
    const [trigger] = await s.scheduleFire([{
      scheduleId: 'again', guard: null, runs: [{ tickAt: 99, firedAt: 99, reason: 'trigger', outcome: 'fired', job: tickJob('again', 99) }], setsLastJob: true, now: Date.now(),
    }]);
    assert.ok(trigger.applied);
    assert.equal((await s.scheduleGet('again'))!.lastJobId, trigger.jobs[0].job.id);
    assert.deepEqual(await s.scheduleFire([{ scheduleId: 'gone', guard: null, runs: [], setsLastJob: true, now: Date.now() }]), [{ applied: false }]);
  });

  test('schedules: a buffered tick is due once the previous job has finished', async () => {
    const s = store();
    const read = (await s.scheduleCreate(schedule('buffered', { nextTick: 10_000_000, dueAt: 10_000_000 })))!;
    const [fired] = await s.scheduleFire([{ ...fireOf(read, 60_000, 10_000_000), advance: { nextTick: 10_000_000, dueAt: 10_000_000, bufferedTick: 120_000 } }]);
    assert.ok(fired.applied);
    assert.deepEqual((await s.scheduleDue({ now: 1_000, limit: 10 })).map((x) => x.id), [], 'its previous job is queued');
    await s.jobCancel({ jobId: fired.jobs[0].job.id, now: Date.now() });
    const due = await s.scheduleDue({ now: 1_000, limit: 10 });
    assert.deepEqual(due.map((x) => [x.id, x.bufferedTick, x.lastJobState]), [['buffered', 120_000, 'cancelled']]);
  });

  test(`schedules: the run history keeps the newest ${SCHEDULE_RUNS_KEPT} runs of each schedule`, async () => {
    const s = store();
    await s.scheduleCreate(schedule('busy'));
    const total = SCHEDULE_RUNS_KEPT + 7;
    for (let i = 0; i < total; i += 10) {
      await s.scheduleFire([{
        scheduleId: 'busy', guard: null, setsLastJob: false, now: Date.now(),
        runs: Array.from({ length: Math.min(10, total - i) }, (_, k) => ({ tickAt: (i + k) * 1_000, firedAt: null, reason: 'schedule' as const, outcome: 'skipped' as const })),
      }]);
    }
    const runs = await s.scheduleRunList({ scheduleId: 'busy', limit: 1_000 });
    assert.equal(runs.length, SCHEDULE_RUNS_KEPT);
    assert.equal(runs[0].tickAt, (total - 1) * 1_000, 'newest first');
    assert.equal(runs.at(-1)!.tickAt, (total - SCHEDULE_RUNS_KEPT) * 1_000);
  });
}
