import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeSites } from '../test/support/sample-sites';
import type { ServiceProcess } from '../test/support/service-process';
import { writeTokensFile } from '../test/support/test-app';

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

/** Runs a command to completion; resolves with its wall time in ms, rejects on a non-zero exit. */
export function timeCommand(command: string, args: string[], env: Record<string, string> = {}): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
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

/** Starts a backup of site1 through the API and waits for it as a caller would; resolves with its wall time in ms. */
export async function timedApiBackup(service: ServiceProcess, body: Record<string, string>): Promise<number> {
  const started = performance.now();
  const job = await service.call('POST', '/v1/sites/site1/backups', body);
  if (job.status !== 202) throw new Error(`POST answered ${job.status}: ${JSON.stringify(job.body)}`);
  let state = job.body;
  while (!['succeeded', 'failed', 'cancelled', 'interrupted'].includes(state.status as string)) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    state = (await service.call('GET', `/v1/jobs/${job.body.id}`)).body;
  }
  if (state.status !== 'succeeded') throw new Error(`API backup ${state.status}: ${JSON.stringify(state.error)}`);
  return performance.now() - started;
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
