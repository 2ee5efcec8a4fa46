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
  {
    id: 7,
    name: 'backup policies, schedule slots, replay cost',
    // A slot row is written in the same transaction as its job: the primary key makes one job per (site, level, slot)
    // whatever restarts or callers come between.
    sql: `
      CREATE TABLE backup_policies (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        body TEXT NOT NULL,
        is_default INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
      );
      CREATE UNIQUE INDEX backup_policies_one_default ON backup_policies (is_default) WHERE is_default = 1;
      CREATE TABLE site_policies (
        site TEXT PRIMARY KEY,
        policy_id TEXT NOT NULL REFERENCES backup_policies (id),
        assigned_at TEXT NOT NULL
      );
      CREATE INDEX site_policies_by_policy ON site_policies (policy_id);
      CREATE TABLE schedule_slots (
        site TEXT NOT NULL,
        level TEXT NOT NULL,
        slot TEXT NOT NULL,
        policy_id TEXT NOT NULL,
        outcome TEXT NOT NULL,
        job_id TEXT,
        created_at TEXT NOT NULL,
        PRIMARY KEY (site, level, slot)
      );
      ALTER TABLE restore_points ADD COLUMN replay_sets INTEGER;
      ALTER TABLE restore_points ADD COLUMN replay_bytes INTEGER;`,
  },
  {
    id: 8,
    name: 'web app update assurances',
    sql: `
      CREATE TABLE webapp_assurances (
        id TEXT PRIMARY KEY,
        site TEXT NOT NULL,
        app TEXT NOT NULL,
        host TEXT,
        url_path TEXT NOT NULL,
        shrink REAL NOT NULL,
        status TEXT NOT NULL,
        snapshot TEXT,
        baseline TEXT,
        last_check TEXT,
        reasons TEXT,
        prepare_job TEXT,
        confirm_job TEXT,
        created_by TEXT,
        created_at TEXT NOT NULL,
        finished_at TEXT
      );
      CREATE INDEX webapp_assurances_by_app ON webapp_assurances (site, app, created_at);`,
  },
  {
    id: 9,
    name: 'restore point file listings',
    // Listing a duplicity point takes minutes on a big site: its files are indexed once, then each directory is a
    // range read. Bacula's bvfs answers per directory; what it answered is kept the same way.
    sql: `
      CREATE TABLE point_file_listings (
        provider TEXT NOT NULL,
        subject TEXT NOT NULL,
        point TEXT NOT NULL,
        dir TEXT NOT NULL,
        listed_at TEXT NOT NULL,
        PRIMARY KEY (provider, subject, point, dir)
      );
      CREATE TABLE point_files (
        provider TEXT NOT NULL,
        subject TEXT NOT NULL,
        point TEXT NOT NULL,
        dir TEXT NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        size INTEGER,
        mode INTEGER,
        uid INTEGER,
        gid INTEGER,
        mtime TEXT,
        target TEXT,
        PRIMARY KEY (provider, subject, point, dir, name)
      ) WITHOUT ROWID;`,
  },
  {
    id: 10,
    name: 'prune totals',
    // What prunes removed and freed, kept in the catalog so /metrics counters do not fall to 0 at a restart (which
    // reads like a removal that never happened).
    sql: `
      CREATE TABLE prune_totals (
        provider TEXT PRIMARY KEY,
        points_removed INTEGER NOT NULL DEFAULT 0,
        bytes_freed INTEGER NOT NULL DEFAULT 0
      );
      CREATE TABLE prune_kept (
        site TEXT NOT NULL,
        provider TEXT NOT NULL,
        kept INTEGER NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (site, provider)
      );
      -- The points a running prune is removing: counted once gone, by that prune or (killed) by the next one.
      CREATE TABLE prune_pending (
        provider TEXT NOT NULL,
        site TEXT NOT NULL,
        point TEXT NOT NULL,
        PRIMARY KEY (provider, site, point)
      );`,
  },
];
