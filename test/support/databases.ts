import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { Clock } from '../../src/common/clock';
import { ProcessRunner } from '../../src/common/process/process-runner';
import type { AppConfig } from '../../src/config/app-config';
import { loadConfig } from '../../src/config/load-config';
import { ApiscpExporter } from '../../src/exports/apiscp-exporter';
import { DatabaseConnections } from '../../src/exports/database-connection';
import type { DatabaseExporter } from '../../src/exports/database-exporter';
import { DatabaseServers } from '../../src/exports/database-servers';
import { selectExporterKind } from '../../src/exports/exporter.factory';
import { ExportStore } from '../../src/exports/export-store';
import { ExportsService } from '../../src/exports/exports.service';
import { NativeExporter } from '../../src/exports/native-exporter';
import type { JobContext, JobProgressUpdate } from '../../src/jobs/job-context';
import type { Site } from '../../src/sites/site';

const run = promisify(execFile);
const BIG = 1024 * 1024 * 1024;

/** How the tests reach the servers: MariaDB over TCP as root, PostgreSQL over its socket as postgres (trust auth). */
export const MYSQL_ARGS = [
  '--protocol=TCP',
  '--host=127.0.0.1',
  '--port=3306',
  '--user=root',
  '--default-character-set=utf8mb4',
];
export const PSQL_ARGS = ['--host=/var/run/postgresql', '--port=5432', '--username=postgres', '--no-password'];

/** Environment for loadConfig pointing the service at the local test servers. */
export const DATABASE_ENV = {
  MYSQL_HOST: '127.0.0.1',
  MYSQL_PORT: '3306',
  MYSQL_USER: 'root',
  PGHOST: '/var/run/postgresql',
  PGPORT: '5432',
  PGUSER: 'postgres',
};

/** A fresh temporary directory (test-app's helper pulls in the whole application). */
export function tempDir(prefix = 'apiscp-exports-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A database name prefix no other test run uses: `t<8 hex>_`. */
export function uniquePrefix(): string {
  return `t${randomBytes(4).toString('hex')}_`;
}

async function reachable(check: () => Promise<unknown>): Promise<boolean> {
  try {
    await check();
    return true;
  } catch {
    return false;
  }
}

async function waitFor(what: string, check: () => Promise<unknown>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await reachable(check)) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${what} did not come up within ${timeoutMs} ms`);
}

/** Starts MariaDB and PostgreSQL when they are not running (no systemd here) and waits until both answer. */
export async function ensureDatabaseServers(): Promise<void> {
  const mysqlUp = () => mysql('SELECT 1');
  const pgUp = () => psql('select 1');
  if (!(await reachable(mysqlUp))) {
    await run('start-stop-daemon', ['--start', '--oknodo', '--background', '--exec', '/usr/sbin/mariadbd']);
    await waitFor('MariaDB', mysqlUp);
  }
  if (!(await reachable(pgUp))) {
    await run('pg_ctlcluster', ['--skip-systemctl-redirect', '15', 'main', 'start']);
    await waitFor('PostgreSQL', pgUp);
  }
}

/** Runs SQL through the mariadb client; returns its batch output (tab-separated, no column names). */
export async function mysql(sql: string, database?: string): Promise<string> {
  const { stdout } = await run(
    'mariadb',
    [...MYSQL_ARGS, '--batch', '--skip-column-names', ...(database ? [database] : []), `--execute=${sql}`],
    { maxBuffer: BIG },
  );
  return stdout;
}

export async function createMysqlDatabase(name: string): Promise<void> {
  await mysql(`CREATE DATABASE \`${name}\``);
}

export async function createPgsqlDatabase(name: string): Promise<void> {
  await psql(`create database "${name}"`);
}

/** Runs SQL through psql (stops at the first error); returns unaligned tuples, `|`-separated. */
export async function psql(sql: string, database = 'postgres'): Promise<string> {
  try {
    const { stdout } = await run(
      'psql',
      [
        ...PSQL_ARGS,
        '--no-psqlrc',
        '--no-align',
        '--tuples-only',
        '--set=ON_ERROR_STOP=1',
        `--dbname=${database}`,
        `--command=${sql}`,
      ],
      { maxBuffer: BIG, env: { ...process.env, PGOPTIONS: '--client-min-messages=warning' } },
    );
    return stdout;
  } catch (error) {
    throw new Error(`psql failed: ${(error as { stderr?: string }).stderr ?? String(error)}`);
  }
}

/** Drops every database, on both servers, whose name starts with `prefix` (compared in code, not with LIKE). */
export async function dropDatabasesWithPrefix(prefix: string): Promise<void> {
  for (const name of (await mysql('SHOW DATABASES')).split('\n').filter((n) => n.startsWith(prefix))) {
    await mysql(`DROP DATABASE IF EXISTS \`${name}\``);
  }
  const pgNames = (await psql('select datname from pg_database')).split('\n').filter((n) => n.startsWith(prefix));
  for (const name of pgNames) await psql(`drop database if exists "${name}" with (force)`);
}

/**
 * A MariaDB database with what a restore must bring back: keys, foreign keys, utf8mb4 text, every byte value in
 * binary columns, NULLs, decimals, dates, a view, a procedure, a function, a trigger and an event. `tag` varies rows.
 */
export async function seedMysqlFixture(database: string, tag: string, rows = 500): Promise<void> {
  await createMysqlDatabase(database);
  await mysql(
    `
    CREATE TABLE customers (
      id INT PRIMARY KEY AUTO_INCREMENT,
      name VARCHAR(100) CHARACTER SET utf8mb4 NOT NULL,
      balance DECIMAL(12,2) NOT NULL DEFAULT 0,
      born DATE NULL,
      note TEXT NULL,
      UNIQUE KEY (name)
    ) ENGINE=InnoDB;
    CREATE TABLE blobs (
      id INT PRIMARY KEY,
      customer_id INT NOT NULL,
      raw VARBINARY(256) NOT NULL,
      big LONGBLOB NULL,
      FOREIGN KEY (customer_id) REFERENCES customers(id)
    ) ENGINE=InnoDB;
    CREATE TABLE audit (id INT PRIMARY KEY AUTO_INCREMENT, customer_id INT, what VARCHAR(20), at DATETIME(6)) ENGINE=InnoDB;
    CREATE TABLE seq (n INT PRIMARY KEY) ENGINE=InnoDB;
    INSERT INTO seq SELECT seq FROM seq_0_to_${rows - 1};
    INSERT INTO customers (name, balance, born, note)
      SELECT CONCAT('${tag}-', n, IF(n % 7 = 0, ' ✓ émoji 🦄', '')), n * 3.25, IF(n % 5 = 0, NULL, DATE('2000-01-01') + INTERVAL n DAY),
             IF(n % 3 = 0, NULL, REPEAT(CONCAT('line ', n, '\\ttab\\nnewline \\'quote\\' \\\\backslash '), n % 4 + 1))
      FROM seq;
    INSERT INTO blobs (id, customer_id, raw, big)
      SELECT n, n + 1, UNHEX(SHA2(CONCAT('${tag}', n), 256)), IF(n % 2 = 0, NULL, RANDOM_BYTES(1024)) FROM seq;
    INSERT INTO blobs (id, customer_id, raw) SELECT 100000 + n, 1, CHAR(n USING binary) FROM seq WHERE n < 256;
    CREATE VIEW rich AS SELECT c.id, c.name, c.balance FROM customers c WHERE c.balance > 100;
    DELIMITER //
    CREATE PROCEDURE add_customer(IN who VARCHAR(100), OUT new_id INT) BEGIN INSERT INTO customers (name) VALUES (who); SET new_id = LAST_INSERT_ID(); END //
    DELIMITER ;
    CREATE FUNCTION doubled(x DECIMAL(12,2)) RETURNS DECIMAL(12,2) DETERMINISTIC RETURN x * 2;
    CREATE TRIGGER customers_audit AFTER UPDATE ON customers FOR EACH ROW INSERT INTO audit (customer_id, what, at) VALUES (NEW.id, 'update', NOW(6));
    CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE DO DELETE FROM audit WHERE at < NOW() - INTERVAL 30 DAY;
    UPDATE customers SET balance = balance + 1 WHERE id <= 10;
    `,
    database,
  );
}

/** A PostgreSQL database with keys, bytea (every byte value), jsonb, arrays, an enum, a view, functions and a trigger. */
export async function seedPgsqlFixture(database: string, tag: string, rows = 500): Promise<void> {
  await createPgsqlDatabase(database);
  await psql(
    `
    create type mood as enum ('sad', 'ok', 'happy');
    create table customers (id serial primary key, name text not null unique, balance numeric(12,2) not null default 0,
      born date, note text, feeling mood, tags text[], doc jsonb);
    create table blobs (id int primary key, customer_id int not null references customers(id), raw bytea not null);
    create table audit (id bigserial primary key, customer_id int, what text, at timestamptz default now());
    insert into customers (name, balance, born, note, feeling, tags, doc)
      select '${tag}-' || n || case when n % 7 = 0 then ' ✓ émoji 🦄' else '' end, n * 3.25,
             case when n % 5 = 0 then null else date '2000-01-01' + n end,
             case when n % 3 = 0 then null else repeat(E'line ' || n || E'\\ttab\\nnewline ''quote'' \\\\backslash ', n % 4 + 1) end,
             (array['sad','ok','happy']::mood[])[n % 3 + 1], array['a' || n, 'b'], jsonb_build_object('n', n, 'tag', '${tag}')
      from generate_series(0, ${rows - 1}) n;
    insert into blobs select n, n + 1, sha256(('${tag}' || n)::bytea) from generate_series(0, ${rows - 1}) n;
    insert into blobs select 100000 + n, 1, set_byte('\\x00'::bytea, 0, n) from generate_series(0, 255) n;
    create view rich as select id, name, balance from customers where balance > 100;
    create function doubled(x numeric) returns numeric language sql immutable as 'select x * 2';
    create function customers_audit() returns trigger language plpgsql as $$
      begin insert into audit (customer_id, what) values (new.id, 'update'); return new; end $$;
    create trigger customers_audit after update on customers for each row execute function customers_audit();
    update customers set balance = balance + 1 where id <= 10;
    `,
    database,
  );
}

/**
 * What must survive an export and an import, as comparable text: table definitions, view/routine/trigger/event
 * definitions (with the database's own name taken out), and per table its row count, CHECKSUM TABLE and a SHA-256 of
 * every row in primary-key order.
 */
export async function mysqlFingerprint(database: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const strip = (text: string): string => text.split(database).join('<db>');
  const tables = (
    await mysql(
      `SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1`,
      database,
    )
  )
    .split('\n')
    .filter(Boolean);
  for (const table of tables) {
    out[`table ${table}`] = strip(await mysql(`SHOW CREATE TABLE \`${table}\``, database));
    out[`rows ${table}`] = await mysql(`SELECT COUNT(*) FROM \`${table}\``, database);
    out[`checksum ${table}`] = (await mysql(`CHECKSUM TABLE \`${table}\` EXTENDED`, database)).split('\t')[1];
    const rows = await mysql(`SELECT * FROM \`${table}\` ORDER BY 1`, database);
    out[`sha256 ${table}`] = createHash('sha256').update(rows).digest('hex');
  }
  out.views = strip(
    await mysql(
      `SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() ORDER BY 1`,
      database,
    ),
  );
  out.routines = strip(
    await mysql(
      `SELECT ROUTINE_NAME, ROUTINE_TYPE, DTD_IDENTIFIER, ROUTINE_DEFINITION, IS_DETERMINISTIC, SQL_DATA_ACCESS, SECURITY_TYPE, SQL_MODE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() ORDER BY 1`,
      database,
    ),
  );
  out.parameters = await mysql(
    `SELECT SPECIFIC_NAME, ORDINAL_POSITION, PARAMETER_MODE, PARAMETER_NAME, DTD_IDENTIFIER FROM information_schema.PARAMETERS WHERE SPECIFIC_SCHEMA = DATABASE() ORDER BY 1, 2`,
    database,
  );
  out.triggers = strip(
    await mysql(
      `SELECT TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_TIMING, ACTION_STATEMENT, SQL_MODE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY 1`,
      database,
    ),
  );
  out.events = strip(
    await mysql(
      `SELECT EVENT_NAME, EVENT_DEFINITION, INTERVAL_VALUE, INTERVAL_FIELD, STARTS, STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = DATABASE() ORDER BY 1`,
      database,
    ),
  );
  return out;
}

/** The PostgreSQL counterpart: catalog definitions of everything, and per table a count and an ordered digest. */
export async function pgsqlFingerprint(database: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const q = (sql: string) => psql(sql, database);
  const tables = (await q(`select tablename from pg_tables where schemaname = 'public' order by 1`))
    .split('\n')
    .filter(Boolean);
  for (const table of tables) {
    out[`columns ${table}`] = await q(
      `select column_name, data_type, udt_name, is_nullable, column_default from information_schema.columns where table_schema = 'public' and table_name = '${table}' order by ordinal_position`,
    );
    out[`rows ${table}`] = await q(
      `select count(*), md5(coalesce(string_agg(t::text, E'\\n' order by t::text), '')) from "${table}" t`,
    );
  }
  out.constraints = await q(
    `select conrelid::regclass::text, conname, pg_get_constraintdef(oid) from pg_constraint where connamespace = 'public'::regnamespace order by 1, 2`,
  );
  out.indexes = await q(`select indexname, indexdef from pg_indexes where schemaname = 'public' order by 1`);
  out.views = await q(
    `select viewname, pg_get_viewdef(('public.' || viewname)::regclass) from pg_views where schemaname = 'public' order by 1`,
  );
  out.functions = await q(
    `select proname, pg_get_functiondef(oid) from pg_proc where pronamespace = 'public'::regnamespace order by 1`,
  );
  out.triggers = await q(`select tgname, pg_get_triggerdef(oid) from pg_trigger where not tgisinternal order by 1`);
  out.types = await q(
    `select t.typname, string_agg(e.enumlabel, ',' order by e.enumsortorder) from pg_type t join pg_enum e on e.enumtypid = t.oid group by 1 order by 1`,
  );
  out.sequences = await q(`select sequencename, last_value from pg_sequences where schemaname = 'public' order by 1`);
  return out;
}

/** Loads a gzip'd mariadb-dump file into a new, empty database (the file names none, so any name works). */
export async function importMysqlExport(file: string, database: string): Promise<void> {
  await createMysqlDatabase(database);
  const child = spawn('mariadb', [...MYSQL_ARGS, database], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  await pipeline(createReadStream(file), createGunzip(), child.stdin);
  const code = await exited;
  if (code !== 0) throw new Error(`import of ${file} into ${database} failed (${code}): ${stderr}`);
}

/** Loads a pg_dump custom-format file into a new database with pg_restore. */
export async function importPgsqlExport(file: string, database: string): Promise<void> {
  await createPgsqlDatabase(database);
  try {
    await run('pg_restore', [...PSQL_ARGS, '--exit-on-error', '--no-owner', `--dbname=${database}`, file]);
  } catch (error) {
    throw new Error(`pg_restore of ${file} failed: ${(error as { stderr?: string }).stderr ?? String(error)}`);
  }
}

/** A site directory under `virtualRoot` with ApisCP's per-service prefix files (`dbaseprefix = ...`). */
export function makeSite(virtualRoot: string, number: number, prefixes: { mysql?: string; pgsql?: string }): Site {
  const root = join(virtualRoot, `site${number}`);
  mkdirSync(join(root, 'info', 'current'), { recursive: true });
  mkdirSync(join(root, 'shadow'), { recursive: true });
  if (prefixes.mysql !== undefined) {
    writeFileSync(join(root, 'info', 'current', 'mysql'), `enabled = 1\ndbaseprefix = ${prefixes.mysql}\n`);
  }
  if (prefixes.pgsql !== undefined) {
    writeFileSync(join(root, 'info', 'current', 'pgsql'), `enabled = 1\ndbaseprefix = ${prefixes.pgsql}\n`);
  }
  return { id: `site${number}`, number, root, domain: null, domains: [] };
}

export function testConfig(root: string, env: Record<string, string> = {}): AppConfig {
  return loadConfig({
    VIRTUAL_ROOT: join(root, 'virtual'),
    DATA_DIR: join(root, 'data'),
    APNSCP_ROOT: join(root, 'apnscp'),
    LOG_FORMAT: 'json',
    ...DATABASE_ENV,
    ...env,
  });
}

export interface ExportServices {
  config: AppConfig;
  runner: ProcessRunner;
  store: ExportStore;
  servers: DatabaseServers;
  native: NativeExporter;
  apiscp: ApiscpExporter;
  exporter: DatabaseExporter;
  service: ExportsService;
}

/** The services wired by hand as ExportsModule wires them, the exporter picked as the factory picks it. */
export function exportServices(config: AppConfig): ExportServices {
  const runner = new ProcessRunner();
  const connections = new DatabaseConnections(config);
  const store = new ExportStore(config);
  const servers = new DatabaseServers(runner, connections);
  const native = new NativeExporter(runner, connections, store, config, new Clock());
  const apiscp = new ApiscpExporter(runner, store, config);
  const exporter = selectExporterKind(config) === 'apiscp' ? apiscp : native;
  return {
    config,
    runner,
    store,
    servers,
    native,
    apiscp,
    exporter,
    service: new ExportsService(exporter, servers, store),
  };
}

export interface TestJobContext extends JobContext {
  controller: AbortController;
  logs: string[];
  updates: JobProgressUpdate[];
  pids: number[];
}

export function jobContext(workDir: string, onPid?: (pid: number) => void): TestJobContext {
  const controller = new AbortController();
  const logs: string[] = [];
  const updates: JobProgressUpdate[] = [];
  const pids: number[] = [];
  return {
    jobId: 'test-job',
    signal: controller.signal,
    controller,
    workDir,
    logs,
    updates,
    pids,
    log: (line) => logs.push(line),
    progress: (update) => updates.push(update),
    trackPid: (pid) => {
      pids.push(pid);
      onPid?.(pid);
    },
  };
}

export { isAlive } from './processes';

/**
 * Fills `big` in a new MariaDB database with about `megabytes` of dump text (roughly 230 bytes of SQL per row: numbers,
 * hex and words, so it compresses like real data), in 250k-row INSERT ... SELECT batches from the sequence engine.
 */
export async function seedBigMysql(database: string, megabytes: number): Promise<number> {
  const rows = Math.ceil((megabytes * 1024 * 1024) / 230);
  await createMysqlDatabase(database);
  await mysql(
    `CREATE TABLE big (id BIGINT PRIMARY KEY, a INT NOT NULL, b CHAR(32) NOT NULL, c VARCHAR(255) NOT NULL,
       d DOUBLE NOT NULL, e DATETIME NOT NULL) ENGINE=InnoDB`,
    database,
  );
  const batch = 250_000;
  for (let first = 1; first <= rows; first += batch) {
    const last = Math.min(rows, first + batch - 1);
    await mysql(
      `INSERT INTO big SELECT seq, seq % 100000, MD5(seq), CONCAT('order ', seq, ' for customer ', seq % 977, ' status ',
         ELT(seq % 4 + 1, 'new', 'paid', 'shipped', 'returned'), ' ref ', LEFT(SHA2(seq, 256), 40)), seq / 7,
         TIMESTAMP('2020-01-01') + INTERVAL seq SECOND FROM seq_${first}_to_${last}`,
      database,
    );
  }
  return rows;
}

/** The PostgreSQL counterpart of seedBigMysql. */
export async function seedBigPgsql(database: string, megabytes: number): Promise<number> {
  const rows = Math.ceil((megabytes * 1024 * 1024) / 200);
  await createPgsqlDatabase(database);
  await psql(
    `create table big (id bigint primary key, a int not null, b text not null, c text not null, d double precision not null,
       e timestamp not null);
     insert into big select g, g % 100000, md5(g::text), 'order ' || g || ' for customer ' || g % 977 || ' status ' ||
       (array['new','paid','shipped','returned'])[g % 4 + 1] || ' ref ' || left(encode(sha256(g::text::bytea), 'hex'), 40),
       g / 7.0, timestamp '2020-01-01' + g * interval '1 second' from generate_series(1, ${rows}) g;`,
    database,
  );
  return rows;
}
