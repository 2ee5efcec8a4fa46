import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AppConfig } from '../config/app-config';
import { CatalogUnavailableError } from './catalog-errors';
import { DataDirLock } from './data-dir-lock';
import { MIGRATIONS, Migration } from './migrations';

export type Db = Database.Database;

export const CATALOG_FILE = 'catalog.sqlite3';
/** How long a statement waits for a lock another connection holds before it fails with SQLITE_BUSY. */
const BUSY_TIMEOUT_MS = 5000;

export function catalogFileOf(config: AppConfig): string {
  return join(config.dataDir, CATALOG_FILE);
}

/**
 * Opens the catalog and takes and releases its write lock once, so a catalog held by another process (a second
 * sqlite3 session with an open transaction, a backup tool reading it) stops the start within the busy timeout
 * instead of leaving a service that is up but fails every write. Failures become a CatalogUnavailableError.
 */
export function openCatalog(file: string, migrations: readonly Migration[] = []): Db {
  let db: Db | undefined;
  try {
    db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.prepare('BEGIN IMMEDIATE').run();
    db.prepare('ROLLBACK').run();
    migrate(db, migrations);
    return db;
  } catch (error) {
    if (db?.open) db.close();
    throw catalogUnavailable(file, error);
  }
}

/**
 * Start-up check for main(), before the application is built (Nest would print a failure as a stack trace): takes
 * DATA_DIR for this process for good (CatalogService shares the lock), then opens the catalog as openCatalog does.
 */
export function probeCatalog(config: AppConfig): void {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  DataDirLock.acquire(config.dataDir);
  openCatalog(catalogFileOf(config)).close();
}

function catalogUnavailable(file: string, error: unknown): CatalogUnavailableError {
  const code = (error as { code?: unknown }).code;
  const detail = error instanceof Error ? error.message : String(error);
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') {
    return new CatalogUnavailableError(
      file,
      true,
      `The catalog ${file} is locked by another process (still busy after ${BUSY_TIMEOUT_MS / 1000} s: ${detail}). ` +
        'Is a sqlite3 session or another tool holding a transaction open on it? Stop it, then start the service again.',
    );
  }
  return new CatalogUnavailableError(
    file,
    false,
    `The catalog ${file} cannot be used: ${detail}${typeof code === 'string' ? ` (${code})` : ''}.`,
  );
}

function migrate(db: Db, migrations: readonly Migration[]): void {
  const logger = new Logger(CatalogService.name);
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
  );
  const applied = new Set(
    db
      .prepare('SELECT id FROM schema_migrations')
      .all()
      .map((row) => (row as { id: number }).id),
  );
  for (const migration of [...migrations].sort((a, b) => a.id - b.id)) {
    if (applied.has(migration.id)) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.prepare('INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)').run(
        migration.id,
        migration.name,
        new Date().toISOString(),
      );
    }).immediate();
    logger.log(`applied catalog migration ${migration.id} (${migration.name})`);
  }
}

/** The embedded SQLite catalog under DATA_DIR: the service's only state. */
@Injectable()
export class CatalogService implements OnApplicationShutdown {
  readonly db: Db;
  private readonly dataDirLock: DataDirLock;
  private readonly statements = new Map<string, Database.Statement>();

  constructor(config: AppConfig) {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    this.dataDirLock = DataDirLock.acquire(config.dataDir);
    try {
      this.db = openCatalog(catalogFileOf(config), MIGRATIONS);
    } catch (error) {
      this.dataDirLock.release();
      throw error;
    }
  }

  /** A prepared statement, compiled once per SQL text: preparing costs more than running most of these queries. */
  statement(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }

  /** Runs `work` inside one IMMEDIATE transaction. */
  transaction<T>(work: () => T): T {
    return this.db.transaction(work).immediate();
  }

  /** True when a write goes through: used by readiness. */
  isWritable(): boolean {
    try {
      this.db.prepare('CREATE TABLE IF NOT EXISTS health_probe (at TEXT)').run();
      this.db.prepare('DELETE FROM health_probe').run();
      this.db.prepare('INSERT INTO health_probe (at) VALUES (?)').run(new Date().toISOString());
      return true;
    } catch {
      return false;
    }
  }

  onApplicationShutdown(): void {
    if (this.db.open) this.db.close();
    this.dataDirLock.release();
  }
}
