import { test } from 'node:test';
import { runStoreConformance } from '../conformance/store-conformance.ts';
import { PostgresStore } from './postgres-store.ts';
import { testPostgresUrl } from './postgres-test-url.ts';

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
