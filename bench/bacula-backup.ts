/**
 * A Bacula full backup through the API against the same Bacula Job run by hand in bconsole, on the same site, with the
 * service's peak memory. Uses a private director, storage and file daemon on loopback (test/support/bacula-harness).
 *
 *   node dist-test/bench/bacula-backup.js [--sizeMiB 256] [--files 16] [--runs 3]
 *
 * The first API backup writes the site's Bacula resources and is not counted; every counted run is a Full.
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startBacula } from '../test/support/bacula-harness';
import { startServiceProcess } from '../test/support/service-process';
import {
  backupComparison,
  benchServiceEnv,
  backupComparisonRows,
  makeRandomSite,
  memoryOf,
  options,
  printTable,
  timedApiBackup,
} from './support';

async function main(): Promise<void> {
  const opts = options({ sizeMiB: 256, files: 16, runs: 3 });
  const root = mkdtempSync(join(tmpdir(), 'bench-bacula-'));
  const bacula = await startBacula({ root: join(root, 'bacula') });
  const virtualRoot = join(root, 'virtual');
  const sizeMiB = makeRandomSite(virtualRoot, opts.sizeMiB, opts.files);
  const service = await startServiceProcess({
    ...bacula.env,
    ...benchServiceEnv(root),
    PROVIDERS: 'bacula',
  });
  const apiMs: number[] = [];
  const handMs: number[] = [];
  try {
    await timedApiBackup(service, { level: 'full', provider: 'bacula' });
    const idleMiB = memoryOf(service.child.pid!).rssMiB;
    for (let run = 0; run < opts.runs; run++) {
      apiMs.push(await timedApiBackup(service, { level: 'full', provider: 'bacula' }));
      // By hand: the Job the provider wrote, run and awaited the way an operator would in bconsole.
      const started = performance.now();
      const queued = await bacula.bconsole(['run job=apiscp-site1 level=Full yes']);
      const jobId = /JobId=(\d+)/.exec(queued)?.[1];
      if (!jobId) throw new Error(`bconsole did not queue the job: ${queued}`);
      const waited = await bacula.bconsole([`wait jobid=${jobId}`]);
      if (!/JobStatus=OK \(T\)/.test(waited)) throw new Error(`hand-run job ${jobId} failed: ${waited}`);
      handMs.push(performance.now() - started);
    }
    const figures = {
      sizeMiB,
      files: opts.files,
      runs: opts.runs,
      ...backupComparison(apiMs, handMs, { idleMiB, peakMiB: memoryOf(service.child.pid!).peakMiB }),
    };
    printTable('bacula backup: API vs by hand (bconsole)', [
      ['site size', `${figures.sizeMiB} MiB in ${figures.files} files`],
      ...backupComparisonRows(figures),
    ]);
    process.stdout.write(`${JSON.stringify({ bench: 'bacula-backup', ...figures })}\n`);
  } finally {
    await service.stop();
    await bacula.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
