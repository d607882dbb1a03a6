import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runStoreConformance } from '../conformance/store-conformance.ts';
import { PostgresStore } from './postgres-store.ts';
import { testPostgresUrl } from './postgres-test-url.ts';
import type { JobChange } from '../store.ts';
import { waitFor } from '../../testing/index.ts';

const url = await testPostgresUrl();
let n = 0;

/** A store on a fresh schema, dropped again when the test closes it. */
class TestPostgresStore extends PostgresStore {
  override async close(): Promise<void> {
    await this.dropSchema();
    await super.close();
  }
}

if (url) {
  runStoreConformance('postgres', async () => {
    const store = new TestPostgresStore({ url, schema: `cc_test_${process.pid}_${++n}`, poolSize: 4 });
    await store.migrate();
    return store;
  });
} else {
  test('store conformance: postgres', { skip: 'no PostgreSQL reachable (set CROWDCOMPUTE_TEST_POSTGRES); under CI=true this fails instead' }, () => {});
}

test('the foreman is told when autovacuum is off (pruned space would never be reused)', { skip: url ? false : 'no PostgreSQL reachable' }, async () => {
  const store = new TestPostgresStore({ url: url!, schema: `cc_test_${process.pid}_${++n}`, poolSize: 1 });
  await store.migrate();
  try {
    const setting = (await store.pool.query(`SELECT current_setting('autovacuum') AS v`)).rows[0].v;
    const warnings = await store.setupWarnings();
    assert.equal(warnings.some((w) => /autovacuum is off/.test(w)), setting === 'off');
  } finally {
    await store.close();
  }
});

test('with autovacuum off the store vacuums the tasks table once its dead rows pass the threshold, and not before', { skip: url ? false : 'no PostgreSQL reachable' }, async () => {
  const store = new TestPostgresStore({ url: url!, schema: `cc_test_${process.pid}_${++n}`, poolSize: 2 });
  await store.migrate();
  try {
    const autovacuum = (await store.pool.query(`SELECT current_setting('autovacuum') AS v`)).rows[0].v;
    const jobId = `job-vacuum-${process.pid}`;
    const tasks = Array.from({ length: 1_500 }, (_, index) => ({ id: `${jobId}.${index}`, index, kind: 'named' as const, type: 'v.x', input: { index }, priority: 'normal' as const, maxAttempts: 1, timeoutMs: null }));
    await store.jobInsert({ job: { id: jobId, kind: 'tasks', name: null, priority: 'normal', argCount: null, chunkSize: null, code: null, timeoutMs: null, maxAttempts: 1,
      idempotencyKey: null, metadata: null, owner: null, retentionMs: 60_000, label: 'v.x', queueTimeoutMs: null, runOn: null }, tasks, now: Date.now() });
    const dead = async () => Number((await store.pool.query(`SELECT n_dead_tup FROM pg_stat_user_tables WHERE schemaname = $1 AND relname = 'tasks'`, [store.schema])).rows[0]?.n_dead_tup ?? 0);
    // Below the threshold (1,000 dead rows and 1% of the live ones): nothing to do.
    assert.deepEqual(await store.vacuumDue({ threshold: 1_000, fraction: 0.01 }), []);
    // Two new versions of every row: 3,000 dead ones, once the server's statistics count them
    // (each session reports its counts when it goes idle, within about a second).
    await store.pool.query('UPDATE tasks SET input = input');
    await store.pool.query('UPDATE tasks SET input = input');
    const by = Date.now() + 20_000;
    while (await dead() < 3_000) {
      assert.ok(Date.now() < by, `the statistics did not count the dead rows within 20 s (${await dead()} counted)`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const runs = await store.vacuumDue({ threshold: 1_000, fraction: 0.01 });
    if (autovacuum === 'on') {
      assert.deepEqual(runs, [], 'where autovacuum runs, the foreman leaves vacuuming to it');
    } else {
      assert.deepEqual(runs.map((r) => r.table), ['tasks']);
      assert.ok(runs[0]!.deadRows >= 3_000, `it counted the dead rows (${runs[0]!.deadRows})`);
      assert.ok(await dead() < 1_000, 'the vacuum removed them');
    }
  } finally {
    await store.close();
  }
});

test('a session left inside a transaction (a foreman that froze mid-commit) is ended by the server, and its row locks with it', { skip: url ? false : 'no PostgreSQL reachable' }, async () => {
  const store = new TestPostgresStore({ url: url!, schema: `cc_test_${process.pid}_${++n}`, poolSize: 2, idleInTransactionTimeoutMs: 300 });
  await store.migrate();
  try {
    await store.pool.query(`CREATE TABLE frozen_probe (id int PRIMARY KEY, v int)`);
    await store.pool.query(`INSERT INTO frozen_probe VALUES (1, 0)`);
    const frozen = await store.pool.connect();
    const ended = new Promise<unknown>((resolve) => frozen.once('error', resolve));
    await frozen.query('BEGIN');
    await frozen.query('SELECT v FROM frozen_probe WHERE id = 1 FOR UPDATE');
    // Nothing more is sent on it, as from a foreman that stopped. Another session waits on
    // the row only until the server ends the frozen one.
    const other = await store.pool.connect();
    try {
      await other.query(`SET lock_timeout = '30s'`);
      await other.query('UPDATE frozen_probe SET v = 1 WHERE id = 1');
    } finally {
      other.release();
    }
    const err = await ended as { code?: string };
    assert.equal(err.code, '25P03', 'the server named the idle transaction timeout');
    frozen.release(true);
    assert.equal((await store.pool.query('SELECT v FROM frozen_probe WHERE id = 1')).rows[0].v, 1);
  } finally {
    await store.close();
  }
});

test('what another foreman hears: a job with what its tasks are sent with, and a one-task job\'s end with its small result and whether it wrote a webhook', { skip: url ? false : 'no PostgreSQL reachable' }, async () => {
  const schema = `cc_test_${process.pid}_${++n}`;
  const here = new TestPostgresStore({ url: url!, schema, poolSize: 2, instanceId: 'here' });
  const there = new PostgresStore({ url: url!, schema, poolSize: 2, instanceId: 'there' });
  await here.migrate();
  const heard: { work: unknown[]; changes: JobChange[] } = { work: [], changes: [] };
  const unlisten = await there.listen({ onWork: (w) => heard.work.push(w), onJobChange: (c) => heard.changes.push(c), onCancel: () => {} });
  try {
    const job = (id: string, type: string, metadata: Record<string, unknown> | null) => ({
      job: { id, kind: 'tasks' as const, name: null, priority: 'normal' as const, argCount: null, chunkSize: null, code: null, timeoutMs: null, maxAttempts: 1,
        idempotencyKey: null, metadata, owner: null, retentionMs: 60_000, label: type, queueTimeoutMs: null, runOn: null, traceContext: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } },
      tasks: [{ id: `${id}.0`, index: 0, kind: 'named' as const, type, input: { n: 1 }, priority: 'normal' as const, maxAttempts: 1, timeoutMs: null }], now: Date.now() });
    const finish = async (type: string, result: unknown) => {
      const [t] = await here.taskClaimMany({ workerId: 'w', patterns: [type], allowCode: false, limit: 1, leaseMs: 30_000, now: Date.now() });
      await here.taskFinishMany({ outcomes: [{ taskId: t!.taskId, attempt: 1, workerId: 'w', status: 'completed', result }], now: Date.now() });
    };
    const small = `job-small-${process.pid}`;
    await here.jobInsert(job(small, 'hear.small', { tenant: 'a' }));
    await finish('hear.small', { ok: true });
    const big = `job-big-${process.pid}`;
    await here.jobInsert(job(big, 'hear.big', null));
    await finish('hear.big', { text: 'x'.repeat(5_000) });
    await waitFor(() => heard.changes.filter((c) => c.finished).length === 2, { message: 'both ends heard' });
    const work = heard.work.find((w) => (w as { job?: { jobId: string } } | undefined)?.job?.jobId === small) as { sendWith?: unknown };
    assert.deepEqual(work.sendWith, { metadata: { tenant: 'a' }, traceContext: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } });
    const end = (id: string) => heard.changes.find((c) => c.jobId === id && c.finished)!;
    assert.deepEqual(end(small), { jobId: small, state: 'completed', counts: { total: 1, completed: 1, failed: 0, cancelled: 0 }, finished: true, webhook: false, results: [{ ok: true }] });
    assert.equal(end(big).webhook, false);
    assert.ok(!('results' in end(big)), 'a result too large for the notification is read instead');
  } finally {
    await unlisten();
    await there.close();
    await here.close();
  }
});

test('a submission of one job is one statement; with its idempotency key taken it finds the existing job', { skip: url ? false : 'no PostgreSQL reachable' }, async () => {
  const store = new TestPostgresStore({ url: url!, schema: `cc_test_${process.pid}_${++n}`, poolSize: 2 });
  await store.migrate();
  try {
    const params = (id: string, key: string | null) => ({
      job: { id, kind: 'tasks' as const, name: null, priority: 'normal' as const, argCount: null, chunkSize: null, code: null, timeoutMs: null, maxAttempts: 1,
        idempotencyKey: key, metadata: { m: 1 }, owner: null, retentionMs: 60_000, label: 'one.x', queueTimeoutMs: null, runOn: null },
      tasks: [0, 1].map((index) => ({ id: `${id}.${index}`, index, kind: 'named' as const, type: 'one.x', input: { index }, priority: 'normal' as const, maxAttempts: 1, timeoutMs: null })),
      now: Date.now() });
    const before = store.statementCount;
    const first = await store.jobInsert(params(`job-one-${process.pid}`, 'key-1'));
    assert.equal(store.statementCount - before, 1, 'job, tasks and queue count in one statement, committed on its own');
    assert.deepEqual([first.deduplicated, first.position], [false, 0]);
    assert.equal((await store.jobGet(first.job.id))?.counts.total, 2);
    const second = await store.jobInsert(params(`job-two-${process.pid}`, null));
    assert.equal(second.position, 2, 'the first job\'s tasks are ahead of it');
    const again = await store.jobInsert(params(`job-three-${process.pid}`, 'key-1'));
    assert.deepEqual([again.deduplicated, again.job.id], [true, first.job.id]);
    assert.equal(await store.jobGet(`job-three-${process.pid}`), null, 'nothing of the refused job was written');
    assert.equal(Number((await store.pool.query('SELECT count(*) AS n FROM tasks')).rows[0].n), 4);
  } finally {
    await store.close();
  }
});
