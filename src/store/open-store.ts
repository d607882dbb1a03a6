import { resolve } from 'node:path';
import { CrowdComputeError } from '../protocol/index.ts';
import type { Store } from './store.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';

/**
 * Open the store a database URL names and bring its schema up to date.
 * `sqlite:./crowdcompute.db`, `sqlite::memory:` or a bare file path select the embedded driver.
 */
export async function openStore(url: string): Promise<Store> {
  let store: Store;
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    throw new CrowdComputeError('CC_ERR_INTERNAL', `database "${url.replace(/\/\/[^@]*@/, '//***@')}": the PostgreSQL driver is not in this version yet; use sqlite:<file>`);
  }
  const path = url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : url;
  store = new SqliteStore({ path: path === ':memory:' ? path : resolve(path) });
  await store.migrate();
  return store;
}
