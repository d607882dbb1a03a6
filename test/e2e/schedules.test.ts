/**
 * Recurring schedules through the public interface (SDK and REST), on SQLite and PostgreSQL:
 * create, list, read, change, delete; each overlap and catch-up policy; pause and resume;
 * trigger; backfill; who sees what. The foreman's clock is injected: a test stops time, moves
 * it, and makes the scheduler look, so nothing here waits for a real tick.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Client, type ScheduleInfo, type ScheduleSpec } from '../../src/client/index.ts';
import { Worker } from '../../src/worker/index.ts';
import { startTestForeman, waitFor, type TestForeman } from '../../src/testing/index.ts';
import { testPostgresUrl } from '../../src/store/postgres/postgres-test-url.ts';
import { CrowdComputeError } from '../../src/protocol/index.ts';

const BIN = fileURLToPath(new URL('../../bin/crowdcompute.js', import.meta.url));
const pgUrl = await testPostgresUrl();
const MIN = 60_000;
/** The clock starts on a minute, so that every-minute ticks fall on whole minutes from it. */
const T0 = Date.parse('2030-01-01T00:00:00Z');

function makeKey(databaseUrl: string, scopes: string): Promise<string> {
  return new Promise((resolve, reject) => execFile(process.execPath, [BIN, 'key', 'create', '--scopes', scopes, '--database', databaseUrl],
    (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()))));
}

const stores: { label: string; database: () => string | undefined; skip: string | false }[] = [
  { label: 'sqlite', database: () => undefined, skip: false },
  { label: 'postgres', database: () => `${pgUrl}?schema=cc_sched_${process.pid}`, skip: pgUrl ? false : 'no PostgreSQL reachable (CROWDCOMPUTE_TEST_POSTGRES); under CI=true this fails instead' },
];

for (const store of stores) {
  describe(`schedules (${store.label})`, { skip: store.skip }, () => {
    let foreman: TestForeman;
    let client: Client;
    let worker: Worker;
    let now = T0;
    let seq = 0;
    /** Move the clock to `t` and let the scheduler fire what is due. */
    const at = async (t: number) => { now = t; await foreman.lookAtSchedules(); };
    const uniqueId = (name: string) => `${name}-${++seq}`;
    /** The jobs a schedule fired, by tick (from their idempotency keys). */
    const firedTicks = async (id: string) => {
      const jobs = await client.listJobs({ limit: 1_000 });
      return jobs.filter((j) => j.idempotencyKey?.startsWith(`schedule:${id}:`)).map((j) => j.idempotencyKey!.slice(`schedule:${id}:`.length)).sort();
    };
    const heldJob: ScheduleSpec['job'] = { kind: 'tasks', tasks: [{ type: 'held.forever' }] };
    const minutely = (id: string, over: Partial<ScheduleSpec> = {}): ScheduleSpec => ({ id, every: '1m', job: heldJob, ...over });

    before(async () => {
      const database = store.database();
      if (database) {
        const c = new pg.Client({ connectionString: pgUrl! });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS "cc_sched_${process.pid}" CASCADE`);
        await c.end();
      }
      foreman = await startTestForeman({ clock: () => now, ...(database ? { database } : {}) });
      client = new Client({ url: foreman.url });
      worker = new Worker({ foremanUrl: foreman.wsUrl, workerId: `sched-${store.label}`, logLevel: 'silent' }).handle('quick.*', async (t) => ({ got: t.input }));
      await worker.start();
    });

    after(async () => {
      await client.close();
      await worker.stop({ drainTimeoutMs: 0 });
      await foreman.cleanup();
      const database = store.database();
      if (database) {
        const c = new pg.Client({ connectionString: pgUrl! });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS "cc_sched_${process.pid}" CASCADE`);
        await c.end();
      }
    });

    test('create, list, read, change and delete, through the SDK and REST; bad specs are named', async () => {
      now = T0 + 30_000;
      const made = await client.createSchedule({ id: 'crud-nightly', name: 'Nightly report', cron: '0 3 * * *', timezone: 'Europe/Paris',
        job: { kind: 'tasks', tasks: [{ type: 'quick.report', input: { depth: 2 } }], priority: 'high' }, catchUp: { window: '2h', policy: 'all' }, jitter: '30s' });
      assert.equal(made.cron, '0 3 * * *');
      assert.equal(made.everyMs, null);
      assert.deepEqual(made.catchUp, { windowMs: 2 * 60 * MIN, policy: 'all' });
      assert.equal(made.jitterMs, 30_000);
      assert.equal(made.overlap, 'skip');
      assert.deepEqual(made.job, { kind: 'tasks', tasks: [{ type: 'quick.report', input: { depth: 2 } }], priority: 'high' });
      assert.equal(made.nextFires.length, 5);
      assert.equal(made.nextFires[0], '2030-01-01T02:00:00.000Z', '03:00 in Paris (CET)');
      assert.ok(Date.parse(made.nextFireAt!) >= Date.parse(made.nextFires[0]) && Date.parse(made.nextFireAt!) <= Date.parse(made.nextFires[0]) + 30_000, 'the jitter is within 30 s');
      await assert.rejects(client.createSchedule({ id: 'crud-nightly', every: '1h', job: heldJob }), (e: CrowdComputeError) => e.code === 'CC_ERR_SCHEDULE_EXISTS');

      // REST speaks snake_case, the job as POST /api/jobs takes it.
      const rest = await foreman.fetch('/api/schedules', { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'crud-a-rest', every: 3_600_000, job: { kind: 'tasks', tasks: [{ type: 'quick.x' }], max_attempts: 3 }, catch_up: { policy: 'none' }, overlap: 'allow' }) });
      assert.equal(rest.status, 201);
      const restView = await rest.json() as Record<string, any>;
      assert.deepEqual([restView.every_ms, restView.catch_up, restView.overlap, restView.job.max_attempts, restView.next_fire_at],
        [3_600_000, { window_ms: 3_600_000, policy: 'none' }, 'allow', 3, '2030-01-01T01:00:00.000Z']);

      const listed = (await client.listSchedules()).map((s) => s.id).filter((id) => id.startsWith('crud-'));
      assert.deepEqual(listed, ['crud-a-rest', 'crud-nightly']);
      assert.equal((await client.getSchedule('crud-nightly')).name, 'Nightly report');

      const changed = await client.updateSchedule('crud-nightly', { every: '15m' });
      assert.deepEqual([changed.cron, changed.everyMs, changed.timezone, changed.name], [null, 15 * MIN, 'UTC', 'Nightly report']);
      assert.equal(changed.nextFires[0], '2030-01-01T00:15:00.000Z', 'the next fire is recomputed from the new rule');
      const patched = await foreman.fetch('/api/schedules/crud-nightly', { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ catch_up: { window: '10m' }, jitter: 0 }) });
      assert.equal(patched.status, 200);
      assert.deepEqual((await patched.json() as Record<string, any>).catch_up, { window_ms: 10 * MIN, policy: 'all' });

      const bad = async (body: unknown, field: RegExp) => {
        const res = await foreman.fetch('/api/schedules', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        const err = await res.json() as { code: string; message: string };
        assert.equal(res.status, 400, JSON.stringify(err));
        assert.equal(err.code, 'CC_ERR_INVALID_SCHEDULE');
        assert.match(err.message, field);
      };
      await bad({ id: 'b1', cron: '* * * * *', every: '1m', job: heldJob }, /cron or every, not both/);
      await bad({ id: 'b2', job: heldJob }, /give cron .* or every/);
      await bad({ id: 'b3', cron: '61 * * * *', job: heldJob }, /cron: .*minute/);
      await bad({ id: 'b4', cron: '0 3 * * *', timezone: 'Mars/Olympus', job: heldJob }, /timezone: must be an IANA time zone/);
      await bad({ id: 'b5', every: '500ms', job: heldJob }, /every: must be at least 1000 ms/);
      await bad({ id: 'b6', every: '1h', job: { ...heldJob, idempotency_key: 'mine' } }, /job.idempotencyKey: .* each fire gets its own key/);
      await bad({ id: 'b7', every: '1h', job: { kind: 'tasks', tasks: [{ type: 'x', task_id: 'fixed' }] } }, /taskId: a task id names one task of one job/);
      await bad({ id: 'b8', every: '1m', jitter: '2m', job: heldJob }, /jitter: .* shorter than the interval/);
      await bad({ id: 'bad id!', every: '1m', job: heldJob }, /id: a schedule id is 1 to 200 letters/);
      await bad({ id: 'b9', every: '1m', job: { kind: 'tasks', tasks: [] } }, /job: a job needs at least one task/);
      // Shipped code is checked when the schedule is made, as a submission's is.
      const code = await foreman.fetch('/api/schedules', { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'b10', every: '1m', job: { kind: 'map', code: 'not a function {', args: [1] } }) });
      assert.equal(code.status, 400);
      assert.equal((await code.json() as { code: string }).code, 'CC_ERR_CODE_COMPILE');

      assert.deepEqual(await client.deleteSchedule('crud-nightly'), { deleted: true, id: 'crud-nightly' });
      await assert.rejects(client.getSchedule('crud-nightly'), (e: CrowdComputeError) => e.code === 'CC_ERR_SCHEDULE_NOT_FOUND');
      const gone = await foreman.fetch('/api/schedules/crud-nightly', { method: 'DELETE' });
      assert.equal(gone.status, 404);
      await client.deleteSchedule('crud-a-rest');
    });

    test('a tick fires one job, named after the schedule, with its tick in the metadata and its key; a worker runs it', async () => {
      now = T0;
      const id = uniqueId('fires');
      await client.createSchedule({ id, name: 'Quick one', every: '1m', job: { kind: 'tasks', tasks: [{ type: 'quick.run', input: 7 }] } });
      await at(T0 + MIN - 1);
      assert.deepEqual(await firedTicks(id), [], 'not before its tick');
      await at(T0 + MIN + 250);
      assert.deepEqual(await firedTicks(id), [String(T0 + MIN)]);
      await foreman.lookAtSchedules();
      assert.deepEqual(await firedTicks(id), [String(T0 + MIN)], 'looking again fires nothing again');
      const view = await client.getSchedule(id);
      const run = view.recentRuns[0];
      assert.deepEqual([run.tickAt, run.reason, run.outcome], [new Date(T0 + MIN).toISOString(), 'schedule', 'fired']);
      const job = await client.getJob(run.jobId!);
      assert.equal(job.name, 'Quick one');
      assert.deepEqual(job.metadata, { schedule: { id, tick: T0 + MIN } });
      const handle = await client.watch(run.jobId!);
      assert.deepEqual(await handle.result(), [{ got: 7 }]);
      assert.equal((await client.getSchedule(id)).recentRuns[0].jobState, 'completed');
      assert.equal(view.nextFireAt, new Date(T0 + 2 * MIN).toISOString());
      await client.deleteSchedule(id);
    });

    test('overlap skip (default): a tick while the previous job runs is skipped; the next after it finished fires', async () => {
      now = T0;
      const id = uniqueId('skip');
      await client.createSchedule(minutely(id));
      await at(T0 + MIN);
      await at(T0 + 2 * MIN);
      assert.deepEqual(await firedTicks(id), [String(T0 + MIN)]);
      const s = await client.getSchedule(id);
      assert.deepEqual(s.recentRuns.map((r) => r.outcome), ['skipped', 'fired']);
      await client.cancel(s.recentRuns[1].jobId!);
      await at(T0 + 3 * MIN);
      assert.deepEqual(await firedTicks(id), [String(T0 + MIN), String(T0 + 3 * MIN)]);
      await client.deleteSchedule(id);
    });

    test('overlap allow fires regardless; cancel_previous cancels the previous job and fires', async () => {
      now = T0;
      const allow = uniqueId('allow');
      const cancel = uniqueId('cancel');
      await client.createSchedule(minutely(allow, { overlap: 'allow' }));
      await client.createSchedule(minutely(cancel, { overlap: 'cancel_previous' }));
      await at(T0 + MIN);
      await at(T0 + 2 * MIN);
      assert.deepEqual(await firedTicks(allow), [String(T0 + MIN), String(T0 + 2 * MIN)]);
      assert.deepEqual(await firedTicks(cancel), [String(T0 + MIN), String(T0 + 2 * MIN)]);
      const runs = (await client.getSchedule(cancel)).recentRuns;
      await waitFor(async () => (await client.getJob(runs[1].jobId!)).status === 'cancelled', { message: 'the previous run was cancelled' });
      assert.equal((await client.getJob(runs[0].jobId!)).status, 'queued');
      const allowRuns = (await client.getSchedule(allow)).recentRuns;
      assert.equal((await client.getJob(allowRuns[1].jobId!)).status, 'queued', 'allow leaves the previous one alone');
      await client.deleteSchedule(allow);
      await client.deleteSchedule(cancel);
    });

    test('overlap buffer_one holds one tick and fires it when the previous job finishes; a second is skipped', async () => {
      now = T0;
      const id = uniqueId('buffer');
      await client.createSchedule(minutely(id, { overlap: 'buffer_one' }));
      await at(T0 + MIN);
      await at(T0 + 2 * MIN);
      await at(T0 + 3 * MIN);
      let s = await client.getSchedule(id);
      assert.deepEqual(s.recentRuns.map((r) => r.outcome), ['skipped', 'buffered', 'fired']);
      assert.equal(s.bufferedTick, new Date(T0 + 2 * MIN).toISOString());
      // The previous job finishes: the buffered tick fires at once, without a look from the test.
      await client.cancel(s.recentRuns[2].jobId!);
      await waitFor(async () => (await firedTicks(id)).length === 2 || null, { message: 'the buffered tick fired' });
      assert.deepEqual(await firedTicks(id), [String(T0 + MIN), String(T0 + 2 * MIN)]);
      s = await client.getSchedule(id);
      assert.equal(s.bufferedTick, null);
      await client.deleteSchedule(id);
    });

    test('catch-up after an hour stopped (window 30 minutes): all fires every tick within it, latest the newest, none only a tick on time', async () => {
      now = T0;
      const all = uniqueId('all');
      const latest = uniqueId('latest');
      const none = uniqueId('none');
      const windowed = (id: string, policy: 'all' | 'latest' | 'none') => minutely(id, { overlap: 'allow', catchUp: { window: '30m', policy } });
      await client.createSchedule(windowed(all, 'all'));
      await client.createSchedule(windowed(latest, 'latest'));
      await client.createSchedule(windowed(none, 'none'));
      // Time stops for an hour (the foreman was down), then comes back 90 seconds past the hour and a minute.
      await at(T0 + 61 * MIN + 30_000);
      const ticks = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => String(T0 + (from + i) * MIN));
      assert.deepEqual(await firedTicks(all), ticks(32, 61), 'every tick found due at most 30 minutes late, in order');
      assert.deepEqual(await firedTicks(latest), ticks(61, 61), 'only the newest');
      assert.deepEqual(await firedTicks(none), ticks(61, 61), 'only the tick found due within a minute (30 s late)');
      const runs = (await client.getSchedule(all)).recentRuns;
      assert.ok(runs.some((r) => r.reason === 'catch_up' && r.outcome === 'fired'));
      assert.ok((await client.getSchedule(latest)).recentRuns.some((r) => r.outcome === 'missed'));
      assert.ok((await client.getSchedule(none)).recentRuns.some((r) => r.outcome === 'missed'));
      // Back on time: the next tick fires on every policy.
      await at(T0 + 62 * MIN + 100);
      for (const id of [all, latest, none]) assert.ok((await firedTicks(id)).includes(String(T0 + 62 * MIN)), id);
      for (const id of [all, latest, none]) await client.deleteSchedule(id);
    });

    test('pause holds every tick; resume starts from the next tick after now (paused ticks are not caught up)', async () => {
      now = T0;
      const id = uniqueId('pause');
      await client.createSchedule(minutely(id, { overlap: 'allow' }));
      const paused = await client.pauseSchedule(id, 'database maintenance');
      assert.deepEqual([paused.paused, paused.pauseNote, paused.nextFireAt], [true, 'database maintenance', null]);
      assert.equal(paused.nextFires.length, 5, 'the next ticks are still shown');
      await at(T0 + 10 * MIN + 5);
      assert.deepEqual(await firedTicks(id), []);
      const resumed = await client.resumeSchedule(id);
      assert.deepEqual([resumed.paused, resumed.pauseNote, resumed.nextFireAt], [false, null, new Date(T0 + 11 * MIN).toISOString()]);
      await at(T0 + 11 * MIN);
      assert.deepEqual(await firedTicks(id), [String(T0 + 11 * MIN)]);
      // Paused through PATCH too.
      assert.equal((await client.updateSchedule(id, { paused: true })).paused, true);
      await at(T0 + 12 * MIN);
      assert.deepEqual(await firedTicks(id), [String(T0 + 11 * MIN)]);
      await client.deleteSchedule(id);
    });

    test('trigger fires one run now, outside the ticks, even while the previous run is unfinished under skip', async () => {
      now = T0;
      const id = uniqueId('trigger');
      await client.createSchedule({ id, every: '1h', job: { kind: 'tasks', tasks: [{ type: 'quick.now', input: 'x' }] } });
      now = T0 + 5 * MIN;
      const handle = await client.triggerSchedule(id);
      assert.deepEqual(await handle.result(), [{ got: 'x' }]);
      const job = await client.getJob(handle.id);
      assert.equal(job.idempotencyKey, `schedule:${id}:trigger:${T0 + 5 * MIN}`);
      const view = await client.getSchedule(id);
      assert.equal(view.nextFireAt, new Date(T0 + 60 * MIN).toISOString(), 'the next tick is unchanged');
      assert.deepEqual([view.recentRuns[0].reason, view.recentRuns[0].jobId], ['trigger', handle.id]);
      // Under skip, with a held job running, a trigger still fires.
      const held = uniqueId('trigger-held');
      await client.createSchedule(minutely(held));
      await at(T0 + 6 * MIN);
      now = T0 + 6 * MIN + 10;
      const res = await foreman.fetch(`/api/schedules/${held}/trigger`, { method: 'POST' });
      assert.equal(res.status, 201);
      const body = await res.json() as { job_id: string; fire_at: string };
      assert.equal(body.fire_at, new Date(T0 + 6 * MIN + 10).toISOString());
      assert.equal((await client.getJob(body.job_id)).status, 'queued');
      await client.deleteSchedule(id);
      await client.deleteSchedule(held);
    });

    test('backfill fires each past tick once; a tick that fired already is not fired again; the range is checked', async () => {
      now = T0;
      const id = uniqueId('backfill');
      await client.createSchedule(minutely(id, { overlap: 'allow' }));
      await at(T0 + 3 * MIN);
      assert.deepEqual(await firedTicks(id), [String(T0 + 3 * MIN)]);
      now = T0 + 3 * MIN + 30_000;
      const first = await client.backfillSchedule(id, new Date(T0 - 2 * MIN), T0 + 3 * MIN + 1);
      assert.deepEqual([first.fired, first.skipped, first.jobIds.length], [5, 1, 6], 'ticks -2..3 minutes: tick 3 had fired');
      assert.deepEqual(await firedTicks(id), [-2, -1, 0, 1, 2, 3].map((m) => String(T0 + m * MIN)).sort());
      const again = await client.backfillSchedule(id, new Date(T0 - 2 * MIN).toISOString(), new Date(T0 + 3 * MIN + 1).toISOString());
      assert.deepEqual([again.fired, again.skipped], [0, 6]);
      assert.deepEqual(again.jobIds, first.jobIds, 'the same jobs');
      await assert.rejects(client.backfillSchedule(id, T0, T0 + 2_000 * MIN), (e: CrowdComputeError) => e.code === 'CC_ERR_INVALID_SCHEDULE' && /in the future/.test(e.message));
      await assert.rejects(client.backfillSchedule(id, T0 - 2_000 * MIN, T0), (e: CrowdComputeError) => e.code === 'CC_ERR_INVALID_SCHEDULE' && /more than 1000 ticks/.test(e.message));
      const runs = (await client.getSchedule(id)).recentRuns;
      assert.ok(runs.filter((r) => r.reason === 'backfill').length >= 5);
      await client.deleteSchedule(id);
    });

    test('another key sees none of a key\'s schedules (404); admin sees and manages all; a read key creates none', async () => {
      const [keyA, keyB, reader] = await Promise.all([makeKey(foreman.databaseUrl, 'submit,read'), makeKey(foreman.databaseUrl, 'submit,read'), makeKey(foreman.databaseUrl, 'read')]);
      const a = new Client({ url: foreman.url, apiKey: keyA });
      const b = new Client({ url: foreman.url, apiKey: keyB });
      const r = new Client({ url: foreman.url, apiKey: reader });
      try {
        const id = uniqueId('owned');
        const made: ScheduleInfo = await a.createSchedule(minutely(id));
        assert.ok(made.owner);
        assert.deepEqual((await a.listSchedules()).map((s) => s.id), [id]);
        assert.deepEqual((await b.listSchedules()).map((s) => s.id), []);
        const notFound = (e: CrowdComputeError) => e.code === 'CC_ERR_SCHEDULE_NOT_FOUND';
        await assert.rejects(b.getSchedule(id), notFound);
        await assert.rejects(b.updateSchedule(id, { every: '1h' }), notFound);
        await assert.rejects(b.pauseSchedule(id), notFound);
        await assert.rejects(b.triggerSchedule(id), notFound);
        await assert.rejects(b.backfillSchedule(id, T0 - MIN, T0), notFound);
        await assert.rejects(b.deleteSchedule(id), notFound);
        await assert.rejects(b.createSchedule(minutely(id)), (e: CrowdComputeError) => e.code === 'CC_ERR_SCHEDULE_EXISTS');
        await assert.rejects(r.createSchedule(minutely(uniqueId('reader'))), (e: CrowdComputeError) => e.code === 'CC_ERR_FORBIDDEN');
        // Admin (the foreman's own key) sees every owner's, and may pause one.
        assert.ok((await client.listSchedules()).some((s) => s.id === id));
        assert.equal((await client.pauseSchedule(id, 'by admin')).paused, true);
        // The fired jobs are the owner's.
        await a.resumeSchedule(id);
        const trig = await a.triggerSchedule(id);
        assert.equal((await a.getJob(trig.id)).id, trig.id);
        await assert.rejects(b.getJob(trig.id), (e: CrowdComputeError) => e.code === 'CC_ERR_JOB_NOT_FOUND');
        await a.deleteSchedule(id);
      } finally {
        await Promise.all([a.close(), b.close(), r.close()]);
      }
    });
  });
}

test('a key keeps at most --max-schedules schedules; deleting one makes room', async () => {
  const foreman = await startTestForeman({ maxSchedulesPerKey: 2 });
  const client = new Client({ url: foreman.url });
  try {
    const job = { kind: 'tasks' as const, tasks: [{ type: 'capped.noop' }] };
    await client.createSchedule({ id: 'cap-1', every: '1h', job });
    await client.createSchedule({ id: 'cap-2', every: '1h', job });
    await assert.rejects(client.createSchedule({ id: 'cap-3', every: '1h', job }),
      (e: CrowdComputeError) => e.code === 'CC_ERR_INVALID_SCHEDULE' && /at most 2 per key \(--max-schedules\)/.test(e.message));
    await client.deleteSchedule('cap-1');
    assert.equal((await client.createSchedule({ id: 'cap-3', every: '1h', job })).id, 'cap-3');
  } finally {
    await client.close();
    await foreman.cleanup();
  }
});
