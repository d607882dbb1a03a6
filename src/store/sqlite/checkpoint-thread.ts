/**
 * Runs in a worker thread: checkpoints the WAL of one SQLite file on its own connection.
 * See checkpointer.ts for why.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { statSync } from 'node:fs';
import Database from 'better-sqlite3';

const { path, intervalMs, walLimitBytes } = workerData as { path: string; intervalMs: number; walLimitBytes: number };
const db = new Database(path);
db.pragma('busy_timeout = 5000');
const walPath = `${path}-wal`;
const walBytes = () => { try { return statSync(walPath).size; } catch { return 0; } };
let last = Date.now();
// Every interval a passive checkpoint copies the WAL into the database without blocking anyone.
// But a passive checkpoint never starts the WAL over while commits keep coming: under a steady
// load the file would grow without end (hundreds of MB per 100,000 tasks). So the WAL's size is
// also looked at every 100 ms, and once it is past the limit, right after a passive checkpoint
// has copied nearly all of it, a TRUNCATE checkpoint waits for a gap between commits, copies
// the few frames left and empties the file. Writers wait for that gap's length only.
const timer = setInterval(() => {
  try {
    const over = walBytes() > walLimitBytes;
    if (!over && Date.now() - last < intervalMs) return;
    last = Date.now();
    db.pragma('wal_checkpoint(PASSIVE)');
    if (over) db.pragma('wal_checkpoint(TRUNCATE)');
  } catch (err) {
    parentPort?.postMessage({ error: (err as Error).message });
  }
}, Math.min(intervalMs, 100));

parentPort?.on('message', (m: { type: string }) => {
  if (m.type !== 'stop') return;
  clearInterval(timer);
  try { db.pragma('wal_checkpoint(TRUNCATE)'); } catch { /* the next start checkpoints */ }
  db.close();
  parentPort?.postMessage({ stopped: true });
});
