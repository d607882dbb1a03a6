/**
 * Runs in a worker thread: the SQLite store of one file, serving the calls of a
 * ThreadedSqliteStore (see threaded-sqlite-store.ts for why, and thread-messages.ts for what crosses).
 *
 * Calls are served one at a time in the order they arrive. Each store method runs its
 * transaction to the end before it returns (better-sqlite3 is synchronous), so a reply always
 * follows a commit: what the foreman's thread hears as done is on disk as much as it would be
 * without the thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SqliteStore } from './sqlite-store.ts';
import { ITEM_ERROR_METHODS, carryError, carryItemErrors, type CallMessage, type ReplyMessage, type StoreThreadData, type ThreadNotice } from './thread-messages.ts';

const port = parentPort!;
const notify = (m: ThreadNotice) => port.postMessage(m);

function open(): SqliteStore | null {
  try {
    return new SqliteStore({ ...(workerData as StoreThreadData), onCheckpointError: (message) => notify({ checkpointError: message }) });
  } catch (err) {
    // The foreman lock is held by another foreman, the directory cannot be made, the file is not
    // a database: said once, and the thread ends (nothing holds it); the calls sent fail with this error.
    notify({ openFailed: carryError(err) });
    return null;
  }
}

const opened = open();
// A thread started again after its predecessor died brings the schema up as openStore did
// (prepared statements are made there) before it serves the calls queued for it.
if (opened) {
  void ((workerData as StoreThreadData).migrated ? opened.migrate() : Promise.resolve()).then(
    () => serve(opened),
    (err: unknown) => { notify({ openFailed: carryError(err) }); void opened.close(); },
  );
}

function serve(store: SqliteStore): void {
  notify({ opened: true });

  const methods = store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;

  port.on('message', (m: CallMessage | { close: true }) => {
    if ('close' in m) {
      void store.close().finally(() => { port.close(); });
      return;
    }
    const { id, method, args } = m;
    const reply = (r: ReplyMessage) => port.postMessage(r);
    let out: Promise<unknown>;
    try {
      const fn = methods[method];
      if (typeof fn !== 'function' || method === 'close' || method === 'constructor') throw new TypeError(`the SQLite store has no method ${method}`);
      out = fn.apply(store, args);
    } catch (err) {
      reply({ id, error: carryError(err) });
      return;
    }
    out.then(
      (value) => {
        try {
          reply({ id, value: ITEM_ERROR_METHODS.has(method) ? carryItemErrors(value) : value });
        } catch (err) {
          // A value that cannot be cloned is a bug of the driver; the call fails with it rather than never answering.
          reply({ id, error: carryError(err) });
        }
      },
      (err: unknown) => reply({ id, error: carryError(err) }),
    );
  });
}
