import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Store } from './store.ts';
import { SqliteStore } from './sqlite/sqlite-store.ts';
import { ThreadedSqliteStore } from './sqlite/threaded-sqlite-store.ts';

/** How to open a store. */
export interface OpenStoreOptions {
  /** Tags this process's PostgreSQL notifications, so it can ignore its own. */
  instanceId?: string;
  /** PostgreSQL schema (else the URL's `schema` parameter, else CROWDCOMPUTE_SCHEMA, else `crowdcompute`). */
  schema?: string;
  /** A foreman opening its own store: on SQLite it takes the file's foreman lock. */
  foremanId?: string;
  /** SQLite: the file may not grow past this many bytes. */
  maxSizeBytes?: number;
  /**
   * Make the store when there is none (the default, what a foreman does): a new SQLite file, or
   * the tables in an empty PostgreSQL schema. With false, a missing store is a StoreNotFoundError
   * and nothing is written, so a command run in the wrong place cannot leave a stray empty store.
   */
  create?: boolean;
  /**
   * SQLite: run the store on a thread of its own (sqlite/threaded-sqlite-store.ts), so that its
   * statements and the foreman's event loop use two cores. Default false: a command that
   * opens the store for one call has nothing to overlap.
   */
  thread?: boolean;
  /** SQLite: told of a WAL checkpoint that failed (the store goes on; the WAL grows until one succeeds). */
  onCheckpointError?: (message: string) => void;
}

/** The database named holds no CrowdCompute store (and `create: false` forbade making one). */
export class StoreNotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreNotFoundError';
  }
}

/** The forms a database URL may take, as error messages list them. */
const ACCEPTED_FORMS = 'sqlite:<file>, sqlite::memory:, a file path, or postgres://user@host:5432/db (postgresql:// too)';

/**
 * Refuse a URL of a database CrowdCompute has no driver for (`mysql://…`), which would otherwise
 * be taken for a SQLite file path. Only the scheme is quoted: the rest may hold a password.
 */
function checkScheme(url: string): void {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1];
  if (scheme === undefined || /^postgres(ql)?$/.test(scheme)) return;
  const lower = scheme.toLowerCase();
  const hint = lower === 'sqlite' ? '; for a SQLite file write sqlite:<file> (sqlite:./crowdcompute.db, sqlite:/var/lib/crowdcompute.db)'
    : /^postgres(ql)?$/.test(lower) ? `; write the scheme in lower case (${lower}://)` : '';
  throw new Error(`the database URL starts with ${scheme}://, which CrowdCompute cannot open; it takes ${ACCEPTED_FORMS}${hint}`);
}

/**
 * A database URL in the one form that names it everywhere (the local credentials file, logs):
 * SQLite paths made absolute; null for a throwaway in-memory store. A URL with a scheme other
 * than postgres:// or postgresql:// (`mysql://…`) is refused with the forms that are accepted.
 */
export function canonicalDatabaseUrl(url: string): string | null {
  checkScheme(url);
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) return url;
  const path = url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : url;
  return path === ':memory:' ? null : `sqlite:${resolve(path)}`;
}

/**
 * Open the store a database URL names and bring its schema up to date:
 * `sqlite:./crowdcompute.db`, `sqlite::memory:` or a bare file path for the embedded driver;
 * `postgres://user@host:5432/db[?schema=name]` for PostgreSQL (several foremen may share it).
 * Any other `<scheme>://` is refused.
 */
export async function openStore(url: string, options: OpenStoreOptions = {}): Promise<Store> {
  checkScheme(url);
  let store: Store;
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    // Loaded only when used: a SQLite-only install never touches pg.
    const { PostgresStore } = await import('./postgres/postgres-store.ts');
    const schema = options.schema ?? process.env.CROWDCOMPUTE_SCHEMA;
    const pgStore = new PostgresStore({ url, ...(schema ? { schema } : {}), ...(options.instanceId ? { instanceId: options.instanceId } : {}) });
    if (options.create === false && !(await pgStore.isSetUp().catch(async (err: unknown) => { await pgStore.close(); throw err; }))) {
      await pgStore.close();
      throw new StoreNotFoundError(`the PostgreSQL database has no CrowdCompute store in schema ${pgStore.schema}`);
    }
    store = pgStore;
  } else {
    const path = url.startsWith('sqlite:') ? url.slice('sqlite:'.length) : url;
    if (options.create === false && path !== ':memory:' && !existsSync(resolve(path))) {
      throw new StoreNotFoundError(`the SQLite file ${resolve(path)} does not exist`);
    }
    const sqlite = {
      path: path === ':memory:' ? path : resolve(path),
      ...(options.foremanId ? { foremanId: options.foremanId } : {}), ...(options.maxSizeBytes ? { maxSizeBytes: options.maxSizeBytes } : {}),
      ...(options.onCheckpointError ? { onCheckpointError: options.onCheckpointError } : {}),
    };
    store = options.thread ? new ThreadedSqliteStore(sqlite) : new SqliteStore(sqlite);
  }
  // A threaded store reports a failure to open (the foreman lock taken) here; its thread is ended.
  await store.migrate().catch(async (err: unknown) => { if (store instanceof ThreadedSqliteStore) await store.close(); throw err; });
  return store;
}
