import { Injectable, Logger, OnApplicationShutdown } from '@nestjs/common';
import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AppConfig } from '../config/app-config';
import { MIGRATIONS, Migration } from './migrations';

export type Db = Database.Database;

/** The embedded SQLite catalog under DATA_DIR: the service's only state. */
@Injectable()
export class CatalogService implements OnApplicationShutdown {
  private readonly logger = new Logger(CatalogService.name);
  readonly db: Db;

  constructor(config: AppConfig) {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    this.db = new Database(join(config.dataDir, 'catalog.sqlite3'), { timeout: 5000 });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    this.migrate(MIGRATIONS);
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
  }

  private migrate(migrations: Migration[]): void {
    this.db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
    );
    const applied = new Set(
      this.db
        .prepare('SELECT id FROM schema_migrations')
        .all()
        .map((row) => (row as { id: number }).id),
    );
    for (const migration of [...migrations].sort((a, b) => a.id - b.id)) {
      if (applied.has(migration.id)) continue;
      this.transaction(() => {
        this.db.exec(migration.sql);
        this.db
          .prepare('INSERT INTO schema_migrations (id, name, applied_at) VALUES (?, ?, ?)')
          .run(migration.id, migration.name, new Date().toISOString());
      });
      this.logger.log(`applied catalog migration ${migration.id} (${migration.name})`);
    }
  }
}
