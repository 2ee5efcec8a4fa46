/**
 * Duplicity through the API against the same duplicity command by hand, on the same tree; the service's peak memory
 * during the backups; restore-point listing latency with many backup sets in the catalog.
 *
 *   node dist-test/bench/duplicity-backup.js [--sizeMiB 1024] [--files 64] [--runs 3] [--points 1000] [--requests 500]
 *
 * The service runs as its own process (dist/main.js), as in production; its peak RSS is read from /proc (VmHWM).
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { startServiceProcess } from '../test/support/service-process';
import {
  backupComparison,
  benchServiceEnv,
  backupComparisonRows,
  makeRandomSite,
  memoryOf,
  options,
  percentile,
  printTable,
  timeCommand,
  timedApiBackup,
} from './support';

async function main(): Promise<void> {
  const opts = options({ sizeMiB: 1024, files: 64, runs: 3, points: 1000, requests: 500 });
  const root = mkdtempSync(join(tmpdir(), 'bench-duplicity-'));
  const virtualRoot = join(root, 'virtual');
  const sizeMiB = makeRandomSite(virtualRoot, opts.sizeMiB, opts.files);

  const env = benchServiceEnv(root);
  const apiMs: number[] = [];
  const handMs: number[] = [];
  let peakMiB = 0;
  let idleMiB = 0;
  for (let run = 0; run < opts.runs; run++) {
    // By hand: the same command line the provider runs, without the service around it.
    const handTarget = join(root, `hand-${run}`);
    const archive = join(root, `hand-archive-${run}`);
    handMs.push(
      await timeCommand(
        'duplicity',
        [
          'full',
          '--archive-dir',
          archive,
          '--name',
          'site1',
          '--no-encryption',
          '--num-retries',
          '2',
          '--exclude',
          join(virtualRoot, 'site1/shadow/var/lib'),
          '--include',
          join(virtualRoot, 'site1/shadow'),
          '--include',
          join(virtualRoot, 'site1/info'),
          '--exclude',
          '**',
          '/',
          `file://${handTarget}`,
        ],
        { HOME: root },
      ),
    );
    rmSync(handTarget, { recursive: true, force: true });

    // Through the API, timed from POST to the job's end as a caller sees it.
    const service = await startServiceProcess({ ...env, DUPLICITY_TARGET: `file://${root}/api-${run}` });
    idleMiB = memoryOf(service.child.pid!).rssMiB;
    apiMs.push(await timedApiBackup(service, { level: 'full' }));
    peakMiB = Math.max(peakMiB, memoryOf(service.child.pid!).peakMiB);
    await service.stop();
    rmSync(join(root, `api-${run}`), { recursive: true, force: true });
  }

  // Restore-point listing: the catalog holds `points` backup sets for the site (what a year of dailies looks like).
  const service = await startServiceProcess({ ...env, DUPLICITY_TARGET: `file://${root}/api-0` });
  const db = new Database(join(root, 'data', 'catalog.sqlite3'));
  const insert = db.prepare(
    `INSERT OR REPLACE INTO restore_points (provider, subject, id, time, level, chain, bytes, files, state)
     VALUES ('duplicity', 'site1', ?, ?, ?, ?, NULL, NULL, 'complete')`,
  );
  const chain: string[] = [];
  db.transaction(() => {
    for (let i = 0; i < opts.points; i++) {
      const time = new Date(Date.UTC(2025, 0, 1) + i * 86_400_000).toISOString();
      const id = `duplicity-${time.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
      if (i % 30 === 0) chain.length = 0;
      chain.push(id);
      insert.run(id, time, i % 30 === 0 ? 'full' : 'incremental', JSON.stringify(chain));
    }
    db.prepare(
      `INSERT OR REPLACE INTO restore_point_scans (provider, subject, scanned_at) VALUES ('duplicity', 'site1', ?)`,
    ).run(new Date().toISOString());
  })();
  db.close();
  const latencies: number[] = [];
  for (let i = 0; i < opts.requests; i++) {
    const started = performance.now();
    const res = await service.call('GET', '/v1/sites/site1/restore-points?limit=500');
    latencies.push(performance.now() - started);
    if (res.status !== 200 || (res.body.items as unknown[]).length < Math.min(500, opts.points))
      throw new Error('bad listing');
  }
  await service.stop();
  rmSync(root, { recursive: true, force: true });

  const figures = {
    sizeMiB,
    files: opts.files,
    runs: opts.runs,
    ...backupComparison(apiMs, handMs, { idleMiB, peakMiB }),
    restorePoints: opts.points,
    listingP50Ms: Number(percentile(latencies, 50).toFixed(2)),
    listingP99Ms: Number(percentile(latencies, 99).toFixed(2)),
  };
  printTable('duplicity backup: API vs by hand', [
    ['site size', `${figures.sizeMiB} MiB in ${figures.files} files`],
    ...backupComparisonRows(figures),
    [
      `restore points listing (${opts.points} sets, 500 per page)`,
      `p50 ${figures.listingP50Ms} ms, p99 ${figures.listingP99Ms} ms`,
    ],
  ]);
  process.stdout.write(`${JSON.stringify({ bench: 'duplicity-backup', ...figures })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
