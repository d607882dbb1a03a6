/**
 * Database failures in the words of the protocol, shared by the drivers: a connection that
 * is gone (PostgreSQL restarting, a network cut) becomes CC_ERR_STORE_UNAVAILABLE, a database
 * that cannot grow (a full disk, a size limit, a read-only file) CC_ERR_STORE_FULL. Callers
 * retry the first and report the second; neither ends the foreman.
 * @internal
 */
import { CrowdComputeError } from '../protocol/index.ts';

const CONNECTION_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  // PostgreSQL: admin_shutdown, crash_shutdown, cannot_connect_now, and the connection_exception class.
  '57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006',
]);
const CONNECTION_MESSAGES = /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|terminating connection|the database system is (starting up|shutting down)|Query read timeout/i;

/** True when an error says the database cannot be reached (so the same call may succeed later). */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof CrowdComputeError) return err.code === 'CC_ERR_STORE_UNAVAILABLE';
  const e = err as { code?: unknown; message?: unknown };
  return (typeof e?.code === 'string' && CONNECTION_CODES.has(e.code)) || (typeof e?.message === 'string' && CONNECTION_MESSAGES.test(e.message));
}

/** True for the protocol's store errors: the foreman's store health has logged them once already. */
export function isStoreOutage(err: unknown): boolean {
  return err instanceof CrowdComputeError && (err.code === 'CC_ERR_STORE_UNAVAILABLE' || err.code === 'CC_ERR_STORE_FULL');
}

/** True for PostgreSQL's refusal of a NUL character or an unpaired surrogate in a text or jsonb value. */
function isUnstorableText(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return code === '22021' || code === '22P05';
}

/** True for "cannot write": SQLite's full disk or page limit, read-only file or directory; PostgreSQL's disk_full. */
export function isFullError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' && (/^SQLITE_(FULL|READONLY)/.test(code) || code === '53100');
}

/** The protocol's error for a database failure, or the error itself when it is something else. */
export function storeError(err: unknown, what: string): unknown {
  if (err instanceof CrowdComputeError) return err;
  if (isConnectionError(err)) {
    return new CrowdComputeError('CC_ERR_STORE_UNAVAILABLE', `the database cannot be reached (${(err as Error).message}) while ${what}; retry shortly`);
  }
  if (isUnstorableText(err)) {
    return new CrowdComputeError('CC_ERR_BAD_MESSAGE', `a text value holds a character the database cannot store (${(err as Error).message}) while ${what}: `
      + 'PostgreSQL keeps no NUL character (\\u0000) in text; remove it');
  }
  if (isFullError(err)) {
    const code = (err as { code: string }).code;
    const why = code.startsWith('SQLITE_READONLY') ? 'the database file is read-only' : 'the database or its disk is full';
    return new CrowdComputeError('CC_ERR_STORE_FULL', `${why} (${code}) while ${what}; free space: cancel queued jobs (crowdcompute cancel), prune finished jobs (crowdcompute prune), `
      + 'or drop unfinished ones (crowdcompute prune --unfinished), or raise the size limit');
  }
  return err;
}

/**
 * SQLite result codes and PostgreSQL error classes that say the database as a whole cannot do
 * the work now (busy, locked, out of memory or resources, an I/O failure, a serialization
 * conflict or deadlock, a cancelled statement), as opposed to refusing one of the values or
 * rows it was given (a constraint, a value it cannot store, a row a trigger protects).
 */
const WIDE_SQLITE = /^SQLITE_(BUSY|LOCKED|NOMEM|IOERR|CORRUPT|NOTADB|CANTOPEN|PROTOCOL|INTERRUPT)/;
const WIDE_PG_CLASSES = new Set(['08', '0A', '25', '26', '40', '42', '53', '55', '57', '58', 'XX']);

/**
 * True when a failed write says nothing about the items it carried: the store is out or full,
 * or busy, or failing as a whole. Batches that fail so are put back and tried again later;
 * any other failure may be one item's, and is isolated (core/commit-in-parts.ts).
 */
export function isStoreWideError(err: unknown): boolean {
  if (isStoreOutage(err) || isConnectionError(err) || isFullError(err)) return true;
  const code = (err as { code?: unknown })?.code;
  if (typeof code !== 'string') return false;
  if (WIDE_SQLITE.test(code)) return true;
  return /^[0-9A-Z]{5}$/.test(code) && WIDE_PG_CLASSES.has(code.slice(0, 2));
}
