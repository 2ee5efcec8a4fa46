/**
 * Runs every benchmark in turn (each in its own process, on generated data) and collects their JSON lines into
 * bench/results/<time>.json, then compares them with bench/baseline.json (a run committed with the machine it ran on;
 * copy a results file over it to move the baseline). Pass a benchmark's options after its name:
 * `npm run bench -- duplicity-backup --runs 5`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { printTable, REPO_ROOT } from './support';

/** Each benchmark: its script and the sizes `npm run bench` uses by default (a few minutes in all on 2 cores). */
const BENCHMARKS: Record<string, { script: string; args: string[] }> = {
  'site-discovery': { script: 'site-discovery', args: ['--sites', '10000'] },
  'scheduler-tick': { script: 'scheduler-tick', args: ['--sites', '10000', '--runs', '7'] },
  // Issue 15: the newest point's restore after 30 daily incrementals, without and with a maxChain budget.
  'restore-budget': { script: 'restore-budget', args: ['--days', '30', '--files', '2000', '--maxChain', '7'] },
  'duplicity-backup': { script: 'duplicity-backup', args: ['--sizeMiB', '512', '--runs', '3', '--points', '1000'] },
  'bacula-backup': { script: 'bacula-backup', args: ['--sizeMiB', '256', '--runs', '3'] },
  'database-export': { script: 'database-export', args: ['--mb', '256', '--runs', '2'] },
  load: { script: 'load', args: ['--backups', '2', '--seconds', '15'] },
  // Issue 7's target: 64 connections, p99 under 50 ms, while 4 backups and an export run.
  'load-target': { script: 'load', args: ['--backups', '4', '--exports', '1', '--seconds', '15'] },
  // Issue 14: per-file costs at the sizes users have (`npm run bench -- inodes --files 1000000` for the million).
  inodes: { script: 'inodes', args: ['--files', '100000', '--rounds', '3'] },
  // Issue 14: listing, status and /metrics with 1,000 points of 1,000,000-file backups vs a few small ones.
  'catalog-reads': { script: 'catalog-reads', args: ['--points', '1000', '--requests', '300'] },
  // Issue 16: a 2 GiB, 100,000-file directory downloaded through the API vs tar; browse latency on that point.
  'archive-download': { script: 'archive-download', args: ['--sizeMiB', '2048', '--files', '100000', '--runs', '3'] },
  // Issue 17: restic and borg on a 100,000-file site, first and second backup, restore, API vs by hand.
  'deduplicating-backup': { script: 'deduplicating-backup', args: ['--files', '100000', '--rounds', '3'] },
};

function main(): void {
  const [only, ...rest] = process.argv.slice(2);
  const selected = only ? [only] : Object.keys(BENCHMARKS);
  const results: Array<Record<string, unknown>> = [];
  for (const name of selected) {
    if (!BENCHMARKS[name]) throw new Error(`unknown benchmark ${name}; known: ${Object.keys(BENCHMARKS).join(', ')}`);
    const run = spawnSync(
      process.execPath,
      [join(__dirname, `${BENCHMARKS[name].script}.js`), ...(only && rest.length ? rest : BENCHMARKS[name].args)],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    process.stdout.write(run.stdout);
    if (run.status !== 0) throw new Error(`${name} failed with exit ${run.status}`);
    const json = run.stdout
      .split('\n')
      .reverse()
      .find((line) => line.startsWith('{'));
    if (json) results.push({ name, ...(JSON.parse(json) as Record<string, unknown>) });
  }
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
  };
  printTable(
    `summary (${machine.cpus} × ${machine.cpuModel ?? 'cpu'}, ${machine.memoryGiB} GiB, Node ${machine.node})`,
    results.flatMap(summaryRows),
  );
  writeFileSync(file, JSON.stringify({ machine, results }, null, 2));
  process.stdout.write(`\nfigures written to ${file}\n`);
  compareWithBaseline(results);
}

/** The figures issue 7 asks for, one line each, from a benchmark's JSON. */
function summaryRows(result: Record<string, unknown>): Array<[string, string]> {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- each benchmark's own JSON shape
  const r = result as Record<string, any>;
  switch (result.name) {
    case 'site-discovery':
      return [[`site discovery, ${r.sites} sites`, `${r.coldMedianMs} ms cold, ${r.warmListMedianUs} µs cached`]];
    case 'scheduler-tick':
      return [
        [`scheduler tick, ${r.sites} sites`, `${r.tickMedianMs} ms (${r.perSiteUs} µs/site), RSS ${r.rssMiB} MiB`],
      ];
    case 'restore-budget':
      return (['without', 'with'] as const).map((key): [string, string] => [
        `newest point after ${r.days} incrementals, ${key === 'with' ? `maxChain ${r.maxChain}` : 'no budget'}`,
        `${r[key].restoreMedianMs} ms restore, ${r[key].replaySets} sets / ${r[key].replayMiB} MiB replayed`,
      ]);
    case 'duplicity-backup':
      return [
        [
          `duplicity backup ${r.sizeMiB} MiB, API / hand`,
          `${r.ratio} (${r.apiMedianMs} / ${r.handMedianMs} ms), peak RSS ${r.servicePeakRssMiB} MiB`,
        ],
        [`restore-point listing, ${r.restorePoints} points`, `p50 ${r.listingP50Ms} ms, p99 ${r.listingP99Ms} ms`],
      ];
    case 'bacula-backup':
      return [
        [
          `bacula backup ${r.sizeMiB} MiB, API / hand`,
          `${r.ratio} (${r.apiMedianMs} / ${r.handMedianMs} ms), peak RSS ${r.servicePeakRssMiB} MiB`,
        ],
      ];
    case 'database-export':
      return (['mysql', 'pgsql'] as const).map((engine) => [
        `${engine} export ${r[engine].databaseMb} MB, API / hand`,
        `${Number(r[engine].ratio).toFixed(3)} (${r[engine].medianMs.service} / ${r[engine].medianMs.hand} ms), ` +
          `peak RSS ${Math.round(r[engine].serviceRssMb.peak)} MiB`,
      ]);
    case 'load':
    case 'load-target':
      return [
        [
          `${r.connections} connections, ${r.backupsRunning} backups + ${r.exportsRunning} exports running`,
          `${r.requestsPerSecond} req/s, p50 ${r.latencyP50Ms} / p99 ${r.latencyP99Ms} ms, ` +
            `${r.non2xx + r.errors + r.timeouts} errors, peak RSS ${r.servicePeakRssMiB} MiB`,
        ],
      ];
    case 'inodes':
      return (r.figures as Array<Record<string, number | string>>).map((f) => [
        `${r.files} files, ${f.engine} ${f.operation}, API / hand`,
        `${f.ratio} (${f.apiMedianMs} / ${f.handMedianMs} ms), status read p99 ${f.readP99Ms} ms` +
          (f.cpuRatio === undefined ? '' : `, CPU ${f.cpuRatio}`) +
          (f.storedBytesMedian === undefined ? '' : `, stored ${f.storedBytesMedian} bytes`),
      ]);
    case 'archive-download':
      return [
        [
          `download ${r.sizeMiB} MiB / ${r.files} files, tar / API time`,
          `${r.throughputRatio} (${r.handMedianMs} / ${r.apiMedianMs} ms), RSS idle ${r.serviceIdleRssMiB} / peak ` +
            `${r.servicePeakRssMiB} MiB`,
        ],
        ...(r.browseP50Ms === undefined
          ? []
          : ([
              [
                `browse a ${r.files}-file point`,
                `first ${r.browseFirstListingMs} ms, then p50 ${r.browseP50Ms} / p99 ${r.browseP99Ms} ms`,
              ],
            ] as Array<[string, string]>)),
      ];
    case 'deduplicating-backup':
      // The same rows as the inodes benchmark's, so the summary shows all four engines side by side.
      return [
        ...(r.figures as Array<Record<string, number | string>>).map((f): [string, string] => [
          `${r.files} files, ${f.engine} ${f.operation}, API / hand`,
          `${f.ratio} (${f.apiMedianMs} / ${f.handMedianMs} ms), CPU ${f.cpuRatio}`,
        ]),
        ...Object.entries(r.repoBytes as Record<string, { first: number[]; addedBySecond: number[] }>).map(
          ([engine, bytes]): [string, string] => [
            `${r.files} files, ${engine} repository after the first backup / added by the second`,
            `${bytes.first[0]} / ${bytes.addedBySecond[0]} bytes`,
          ],
        ),
      ];
    default:
      return [];
  }
}

/**
 * Prints each numeric figure next to the same figure in bench/baseline.json (a committed run), so a change that
 * costs speed or memory shows at a glance. Only benchmarks and figures present in both are compared.
 */
function compareWithBaseline(results: Array<Record<string, unknown>>): void {
  const baselineFile = join(REPO_ROOT, 'bench', 'baseline.json');
  if (!existsSync(baselineFile)) return;
  const baseline = JSON.parse(readFileSync(baselineFile, 'utf8')) as { results: Array<Record<string, unknown>> };
  const rows: Array<[string, string]> = [];
  for (const result of results) {
    const before = baseline.results.find((candidate) => candidate.name === result.name);
    if (!before) continue;
    const then = numericLeaves(before);
    for (const [key, value] of numericLeaves(result)) {
      const old = then.get(key);
      if (old === undefined || old === value) continue;
      const change = old === 0 ? '' : ` (${value >= old ? '+' : ''}${(((value - old) / old) * 100).toFixed(0)}%)`;
      rows.push([`${String(result.name)}.${key}`, `${old} → ${value}${change}`]);
    }
  }
  if (rows.length > 0) printTable('against bench/baseline.json', rows);
}

function numericLeaves(value: unknown, prefix = '', into = new Map<string, number>()): Map<string, number> {
  if (typeof value === 'number') into.set(prefix, value);
  else if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, child] of Object.entries(value)) numericLeaves(child, prefix ? `${prefix}.${key}` : key, into);
  }
  return into;
}

main();
