/**
 * Export of a large MariaDB and PostgreSQL database through the service (NativeExporter) versus the same pipeline by
 * hand in a shell, with the service process's peak RSS while it streams.
 *
 *   npx tsc -p tsconfig.test.json --outDir /tmp/bench-out
 *   NODE_PATH=$PWD/node_modules node /tmp/bench-out/bench/database-export.js [--mb 1024] [--runs 2] [--keep-data]
 *
 * The data (`bench_dbexport_s1_big` on both servers) is generated once and reused while its size matches; --keep-data
 * leaves it for the next run. Needs the local servers of test/support/databases.ts.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  dropDatabasesWithPrefix,
  ensureDatabaseServers,
  exportServices,
  jobContext,
  makeSite,
  mysql,
  psql,
  seedBigMysql,
  seedBigPgsql,
  tempDir,
  testConfig,
} from '../test/support/databases';

const run = promisify(execFile);

function option(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
}

const MB = option('mb', 1024);
const RUNS = option('runs', 2);
const KEEP = process.argv.includes('--keep-data');
const PREFIX = 'bench_dbexport_';
const DATABASE = `${PREFIX}s1_big`;

interface Sample {
  ms: number;
  bytes: number;
  peakRssMb?: number;
  baseRssMb?: number;
}

/** Samples this process's RSS every 20 ms while `work` runs. */
async function withRss<T>(work: () => Promise<T>): Promise<{ value: T; peakRssMb: number; baseRssMb: number }> {
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  try {
    const value = await work();
    return { value, peakRssMb: peak / 2 ** 20, baseRssMb: base / 2 ** 20 };
  } finally {
    clearInterval(timer);
  }
}

async function byHand(script: string, file: string): Promise<Sample> {
  rmSync(file, { force: true });
  const started = Date.now();
  await run('bash', ['-o', 'pipefail', '-c', script], { maxBuffer: 1024 * 1024 });
  return { ms: Date.now() - started, bytes: statSync(file).size };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function ensureData(): Promise<void> {
  const rowsWanted = { mysql: Math.ceil((MB * 1024 * 1024) / 230), pgsql: Math.ceil((MB * 1024 * 1024) / 200) };
  const mysqlRows = await mysql(`SELECT COUNT(*) FROM \`${DATABASE}\`.big`).catch(() => '0');
  if (Number(mysqlRows.trim()) !== rowsWanted.mysql) {
    await mysql(`DROP DATABASE IF EXISTS \`${DATABASE}\``);
    const started = Date.now();
    await seedBigMysql(DATABASE, MB);
    console.log(
      `seeded MariaDB ${DATABASE}: ${rowsWanted.mysql} rows in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  }
  const pgRows = await psql('select count(*) from big', DATABASE).catch(() => '0');
  if (Number(pgRows.trim()) !== rowsWanted.pgsql) {
    await psql(`drop database if exists "${DATABASE}"`);
    const started = Date.now();
    await seedBigPgsql(DATABASE, MB);
    console.log(
      `seeded PostgreSQL ${DATABASE}: ${rowsWanted.pgsql} rows in ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  }
}

async function main(): Promise<void> {
  await ensureDatabaseServers();
  await ensureData();
  const root = tempDir('bench-dbexport-');
  const handDir = join(root, 'hand');
  mkdirSync(handDir);
  // Both sides reach the servers the same way: MariaDB on its default socket, PostgreSQL on its socket directory.
  const services = exportServices(testConfig(root, { MYSQL_HOST: 'localhost', EXPORT_KEEP: '1' }));
  const site = makeSite(join(root, 'virtual'), 1, { mysql: `${PREFIX}s1_`, pgsql: `${PREFIX}s1_` });
  await mysql('ANALYZE TABLE big', DATABASE); // fresh statistics for the size below
  const sizes = {
    mysql: (
      await mysql(
        `SELECT ROUND(SUM(DATA_LENGTH + INDEX_LENGTH) / 1048576) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${DATABASE}'`,
      )
    ).trim(),
    pgsql: (await psql(`select pg_database_size('${DATABASE}') / 1048576`)).trim(),
  };
  const handScripts = {
    mysql: (file: string, sync: boolean) =>
      `mariadb-dump --user=root --host=localhost --single-transaction --routines --triggers --events --hex-blob ` +
      `--max-allowed-packet=1G -- ${DATABASE} | gzip > ${file}${sync ? ` && sync ${file}` : ''}`,
    pgsql: (file: string, sync: boolean) =>
      `pg_dump --host=/var/run/postgresql --username=postgres --no-password --format=custom --dbname=${DATABASE} > ${file}` +
      (sync ? ` && sync ${file}` : ''),
  };

  const report: Record<string, unknown> = { mb: MB, runs: RUNS, node: process.version };
  try {
    for (const engine of ['mysql', 'pgsql'] as const) {
      const file = join(handDir, engine === 'mysql' ? 'hand.sql.gz' : 'hand.dump');
      await byHand(handScripts[engine](file, false), file); // warm the page cache and the server's buffers
      const hand: Sample[] = [];
      const handSync: Sample[] = [];
      const service: Sample[] = [];
      for (let i = 0; i < RUNS; i++) {
        hand.push(await byHand(handScripts[engine](file, false), file));
        handSync.push(await byHand(handScripts[engine](file, true), file));
        const started = Date.now();
        const { value, peakRssMb, baseRssMb } = await withRss(() =>
          services.service.exportDatabase({ site, engine, database: DATABASE }, jobContext(root)),
        );
        service.push({ ms: Date.now() - started, bytes: value.bytes, peakRssMb, baseRssMb });
        console.log(
          `${engine} run ${i + 1}: by hand ${hand[i].ms} ms, by hand + fsync ${handSync[i].ms} ms, service ${service[i].ms} ms ` +
            `(rss ${baseRssMb.toFixed(0)} → peak ${peakRssMb.toFixed(0)} MB)`,
        );
      }
      const summary = {
        databaseMb: Number(sizes[engine]),
        outputBytes: { hand: hand[0].bytes, service: service[0].bytes },
        medianMs: {
          hand: median(hand.map((s) => s.ms)),
          handWithFsync: median(handSync.map((s) => s.ms)),
          service: median(service.map((s) => s.ms)),
        },
        ratio: median(service.map((s) => s.ms)) / median(hand.map((s) => s.ms)),
        ratioVsHandWithFsync: median(service.map((s) => s.ms)) / median(handSync.map((s) => s.ms)),
        serviceRssMb: {
          base: Math.min(...service.map((s) => s.baseRssMb!)),
          peak: Math.max(...service.map((s) => s.peakRssMb!)),
        },
      };
      report[engine] = summary;
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
    if (!KEEP) await dropDatabasesWithPrefix(PREFIX);
  }
  console.log(JSON.stringify(report, null, 2));
  console.log(JSON.stringify({ bench: 'database-export', ...report }));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
