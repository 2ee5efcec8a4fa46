/**
 * Runs every benchmark in turn (each in its own process, on generated data) and collects their JSON lines into
 * bench/results/<time>.json. Pass a benchmark's options after its name: `npm run bench -- duplicity-backup --runs 5`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './support';

/** Each benchmark: its script and the sizes `npm run bench` uses by default (a few minutes in all on 2 cores). */
const BENCHMARKS: Record<string, { script: string; args: string[] }> = {
  'site-discovery': { script: 'site-discovery', args: ['--sites', '10000'] },
  'duplicity-backup': { script: 'duplicity-backup', args: ['--sizeMiB', '512', '--runs', '3', '--points', '1000'] },
  'bacula-backup': { script: 'bacula-backup', args: ['--sizeMiB', '256', '--runs', '3'] },
  'database-export': { script: 'database-export', args: ['--mb', '256', '--runs', '2'] },
  load: { script: 'load', args: ['--backups', '2', '--seconds', '15'] },
  // Issue 7's target: 64 connections, p99 under 50 ms, while 4 backups and an export run.
  'load-target': { script: 'load', args: ['--backups', '4', '--exports', '1', '--seconds', '15'] },
};

function main(): void {
  const [only, ...rest] = process.argv.slice(2);
  const selected = only ? [only] : Object.keys(BENCHMARKS);
  const results: unknown[] = [];
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
    if (json) results.push(JSON.parse(json));
  }
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ machine: { cpus: cpus().length, node: process.version }, results }, null, 2));
  process.stdout.write(`\nfigures written to ${file}\n`);
}

main();
