/**
 * The SQLite store on a thread of its own: the same SqliteStore, run in a worker thread
 * (store-thread.ts), with this object in the foreman's thread forwarding each call to it.
 *
 * better-sqlite3 runs each statement on the thread that calls it. In one thread the foreman's
 * event loop (sockets, JSON of messages, dispatch) and SQLite (statements, the JSON of inputs
 * and results) take turns on one core; here they run side by side on two. Each call crosses as
 * one message (method and arguments, structured-cloned) and resolves with one reply; the
 * batches the foreman already makes (claims, results, submissions) cross as one call each.
 *
 * What does not change: a call resolves only after its transaction committed in the thread, so
 * nothing the foreman counts as recorded is held in memory only (docs/guarantees.md); calls run
 * in the order they were made; errors keep their class and code (thread-messages.ts).
 *
 * If the thread dies (a crash, its memory limit), the calls it had not answered fail with
 * CC_ERR_STORE_UNAVAILABLE, which the foreman reports as a store outage (/health, metrics) and
 * its loops retry; the next call starts a new thread on the same file. A call that was running
 * when the thread died may or may not have committed, as with a database connection that drops:
 * the store's guarded updates make a retried result or claim count once.
 * @internal
 */
import { Worker, type ResourceLimits } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { CrowdComputeError } from '../../protocol/index.ts';
import type { Store } from '../store.ts';
import type { SqliteStoreOptions } from './sqlite-store.ts';
import { ITEM_ERROR_METHODS, rebuildError, rebuildItemErrors, type CallMessage, type CarriedError, type ReplyMessage, type StoreThreadData, type ThreadNotice } from './thread-messages.ts';

const SELF = fileURLToPath(import.meta.url);
/** The thread's file beside this one: store-thread.ts from source, store-thread.js from the built package. */
const THREAD = SELF.replace(/threaded-sqlite-store\.(ts|js)$/, 'store-thread.$1');

/** Members of the Store interface that are not calls forwarded as they are (or that SQLite does not have). */
type NotForwarded = 'driver' | 'statementCount' | 'close' | 'listen' | 'setupWarnings' | 'vacuumDue';
type Forwarded = Exclude<keyof Store, NotForwarded>;

/**
 * Every call of the Store interface the thread serves. The `satisfies` and the check below keep
 * the list and the interface in step: a method added to Store and not here fails to compile.
 */
const FORWARDED = [
  'migrate',
  'jobInsert', 'jobInsertMany', 'jobAppend', 'jobGet', 'jobList', 'jobGraph', 'jobCode', 'jobResults', 'jobCancel', 'jobFail',
  'taskGet', 'taskList', 'jobQueuedTypes', 'jobRetry', 'taskFailedGroups', 'taskFailedPage', 'taskReleaseDue', 'taskNextRelease', 'jobExpireOpen',
  'jobFailPastDeadline', 'jobNextExpiry', 'taskExpireQueued', 'taskClaimMany', 'taskClaimFitting', 'schedulerSnapshot',
  'rateLimitList', 'rateLimitSet', 'rateLimitDelete', 'taskFinishMany', 'taskRequeueMany', 'taskRequeueExpired', 'sweepCandidates',
  'taskLeaseExtend', 'taskCancel', 'taskListRunningByWorker', 'taskProgressSet', 'taskRecord', 'taskResume', 'taskBatches',
  'artifactList', 'artifactCounts', 'fileInsert', 'fileList', 'fileData', 'taskFiles',
  'workerUpsert', 'workerDisconnected', 'workerSeen', 'workerList', 'stats',
  'foremanLeaseTake', 'foremanLeaseRenew', 'foremanLeaseEnd', 'foremanReapLapsed',
  'credentialInsert', 'credentialGet', 'credentialList', 'credentialRevoke', 'credentialSetMaxConcurrency', 'credentialSetWebhook',
  'credentialTouch', 'credentialsVersion', 'jobPrune', 'jobPruned', 'metaSetIfAbsent', 'probeSpace',
  'scheduleCreate', 'scheduleGet', 'scheduleList', 'scheduleUpdate', 'scheduleDelete', 'scheduleNextDue', 'scheduleDue', 'scheduleFire', 'scheduleRunList',
  'webhookClaimDue', 'webhookRecordAttempt', 'webhookNextDue', 'webhookDeliveryList',
] as const satisfies readonly Forwarded[];
type Unlisted = Exclude<Forwarded, (typeof FORWARDED)[number]>;
/** Compiles only while FORWARDED names every forwarded call (`Unlisted` is never). */
const everyCallListed: [Unlisted] extends [never] ? true : Unlisted = true;
void everyCallListed;

/** How to open the threaded store: the SQLite store's options, and limits of the thread. */
export interface ThreadedSqliteStoreOptions extends SqliteStoreOptions {
  /** The thread's memory limits (what it may use before it is ended as out of memory). */
  resourceLimits?: ResourceLimits;
}

interface Pending { resolve(value: unknown): void; reject(err: Error): void; method: string }

/** One running store thread and the calls it has not answered. */
interface Thread {
  worker: Worker;
  /** Set once the thread said whether its store opened. */
  opened: boolean;
  exited: Promise<void>;
}

/** The forwarded calls, which the loop at the end of this file puts on the class's prototype. @internal */
export interface ThreadedSqliteStore extends Pick<Store, Forwarded> {}
/** The SQLite store, run on a thread of its own (see the file's comment). @internal */
export class ThreadedSqliteStore {
  readonly driver = 'sqlite' as const;
  private readonly data: StoreThreadData;
  private readonly resourceLimits: ResourceLimits | undefined;
  private readonly onCheckpointError: (message: string) => void;
  private thread: Thread | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closing: Promise<void> | null = null;
  /** migrate() succeeded once: a thread started again migrates before it serves. */
  private migrated = false;

  constructor(options: ThreadedSqliteStoreOptions) {
    const { onCheckpointError, resourceLimits, ...data } = options;
    this.data = data;
    this.resourceLimits = resourceLimits;
    this.onCheckpointError = onCheckpointError ?? (() => {});
    this.thread = this.start();
  }

  /** Start a thread on the file; its store opens (and takes the foreman lock) as the thread starts. */
  private start(): Thread {
    const worker = new Worker(THREAD, { workerData: { ...this.data, migrated: this.migrated } satisfies StoreThreadData, ...(this.resourceLimits ? { resourceLimits: this.resourceLimits } : {}) });
    const thread: Thread = { worker, opened: false, exited: new Promise((resolve) => worker.once('exit', () => resolve())) };
    let crash: Error | null = null;
    worker.on('message', (m: ReplyMessage | ThreadNotice) => {
      if ('id' in m) this.settle(m);
      else if ('opened' in m) thread.opened = true;
      else if ('openFailed' in m) crash = rebuildError(m.openFailed);
      else this.onCheckpointError(m.checkpointError);
    });
    worker.on('error', (err: unknown) => { crash = err instanceof Error ? err : new Error(String(err)); });
    worker.once('exit', (code) => {
      if (this.thread === thread) this.thread = null;
      if (this.closing) return;
      // Not closed by us: the store did not open (its own error, as the in-thread store threw it),
      // or the thread died. Every call it had not answered fails; the next call starts it again.
      const failure = crash && !thread.opened ? crash
        : new CrowdComputeError('CC_ERR_STORE_UNAVAILABLE', `the SQLite store's thread stopped (exit code ${code}${crash ? `: ${crash.message}` : ''}); `
          + 'calls it had not answered may or may not have committed; the next call starts it again');
      this.failPending(failure);
    });
    // Held open only while a call waits for its reply (see call()): an idle store keeps no process alive.
    worker.unref();
    return thread;
  }

  private settle(m: ReplyMessage): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    this.unrefIfIdle();
    if ('error' in m) p.reject(rebuildError(m.error as CarriedError));
    else p.resolve(ITEM_ERROR_METHODS.has(p.method) ? rebuildItemErrors(m.value) : m.value);
  }

  /** No call waits: the thread need not hold the process open (while closing it must, until it has ended). */
  private unrefIfIdle(): void {
    if (this.pending.size === 0 && !this.closing) this.thread?.worker.unref();
  }

  private failPending(err: Error): void {
    const waiting = [...this.pending.values()];
    this.pending.clear();
    for (const p of waiting) p.reject(err);
  }

  /** Forward one call; it resolves with the thread's reply (after its transaction committed). */
  private call(method: string, args: unknown[]): Promise<unknown> {
    if (method === 'migrate') return this.send(method, args).then((v) => { this.migrated = true; return v; });
    return this.send(method, args);
  }

  private send(method: string, args: unknown[]): Promise<unknown> {
    if (this.closing) return Promise.reject(new CrowdComputeError('CC_ERR_STORE_UNAVAILABLE', `the SQLite store is closed (${method} called after close)`));
    const thread = this.thread ??= this.start();
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) thread.worker.ref();
      this.pending.set(id, { resolve, reject, method });
      try {
        thread.worker.postMessage({ id, method, args } satisfies CallMessage);
      } catch (err) {
        // An argument that cannot be cloned (a function, a class instance with private state).
        this.pending.delete(id);
        this.unrefIfIdle();
        reject(err as Error);
      }
    });
  }

  /** Close the store in its thread (final checkpoint, the foreman lock let go), then end the thread. Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const thread = this.thread;
      if (!thread) return;
      thread.worker.ref();
      // Calls sent before close are answered first: the thread serves messages in order.
      thread.worker.postMessage({ close: true });
      await thread.exited;
      this.thread = null;
      this.failPending(new CrowdComputeError('CC_ERR_STORE_UNAVAILABLE', 'the SQLite store closed before it answered'));
    })();
    return this.closing;
  }
}

for (const method of FORWARDED) {
  Object.defineProperty(ThreadedSqliteStore.prototype, method, {
    value: function (this: ThreadedSqliteStore, ...args: unknown[]) { return (this as unknown as { call(m: string, a: unknown[]): Promise<unknown> }).call(method, args); },
    writable: true, configurable: true,
  });
}
