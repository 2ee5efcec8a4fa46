import type { Site } from '../sites/site';

export const DATABASE_ENGINES = ['mysql', 'pgsql'] as const;
/** Named as ApisCP names the services (`info/current/mysql`, `info/current/pgsql`). */
export type DatabaseEngine = (typeof DATABASE_ENGINES)[number];

export const ENGINE_LABEL: Record<DatabaseEngine, string> = { mysql: 'MariaDB', pgsql: 'PostgreSQL' };

/** `native`: this service runs mariadb-dump/pg_dump; `apiscp`: ApisCP's backup_dbs.php makes the files. */
export type ExporterKind = 'native' | 'apiscp';

/** `sql-gzip`: a mariadb-dump script, gzip-compressed; `pg-custom`: `pg_dump -Fc`; `apiscp`: whatever ApisCP wrote. */
export type ExportFormat = 'sql-gzip' | 'pg-custom' | 'apiscp';

/** One database to export. */
export interface ExportStep {
  site: Site;
  engine: DatabaseEngine;
  database: string;
}

/** One export file, as the manifest records it. */
export interface ExportEntry {
  engine: DatabaseEngine;
  database: string;
  /** Relative to the site's root, e.g. `shadow/var/backups/databases/mysql/shop1_db.20261126T023000.000Z.sql.gz`. */
  file: string;
  bytes: number;
  /** Of the file as stored (compressed), so `sha256sum` verifies it. */
  sha256: string;
  /** ISO 8601 UTC: when the dump started. */
  createdAt: string;
  durationMs: number;
  exporter: ExporterKind;
  format: ExportFormat;
}

export type ExportErrorCode =
  | 'server-unreachable'
  | 'access-denied'
  | 'dump-failed'
  | 'write-failed'
  | 'cancelled'
  | 'no-output'
  | 'tool-failed'
  | 'unsafe-path';

export interface ExportStepResult {
  site: string;
  engine: DatabaseEngine;
  /** Null when the site's databases of this engine could not even be listed. */
  database: string | null;
  status: 'succeeded' | 'failed' | 'cancelled';
  entry: ExportEntry | null;
  error: { code: ExportErrorCode; message: string } | null;
  durationMs: number;
}

/** A server that could not list its databases: its sites' exports of that engine cannot be planned. */
export interface UnlistedEngine {
  engine: DatabaseEngine;
  /** Sites with a prefix for this engine, whose databases are therefore unknown. */
  sites: string[];
  error: { code: ExportErrorCode; message: string };
}

export interface ExportPlan {
  steps: ExportStep[];
  unlisted: UnlistedEngine[];
}

export interface ExportRunResult {
  /** Planning failures first (database null), then one result per planned step, in plan order. */
  results: ExportStepResult[];
  failed: boolean;
  cancelled: boolean;
}
