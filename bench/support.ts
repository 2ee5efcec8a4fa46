import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CHILD_NICENESS } from '../src/common/process/process-runner';
import { makeSites } from '../test/support/sample-sites';
import type { JobBody } from '../test/support/jobs';
import { waitForServiceJob, type ServiceProcess } from '../test/support/service-process';
import { TOKENS, writeTokensFile } from '../test/support/test-app';

/** `--name value` options with defaults. */
export function options<T extends Record<string, number | string>>(defaults: T, argv = process.argv.slice(2)): T {
  const result: Record<string, number | string> = { ...defaults };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '');
    if (!(key in defaults)) throw new Error(`unknown option --${key}; known: ${Object.keys(defaults).join(', ')}`);
    result[key] = typeof defaults[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  return result as T;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * The median of each round's API time over the hand time beside it: a slow minute of the machine hits both of a pair,
 * where the ratio of the two medians can pair a slow round of one side with a quick one of the other.
 */
export function medianOfRatios(api: number[], hand: number[]): number {
  return Number(median(api.map((ms, round) => ms / hand[round])).toFixed(3));
}

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Peak resident set (VmHWM) and current RSS of a process, in MiB. */
export function memoryOf(pid: number): { peakMiB: number; rssMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
  return { peakMiB: kb('VmHWM') / 1024, rssMiB: kb('VmRSS') / 1024 };
}

const CLOCK_TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/**
 * CPU time of a process (user + system) and of the children it has reaped, in ms, from /proc. CPU time barely moves
 * with the machine's load, unlike wall time: on a busy machine it still says whether the API makes the engine work
 * more. A child counts once it has exited and been waited for, with its own reaped children.
 */
export function cpuOf(pid: number | 'self'): { selfMs: number; childrenMs: number } {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const ms = (index: number) => (Number(fields[index]) * 1000) / CLOCK_TICKS_PER_SECOND;
  // After "pid (comm) ": state is field 0, utime 11, stime 12, cutime 13, cstime 14.
  return { selfMs: ms(11) + ms(12), childrenMs: ms(13) + ms(14) };
}

/**
 * The niceness the service gives its backup children (process and sched autogroup, see process-runner.ts). A command
 * "by hand" runs at the same priority, so that on a busy machine the comparison measures the service, not the
 * scheduler's treatment of a niced group.
 */
export const SERVICE_CHILD_NICENESS = CHILD_NICENESS;

/** Runs a command to completion; resolves with its wall time in ms, rejects on a non-zero exit. */
export function timeCommand(
  command: string,
  args: string[],
  env: Record<string, string> = {},
  niceness = SERVICE_CHILD_NICENESS,
): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
    });
    if (child.pid !== undefined) {
      try {
        setPriority(child.pid, niceness);
        writeFileSync(`/proc/${child.pid}/autogroup`, String(niceness));
      } catch {
        // exited already, or no autogroup on this kernel
      }
    }
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('exit', (code) =>
      code === 0
        ? resolve(performance.now() - started)
        : reject(new Error(`${command} exited ${code}: ${stderr.slice(-500)}`)),
    );
  });
}

export const REPO_ROOT = join(__dirname, '..', '..');

export function printTable(title: string, rows: Array<[string, string]>): void {
  const width = Math.max(...rows.map(([name]) => name.length));
  process.stdout.write(`\n${title}\n${'-'.repeat(title.length)}\n`);
  for (const [name, value] of rows) process.stdout.write(`${name.padEnd(width)}  ${value}\n`);
}

/** site1 under `virtualRoot` with `files` files of random bytes, `sizeMiB` in all; returns the MiB written. */
export function makeRandomSite(virtualRoot: string, sizeMiB: number, files: number): number {
  makeSites(virtualRoot, [{ n: 1, domain: 'bench.example' }]);
  const data = join(virtualRoot, 'site1', 'shadow', 'data');
  mkdirSync(data, { recursive: true });
  const perFile = Math.max(1, Math.floor(sizeMiB / files));
  for (let i = 0; i < files; i++) {
    execFileSync('sh', ['-c', `head -c ${perFile}M /dev/urandom > '${join(data, `f${i}.bin`)}'`]);
  }
  return perFile * files;
}

/** A backup through the API against the same backup by hand: medians, their ratio, every run, the service's RSS. */
export function backupComparison(apiMs: number[], handMs: number[], rss: { idleMiB: number; peakMiB: number }) {
  return {
    handMedianMs: Math.round(median(handMs)),
    apiMedianMs: Math.round(median(apiMs)),
    ratio: Number((median(apiMs) / median(handMs)).toFixed(3)),
    handMs: handMs.map(Math.round),
    apiMs: apiMs.map(Math.round),
    serviceIdleRssMiB: Math.round(rss.idleMiB),
    servicePeakRssMiB: Math.round(rss.peakMiB),
  };
}

export function backupComparisonRows(figures: ReturnType<typeof backupComparison>): Array<[string, string]> {
  return [
    ['by hand (median)', `${figures.handMedianMs} ms  ${JSON.stringify(figures.handMs)}`],
    ['through the API (median)', `${figures.apiMedianMs} ms  ${JSON.stringify(figures.apiMs)}`],
    ['ratio API / hand', String(figures.ratio)],
    ['service RSS idle / peak', `${figures.serviceIdleRssMiB} / ${figures.servicePeakRssMiB} MiB`],
  ];
}

/**
 * Flushes the dirty pages earlier steps left (whole trees written) before a timed run starts, so neither side pays the
 * other's writeback. Untimed.
 */
export function settle(): void {
  execFileSync('sync');
}

/**
 * Reads every regular file under `dir`, so that a timed run finds the tree in memory as the run before it did. borg
 * drops the pages of what it reads (its chunker's `posix_fadvise(DONTNEED)`): the run after a borg backup read the
 * site from disk and the one before it from memory (at 1,000,000 files, 121 s against 43 s for the same `borg create`
 * by hand, and the page cache fell from 7.4 to 3.5 GiB during one run). Untimed.
 */
export async function warmPageCache(dir: string): Promise<void> {
  // Not execFileSync: a minute with the event loop stopped leaves pooled HTTP connections to the service closed by
  // its keep-alive timeout without the client noticing, and the next request fails with "other side closed".
  await promisify(execFile)('sh', ['-c', 'find "$1" -type f -print0 | xargs -0 -P 2 cat > /dev/null', 'sh', dir]);
}

/**
 * A run by hand after `settle()`: its wall time, and the CPU of this process's children that ended meanwhile (the
 * engine's processes when the run spawns them; nothing for an engine working in its own daemons).
 */
export async function timedByHand(run: () => Promise<number>): Promise<{ ms: number; cpuMs: number }> {
  settle();
  const before = cpuOf('self').childrenMs;
  const ms = await run();
  return { ms, cpuMs: cpuOf('self').childrenMs - before };
}

/**
 * Starts a job through the API and waits for it as a caller would (`GET /v1/jobs/{id}?waitSeconds=60`, answered when
 * the job ends); resolves with its wall time, the CPU of the service's children that ended meanwhile (the engine's
 * processes), and the job's result.
 */
export async function timedServiceJob(
  service: ServiceProcess,
  path: string,
  body: object,
): Promise<{ ms: number; cpuMs: number; result: Record<string, unknown> }> {
  const cpuBefore = cpuOf(service.child.pid!);
  const started = performance.now();
  const job = await service.call('POST', path, body);
  if (job.status !== 202) throw new Error(`POST ${path} answered ${job.status}: ${JSON.stringify(job.body)}`);
  // No deadline of its own: a 1,000,000-file job takes minutes, and a failure ends it anyway.
  const state = await waitForServiceJob(service, job.body.id as string, undefined, Number.POSITIVE_INFINITY);
  const ms = performance.now() - started;
  const cpuAfter = cpuOf(service.child.pid!);
  const cpuMs = cpuAfter.childrenMs - cpuBefore.childrenMs;
  if (state.status !== 'succeeded') throw new Error(`API job ${state.status}: ${JSON.stringify(state.error)}`);
  process.stderr.write(
    `  ${path} ${Math.round(ms)} ms: ${stepTimes(state)}; CPU: children ${Math.round(cpuMs)} ms, ` +
      `the service itself ${Math.round(cpuAfter.selfMs - cpuBefore.selfMs)} ms${await fenceNote(service, job.body.id as string)}\n`,
  );
  return { ms, cpuMs, result: state.result ?? {} };
}

/** What the job log says of the engine and the attribute capture (manifest-fence.ts), if anything. */
async function fenceNote(service: ServiceProcess, id: string): Promise<string> {
  const res = await fetch(`${service.url}/v1/jobs/${id}/log`, { headers: { Authorization: `Bearer ${TOKENS.admin}` } });
  const line = (await res.text()).split('\n').find((entry) => entry.includes('beside the attribute capture'));
  return line ? `; ${line.slice(line.indexOf(' ') + 1)}` : '';
}

/** Where a job's time went: each step's duration, so a gap to the hand command can be placed. */
export function stepTimes(job: JobBody): string {
  const span = (from: string | null, to: string | null) =>
    from && to ? `${Date.parse(to) - Date.parse(from)} ms` : '-';
  return [
    ...job.steps.map((step) => `${step.name} ${span(step.startedAt, step.finishedAt)}`),
    `queued ${span(job.createdAt, job.startedAt)}`,
    `created to finished ${span(job.createdAt, job.finishedAt)}`,
  ].join(', ');
}

/** Starts a backup of site1 through the API and waits for it as a caller would; resolves with its wall time in ms. */
export async function timedApiBackup(service: ServiceProcess, body: Record<string, string>): Promise<number> {
  return (await timedServiceJob(service, '/v1/sites/site1/backups', body)).ms;
}

/** The service's environment for a benchmark under `root`: sites in `root/virtual`, state in `root/data`. */
export function benchServiceEnv(root: string): Record<string, string> {
  return {
    VIRTUAL_ROOT: join(root, 'virtual'),
    DATA_DIR: join(root, 'data'),
    API_TOKENS_FILE: writeTokensFile(root),
    LOG_LEVEL: 'warn',
  };
}

/**
 * Where a benchmark puts the trees it is done with (restored sites, finished rounds) until it ends, instead of
 * deleting them between timed runs. ext4 without a journal (this machine's root filesystem: /proc/fs/jbd2 lists
 * nothing) does not reuse an inode freed in the last 60 s, or 360 s while its inode-table block is dirty, and checks
 * every free inode it passes (fs/ext4/ialloc.c, recently_deleted): a restore that writes 100,000 files where 100,000
 * were just deleted spends most of its CPU in the kernel (perf: 75 % in recently_deleted/find_inode_bit under
 * openat; 38–61 s instead of 9 s for the same `duplicity restore` by hand). Deleting the hand run's tree just before
 * the API's restore made every API restore pay that and no hand restore.
 */
export class Graveyard {
  private buried = 0;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }

  /** Moves `path` (on the same filesystem) out of the way; a path already gone is fine. */
  discard(path: string): void {
    try {
      renameSync(path, join(this.dir, String(this.buried++)));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }

  /** Deletes everything discarded: when the timed runs are over. */
  clear(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
