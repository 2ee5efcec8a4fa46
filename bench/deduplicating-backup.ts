/**
 * restic and borg on a site of many small files: the first backup, a second one after 1 % of the files changed, and a
 * restore of the newest point, each through the API against the same command by hand, with the repository's size.
 *
 *   node dist-test/bench/deduplicating-backup.js [--files 100000] [--rounds 3] [--engines restic,borg]
 *
 * The service runs as its own process (dist/main.js). Every round starts from new repositories and caches on both
 * sides, created (untimed) before the runs, so neither side pays for `init`; which side goes first alternates from
 * round to round, and dirty pages are flushed before each timed run. Wall and CPU time (the engine's process tree:
 * the bench's reaped children by hand, the service's reaped children through the API) are reported per operation. The
 * restic provider also captures the symlinks' attribute manifest (restic 0.14 drops their xattrs) before each backup
 * and re-applies it after a restore; that cost is part of the API figure, not of the hand one. Duplicity's and Bacula's
 * figures at the same size, with what each stored at its target, come from `inodes`: `npm run bench` prints all four
 * engines' rows side by side in its summary.
 */
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeSites } from '../test/support/sample-sites';
import { startServiceProcess, type ServiceProcess } from '../test/support/service-process';
import { deduplicatingRound, type DeduplicatingEngine } from './deduplicating-by-hand';
import {
  benchServiceEnv,
  Graveyard,
  median,
  medianOfRatios,
  options,
  printTable,
  settle,
  timedByHand,
  timedServiceJob,
} from './support';

const PER_DIR = 100;

function makeManyFileSite(virtualRoot: string, files: number): string {
  makeSites(virtualRoot, [{ n: 1, domain: 'bench.example' }]);
  const data = join(virtualRoot, 'site1', 'shadow', 'var', 'www');
  const pool = randomBytes(8 * 1024 * 1024);
  for (let i = 0; i < files; i++) {
    const dir = join(data, `d${Math.floor(i / PER_DIR)}`);
    if (i % PER_DIR === 0) mkdirSync(dir, { recursive: true });
    const size = 1024 + ((i * 7919) % 3072);
    const offset = (i * 104_729) % (pool.length - size);
    writeFileSync(join(dir, `f${i}.php`), pool.subarray(offset, offset + size));
  }
  return data;
}

/** Rewrites every hundredth file with new bytes: 1 % of the files changed. */
function changeOnePercent(data: string, files: number): void {
  for (let i = 0; i < files; i += 100) {
    writeFileSync(join(data, `d${Math.floor(i / PER_DIR)}`, `f${i}.php`), randomBytes(2048));
  }
}

function bytesOf(path: string): number {
  return Number(execFileSync('du', ['-sb', path], { encoding: 'utf8' }).split('\t')[0]);
}

/** Restored trees and finished rounds, kept until the bench ends (see Graveyard). */
let graveyard: Graveyard;
const discard = (path: string): void => graveyard.discard(path);

interface Timed {
  ms: number;
  cpuMs: number;
}

/** Starts a job through the API and waits for it as a caller would. */
function timedApiJob(
  service: ServiceProcess,
  path: string,
  body: object,
): Promise<Timed & { result: Record<string, unknown> }> {
  settle();
  return timedServiceJob(service, path, body);
}

type Operation = 'first backup' | 'second backup (1 % changed)' | 'restore of the newest point';

interface Row {
  engine: string;
  operation: Operation;
  hand: Timed[];
  api: Timed[];
}

async function main(): Promise<void> {
  const opts = options({ files: 100_000, rounds: 3, engines: 'restic,borg' });
  const root = mkdtempSync(join(tmpdir(), 'bench-dedup-'));
  graveyard = new Graveyard(join(root, 'graveyard'));
  const virtualRoot = join(root, 'virtual');
  const site = join(virtualRoot, 'site1');
  const data = makeManyFileSite(virtualRoot, opts.files);
  const password = join(root, 'password');
  writeFileSync(password, 'bench-password\n', { mode: 0o600 });
  const rows: Row[] = [];
  const repoBytes: Record<string, { first: number[]; addedBySecond: number[] }> = {};
  const record = (engine: string, operation: Operation, hand: Timed, api: Timed): void => {
    let row = rows.find((r) => r.engine === engine && r.operation === operation);
    if (!row) rows.push((row = { engine, operation, hand: [], api: [] }));
    row.hand.push(hand);
    row.api.push(api);
    process.stderr.write(
      `${engine} ${operation}: hand ${Math.round(hand.ms)} ms (CPU ${Math.round(hand.cpuMs)}), API ${Math.round(api.ms)} ms (CPU ${Math.round(api.cpuMs)})\n`,
    );
  };

  for (const name of opts.engines.split(',')) {
    if (name !== 'restic' && name !== 'borg') throw new Error(`unknown engine ${name}; known: restic, borg`);
    const engine: DeduplicatingEngine = name;
    repoBytes[engine] = { first: [], addedBySecond: [] };
    for (let round = 1; round <= opts.rounds; round++) {
      const dir = join(root, `${engine}-${round}`);
      mkdirSync(dir, { recursive: true });
      const serviceRoot = join(dir, 'service');
      mkdirSync(serviceRoot);
      const serviceBase = benchServiceEnv(serviceRoot);
      const {
        hand,
        apiRepository: api,
        serviceEnv,
        beforeBackup,
      } = deduplicatingRound(engine, {
        dir,
        site,
        password,
        serviceDataDir: serviceBase.DATA_DIR,
      });
      const service = await startServiceProcess({
        ...serviceBase,
        VIRTUAL_ROOT: virtualRoot,
        PROVIDERS: engine,
        ...serviceEnv,
      });
      // Odd rounds run the API first, even rounds the hand command: the page cache and the writeback of one side
      // never favour the same side every time.
      const pair = async (handRun: () => Promise<Timed>, apiRun: () => Promise<Timed>): Promise<[Timed, Timed]> => {
        if (round % 2 === 1) {
          const apiTimed = await apiRun();
          return [await handRun(), apiTimed];
        }
        const handTimed = await handRun();
        return [handTimed, await apiRun()];
      };
      try {
        const backup = async () => {
          await beforeBackup();
          return timedApiJob(service, '/v1/sites/site1/backups', { level: 'full', provider: engine });
        };
        const backupByHand = async () => {
          await beforeBackup();
          return timedByHand(() => hand.backup());
        };
        record(engine, 'first backup', ...(await pair(backupByHand, backup)));
        const firstBytes = bytesOf(api);
        repoBytes[engine].first.push(firstBytes);
        changeOnePercent(data, opts.files);
        record(engine, 'second backup (1 % changed)', ...(await pair(backupByHand, backup)));
        repoBytes[engine].addedBySecond.push(bytesOf(api) - firstBytes);
        const target = join(dir, 'hand-restore');
        const handRestore = async (): Promise<Timed> => {
          const timed = await timedByHand(() => hand.restore(target));
          discard(target);
          return timed;
        };
        const apiRestore = async (): Promise<Timed> => {
          const points = await service.call('GET', '/v1/sites/site1/restore-points');
          const newest = (points.body.items as Array<{ id: string }>)[0].id;
          const timed = await timedApiJob(service, '/v1/sites/site1/restores', { restorePoint: newest });
          discard(timed.result.destination as string);
          return timed;
        };
        record(engine, 'restore of the newest point', ...(await pair(handRestore, apiRestore)));
      } finally {
        await service.stop();
        discard(dir);
      }
    }
  }
  rmSync(root, { recursive: true, force: true });

  const figures = rows.map((row) => ({
    engine: row.engine,
    operation: row.operation,
    handMedianMs: Math.round(median(row.hand.map((t) => t.ms))),
    apiMedianMs: Math.round(median(row.api.map((t) => t.ms))),
    ratio: Number((median(row.api.map((t) => t.ms)) / median(row.hand.map((t) => t.ms))).toFixed(3)),
    pairedRatio: medianOfRatios(
      row.api.map((t) => t.ms),
      row.hand.map((t) => t.ms),
    ),
    handCpuMedianMs: Math.round(median(row.hand.map((t) => t.cpuMs))),
    apiCpuMedianMs: Math.round(median(row.api.map((t) => t.cpuMs))),
    cpuRatio: Number((median(row.api.map((t) => t.cpuMs)) / median(row.hand.map((t) => t.cpuMs))).toFixed(3)),
    handMs: row.hand.map((t) => Math.round(t.ms)),
    apiMs: row.api.map((t) => Math.round(t.ms)),
  }));
  printTable(`restic and borg: ${opts.files} files of 1-4 KiB, ${opts.rounds} interleaved rounds, API / hand`, [
    ['engine / operation', 'hand (median) | API (median) | ratio | of rounds | CPU hand | CPU API | ratio'],
    ...figures.map((f): [string, string] => [
      `${f.engine} ${f.operation}`,
      `${f.handMedianMs} ms | ${f.apiMedianMs} ms | ${f.ratio} | ${f.pairedRatio} | ${f.handCpuMedianMs} ms | ${f.apiCpuMedianMs} ms | ${f.cpuRatio}`,
    ]),
    ...Object.entries(repoBytes).map(([engine, bytes]): [string, string] => [
      `${engine} repository after first / added by second (median)`,
      `${median(bytes.first)} / ${median(bytes.addedBySecond)} bytes`,
    ]),
  ]);
  process.stdout.write(
    `${JSON.stringify({ bench: 'deduplicating-backup', files: opts.files, rounds: opts.rounds, figures, repoBytes })}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
