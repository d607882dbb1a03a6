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
