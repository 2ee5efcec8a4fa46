/**
 * Millions of inodes: API-driven backups and restores against the same engine command run by hand, on a site of many
 * small files in nested directories (a fifth of the directories carry Fortification-style ACLs and xattrs). Hand and
 * API runs are interleaved, round by round, so a slow minute on the machine hits both.
 *
 *   node dist-test/bench/inodes.js [--files 100000] [--rounds 3] [--engines duplicity,bacula] (also restic, borg)
 *     [--restore-rounds 1] (restic and borg: restore pairs per backup round)
 *
 * Per engine and round: a full backup, 1 % of the files changed, an incremental, a restore of the newest point (whole
 * site) and of one file. The service runs as its own process (dist/main.js); its peak RSS is read from /proc (VmHWM)
 * and a monitor polls `GET /v1/sites/site1/status` throughout, so the table shows what a status read costs meanwhile.
 * For duplicity the table also shows CPU time (the engine by hand against every child process of the API's job),
 * which a busy machine barely changes: the wall ratio needs a quiet machine, the CPU ratio does not.
 */
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { RESTORE_JOB } from '../src/providers/bacula/bacula-resources';
import { startBacula, type BaculaHarness } from '../test/support/bacula-harness';
import { makeSites } from '../test/support/sample-sites';
import { startServiceProcess, type ServiceProcess } from '../test/support/service-process';
import { siteSelectionByHand } from '../test/support/duplicity-by-hand';
import { deduplicatingRound, type DeduplicatingEngine } from './deduplicating-by-hand';
import {
  benchServiceEnv,
  cpuOf,
  Graveyard,
  median,
  medianOfRatios,
  memoryOf,
  options,
  percentile,
  printTable,
  settle,
  timeCommand,
  timedServiceJob,
  timedByHand,
} from './support';

type Operation = 'full' | 'incremental' | 'restore site' | 'restore one file';

interface Row {
  engine: string;
  operation: Operation;
  handMs: number[];
  apiMs: number[];
  readP99Ms: number[];
  /** duplicity only: CPU of the engine by hand, and of the service's children (the engine and its helpers). */
  handCpuMs: number[];
  apiCpuMs: number[];
  /** Backups: what the API's backup stored at the target (the job's `result.bytes`: the set's size, JobBytes). */
  storedBytes: number[];
}

const FILES_PER_DIR = 100;
const CHANGED_SHARE = 0.01;

/** Restored trees and each engine's whole root, kept until the bench ends (see Graveyard). */
let graveyard: Graveyard;
const discard = (path: string): void => graveyard.discard(path);

/** Everything is kept until the end: refuse a run the filesystem has no inodes for rather than fail half-way. */
function assertInodesFor(files: number, rounds: number, restoreRounds: number, engines: number): void {
  const needed = Math.ceil(engines * (1 + 2 * rounds * restoreRounds) * files * 1.1);
  const free = Number(statfsSync(tmpdir()).ffree);
  if (free < needed) {
    throw new Error(
      `this run keeps about ${needed} inodes until it ends and ${tmpdir()} has ${free} free: fewer rounds or one engine at a time (--engines)`,
    );
  }
}

/** site1 with `files` small files (0.3–0.7 KB) in two levels of directories; every fifth directory has ACLs and xattrs. */
function makeInodeSite(virtualRoot: string, files: number): { site: string; oneFile: string; dirs: string[] } {
  makeSites(virtualRoot, [{ n: 1, domain: 'inodes.example' }]);
  const site = join(virtualRoot, 'site1');
  const html = join(site, 'shadow', 'var', 'www', 'html');
  const dirs: string[] = [];
  for (let i = 0; i < files; i++) {
    const dir = join(html, `d${Math.floor(i / (FILES_PER_DIR * 100))}`, `e${Math.floor(i / FILES_PER_DIR)}`);
    if (i % FILES_PER_DIR === 0) {
      mkdirSync(dir, { recursive: true });
      dirs.push(dir);
    }
    writeFileSync(join(dir, `f${i % FILES_PER_DIR}.php`), 'x'.repeat(300 + ((i * 7) % 400)));
  }
  const fortified = dirs.filter((_, index) => index % 5 === 0);
  for (let i = 0; i < fortified.length; i += 500) {
    const batch = fortified.slice(i, i + 500);
    execFileSync('setfacl', ['-m', 'u:nobody:rwx,d:u:nobody:rx', ...batch]);
    execFileSync('setfattr', ['-n', 'user.fortify', '-v', 'rw', ...batch]);
  }
  return { site, oneFile: join(dirs[dirs.length - 1], 'f0.php'), dirs };
}

/** Rewrites 1 % of the files (every hundredth), in a later second than the last backup read them. */
function changeShare(dirs: string[], round: number): void {
  const step = Math.round(1 / CHANGED_SHARE);
  let n = 0;
  for (const dir of dirs) {
    for (let f = 0; f < FILES_PER_DIR; f += step) {
      writeFileSync(join(dir, `f${(f + round) % FILES_PER_DIR}.php`), `changed ${round} ${n++}`);
    }
  }
}

/** Polls a status read until stopped; resolves with the latencies it saw. */
function pollStatus(service: ServiceProcess): { stop: () => Promise<number[]> } {
  const latencies: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const started = performance.now();
      await service.call('GET', '/v1/sites/site1/status').catch((error: unknown) => {
        throw new Error(
          `a status read failed (${String(error)}); the service's output ends:\n${service.output().slice(-4000)}`,
        );
      });
      latencies.push(performance.now() - started);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return latencies;
    },
  };
}

/** Starts a job through the API and waits for it as a caller would; resolves with its wall time and read p99. */
interface ApiRun {
  ms: number;
  p99: number;
  cpuMs: number;
  bytes?: number;
}

async function timedJob(service: ServiceProcess, path: string, body: object): Promise<ApiRun> {
  settle();
  const poll = pollStatus(service);
  try {
    const { ms, cpuMs, result } = await timedServiceJob(service, path, body);
    const latencies = await poll.stop();
    const bytes = typeof result.bytes === 'number' ? result.bytes : undefined;
    return { ms, p99: latencies.length ? percentile(latencies, 99) : 0, cpuMs, bytes };
  } finally {
    await poll.stop();
  }
}

async function newestPoint(service: ServiceProcess, provider: string): Promise<string> {
  const res = await service.call('GET', `/v1/sites/site1/restore-points?provider=${provider}&limit=1`);
  const id = (res.body.items as Array<{ id: string }> | undefined)?.[0]?.id;
  if (!id) throw new Error(`no restore point listed: ${JSON.stringify(res.body)}`);
  return id;
}

/** A hand run's wall time, and its CPU when it was a child of this process (duplicity; Bacula works in daemons). */
interface HandRun {
  ms: number;
  cpuMs?: number;
}

/**
 * The service whose status the poller reads during hand runs too: a monitoring client reads it whichever side runs,
 * and on two cores those reads cost the engine some time. Polling both sides leaves only the job's own cost in the gap.
 */
let polled: ServiceProcess | undefined;

async function besideStatusReads<T>(run: () => Promise<T>): Promise<T> {
  const service = polled;
  const poll = service ? pollStatus(service) : undefined;
  const before = service ? cpuOf(service.child.pid!).selfMs : 0;
  try {
    return await run();
  } finally {
    await poll?.stop();
    if (service) {
      const cpuMs = cpuOf(service.child.pid!).selfMs - before;
      process.stderr.write(`  by hand, beside status reads: the service itself used ${Math.round(cpuMs)} ms of CPU\n`);
    }
  }
}

const handRun = (run: () => Promise<number>): Promise<HandRun> => timedByHand(() => besideStatusReads(run));

function record(rows: Row[], engine: string, operation: Operation, hand: number | HandRun, api: ApiRun) {
  const { ms, cpuMs } = typeof hand === 'number' ? { ms: hand, cpuMs: undefined } : hand;
  let row = rows.find((r) => r.engine === engine && r.operation === operation);
  if (!row) {
    rows.push(
      (row = { engine, operation, handMs: [], apiMs: [], readP99Ms: [], handCpuMs: [], apiCpuMs: [], storedBytes: [] }),
    );
  }
  if (api.bytes !== undefined && (operation === 'full' || operation === 'incremental')) row.storedBytes.push(api.bytes);
  row.handMs.push(ms);
  row.apiMs.push(api.ms);
  row.readP99Ms.push(api.p99);
  if (cpuMs !== undefined) {
    row.handCpuMs.push(cpuMs);
    row.apiCpuMs.push(api.cpuMs);
  }
}

/** The duplicity command lines the provider runs, by hand: the site's own directory as the source. */
function duplicityHand(root: string, site: string) {
  const archive = join(root, 'hand-archive');
  const target = `file://${join(root, 'hand-target')}`;
  const common = ['--archive-dir', archive, '--name', 'site1', '--no-encryption'];
  const selection = [...siteSelectionByHand(site), site];
  const env = { HOME: root };
  return {
    backup: (level: 'full' | 'incremental') =>
      handRun(() => timeCommand('duplicity', [level, ...common, ...selection, target], env)),
    restore: (dest: string, file?: string) =>
      handRun(() =>
        timeCommand(
          'duplicity',
          ['restore', ...common, ...(file ? ['--file-to-restore', file] : []), target, dest],
          env,
        ),
      ),
    reset: () => {
      rmSync(archive, { recursive: true, force: true });
      rmSync(join(root, 'hand-target'), { recursive: true, force: true });
    },
  };
}

async function benchDuplicity(root: string, rounds: number, files: number, rows: Row[], rss: number[]) {
  const { site, oneFile, dirs } = makeInodeSite(join(root, 'virtual'), files);
  const hand = duplicityHand(root, site);
  const service = await startServiceProcess({ ...benchServiceEnv(root), DUPLICITY_TARGET: `file://${root}/api` });
  const oneFileRel = oneFile.slice(site.length + 1);
  polled = service;
  try {
    for (let round = 0; round < rounds; round++) {
      hand.reset();
      rmSync(join(root, 'api'), { recursive: true, force: true });
      rmSync(join(root, 'data', 'duplicity', 'archive'), { recursive: true, force: true });
      // The side that goes second pays for the first one's writeback: odd rounds run the API first.
      const both = async <H, A>(handRun: () => Promise<H>, apiRun: () => Promise<A>): Promise<[H, A]> => {
        if (round % 2 === 0) return [await handRun(), await apiRun()];
        const apiTimed = await apiRun();
        return [await handRun(), apiTimed];
      };
      record(
        rows,
        'duplicity',
        'full',
        ...(await both(
          () => hand.backup('full'),
          () => timedJob(service, '/v1/sites/site1/backups', { level: 'full' }),
        )),
      );
      // Sets are named by the second: change the files in a later one.
      await new Promise((resolve) => setTimeout(resolve, 1100));
      changeShare(dirs, round);
      record(
        rows,
        'duplicity',
        'incremental',
        ...(await both(
          () => hand.backup('incremental'),
          () => timedJob(service, '/v1/sites/site1/backups', { level: 'incremental' }),
        )),
      );
      const dest = join(root, 'hand-restore');
      const point = await newestPoint(service, 'duplicity');
      // Writing 100,000 files is paced by the filesystem's state (the writeback of earlier rounds' trees, deleted just
      // before): the side that goes second in a round pays more, so the order alternates.
      const restoreApi = () => timedJob(service, '/v1/sites/site1/restores', { restorePoint: point });
      const apiFirst = round % 2 === 1 ? await restoreApi() : undefined;
      const handRestore = await hand.restore(dest);
      discard(dest);
      record(rows, 'duplicity', 'restore site', handRestore, apiFirst ?? (await restoreApi()));
      const handOne = await hand.restore(join(dest, 'one'), oneFileRel);
      discard(dest);
      record(
        rows,
        'duplicity',
        'restore one file',
        handOne,
        await timedJob(service, '/v1/sites/site1/restores', { restorePoint: point, paths: [oneFileRel] }),
      );
      discard(join(root, 'data', 'restores'));
    }
    rss.push(memoryOf(service.child.pid!).peakMiB);
  } finally {
    polled = undefined;
    await service.stop();
  }
}

async function runBacula(bacula: BaculaHarness, level: string): Promise<number> {
  settle();
  const started = performance.now();
  await besideStatusReads(async () => {
    const queued = await bacula.bconsole([`run job=apiscp-site1 level=${level} yes`]);
    const jobId = /JobId=(\d+)/.exec(queued)?.[1];
    if (!jobId) throw new Error(`bconsole did not queue the job: ${queued}`);
    const waited = await bacula.bconsole([`wait jobid=${jobId}`]);
    if (!/JobStatus=OK \(T\)/.test(waited)) throw new Error(`hand-run job ${jobId} failed: ${waited}`);
  });
  return performance.now() - started;
}

async function restoreBacula(bacula: BaculaHarness, where: string, file?: string): Promise<number> {
  settle();
  const started = performance.now();
  // The Restore job the provider wrote (the director has another, which would make bconsole ask).
  const base = `restore client=${bacula.client} fileset=apiscp-site1 where=${where} restorejob=${RESTORE_JOB}`;
  await besideStatusReads(async () => {
    const queued = await bacula.bconsole([
      file ? `${base} current file=${file} yes` : `${base} select current all done yes`,
    ]);
    const jobId = /JobId=(\d+)/.exec(queued)?.[1];
    if (!jobId) throw new Error(`bconsole did not queue the restore: ${queued}`);
    const waited = await bacula.bconsole([`wait jobid=${jobId}`]);
    if (!/JobStatus=OK \(T\)/.test(waited)) throw new Error(`hand-run restore ${jobId} failed: ${waited}`);
  });
  return performance.now() - started;
}

async function benchBacula(root: string, rounds: number, files: number, rows: Row[], rss: number[]) {
  const bacula = await startBacula({ root: join(root, 'bacula') });
  const { site, oneFile, dirs } = makeInodeSite(join(root, 'virtual'), files);
  const service = await startServiceProcess({ ...bacula.env, ...benchServiceEnv(root), PROVIDERS: 'bacula' });
  const oneFileRel = oneFile.slice(site.length + 1);
  polled = service;
  try {
    // The first API backup writes the site's Job and FileSet; it is not counted.
    await timedJob(service, '/v1/sites/site1/backups', { level: 'full', provider: 'bacula' });
    for (let round = 0; round < rounds; round++) {
      record(
        rows,
        'bacula',
        'full',
        await runBacula(bacula, 'Full'),
        await timedJob(service, '/v1/sites/site1/backups', { level: 'full', provider: 'bacula' }),
      );
      changeShare(dirs, round);
      const handInc = await runBacula(bacula, 'Incremental');
      changeShare(dirs, round + 50);
      record(
        rows,
        'bacula',
        'incremental',
        handInc,
        await timedJob(service, '/v1/sites/site1/backups', { level: 'incremental', provider: 'bacula' }),
      );
      const where = join(root, 'hand-restore');
      const point = await newestPoint(service, 'bacula');
      // As for duplicity: which side restores first alternates, so neither always pays the other's writeback.
      const restoreApi = () => timedJob(service, '/v1/sites/site1/restores', { restorePoint: point });
      const apiFirst = round % 2 === 1 ? await restoreApi() : undefined;
      const handRestore = await restoreBacula(bacula, where);
      discard(where);
      record(rows, 'bacula', 'restore site', handRestore, apiFirst ?? (await restoreApi()));
      const handOne = await restoreBacula(bacula, where, oneFile);
      discard(where);
      record(
        rows,
        'bacula',
        'restore one file',
        handOne,
        await timedJob(service, '/v1/sites/site1/restores', { restorePoint: point, paths: [oneFileRel] }),
      );
      discard(join(root, 'data', 'restores'));
    }
    rss.push(memoryOf(service.child.pid!).peakMiB);
  } finally {
    polled = undefined;
    await service.stop();
    await bacula.stop();
  }
}

/**
 * Each round starts from new, empty repositories on both sides and a service of its own (whose caches of the
 * repository start empty too): "full" is always a first backup, as the deduplicating-backup bench makes it, and
 * "incremental" the next one after 1 % of the files changed (a deduplicated full, as the API says).
 */
async function benchDeduplicating(
  engine: DeduplicatingEngine,
  root: string,
  rounds: number,
  restoreRounds: number,
  files: number,
  rows: Row[],
  rss: number[],
) {
  const { site, oneFile, dirs } = makeInodeSite(join(root, 'virtual'), files);
  const password = join(root, 'password');
  writeFileSync(password, 'bench-password\n', { mode: 0o600 });
  const oneFileRel = oneFile.slice(site.length + 1);
  for (let round = 0; round < rounds; round++) {
    const roundRoot = join(root, `round-${round}`);
    mkdirSync(roundRoot);
    const dataDir = join(roundRoot, 'data');
    const { hand, serviceEnv, beforeBackup } = deduplicatingRound(engine, {
      dir: roundRoot,
      site,
      password,
      serviceDataDir: dataDir,
    });
    const service = await startServiceProcess({
      ...benchServiceEnv(root),
      DATA_DIR: dataDir,
      PROVIDERS: engine,
      ...serviceEnv,
    });
    polled = service;
    try {
      const both = async <H, A>(handRun: () => Promise<H>, apiRun: () => Promise<A>): Promise<[H, A]> => {
        if (round % 2 === 0) return [await handRun(), await apiRun()];
        const apiTimed = await apiRun();
        return [await handRun(), apiTimed];
      };
      const backupHand = async () => {
        await beforeBackup();
        return handRun(() => hand.backup());
      };
      const backupApi = async () => {
        await beforeBackup();
        return timedJob(service, '/v1/sites/site1/backups', { level: 'full', provider: engine });
      };
      record(rows, engine, 'full', ...(await both(backupHand, backupApi)));
      changeShare(dirs, round);
      record(rows, engine, 'incremental', ...(await both(backupHand, backupApi)));
      const dest = join(roundRoot, 'hand-restore');
      const point = await newestPoint(service, engine);
      const restoreApi = () => timedJob(service, '/v1/sites/site1/restores', { restorePoint: point });
      // Restores vary more between runs than backups at 1,000,000 files (a restore writes the whole tree back), and
      // each backup round costs minutes: --restore-rounds repeats the restore pair on the same point.
      for (let again = 0; again < restoreRounds; again++) {
        const apiFirst = (round + again) % 2 === 1 ? await restoreApi() : undefined;
        const handRestore = await handRun(() => hand.restore(dest));
        discard(dest);
        record(rows, engine, 'restore site', handRestore, apiFirst ?? (await restoreApi()));
        const handOne = await handRun(() => hand.restore(dest, oneFile));
        discard(dest);
        record(
          rows,
          engine,
          'restore one file',
          handOne,
          await timedJob(service, '/v1/sites/site1/restores', { restorePoint: point, paths: [oneFileRel] }),
        );
        // The service's staging trees go too: the next pair starts with neither side's trees on the disk.
        discard(join(dataDir, 'restores'));
      }
      rss.push(memoryOf(service.child.pid!).peakMiB);
    } finally {
      polled = undefined;
      await service.stop();
    }
    // The round's repositories and restored trees stay until the bench ends (see Graveyard).
    discard(roundRoot);
  }
}

async function main(): Promise<void> {
  const opts = options({ files: 100_000, rounds: 3, engines: 'duplicity,bacula', 'restore-rounds': 1 });
  const rows: Row[] = [];
  const rss: number[] = [];
  const engines = opts.engines.split(',');
  assertInodesFor(opts.files, opts.rounds, opts['restore-rounds'], engines.length);
  graveyard = new Graveyard(mkdtempSync(join(tmpdir(), 'bench-inodes-discarded-')));
  try {
    for (const engine of engines) {
      const root = mkdtempSync(join(tmpdir(), `bench-inodes-${engine}-`));
      try {
        if (engine === 'duplicity') await benchDuplicity(root, opts.rounds, opts.files, rows, rss);
        else if (engine === 'bacula') await benchBacula(root, opts.rounds, opts.files, rows, rss);
        else if (engine === 'restic' || engine === 'borg')
          await benchDeduplicating(engine, root, opts.rounds, opts['restore-rounds'], opts.files, rows, rss);
        else throw new Error(`unknown engine ${engine}`);
      } finally {
        // The next engine's restores must not land where this site and its trees were just deleted.
        discard(root);
      }
    }
  } finally {
    graveyard.clear();
  }
  const figures = rows.map((row) => ({
    engine: row.engine,
    operation: row.operation,
    handMedianMs: Math.round(median(row.handMs)),
    apiMedianMs: Math.round(median(row.apiMs)),
    ratio: Number((median(row.apiMs) / median(row.handMs)).toFixed(3)),
    pairedRatio: medianOfRatios(row.apiMs, row.handMs),
    readP99Ms: Number(Math.max(...row.readP99Ms).toFixed(1)),
    handMs: row.handMs.map(Math.round),
    apiMs: row.apiMs.map(Math.round),
    ...(row.storedBytes.length ? { storedBytesMedian: Math.round(median(row.storedBytes)) } : {}),
    ...(row.handCpuMs.length
      ? {
          handCpuMedianMs: Math.round(median(row.handCpuMs)),
          apiCpuMedianMs: Math.round(median(row.apiCpuMs)),
          cpuRatio: Number((median(row.apiCpuMs) / median(row.handCpuMs)).toFixed(3)),
        }
      : {}),
  }));
  const peakRssMiB = Math.round(Math.max(...rss));
  printTable(`millions of inodes: ${opts.files} files, ${opts.rounds} interleaved rounds, API / hand`, [
    [
      'engine / operation',
      'hand (median) | API (median) | ratio | of rounds | status read p99 | CPU hand | CPU API | ratio',
    ],
    ...figures.map((f): [string, string] => [
      `${f.engine} ${f.operation}`,
      `${f.handMedianMs} ms | ${f.apiMedianMs} ms | ${f.ratio} | ${f.pairedRatio} | ${f.readP99Ms} ms` +
        (f.cpuRatio === undefined ? '' : ` | ${f.handCpuMedianMs} ms | ${f.apiCpuMedianMs} ms | ${f.cpuRatio}`),
    ]),
    ...figures
      .filter((f) => f.storedBytesMedian !== undefined)
      .map((f): [string, string] => [
        `${f.engine} ${f.operation}: stored at the target`,
        `${f.storedBytesMedian} bytes`,
      ]),
    ['service peak RSS', `${peakRssMiB} MiB`],
  ]);
  process.stdout.write(
    `${JSON.stringify({ bench: 'inodes', files: opts.files, rounds: opts.rounds, peakRssMiB, figures })}\n`,
  );
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
