import pg from 'pg';

/**
 * The PostgreSQL the tests use: CROWDCOMPUTE_TEST_POSTGRES, else the local server on
 * 127.0.0.1:5432, database `test`. Resolves to null when it cannot be reached, and then,
 * under CI=true, throws instead: CI must not pass by silently skipping the PostgreSQL tests.
 * @internal
 */
export async function testPostgresUrl(): Promise<string | null> {
  const url = process.env.CROWDCOMPUTE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return url;
  } catch (err) {
    if (process.env.CI === 'true') throw new Error(`PostgreSQL at ${url} is required under CI=true: ${(err as Error).message}`);
    return null;
  } finally {
    await client.end().catch(() => {});
  }
}
