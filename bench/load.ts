/**
 * Read load while jobs run: 64 connections polling `GET /v1/jobs/{id}` and `GET /v1/sites?limit=100` (autocannon,
 * closed loop: each connection sends its next request as soon as the last is answered, so this is the most the service
 * serves, not a polite poller) while `--backups` duplicity backups and `--exports` database exports are in flight.
 * Prints throughput, p50/p99/p99.9/max latency, errors, and the service's event-loop delay and RSS.
 *
 *   node dist-test/bench/load.js [--backups 2] [--exports 0] [--connections 64] [--seconds 15] [--sites 500]
 *                                [--sizeMiB 400] [--exportMb 300]
 *
 * The target (issue 7): 4 backups and an export, 64 connections, no errors, p99 under 50 ms.
 */
import 'reflect-metadata';
import autocannon from 'autocannon';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DATABASE_ENV,
  dropDatabasesWithPrefix,
  ensureDatabaseServers,
  mysql,
  seedBigMysql,
} from '../test/support/databases';
import { startServiceProcess } from '../test/support/service-process';
import { makeSites } from '../test/support/sample-sites';
import { TOKENS, writeTokensFile } from '../test/support/test-app';
import { memoryOf, options, printTable } from './support';

/** Kept between runs (seeding takes longer than the load itself) and reused while its size matches. */
const EXPORT_PREFIX = 'bench_load_';
const EXPORT_DATABASE = `${EXPORT_PREFIX}big`;

async function ensureExportData(megabytes: number): Promise<void> {
  await ensureDatabaseServers();
  const rowsWanted = Math.ceil((megabytes * 1024 * 1024) / 230);
  const rows = await mysql(`SELECT COUNT(*) FROM \`${EXPORT_DATABASE}\`.big`).catch(() => '0');
  if (Number(rows.trim()) === rowsWanted) return;
  await dropDatabasesWithPrefix(EXPORT_PREFIX);
  await seedBigMysql(EXPORT_DATABASE, megabytes);
}

async function main(): Promise<void> {
  const opts = options({
    backups: 2,
    exports: 0,
    connections: 64,
    seconds: 15,
    sites: 500,
    sizeMiB: 400,
    exportMb: 300,
  });
  if (opts.exports > 0) await ensureExportData(opts.exportMb);
  const root = mkdtempSync(join(tmpdir(), 'bench-load-'));
  const virtualRoot = join(root, 'virtual');
  makeSites(
    virtualRoot,
    Array.from({ length: opts.sites }, (_, i) => ({ n: i + 1, domain: `site${i + 1}.example.com` })),
  );
  for (let n = 1; n <= opts.backups; n++) {
    mkdirSync(join(virtualRoot, `site${n}`, 'shadow', 'data'), { recursive: true });
    execFileSync('sh', [
      '-c',
      `head -c ${opts.sizeMiB}M /dev/urandom > '${join(virtualRoot, `site${n}`, 'shadow', 'data', 'big.bin')}'`,
    ]);
  }
  // The exporting sites come after the backed-up ones; they all own the one big database (a site's prefix).
  const exportSites = Array.from({ length: opts.exports }, (_, i) => `site${opts.backups + i + 1}`);
  for (const site of exportSites) {
    mkdirSync(join(virtualRoot, site, 'info', 'current'), { recursive: true });
    writeFileSync(join(virtualRoot, site, 'info', 'current', 'mysql'), `enabled = 1\ndbaseprefix = ${EXPORT_PREFIX}\n`);
  }
  const service = await startServiceProcess({
    ...DATABASE_ENV,
    VIRTUAL_ROOT: virtualRoot,
    DATA_DIR: join(root, 'data'),
    APNSCP_ROOT: join(root, 'apnscp'),
    API_TOKENS_FILE: writeTokensFile(root),
    DUPLICITY_TARGET: `file://${root}/target`,
    MAX_CONCURRENT_JOBS: String(Math.max(2, opts.backups + opts.exports)),
    LOG_LEVEL: 'info',
  });
  const servicePid = service.child.pid!;
  try {
    const jobs: string[] = [];
    for (let n = 1; n <= opts.backups; n++) {
      jobs.push(
        ((await service.call('POST', `/v1/sites/site${n}/backups`, { level: 'full' })).body as { id: string }).id,
      );
    }
    for (const site of exportSites) {
      jobs.push(((await service.call('POST', '/v1/exports', { sites: [site] })).body as { id: string }).id);
    }
    await eventLoopDelay(service.url); // prom-client resets its event-loop histogram on every scrape
    const polled = jobs[0] ?? '00000000-0000-4000-8000-000000000000';
    const headers = { Authorization: `Bearer ${TOKENS.monitor}` };
    const result = await autocannon({
      url: service.url,
      connections: opts.connections,
      duration: opts.seconds,
      requests: [
        { method: 'GET', path: `/v1/jobs/${polled}`, headers },
        { method: 'GET', path: '/v1/sites?limit=100', headers },
      ],
    });
    const states = await Promise.all(
      jobs.map(async (id) => ((await service.call('GET', `/v1/jobs/${id}`)).body as { status: string }).status),
    );
    const loop = await eventLoopDelay(service.url);
    const figures = {
      connections: opts.connections,
      seconds: opts.seconds,
      backupsRunning: opts.backups,
      exportsRunning: opts.exports,
      jobStatesAtEnd: states,
      requests: result.requests.total,
      requestsPerSecond: Math.round(result.requests.average),
      latencyP50Ms: result.latency.p50,
      latencyP99Ms: result.latency.p99,
      latencyP999Ms: result.latency.p99_9,
      latencyMaxMs: result.latency.max,
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
      eventLoopDelayP99Ms: loop.p99,
      eventLoopDelayMaxMs: loop.max,
      servicePeakRssMiB: Math.round(memoryOf(servicePid).peakMiB),
    };
    const jobsLabel = `${opts.backups} backups${opts.exports ? ` + ${opts.exports} export` : ''}`;
    printTable(`read load: ${opts.connections} connections while ${jobsLabel} run`, [
      ['requests/s (mean)', String(figures.requestsPerSecond)],
      [
        'latency p50 / p99 / p99.9 / max',
        `${figures.latencyP50Ms} / ${figures.latencyP99Ms} / ${figures.latencyP999Ms} / ${figures.latencyMaxMs} ms`,
      ],
      ['non-2xx / errors / timeouts', `${figures.non2xx} / ${figures.errors} / ${figures.timeouts}`],
      ['event-loop delay p99 / max', `${loop.p99} / ${loop.max} ms`],
      ['service peak RSS', `${figures.servicePeakRssMiB} MiB`],
      ['jobs at the end', states.join(', ')],
    ]);
    process.stdout.write(`${JSON.stringify({ bench: 'load', ...figures })}\n`);
  } finally {
    await service.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

/** The service's event-loop delay since the last scrape, from /metrics (prom-client's default metrics), in ms. */
async function eventLoopDelay(url: string): Promise<{ p99: number; max: number }> {
  const text = await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${TOKENS.monitor}` } }).then((res) =>
    res.text(),
  );
  const gauge = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  const ms = (seconds: number) => Math.round(seconds * 1000 * 10) / 10;
  return {
    p99: ms(gauge('apiscp_backup_process_nodejs_eventloop_lag_p99_seconds')),
    max: ms(gauge('apiscp_backup_process_nodejs_eventloop_lag_max_seconds')),
  };
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
