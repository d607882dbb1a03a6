/**
 * What every command that opens the store itself (key, token, join-link, prune) shares: which
 * database (`--database`, else the local foreman's from the local credentials file) and the rule
 * that a store is never made unless asked (`--create`): run in the wrong folder, such a command
 * fails naming the path rather than acting on a new, empty store no foreman reads.
 */
import { Option, type Command } from 'commander';
import type { Store } from '../store/store.ts';
import type { LocalCredentials } from '../host/local-credentials.ts';
import { localForeman } from './local-foreman.ts';

/** The flags' values. */
export interface StoreFlagValues {
  database?: string;
  foreman?: string;
  create?: boolean;
}

/** An open store, and which database it is, for the lines that say so. */
export interface CliStore {
  store: Store;
  /** The database as the local credentials file names it (`sqlite:/abs/path.db`, `postgres://user@host/db`, no password). */
  database: string;
  /** The local credentials file's entry of that database, if it has one. */
  local: LocalCredentials | undefined;
  /** `sqlite:/abs/crowdcompute.db (the foreman at http://127.0.0.1:8000)`: which store a command acted on. */
  described: string;
}

const PASS_DATABASE = 'pass --database <path|postgres-url>';

/** `--database`, `--foreman` (which local foreman's database) and `--create`. */
export function storeFlags(cmd: Command, foremanHelp = 'use the database of the foreman at this URL on this machine, as the local credentials file records it (default: the one at http://localhost:8000, or the only one recorded)'): Command {
  return cmd
    // The environment variable is named, never its value, in --help: it may hold a password.
    .addOption(new Option('-d, --database <path|postgres-url>', 'the store: a SQLite file (sqlite:<file> or a path) or postgres://… (default: the local foreman\'s, from the local credentials file)').env('CROWDCOMPUTE_DATABASE'))
    .addOption(new Option('--foreman <url>', foremanHelp).env('CROWDCOMPUTE_URL'))
    .option('--create', 'make a new store at --database when there is none there (without it, a missing store is an error: the foreman makes its own)');
}

/**
 * Open the store the flags name. `foremanIsAddress`: `--foreman` may name a foreman that does
 * not run here (a join link's public address); its database is then the default one.
 */
export async function openCliStore(o: StoreFlagValues, options: { foremanIsAddress?: boolean } = {}): Promise<CliStore> {
  const { openStore, canonicalDatabaseUrl, StoreNotFoundError } = await import('../store/open-store.ts');
  const local = await import('../host/local-credentials.ts');
  let url: string;
  let foremanUrl: string | null = null;
  if (o.database) {
    url = o.database;
  } else {
    if (o.create) throw new Error(`--create makes a new store where --database says: ${PASS_DATABASE} (or start the foreman, which makes its own)`);
    let found;
    try {
      found = localForeman(o.foreman, PASS_DATABASE);
    } catch (err) {
      if (!options.foremanIsAddress || o.foreman === undefined) throw err;
      found = localForeman(undefined, PASS_DATABASE);
    }
    url = found.entry.database;
    foremanUrl = found.url;
  }
  const canonical = canonicalDatabaseUrl(url);
  if (!canonical) throw new Error('credentials and jobs of an in-memory store live inside its foreman; this command needs a database file or server (--database)');
  const database = local.databaseIdentity(canonical);
  const entry = local.localCredentialsFor(canonical);
  const described = foremanUrl ? `${database} (the foreman at ${foremanUrl})` : database;
  let store: Store;
  try {
    store = await openStore(url, { create: o.create === true });
  } catch (err) {
    if (!(err instanceof StoreNotFoundError)) {
      // The file records PostgreSQL URLs without their password; libpq's PGPASSWORD (or ~/.pgpass) supplies it.
      if (foremanUrl && /^postgres/.test(database) && /password|authentication/i.test((err as Error).message)) {
        throw new Error(`${(err as Error).message} (${database}, as the local credentials file records it, without its password: set PGPASSWORD, or pass --database with the password)`);
      }
      throw err;
    }
    const where = foremanUrl ? `, the database the foreman at ${foremanUrl} recorded in ${local.credentialsFile()},` : /^postgres/.test(database) ? ` (${database})` : '';
    throw new Error(`${err.message}${where}: start the foreman first, or pass --create to make a new store`);
  }
  return { store, database, local: entry, described };
}
