/**
 * A test's own connection to a running foreman's database, on SQLite (the same file) or
 * PostgreSQL (the same schema): to damage a row as a disk or a hand might, or to make the
 * database refuse to change one (a trigger that raises), and see that the foreman's loops
 * fail that one item and carry on with the rest.
 */
import Database from 'better-sqlite3';
import pg from 'pg';

/** Raw SQL on a foreman's database. */
export interface RawDatabase {
  /** Run statements; `?`/`$1` parameters are not offered: tests write literals. */
  exec(sql: string): Promise<void>;
  /** The rows of one query. */
  rows(sql: string): Promise<Record<string, unknown>[]>;
  /**
   * From now on the database refuses `op` on rows of `table` for which the SQL condition `when`
   * holds (it may name OLD, and NEW for INSERT and UPDATE), as a constraint would.
   */
  refuse(table: string, op: 'INSERT' | 'UPDATE' | 'DELETE', when: string): Promise<void>;
  close(): Promise<void>;
}

let triggers = 0;

/** Open `databaseUrl` (`sqlite:<file>` or `postgres://…?schema=<name>`) beside the foreman. */
export async function openRawDatabase(databaseUrl: string): Promise<RawDatabase> {
  if (databaseUrl.startsWith('sqlite:')) {
    const db = new Database(databaseUrl.slice('sqlite:'.length), { timeout: 10_000 });
    return {
      exec: async (sql) => { db.exec(sql); },
      rows: async (sql) => db.prepare(sql).all() as Record<string, unknown>[],
      refuse: async (table, op, when) => {
        db.exec(`CREATE TRIGGER cc_test_refuse_${++triggers} BEFORE ${op} ON ${table} FOR EACH ROW WHEN ${when}
          BEGIN SELECT RAISE(ABORT, 'refused by the test''s trigger'); END`);
      },
      close: async () => { db.close(); },
    };
  }
  const url = new URL(databaseUrl);
  const schema = url.searchParams.get('schema') ?? 'public';
  url.searchParams.delete('schema');
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  await client.query(`SET search_path TO "${schema}"`);
  return {
    exec: async (sql) => { await client.query(sql); },
    rows: async (sql) => (await client.query(sql)).rows as Record<string, unknown>[],
    refuse: async (table, op, when) => {
      await client.query(`CREATE OR REPLACE FUNCTION cc_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'refused by the test''s trigger'; END $$`);
      await client.query(`CREATE TRIGGER cc_test_refuse_${++triggers} BEFORE ${op} ON ${table} FOR EACH ROW WHEN (${when}) EXECUTE FUNCTION cc_test_refuse()`);
    },
    close: async () => { await client.end(); },
  };
}
