/**
 * Reads that must not grow with what the backups hold (issue 14): the restore-point listing, a site's status and
 * `/metrics`, first with a few small points, then with 1,000 points of 1,000,000-file backups in the catalog. Nothing
 * per file is kept for a point until someone browses it, so the two columns should match.
 *
 *   node dist-test/bench/catalog-reads.js [--points 1000] [--requests 300]
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { makeSites } from '../test/support/sample-sites';
import { startServiceProcess, type ServiceProcess } from '../test/support/service-process';
import { TOKENS } from '../test/support/test-app';
import { benchServiceEnv, options, percentile, printTable } from './support';

const READS = {
  'restore-point listing (500 per page)': '/v1/sites/site1/restore-points?limit=500',
  'site status': '/v1/sites/site1/status',
  '/metrics': '/metrics',
} as const;
type Read = keyof typeof READS;

/** Writes `points` duplicity points of site1 (a full every 30 days, incrementals between) straight into the catalog. */
function seedPoints(dataDir: string, points: number, files: number, bytes: number): void {
  const db = new Database(join(dataDir, 'catalog.sqlite3'));
  const insert = db.prepare(
    `INSERT OR REPLACE INTO restore_points (provider, subject, id, time, level, chain, bytes, files, state)
     VALUES ('duplicity', 'site1', ?, ?, ?, ?, ?, ?, 'complete')`,
  );
  db.transaction(() => {
    db.prepare(`DELETE FROM restore_points WHERE subject = 'site1'`).run();
    const chain: string[] = [];
    for (let i = 0; i < points; i++) {
      const time = new Date(Date.UTC(2024, 0, 1) + i * 86_400_000).toISOString();
      const id = `duplicity-${time.replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`;
      if (i % 30 === 0) chain.length = 0;
      chain.push(id);
      insert.run(id, time, i % 30 === 0 ? 'full' : 'incremental', JSON.stringify(chain), bytes, files);
    }
    db.prepare(
      `INSERT OR REPLACE INTO restore_point_scans (provider, subject, scanned_at) VALUES ('duplicity', 'site1', ?)`,
    ).run(new Date().toISOString());
  })();
  db.close();
}

async function measure(service: ServiceProcess, requests: number): Promise<Record<Read, number[]>> {
  const latencies = Object.fromEntries(Object.keys(READS).map((read) => [read, [] as number[]])) as Record<
    Read,
    number[]
  >;
  // Interleaved, so a slow moment of the machine hits every read alike.
  for (let i = 0; i < requests; i++) {
    for (const [read, path] of Object.entries(READS) as Array<[Read, string]>) {
      const started = performance.now();
      const res = await fetch(`${service.url}${path}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
      await res.arrayBuffer();
      latencies[read].push(performance.now() - started);
      if (res.status !== 200) throw new Error(`${path} answered ${res.status}`);
    }
  }
  return latencies;
}

const TOKEN = TOKENS.admin;

async function main(): Promise<void> {
  const opts = options({ points: 1000, requests: 300 });
  const root = mkdtempSync(join(tmpdir(), 'bench-catalog-reads-'));
  makeSites(join(root, 'virtual'), [{ n: 1, domain: 'reads.example' }]);
  const env = { ...benchServiceEnv(root), DUPLICITY_TARGET: `file://${root}/target` };
  const results: Array<{ label: string; latencies: Record<Read, number[]> }> = [];
  try {
    for (const [label, points, files, bytes] of [
      ['3 points of 100 files', 3, 100, 1e6],
      [`${opts.points} points of 1,000,000 files`, opts.points, 1_000_000, 50e9],
    ] as const) {
      // The service reads the catalog it finds at start: seed it first (a first start creates the schema).
      const first = await startServiceProcess(env);
      await first.stop();
      seedPoints(join(root, 'data'), points, files, bytes);
      const service = await startServiceProcess(env);
      try {
        await measure(service, 20); // warm-up
        results.push({ label, latencies: await measure(service, opts.requests) });
      } finally {
        await service.stop();
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  const figures = Object.keys(READS).map((read) => ({
    read,
    ...Object.fromEntries(
      results.flatMap(({ label, latencies }) => [
        [`${label} p50Ms`, Number(percentile(latencies[read as Read], 50).toFixed(2))],
        [`${label} p99Ms`, Number(percentile(latencies[read as Read], 99).toFixed(2))],
      ]),
    ),
  }));
  printTable(`reads against the catalog: ${results.map((r) => r.label).join(' vs ')} (p50 / p99)`, [
    ['read', results.map((r) => r.label).join(' | ')],
    ...Object.keys(READS).map((read): [string, string] => [
      read,
      results
        .map(
          ({ latencies }) =>
            `${percentile(latencies[read as Read], 50).toFixed(1)} / ${percentile(latencies[read as Read], 99).toFixed(1)} ms`,
        )
        .join(' | '),
    ]),
  ]);
  process.stdout.write(`${JSON.stringify({ bench: 'catalog-reads', points: opts.points, figures })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
