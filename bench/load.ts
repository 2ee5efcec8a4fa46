/**
 * Read load while backups run: 64 connections polling `GET /v1/jobs/{id}` and `GET /v1/sites` (autocannon) while
 * `--backups` duplicity backups are in flight. Prints throughput, p50/p99 latency and errors.
 *
 *   node dist-test/bench/load.js [--backups 2] [--connections 64] [--seconds 15] [--sites 500] [--sizeMiB 400]
 */
import 'reflect-metadata';
import autocannon from 'autocannon';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServiceProcess } from '../test/support/service-process';
import { makeSites } from '../test/support/sample-sites';
import { TOKENS, writeTokensFile } from '../test/support/test-app';
import { options, printTable } from './support';

async function main(): Promise<void> {
  const opts = options({ backups: 2, connections: 64, seconds: 15, sites: 500, sizeMiB: 400 });
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
  const service = await startServiceProcess({
    VIRTUAL_ROOT: virtualRoot,
    DATA_DIR: join(root, 'data'),
    API_TOKENS_FILE: writeTokensFile(root),
    DUPLICITY_TARGET: `file://${root}/target`,
    MAX_CONCURRENT_JOBS: String(Math.max(2, opts.backups)),
    LOG_LEVEL: 'warn',
  });
  try {
    const jobs: string[] = [];
    for (let n = 1; n <= opts.backups; n++) {
      jobs.push(
        ((await service.call('POST', `/v1/sites/site${n}/backups`, { level: 'full' })).body as { id: string }).id,
      );
    }
    const headers = { Authorization: `Bearer ${TOKENS.monitor}` };
    const result = await autocannon({
      url: service.url,
      connections: opts.connections,
      duration: opts.seconds,
      requests: [
        { method: 'GET', path: `/v1/jobs/${jobs[0]}`, headers },
        { method: 'GET', path: '/v1/sites?limit=100', headers },
      ],
    });
    const states = await Promise.all(
      jobs.map(async (id) => ((await service.call('GET', `/v1/jobs/${id}`)).body as { status: string }).status),
    );
    const figures = {
      connections: opts.connections,
      seconds: opts.seconds,
      backupsRunning: opts.backups,
      backupStatesAtEnd: states,
      requestsPerSecond: Math.round(result.requests.average),
      latencyP50Ms: result.latency.p50,
      latencyP99Ms: result.latency.p99,
      latencyMaxMs: result.latency.max,
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts,
    };
    printTable(`read load: ${opts.connections} connections while ${opts.backups} backups run`, [
      ['requests/s (mean)', String(figures.requestsPerSecond)],
      ['latency p50 / p99 / max', `${figures.latencyP50Ms} / ${figures.latencyP99Ms} / ${figures.latencyMaxMs} ms`],
      ['non-2xx / errors / timeouts', `${figures.non2xx} / ${figures.errors} / ${figures.timeouts}`],
      ['backups at the end', states.join(', ')],
    ]);
    process.stdout.write(`${JSON.stringify({ bench: 'load', ...figures })}\n`);
  } finally {
    await service.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
