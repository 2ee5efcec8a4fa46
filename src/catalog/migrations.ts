/** Ordered, append-only schema changes. Never edit a shipped migration: add the next one. */
export interface Migration {
  id: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    id: 1,
    name: 'scopes',
    sql: `
      CREATE TABLE scope_values (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );`,
  },
  {
    id: 2,
    name: 'jobs',
    sql: `
      CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        site TEXT,
        provider TEXT,
        level TEXT,
        status TEXT NOT NULL,
        phase TEXT,
        percent REAL,
        bytes INTEGER,
        steps TEXT NOT NULL DEFAULT '[]',
        params TEXT NOT NULL DEFAULT '{}',
        result TEXT,
        error_code TEXT,
        error_message TEXT,
        requested_by TEXT,
        pid INTEGER,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT
      );
      CREATE INDEX jobs_by_status ON jobs (status, seq);
      CREATE INDEX jobs_by_site ON jobs (site, kind, seq);`,
  },
  {
    id: 3,
    name: 'restore points',
    sql: `
      CREATE TABLE restore_points (
        provider TEXT NOT NULL,
        subject TEXT NOT NULL,
        id TEXT NOT NULL,
        time TEXT NOT NULL,
        level TEXT NOT NULL,
        chain TEXT NOT NULL,
        bytes INTEGER,
        files INTEGER,
        state TEXT NOT NULL,
        PRIMARY KEY (provider, subject, id)
      );
      CREATE INDEX restore_points_by_time ON restore_points (subject, time DESC);
      CREATE TABLE restore_point_scans (
        provider TEXT NOT NULL,
        subject TEXT NOT NULL,
        scanned_at TEXT NOT NULL,
        PRIMARY KEY (provider, subject)
      );`,
  },
  {
    id: 4,
    name: 'idempotency keys',
    sql: `
      CREATE TABLE idempotency_keys (
        principal TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status_code INTEGER NOT NULL,
        job_id TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (principal, key)
      );
      CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);`,
  },
  {
    id: 5,
    name: 'webhooks',
    sql: `
      CREATE TABLE webhooks (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        url TEXT NOT NULL,
        events TEXT NOT NULL,
        secret TEXT NOT NULL,
        description TEXT,
        created_by TEXT,
        created_at TEXT NOT NULL
      );
      CREATE TABLE webhook_deliveries (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
        event TEXT NOT NULL,
        job_id TEXT,
        body TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_attempt_at TEXT,
        last_status_code INTEGER,
        last_error TEXT,
        created_at TEXT NOT NULL,
        finished_at TEXT
      );
      CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
      CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, seq);
      CREATE INDEX webhook_deliveries_by_job ON webhook_deliveries (job_id);`,
  },
  {
    id: 6,
    name: 'job totals kept past retention',
    // Prometheus counters are read from the jobs table; the jobs retention forgets must still count, or they would fall.
    sql: `
      CREATE TABLE forgotten_job_totals (
        kind TEXT NOT NULL,
        provider TEXT NOT NULL,
        status TEXT NOT NULL,
        started INTEGER NOT NULL,
        finished INTEGER NOT NULL,
        PRIMARY KEY (kind, provider, status)
      );`,
  },
];
