import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStoreConformance } from '../conformance/store-conformance.ts';
import { SqliteStore } from './sqlite-store.ts';
import { storeError } from '../store-errors.ts';
import { CrowdComputeError } from '../../protocol/index.ts';

// A fresh database file per test, in its own temp dir.
runStoreConformance('sqlite', async () => {
  const store = new SqliteStore({ path: join(mkdtempSync(join(tmpdir(), 'cc-sqlite-')), 'test.db') });
  await store.migrate();
  return store;
});

test('a size limit makes the file behave as a full disk: writes fail with SQLITE_FULL (CC_ERR_STORE_FULL), and the probe says so', async () => {
  const store = new SqliteStore({ path: join(mkdtempSync(join(tmpdir(), 'cc-sqlite-')), 'small.db'), maxSizeBytes: 512 * 1024 });
  await store.migrate();
  try {
    await store.probeSpace();
    let err: unknown = null;
    for (let i = 0; i < 100 && !err; i++) {
      await store.jobInsert({ job: { id: `j${i}`, kind: 'tasks', name: null, priority: 'normal', argCount: null, chunkSize: null, code: null, timeoutMs: null,
        maxAttempts: 1, idempotencyKey: null, metadata: null, owner: null, retentionMs: 1000, label: 'x', queueTimeoutMs: null, runOn: null },
      tasks: [{ id: `t${i}`, index: 0, kind: 'named', type: 'x', input: 'y'.repeat(20_000), priority: 'normal', maxAttempts: 1, timeoutMs: null }], now: Date.now() })
        .catch((e: unknown) => { err = e; });
    }
    assert.equal((err as { code?: string } | null)?.code, 'SQLITE_FULL');
    const mapped = storeError(err, 'submitting');
    assert.ok(mapped instanceof CrowdComputeError && mapped.code === 'CC_ERR_STORE_FULL');
    await assert.rejects(store.probeSpace(), { code: 'SQLITE_FULL' });
  } finally {
    await store.close();
  }
});

test('a position counts what another connection to the file queued, claimed or cancelled since the last submission', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'cc-sqlite-')), 'shared.db');
  const a = new SqliteStore({ path });
  await a.migrate();
  const b = new SqliteStore({ path });
  await b.migrate();
  const job = (id: string, types: string[]) => ({
    job: { id, kind: 'tasks' as const, name: null, priority: 'normal' as const, argCount: null, chunkSize: null, code: null, timeoutMs: null,
      maxAttempts: 1, idempotencyKey: null, metadata: null, owner: null, retentionMs: 60_000, label: 'x', queueTimeoutMs: null, runOn: null },
    tasks: types.map((type, index) => ({ id: `${id}.${index}`, index, kind: 'named' as const, type, input: null, priority: 'normal' as const, maxAttempts: 1, timeoutMs: null })),
    now: Date.now(),
  });
  try {
    assert.equal((await a.jobInsert(job('a1', ['x', 'x']))).position, 0);
    assert.equal((await a.jobInsert(job('a2', ['x']))).position, 2);
    await b.jobInsert(job('b1', ['y', 'y', 'y']));
    assert.equal((await a.jobInsert(job('a3', ['x']))).position, 6, 'the other connection\'s three count');
    assert.equal((await b.taskClaimMany({ workerId: 'w', patterns: ['y'], allowCode: false, limit: 3, leaseMs: 30_000, now: Date.now() })).length, 3);
    assert.equal((await a.jobInsert(job('a4', ['x']))).position, 4, 'the three it claimed no longer wait');
    await b.jobCancel({ jobId: 'a1', now: Date.now() });
    assert.equal((await a.jobInsert(job('a5', ['x']))).position, 3);
  } finally {
    await b.close();
    await a.close();
  }
});

test('a foreman holding the file\'s foreman lock drops every other foreman\'s lease as it takes its own: their workers go offline at once', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'cc-sqlite-')), 'locked.db');
  const t0 = Date.now();
  const hello = { capacity: 1, patterns: [], allowCode: false, resources: {}, version: null, connectedAt: t0, lastSeenAt: t0 };
  // The foreman before, killed: its lease still runs for a minute.
  const before = new SqliteStore({ path, foremanId: 'killed' });
  await before.migrate();
  await before.foremanLeaseTake({ foremanId: 'killed', now: t0, until: t0 + 60_000 });
  await before.workerUpsert({ id: 'w', state: 'online', foremanId: 'killed', ...hello });
  await before.close();
  // Without the lock (the CLI, another connection), a lease that runs is a live foreman's.
  const unlocked = new SqliteStore({ path });
  await unlocked.migrate();
  await unlocked.foremanLeaseTake({ foremanId: 'other', now: t0, until: t0 + 60_000 });
  assert.deepEqual(await unlocked.foremanReapLapsed({ now: t0 + 1 }), { foremen: [], workers: 0 });
  await unlocked.foremanLeaseEnd({ foremanId: 'other', now: t0 });
  await unlocked.close();
  const after = new SqliteStore({ path, foremanId: 'next' });
  await after.migrate();
  try {
    await after.foremanLeaseTake({ foremanId: 'next', now: t0 + 1, until: t0 + 60_000 });
    assert.deepEqual(await after.foremanReapLapsed({ now: t0 + 1 }), { foremen: [], workers: 1 });
    assert.equal((await after.workerList())[0].state, 'offline');
    assert.equal(await after.foremanLeaseRenew({ foremanId: 'next', until: t0 + 70_000 }), true, 'its own lease stands');
  } finally {
    await after.close();
  }
});
