/**
 * A Bacula full backup through the API against the same Bacula Job run by hand in bconsole, on the same site, with the
 * service's peak memory. Uses a private director, storage and file daemon on loopback (test/support/bacula-harness).
 *
 *   node dist-test/bench/bacula-backup.js [--sizeMiB 256] [--files 16] [--runs 3]
 *
 * The first API backup writes the site's Bacula resources and is not counted; every counted run is a Full.
 */
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startBacula } from '../test/support/bacula-harness';
import { startServiceProcess, type ServiceProcess } from '../test/support/service-process';
import { makeSites } from '../test/support/sample-sites';
import { writeTokensFile } from '../test/support/test-app';
import { median, memoryOf, options, printTable } from './support';

async function apiBackup(service: ServiceProcess): Promise<number> {
  const started = performance.now();
  const job = await service.call('POST', '/v1/sites/site1/backups', { level: 'full', provider: 'bacula' });
  if (job.status !== 202) throw new Error(`POST answered ${job.status}: ${JSON.stringify(job.body)}`);
  let body = job.body;
  while (!['succeeded', 'failed', 'cancelled', 'interrupted'].includes(body.status as string)) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    body = (await service.call('GET', `/v1/jobs/${job.body.id}`)).body;
  }
  if (body.status !== 'succeeded') throw new Error(`API backup ${body.status}: ${JSON.stringify(body.error)}`);
  return performance.now() - started;
}

async function main(): Promise<void> {
  const opts = options({ sizeMiB: 256, files: 16, runs: 3 });
  const root = mkdtempSync(join(tmpdir(), 'bench-bacula-'));
  const bacula = await startBacula({ root: join(root, 'bacula') });
  const virtualRoot = join(root, 'virtual');
  makeSites(virtualRoot, [{ n: 1, domain: 'bench.example' }]);
  const data = join(virtualRoot, 'site1', 'shadow', 'data');
  mkdirSync(data, { recursive: true });
  const perFile = Math.max(1, Math.floor(opts.sizeMiB / opts.files));
  for (let i = 0; i < opts.files; i++) {
    execFileSync('sh', ['-c', `head -c ${perFile}M /dev/urandom > '${join(data, `f${i}.bin`)}'`]);
  }
  const service = await startServiceProcess({
    ...bacula.env,
    PROVIDERS: 'bacula',
    VIRTUAL_ROOT: virtualRoot,
    DATA_DIR: join(root, 'data'),
    API_TOKENS_FILE: writeTokensFile(root),
    LOG_LEVEL: 'warn',
  });
  const apiMs: number[] = [];
  const handMs: number[] = [];
  try {
    await apiBackup(service);
    const idleMiB = memoryOf(service.child.pid!).rssMiB;
    for (let run = 0; run < opts.runs; run++) {
      apiMs.push(await apiBackup(service));
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
      sizeMiB: perFile * opts.files,
      files: opts.files,
      runs: opts.runs,
      handMedianMs: Math.round(median(handMs)),
      apiMedianMs: Math.round(median(apiMs)),
      ratio: Number((median(apiMs) / median(handMs)).toFixed(3)),
      handMs: handMs.map(Math.round),
      apiMs: apiMs.map(Math.round),
      serviceIdleRssMiB: Math.round(idleMiB),
      servicePeakRssMiB: Math.round(memoryOf(service.child.pid!).peakMiB),
    };
    printTable('bacula backup: API vs by hand (bconsole)', [
      ['site size', `${figures.sizeMiB} MiB in ${figures.files} files`],
      ['by hand (median)', `${figures.handMedianMs} ms  ${JSON.stringify(figures.handMs)}`],
      ['through the API (median)', `${figures.apiMedianMs} ms  ${JSON.stringify(figures.apiMs)}`],
      ['ratio API / hand', String(figures.ratio)],
      ['service RSS idle / peak', `${figures.serviceIdleRssMiB} / ${figures.servicePeakRssMiB} MiB`],
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
