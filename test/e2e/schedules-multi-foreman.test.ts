/**
 * One schedule ticking every second, two foreman processes on one PostgreSQL database (behind a
 * TCP proxy): one is killed with SIGKILL across ticks and started again, then the database is
 * cut off from both for a few ticks. Afterwards the jobs and run records say that no tick fired
 * twice and that none from the first to the last is missing (catch-up `all` fires the ticks
 * that came while no foreman could reach the database).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { FreezableProxy, freePort, localApiKeyAt, spawnForemanProcess, waitFor, type ChildForeman } from '../../src/testing/index.ts';
import { testPostgresUrl } from '../../src/store/postgres/postgres-test-url.ts';

const pgUrl = await testPostgresUrl();
const skip = pgUrl ? false : 'no PostgreSQL reachable (CROWDCOMPUTE_TEST_POSTGRES); under CI=true this fails instead';

async function sql<T extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: pgUrl! });
  await c.connect();
  try { return (await c.query<T>(text, params)).rows; } finally { await c.end(); }
}

test('every 1s on two foremen: SIGKILL one across ticks, cut the database for a few ticks; each tick fires once, none is missing', { skip, timeout: 120_000 }, async () => {
  const schema = `cc_sched_mf_${process.pid}`;
  await sql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  const proxy = await FreezableProxy.start(Number(new URL(pgUrl!).port || 5432));
  const viaProxy = new URL(pgUrl!);
  viaProxy.port = String(proxy.port);
  viaProxy.searchParams.set('schema', schema);
  const start = async (id: string) => spawnForemanProcess(await freePort(), ['--database', viaProxy.toString(), '--id', `${id}-${process.pid}`]);
  const foremen: ChildForeman[] = [];
  const id = 'every-second';
  /** Ticks fired so far, from the jobs' idempotency keys, read from the database directly. */
  const fired = async () => (await sql<{ key: string }>(`SELECT idempotency_key AS key FROM "${schema}".jobs WHERE idempotency_key LIKE $1`, [`schedule:${id}:%`]))
    .map((r) => Number(r.key.slice(`schedule:${id}:`.length))).sort((a, b) => a - b);
  const firedAfter = (t: number, n: number, message: string) =>
    waitFor(async () => (await fired()).filter((tick) => tick > t).length >= n || null, { timeoutMs: 30_000, message });
  try {
    foremen.push(await start('a'), await start('b'));
    const key = localApiKeyAt(foremen[0].url)!;
    const asked = Date.now();
    const res = await fetch(`${foremen[0].url}/api/schedules`, {
      method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      // No worker runs these: overlap allow fires each tick while the earlier ones wait.
      body: JSON.stringify({ id, every: '1s', overlap: 'allow', catch_up: { policy: 'all', window: '10m' }, job: { kind: 'tasks', tasks: [{ type: 'tick.record' }] } }),
    });
    assert.equal(res.status, 201, await res.clone().text());
    const created = Date.now();
    await firedAfter(0, 3, 'both foremen running: three ticks fired');

    // One foreman killed outright across ticks: the other fires them; then it comes back.
    foremen[0].kill('SIGKILL');
    await foremen[0].exited;
    const killedAt = Date.now();
    await firedAfter(killedAt, 3, 'three ticks fired by the survivor');
    foremen[0] = await start('a2');

    // The database cut off from both foremen across a few ticks.
    await firedAfter(Date.now(), 2, 'both foremen fire again');
    proxy.cut();
    const cutAt = Date.now();
    await waitFor(() => Date.now() - cutAt >= 3_000 || null, { message: 'three seconds of ticks pass without the database' });
    proxy.restore();
    const restoredAt = Date.now();
    await firedAfter(restoredAt, 2, 'ticks fire again once the database is back');

    for (const f of foremen) f.kill('SIGTERM');
    await Promise.all(foremen.map((f) => f.exited));

    const ticks = await fired();
    assert.equal(new Set(ticks).size, ticks.length, 'one job per tick');
    const first = ticks[0];
    const last = ticks.at(-1)!;
    assert.ok(first > asked && first <= created + 1_000, 'the first tick is the first after the schedule was made');
    const expected = Array.from({ length: (last - first) / 1_000 + 1 }, (_, i) => first + i * 1_000);
    assert.deepEqual(ticks, expected, 'every tick from the first to the last fired, those during the outage too');
    assert.ok(ticks.some((t) => t > cutAt && t < restoredAt), 'ticks during the outage were caught up');
    // Each fired run recorded once, pointing at its tick's job.
    const runs = await sql<{ tick: number; n: string }>(`SELECT tick_at AS tick, count(*) AS n FROM "${schema}".schedule_runs WHERE schedule_id = $1 AND outcome = 'fired' GROUP BY tick_at`, [id]);
    assert.ok(runs.length > 0);
    assert.ok(runs.every((r) => Number(r.n) === 1), `a run record per tick: ${JSON.stringify(runs.filter((r) => Number(r.n) !== 1))}`);
    const perJob = await sql<{ tick: string; n: string }>(`SELECT metadata::json->'schedule'->>'tick' AS tick, count(*) AS n FROM "${schema}".jobs GROUP BY 1`);
    assert.ok(perJob.every((r) => Number(r.n) === 1), 'no tick in two jobs\' metadata');
  } finally {
    for (const f of foremen) f.kill('SIGKILL');
    await Promise.all(foremen.map((f) => f.exited));
    await proxy.close();
    await sql(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  }
});
