import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { runStoreConformance } from '../conformance/store-conformance.ts';
import { ThreadedSqliteStore } from './threaded-sqlite-store.ts';
import { openStore } from '../open-store.ts';
import { isFullError, isStoreWideError, storeError } from '../store-errors.ts';
import { CrowdComputeError } from '../../protocol/index.ts';
import type { JobInsertParams } from '../store.ts';

const freshPath = (name = 'test.db') => join(mkdtempSync(join(tmpdir(), 'cc-sqlite-thread-')), name);

// The same suite as the in-thread driver's: every call crosses to the store's thread and back.
runStoreConformance('sqlite (own thread)', async () => {
  const store = new ThreadedSqliteStore({ path: freshPath() });
  await store.migrate();
  return store;
});

const job = (id: string, input: unknown, taskId = `${id}.0`): JobInsertParams => ({
  job: { id, kind: 'tasks', name: null, priority: 'normal', argCount: null, chunkSize: null, code: null, timeoutMs: null,
    maxAttempts: 1, idempotencyKey: null, metadata: null, owner: null, retentionMs: 1000, label: 'x', queueTimeoutMs: null, runOn: null },
  tasks: [{ id: taskId, index: 0, kind: 'named', type: 'x', input, priority: 'normal', maxAttempts: 1, timeoutMs: null }], now: Date.now(),
});

test('errors cross the thread with their class and code: SQLITE_FULL stays a SqliteError the store errors recognise', async () => {
  const store = new ThreadedSqliteStore({ path: freshPath('small.db'), maxSizeBytes: 512 * 1024 });
  await store.migrate();
  try {
    let err: unknown = null;
    for (let i = 0; i < 100 && !err; i++) await store.jobInsert(job(`j${i}`, 'y'.repeat(20_000))).catch((e: unknown) => { err = e; });
    assert.ok(err instanceof Database.SqliteError, `a SqliteError, not ${String(err)}`);
    assert.equal((err as { code: string }).code, 'SQLITE_FULL');
    assert.ok(isFullError(err) && isStoreWideError(err));
    const mapped = storeError(err, 'submitting');
    assert.ok(mapped instanceof CrowdComputeError && mapped.code === 'CC_ERR_STORE_FULL');
    await assert.rejects(store.probeSpace(), (e: unknown) => e instanceof Database.SqliteError && (e as { code: string }).code === 'SQLITE_FULL');
  } finally {
    await store.close();
  }
});

test('an item refused alone in a group comes back as its own error, with its code; the others are inserted', async () => {
  const store = new ThreadedSqliteStore({ path: freshPath() });
  await store.migrate();
  try {
    await store.jobInsert(job('a', 1, 'taken'));
    const [refused, inserted] = await store.jobInsertMany([job('b', 2, 'taken'), job('c', 3)]);
    assert.ok('error' in refused && refused.error instanceof Database.SqliteError);
    assert.match((refused.error as { code: string }).code, /^SQLITE_CONSTRAINT/);
    assert.ok('job' in inserted && inserted.job.id === 'c');
    // A rejected call is the in-thread error again: here jobInsert rethrows the group's item error.
    await assert.rejects(store.jobInsert(job('d', 4, 'taken')), (e: unknown) => e instanceof Database.SqliteError && /^SQLITE_CONSTRAINT/.test((e as { code: string }).code));
    assert.equal((await store.jobGet('d')), null);
  } finally {
    await store.close();
  }
});

test('a second foreman on the file is refused with the lock holder named, and its thread ends', async () => {
  const path = freshPath();
  const first = await openStore(`sqlite:${path}`, { thread: true, foremanId: 'first' });
  try {
    await assert.rejects(openStore(`sqlite:${path}`, { thread: true, foremanId: 'second' }), /in use by another foreman \(first, pid/);
  } finally {
    await first.close();
  }
  // The lock went with the first store's thread: a new foreman may take the file.
  const again = await openStore(`sqlite:${path}`, { thread: true, foremanId: 'third' });
  await again.close();
});

test('a thread that dies fails its unanswered calls with CC_ERR_STORE_UNAVAILABLE, and the next call starts it again on the same file', async () => {
  // A heap this small cannot take a 64 MiB input: the thread is ended as out of memory while the call waits.
  const store = new ThreadedSqliteStore({ path: freshPath(), foremanId: 'f1', resourceLimits: { maxOldGenerationSizeMb: 24, maxYoungGenerationSizeMb: 4 } });
  await store.migrate();
  try {
    await store.jobInsert(job('kept', 'before the crash'));
    const huge = Array.from({ length: 64 }, (_, i) => `${i}`.padEnd(1024 * 1024, 'x'));
    await assert.rejects(store.jobInsert(job('lost', huge)), (e: unknown) => e instanceof CrowdComputeError && e.code === 'CC_ERR_STORE_UNAVAILABLE'
      && /thread stopped/.test(e.message));
    // Started again (the dead thread's foreman lock went with it): the commit from before is there, the schema is ready.
    assert.equal((await store.jobGet('kept'))?.id, 'kept');
    assert.equal((await store.taskGet('kept.0'))?.input, 'before the crash');
    await store.jobInsert(job('after', 'after the crash'));
    assert.equal((await store.jobGet('after'))?.state, 'queued');
  } finally {
    await store.close();
  }
});

test('close answers the calls made before it, is safe twice, and calls after it fail with a clear error', async () => {
  const path = freshPath();
  const store = new ThreadedSqliteStore({ path });
  await store.migrate();
  const inserted = store.jobInsert(job('last', 'x'));
  const closed = store.close();
  assert.equal((await inserted).job.id, 'last');
  await closed;
  await store.close();
  await assert.rejects(store.jobGet('last'), (e: unknown) => e instanceof CrowdComputeError && e.code === 'CC_ERR_STORE_UNAVAILABLE' && /closed/.test(e.message));
  // What was answered is committed: a store opened on the file after close has it.
  const reopened = await openStore(`sqlite:${path}`, { create: false });
  try {
    assert.equal((await reopened.jobGet('last'))?.id, 'last');
  } finally {
    await reopened.close();
  }
});

test('a process closing the store with a call still in flight waits for the thread to end before it exits', async () => {
  // Alone in a process, as the foreman's last moments are: nothing else keeps its event loop alive.
  const script = `
    const { ThreadedSqliteStore } = await import(${JSON.stringify(new URL('./threaded-sqlite-store.ts', import.meta.url).href)});
    const store = new ThreadedSqliteStore({ path: ${JSON.stringify(freshPath())} });
    await store.migrate();
    const inFlight = store.stats();
    await store.close();
    console.log('closed', (await inFlight).jobs.queued);`;
  const file = join(mkdtempSync(join(tmpdir(), 'cc-sqlite-thread-')), 'close.mjs');
  writeFileSync(file, script);
  const { stdout } = await promisify(execFile)(process.execPath, ['--no-node-snapshot', file]);
  assert.equal(stdout.trim(), 'closed 0');
});
