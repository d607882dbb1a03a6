import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';

/** The thread's file beside this one: checkpoint-thread.ts from source, checkpoint-thread.js from the built package. */
const THREAD = fileURLToPath(import.meta.url).replace(/checkpointer\.(ts|js)$/, 'checkpoint-thread.$1');

/**
 * Moves WAL checkpoints off the event loop.
 *
 * Under `synchronous = NORMAL` a WAL commit does not fsync; a checkpoint does (twice). With
 * SQLite's automatic checkpoints those fsyncs land on whichever commit crosses the
 * threshold, blocking the foreman for milliseconds every few hundred commits: measured here,
 * they made an average commit cost 63 µs instead of 23 µs and produced the latency tail.
 * So the foreman's connection turns automatic checkpoints off, and this thread checkpoints
 * on its own connection every `intervalMs`. Durability is unchanged: commits are in the WAL
 * either way; only who pays for the fsync changes.
 */
export class Checkpointer {
  private readonly worker: Worker;
  private stopped: Promise<void> | null = null;
  /** Resolves when the thread has ended (stopped, or never started: its file missing, say). */
  private readonly exited: Promise<void>;

  constructor(path: string, intervalMs: number, onError: (message: string) => void, walLimitBytes = 64 * 1024 * 1024) {
    this.worker = new Worker(THREAD, { workerData: { path, intervalMs, walLimitBytes } });
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
    this.worker.on('message', (m: { error?: string }) => { if (m.error) onError(m.error); });
    this.worker.on('error', (err) => onError((err as Error).message));
    this.worker.unref();
  }

  /** Final checkpoint, then end the thread. Safe to call twice. */
  stop(): Promise<void> {
    this.worker.ref(); // keep the process alive until the final checkpoint is done
    this.stopped ??= new Promise<void>((resolve) => {
      const done = () => { void this.worker.terminate().then(() => resolve(), () => resolve()); };
      this.worker.once('message', done);
      void this.exited.then(() => resolve());
      this.worker.postMessage({ type: 'stop' });
      setTimeout(done, 5_000).unref();
    });
    return this.stopped;
  }
}
