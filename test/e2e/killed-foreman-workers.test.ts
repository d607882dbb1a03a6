/**
 * A foreman killed without a word (SIGKILL) leaves its workers' rows online in the store. The
 * next foreman of the database (on SQLite, the one that starts next; on PostgreSQL, any live one
 * once the dead one's lease has run out) marks them offline in GET /api/workers, and a worker
 * that reconnects is online again. A live foreman's workers stay online throughout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { FreezableProxy, freePort, localApiKeyAt, spawnForemanProcess, spawnWorkerProcess, waitFor, type ChildForeman, type ChildWorker } from '../../src/testing/index.ts';
import { testPostgresUrl } from '../../src/store/postgres/postgres-test-url.ts';

const pgUrl = await testPostgresUrl();

/** Short leases, so that a dead foreman is found within seconds (its own lease is at least 10 s). */
const TIMING = ['--lease-ttl', '3s', '--heartbeat-interval', '500ms'];

interface WorkerRow { worker_id: string; status: string; foreman_id: string | null }

/** GET /api/workers at a foreman, with the admin key it left on this machine. */
async function workersAt(foreman: ChildForeman): Promise<Map<string, WorkerRow>> {
  const r = await fetch(`${foreman.url}/api/workers`, { headers: { authorization: `Bearer ${localApiKeyAt(foreman.url)}` } });
  assert.equal(r.status, 200, await r.clone().text());
  return new Map(((await r.json()) as WorkerRow[]).map((w) => [w.worker_id, w]));
}

/** The foreman id a child foreman prints as it starts (`foreman <id> on <url>`). */
function idOf(foreman: ChildForeman): string {
  return /foreman (\S+) on /.exec(foreman.output())![1];
}

async function killHard(foreman: ChildForeman): Promise<void> {
  foreman.kill('SIGKILL');
  assert.equal(await foreman.exited, 'SIGKILL');
}

test('SQLite: the foreman started after one was SIGKILLed shows that one\'s worker offline from its first answer, and online again once it reconnects', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cc-killed-'));
  const database = `sqlite:${join(dir, 'crowdcompute.db')}`;
  const [portA, portB] = [await freePort(), await freePort()];
  // The worker knows the second foreman only through a proxy that refuses it until restored,
  // so that what the second foreman shows before the worker comes back is what it found.
  const proxy = await FreezableProxy.start(portB);
  proxy.cut();
  const children: (ChildForeman | ChildWorker)[] = [];
  try {
    const a = await spawnForemanProcess(portA, ['--database', database, ...TIMING]);
    children.push(a);
    const worker = spawnWorkerProcess(['--foreman', `${a.wsUrl},ws://127.0.0.1:${proxy.port}/ws`, '--id', 'orphan', '--allow-code', '--reconnect-interval', '200ms']);
    children.push(worker);
    await waitFor(async () => (await workersAt(a)).get('orphan')?.status === 'online', { timeoutMs: 60_000, message: 'the worker is online at the first foreman' });

    await killHard(a);
    const b = await spawnForemanProcess(portB, ['--database', database, ...TIMING]);
    children.push(b);
    const seen = (await workersAt(b)).get('orphan');
    assert.equal(seen?.status, 'offline', `the killed foreman's worker, as the next one first shows it: ${JSON.stringify(seen)}`);

    proxy.restore();
    const back = await waitFor(async () => {
      const w = (await workersAt(b)).get('orphan');
      return w?.status === 'online' ? w : null;
    }, { timeoutMs: 90_000, message: 'the worker reconnects to the second foreman and is online again' });
    assert.equal(back.foreman_id, idOf(b));
  } finally {
    for (const c of children) c.kill();
    await Promise.all(children.map((c) => c.exited));
    await proxy.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('PostgreSQL, two foremen: one SIGKILLed has its worker marked offline by the other once its lease runs out; the live one\'s worker stays online; a restarted one gets its worker back', { timeout: 240_000, skip: pgUrl ? false : 'no PostgreSQL reachable (CROWDCOMPUTE_TEST_POSTGRES)' }, async () => {
  const schema = `cc_killed_${process.pid}`;
  const database = `${pgUrl}?schema=${schema}`;
  const [portA, portB] = [await freePort(), await freePort()];
  const children: (ChildForeman | ChildWorker)[] = [];
  try {
    const a = await spawnForemanProcess(portA, ['--database', database, '--id', 'killed-a', ...TIMING]);
    const b = await spawnForemanProcess(portB, ['--database', database, '--id', 'live-b', ...TIMING]);
    children.push(a, b);
    children.push(spawnWorkerProcess(['--foreman', a.wsUrl, '--id', 'at-a', '--allow-code', '--reconnect-interval', '200ms']));
    children.push(spawnWorkerProcess(['--foreman', b.wsUrl, '--id', 'at-b', '--allow-code', '--reconnect-interval', '200ms']));
    await waitFor(async () => {
      const ws = await workersAt(b);
      return ws.get('at-a')?.status === 'online' && ws.get('at-b')?.status === 'online';
    }, { timeoutMs: 60_000, message: 'both workers online' });

    await killHard(a);
    // Every look until the dead foreman's worker is offline: the live one's never is.
    const liveStates = new Set<string>();
    await waitFor(async () => {
      const ws = await workersAt(b);
      liveStates.add(ws.get('at-b')?.status ?? 'missing');
      return ws.get('at-a')?.status === 'offline';
    }, { timeoutMs: 90_000, intervalMs: 200, message: 'the killed foreman\'s worker is offline at the live foreman' });
    assert.deepEqual([...liveStates], ['online'], 'the live foreman\'s worker stayed online');
    // A few more of the live foreman's renewals and reaps: still online.
    const renewals = Date.now() + 10_000;
    await waitFor(async () => {
      assert.equal((await workersAt(b)).get('at-b')?.status, 'online');
      return Date.now() > renewals;
    }, { timeoutMs: 60_000, intervalMs: 500 });

    // The killed foreman comes back on its port: its worker reconnects and is online again.
    const again = await spawnForemanProcess(portA, ['--database', database, '--id', 'killed-a', ...TIMING]);
    children.push(again);
    await waitFor(async () => (await workersAt(b)).get('at-a')?.status === 'online', { timeoutMs: 90_000, message: 'the worker is back online' });
  } finally {
    for (const c of children) c.kill();
    await Promise.all(children.map((c) => c.exited));
    const c = new pg.Client({ connectionString: pgUrl! });
    await c.connect();
    await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await c.end();
  }
});
