import { test } from 'node:test';
import assert from 'node:assert/strict';
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
