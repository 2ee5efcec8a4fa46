import Database from 'better-sqlite3';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CatalogUnavailableError } from './catalog-errors';

export const INSTANCE_LOCK_FILE = 'instance.lock';
const INSTANCE_PID_FILE = 'instance.pid';
const WAIT_MS = 5000;

interface Held {
  db: Database.Database;
  users: number;
}

/**
 * One service per DATA_DIR. A second one would take the first one's running jobs for jobs a dead process left: mark
 * them interrupted, kill their process groups, clear their duplicity locks. The lock is SQLite's own exclusive lock
 * (a POSIX record lock: Node has no flock) on a small file, kept by EXCLUSIVE locking mode for as long as the
 * connection is open, and released by the kernel however the process ends, SIGKILL included.
 */
export class DataDirLock {
  private static readonly held = new Map<string, Held>();
  private released = false;

  private constructor(private readonly dataDir: string) {}

  /** Takes DATA_DIR for this process (again, when it holds it already); throws CatalogUnavailableError when another has it. */
  static acquire(dataDir: string): DataDirLock {
    const existing = DataDirLock.held.get(dataDir);
    if (existing) {
      existing.users += 1;
      return new DataDirLock(dataDir);
    }
    const file = join(dataDir, INSTANCE_LOCK_FILE);
    let db: Database.Database | undefined;
    try {
      db = new Database(file, { timeout: WAIT_MS });
      db.pragma('locking_mode = EXCLUSIVE');
      // The first write takes the exclusive lock; EXCLUSIVE locking mode keeps it after the commit.
      db.exec('BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS holder (pid INTEGER); DELETE FROM holder;');
      db.prepare('INSERT INTO holder (pid) VALUES (?)').run(process.pid);
      db.exec('COMMIT');
    } catch (error) {
      if (db?.open) db.close();
      const code = (error as { code?: unknown }).code;
      if (code !== 'SQLITE_BUSY' && code !== 'SQLITE_LOCKED') {
        throw new CatalogUnavailableError(
          file,
          false,
          `Cannot lock DATA_DIR ${dataDir} through ${file}: ${error instanceof Error ? error.message : String(error)}.`,
        );
      }
      const holder = holderPid(dataDir);
      throw new CatalogUnavailableError(
        file,
        true,
        `DATA_DIR ${dataDir} is in use by another apiscp-backup-api${holder ? ` (pid ${holder})` : ''}: ${file} is ` +
          `locked (still busy after ${WAIT_MS / 1000} s). Two services on one DATA_DIR would each take the other's ` +
          'running jobs for dead ones; stop the other one first.',
      );
    }
    // For the message a second service prints: the lock file itself cannot be read while it is held.
    writeFileSync(join(dataDir, INSTANCE_PID_FILE), `${process.pid}\n`);
    DataDirLock.held.set(dataDir, { db, users: 1 });
    return new DataDirLock(dataDir);
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    const held = DataDirLock.held.get(this.dataDir);
    if (!held) return;
    held.users -= 1;
    if (held.users > 0) return;
    DataDirLock.held.delete(this.dataDir);
    held.db.close();
  }
}

function holderPid(dataDir: string): number | null {
  try {
    const pid = Number(readFileSync(join(dataDir, INSTANCE_PID_FILE), 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}
