/**
 * What this machine's disk and SQLite allow, for the bench's `limits` line: rows inserted and
 * updated per second through better-sqlite3 with the foreman's settings (WAL, synchronous NORMAL,
 * 16 MiB of page cache, no automatic checkpoint on the writing connection: see
 * src/store/sqlite/sqlite-store.ts) on a table shaped like the foreman's tasks table, with its
 * three indexes. Inserts go in transactions of one throughput job's size (a submission of 20,000
 * tasks is one transaction); updates in transactions of 50 rows, as the foreman's group commit
 * at concurrency 50 records a tick's claims or results together.
 */
import Database from 'better-sqlite3';

export const INSERT_BATCH = 20_000;
export const UPDATE_BATCH = 50;

export function sqliteWriteProbe(path: string, rows = 60_000): { inserts_per_s: number; updates_per_s: number } {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('cache_size = -16384');
    db.pragma('wal_autocheckpoint = 0');
    db.exec(`CREATE TABLE tasks (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, job_id TEXT NOT NULL, idx INTEGER NOT NULL,
        type TEXT NOT NULL, input TEXT, priority INTEGER NOT NULL, state TEXT NOT NULL, worker_id TEXT, result TEXT,
        created_at INTEGER NOT NULL, completed_at INTEGER);
      CREATE INDEX tasks_queue ON tasks (priority, seq) WHERE state = 'queued';
      CREATE INDEX tasks_job ON tasks (job_id, idx);
      CREATE INDEX tasks_running_worker ON tasks (worker_id) WHERE state = 'running';`);
    const insert = db.prepare(`INSERT INTO tasks (id, job_id, idx, type, input, priority, state, created_at) VALUES (?, ?, ?, 'bench.noop', NULL, 0, 'queued', ?)`);
    const update = db.prepare(`UPDATE tasks SET state = 'completed', result = 'null', worker_id = NULL, completed_at = ? WHERE id = ?`);
    const ids = Array.from({ length: rows }, (_, i) => `t-${i.toString(36).padStart(8, '0')}-${crypto.randomUUID()}`);
    const insertMany = db.transaction((from: number, to: number, job: string, now: number) => { for (let i = from; i < to; i++) insert.run(ids[i], job, i - from, now); });
    const updateMany = db.transaction((from: number, to: number, now: number) => { for (let i = from; i < to; i++) update.run(now, ids[i]); });
    let t0 = performance.now();
    for (let i = 0; i < rows; i += INSERT_BATCH) insertMany(i, Math.min(rows, i + INSERT_BATCH), crypto.randomUUID(), Date.now());
    const insertS = (performance.now() - t0) / 1000;
    t0 = performance.now();
    for (let i = 0; i < rows; i += UPDATE_BATCH) updateMany(i, Math.min(rows, i + UPDATE_BATCH), Date.now());
    const updateS = (performance.now() - t0) / 1000;
    return { inserts_per_s: Math.round(rows / insertS), updates_per_s: Math.round(rows / updateS) };
  } finally {
    db.close();
  }
}
