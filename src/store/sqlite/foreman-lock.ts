/**
 * One SQLite file serves one foreman. A foreman holds an exclusive lock on a small companion
 * database (`<file>.foreman-lock`) for as long as it runs; a second foreman pointed at the same
 * file cannot take it and refuses to start, naming the holder (from `<file>.foreman`). The lock
 * is the operating system's (SQLite's file locking), so it goes with the process however it
 * ends; and it is not the store's own file, so the CLI's credential and prune commands keep
 * working against the file while the foreman runs.
 * @internal
 */
import Database from 'better-sqlite3';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';

/** Who holds a lock. */
export interface LockOwner {
  foremanId: string;
  pid: number;
  host: string;
  startedAt: string;
}

/** A held foreman lock on a SQLite file; `release()` lets it go. */
export class ForemanLock {
  private readonly db: Database.Database;
  private readonly infoPath: string;

  private constructor(db: Database.Database, infoPath: string) {
    this.db = db;
    this.infoPath = infoPath;
  }

  /** Take the lock on `dbPath` for `foremanId`, or throw naming the foreman that holds it. */
  static acquire(dbPath: string, foremanId: string): ForemanLock {
    const infoPath = `${dbPath}.foreman`;
    const db = new Database(`${dbPath}.foreman-lock`, { timeout: 0 });
    try {
      db.pragma('locking_mode = EXCLUSIVE');
      // The first write takes the exclusive lock; in this locking mode it is kept until close.
      db.exec('CREATE TABLE IF NOT EXISTS held (at INTEGER); BEGIN EXCLUSIVE; INSERT INTO held VALUES (0); COMMIT;');
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
      let owner: Partial<LockOwner> = {};
      try { owner = JSON.parse(readFileSync(infoPath, 'utf8')) as LockOwner; } catch { /* written a moment later */ }
      throw new Error(`the SQLite file ${dbPath} is in use by another foreman${owner.foremanId ? ` (${owner.foremanId}, pid ${owner.pid} on ${owner.host}, since ${owner.startedAt})` : ''}; `
        + 'one SQLite file serves one foreman: stop that one, give this one another file, or use PostgreSQL for several foremen');
    }
    const owner: LockOwner = { foremanId, pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
    writeFileSync(infoPath, `${JSON.stringify(owner)}\n`);
    return new ForemanLock(db, infoPath);
  }

  /** Let the lock go (the foreman stops). */
  release(): void {
    if (!this.db.open) return;
    rmSync(this.infoPath, { force: true });
    this.db.close();
  }
}
