import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runStoreConformance } from '../conformance/store-conformance.ts';
import { SqliteStore } from './sqlite-store.ts';

// A fresh database file per test, in its own temp dir.
runStoreConformance('sqlite', async () => {
  const store = new SqliteStore({ path: join(mkdtempSync(join(tmpdir(), 'cc-sqlite-')), 'test.db') });
  await store.migrate();
  return store;
});
