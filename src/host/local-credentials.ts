/**
 * The local credentials file: how a foreman shares its credentials with the CLI and the
 * workers started on the same machine, so that nobody types a key there. It lives in the
 * user's config directory (`$CROWDCOMPUTE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/crowdcompute`,
 * else `~/.config/crowdcompute`), is readable by the user only (0600, in a 0700 directory),
 * and holds one entry per database: the deployment's secret, an admin API key and a worker
 * token for local workers, and the URLs the foreman listens on.
 *
 * Foremen on throwaway stores (`sqlite::memory:`) keep their entry in this process only.
 */
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** What a foreman leaves for the CLI and workers on its machine. */
export interface LocalCredentials {
  /** The database the entry belongs to (`sqlite:/abs/path.db`, `postgres://host:port/db?schema=…`, no password). */
  database: string;
  /** HTTP URLs the foreman was last seen listening on. */
  urls: string[];
  /** The deployment's secret (worker tokens and dashboard sessions derive from it). */
  secret: string;
  /** An admin API key for local clients. */
  apiKey?: string;
  /** A worker token (for any worker id) for local workers. */
  workerToken?: string;
}

interface FileContent {
  version: 1;
  foremen: LocalCredentials[];
}

/** Entries of foremen on throwaway stores, kept in this process. */
const inProcess: LocalCredentials[] = [];

/** The directory of the local credentials file. */
export function credentialsDir(): string {
  return process.env.CROWDCOMPUTE_CONFIG_DIR
    ?? join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'crowdcompute');
}

/** The local credentials file's path. */
export function credentialsFile(): string {
  return join(credentialsDir(), 'credentials.json');
}

function readFile(): FileContent {
  try {
    const content = JSON.parse(readFileSync(credentialsFile(), 'utf8')) as FileContent;
    return Array.isArray(content.foremen) ? content : { version: 1, foremen: [] };
  } catch {
    return { version: 1, foremen: [] };
  }
}

/** A database URL as entries name it: no password, SQLite paths as given (already absolute). */
export function databaseIdentity(database: string): string {
  if (!/^postgres(ql)?:\/\//.test(database)) return database;
  const u = new URL(database);
  u.password = '';
  return u.toString();
}

/** `http://localhost:8000`, `ws://127.0.0.1:8000/ws` → `loopback:8000`; other hosts keep their name. */
export function endpointIdentity(url: string): string {
  const u = new URL(url.replace(/^ws/, 'http'));
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  const host = ['localhost', '127.0.0.1', '[::1]', '0.0.0.0', '[::]'].includes(u.hostname) ? 'loopback' : u.hostname.toLowerCase();
  return `${u.protocol}//${host}:${port}`;
}

/** The entry of a database, from this process first, then from the file. */
export function localCredentialsFor(database: string): LocalCredentials | undefined {
  const id = databaseIdentity(database);
  return inProcess.find((e) => e.database === id) ?? readFile().foremen.find((e) => e.database === id);
}

/** Every entry the file holds, newest first (foremen on throwaway stores are not among them). */
export function localCredentialsList(): LocalCredentials[] {
  return readFile().foremen;
}

/** The entry of the foreman at `url` (HTTP or WebSocket), newest first. */
export function localCredentialsAt(url: string): LocalCredentials | undefined {
  let at: string;
  try { at = endpointIdentity(url); } catch { return undefined; }
  const match = (e: LocalCredentials) => e.urls.some((u) => endpointIdentity(u) === at);
  return [...inProcess].reverse().find(match) ?? readFile().foremen.find(match);
}

/**
 * Record a foreman's entry (replacing that database's). `persist: false` keeps it in this
 * process only. The file is rewritten whole, through a rename, readable by the user only.
 */
export function saveLocalCredentials(entry: LocalCredentials, options: { persist: boolean }): void {
  const e = { ...entry, database: databaseIdentity(entry.database) };
  const i = inProcess.findIndex((x) => x.database === e.database);
  const before = i >= 0 ? inProcess.splice(i, 1)[0] : undefined;
  if (!options.persist) {
    if (before) e.urls = [...new Set([...e.urls, ...before.urls])].slice(0, 20);
    inProcess.push(e);
    return;
  }
  mkdirSync(credentialsDir(), { recursive: true, mode: 0o700 });
  // Foremen started together (two of one database, say) each read, change and write the file:
  // without the lock the last write would drop what the others added.
  withFileLock(`${credentialsFile()}.lock`, () => writeEntry(e));
}

/** Write `e` into the file (under its lock). */
function writeEntry(e: LocalCredentials): void {
  const content = readFile();
  // Several foremen of one database on this machine share the entry: it keeps all their URLs.
  const before = content.foremen.find((x) => x.database === e.database);
  if (before) e.urls = [...new Set([...e.urls, ...before.urls])].slice(0, 20);
  // A URL belongs to one foreman at a time: older entries that claimed it let it go.
  const urls = new Set(e.urls.map(endpointIdentity));
  for (const other of content.foremen) other.urls = other.urls.filter((u) => !urls.has(endpointIdentity(u)));
  content.foremen = [e, ...content.foremen.filter((x) => x.database !== e.database)];
  const tmp = `${credentialsFile()}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(content, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, credentialsFile());
}

/** How long a lock file may stand before it is taken for one its process left behind (it is held for one small write). */
const STALE_LOCK_MS = 10_000;
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Run `fn` holding an exclusive lock file (created with O_EXCL, removed after). Another process
 * holding it is waited for, in steps of 5 ms; a lock older than STALE_LOCK_MS is removed as
 * abandoned. Synchronous, as the file's readers and writers are.
 */
function withFileLock<T>(lock: string, fn: () => T): T {
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx', 0o600));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let age = 0;
      try { age = Date.now() - statSync(lock).mtimeMs; } catch { continue; }
      if (age > STALE_LOCK_MS) { rmSync(lock, { force: true }); continue; }
      Atomics.wait(pause, 0, 0, 5);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { force: true });
  }
}
