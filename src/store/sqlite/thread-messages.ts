/**
 * What crosses between the foreman's thread and the store's thread (see threaded-sqlite-store.ts):
 * one message per store call, one reply per call, and errors in a form that keeps what callers
 * look at. Structured cloning turns every error into a plain Error and drops its `code`, so a
 * CrowdComputeError (its code and details), better-sqlite3's SqliteError (its `SQLITE_*` code,
 * which store-errors.ts reads to tell a full disk or a busy database from one bad row) and the
 * class of other errors are carried by hand and built again on the other side.
 * @internal
 */
import Database from 'better-sqlite3';
import { CrowdComputeError, type ErrorCode } from '../../protocol/index.ts';
import type { SqliteStoreOptions } from './sqlite-store.ts';

/** A store call: the method's name and its arguments (structured-cloned), under an id its reply repeats. */
export interface CallMessage {
  id: number;
  method: string;
  args: unknown[];
}

/** The reply to a call: its value, or its error. */
export type ReplyMessage = { id: number; value: unknown } | { id: number; error: CarriedError };

/** What the thread says besides replies: the store could not open (it ends), or a checkpoint failed (it goes on). */
export type ThreadNotice = { opened: true } | { openFailed: CarriedError } | { checkpointError: string };

/**
 * What the store's thread is started with: the store's options, less the callback (which cannot
 * cross), and whether the store was migrated already (a thread started again migrates at once).
 */
export type StoreThreadData = Omit<SqliteStoreOptions, 'onCheckpointError'> & { migrated?: boolean };

/** An error as it crosses: its kind, and the fields that kind is built from. */
export interface CarriedError {
  kind: 'crowdcompute' | 'sqlite' | 'other';
  name: string;
  message: string;
  stack?: string;
  code?: string;
  details?: Record<string, unknown>;
}

/** The error in the form that crosses (see the file's comment). */
export function carryError(err: unknown): CarriedError {
  if (err instanceof CrowdComputeError) {
    return { kind: 'crowdcompute', name: err.name, message: err.message, code: err.code, ...(err.stack ? { stack: err.stack } : {}), ...(err.details ? { details: err.details } : {}) };
  }
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return {
      kind: err instanceof Database.SqliteError ? 'sqlite' : 'other', name: err.name, message: err.message,
      ...(err.stack ? { stack: err.stack } : {}), ...(typeof code === 'string' ? { code } : {}),
    };
  }
  return { kind: 'other', name: 'Error', message: String(err) };
}

/** The built-in error classes, by name: a TypeError thrown in the thread is a TypeError here. */
const BUILT_IN: Record<string, ErrorConstructor> = { TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError };

/** The error again, of its class, with its code, details and the thread's stack. */
export function rebuildError(c: CarriedError): Error {
  let err: Error;
  if (c.kind === 'crowdcompute') err = new CrowdComputeError(c.code as ErrorCode, c.message, c.details);
  else if (c.kind === 'sqlite') err = new Database.SqliteError(c.message, c.code ?? 'SQLITE_ERROR');
  else {
    err = new (BUILT_IN[c.name] ?? Error)(c.message);
    if (err.name !== c.name) err.name = c.name;
    if (c.code !== undefined) (err as Error & { code: string }).code = c.code;
  }
  if (c.stack) err.stack = c.stack;
  return err;
}

/**
 * Store methods whose value holds errors of single items (a job of a group refused, a schedule's
 * step that failed alone): `{ error }` entries of the array they return. Only these are looked
 * through, so that the values of other calls (claims with their inputs) cross untouched.
 */
export const ITEM_ERROR_METHODS: ReadonlySet<string> = new Set(['jobInsertMany', 'scheduleFire']);

/** The value of an ITEM_ERROR_METHODS call with each item's error in the form that crosses. */
export function carryItemErrors(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  return value.map((item: unknown) => (item && typeof item === 'object' && (item as { error?: unknown }).error instanceof Error
    ? { ...item, error: carryError((item as { error: unknown }).error) } : item));
}

/** The value of an ITEM_ERROR_METHODS call with each item's error built again. */
export function rebuildItemErrors(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  return value.map((item: unknown) => (item && typeof item === 'object' && (item as { error?: { kind?: unknown } }).error?.kind !== undefined
    ? { ...item, error: rebuildError((item as { error: CarriedError }).error) } : item));
}
