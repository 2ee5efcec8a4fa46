/**
 * Site discovery benchmark: how long the real SiteDirectory takes to scan a VIRTUAL_ROOT of N sites, to answer list()
 * from its cache, and to resolve a domain.
 *
 *   node dist-test/bench/site-discovery.js [--sites 10000] [--runs 7] [--keep]
 *
 * Builds the tree under the system temp directory (removed at the end unless --keep). "Cold" means a new SiteDirectory
 * with nothing cached; the kernel's dentry and page caches are warm, as they are on a live server.
 */
import 'reflect-metadata';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadConfig } from '../src/config/load-config';
import { SiteDirectory } from '../src/sites/site-directory';

interface Options {
  sites: number;
  runs: number;
  keep: boolean;
}

interface Figures {
  sites: number;
  runs: number;
  buildMs: number;
  coldMs: number[];
  coldMedianMs: number;
  warmListMedianUs: number;
  resolveMedianUs: number;
  peakRssMiB: number;
  node: string;
}

const WARM_CALLS = 1_000;
const RESOLVE_CALLS = 1_000;

function parseOptions(argv: string[]): Options {
  const options: Options = { sites: 10_000, runs: 7, keep: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--keep') options.keep = true;
    else if (arg === '--sites' || arg === '--runs') {
      const value = Number(argv[++i]);
      if (!Number.isInteger(value) || value < 1) throw new Error(`${arg} needs a positive integer`);
      options[arg === '--sites' ? 'sites' : 'runs'] = value;
    } else {
      throw new Error(`unknown argument ${arg}; usage: site-discovery [--sites N] [--runs R] [--keep]`);
    }
  }
  return options;
}

/** The layout ApisCP leaves on disk: siteN/info/current/siteinfo, a domain symlink and an adminN symlink per site. */
function buildVirtualRoot(root: string, sites: number): void {
  mkdirSync(root, { recursive: true });
  for (let n = 1; n <= sites; n++) {
    const current = join(root, `site${n}`, 'info', 'current');
    mkdirSync(current, { recursive: true });
    writeFileSync(join(current, 'siteinfo'), `domain = site${n}.example.com\nadmin_user = admin${n}\n`);
    symlinkSync(`site${n}`, join(root, `site${n}.example.com`));
    symlinkSync(`site${n}`, join(root, `admin${n}`));
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

async function measure(options: Options, root: string, dataDir: string): Promise<Omit<Figures, 'buildMs'>> {
  const config = loadConfig({
    VIRTUAL_ROOT: root,
    DATA_DIR: dataDir,
    APNSCP_ROOT: join(dataDir, 'no-apnscp'),
    LOG_FORMAT: 'json',
  });

  const coldMs: number[] = [];
  const warmUs: number[] = [];
  const resolveUs: number[] = [];
  for (let run = 0; run < options.runs; run++) {
    const directory = new SiteDirectory(config);
    let started = performance.now();
    const sites = await directory.list();
    coldMs.push(performance.now() - started);
    if (sites.length !== options.sites) throw new Error(`discovered ${sites.length} sites, expected ${options.sites}`);

    started = performance.now();
    for (let i = 0; i < WARM_CALLS; i++) await directory.list();
    warmUs.push(((performance.now() - started) * 1000) / WARM_CALLS);

    // A fixed stride through the domains so every run asks for the same spread of sites.
    started = performance.now();
    for (let i = 0; i < RESOLVE_CALLS; i++) {
      const n = ((i * 7919) % options.sites) + 1;
      const site = await directory.resolve({ kind: 'domain', domain: `site${n}.example.com` });
      if (site.id !== `site${n}`) throw new Error(`site${n}.example.com resolved to ${site.id}`);
    }
    resolveUs.push(((performance.now() - started) * 1000) / RESOLVE_CALLS);
  }

  return {
    sites: options.sites,
    runs: options.runs,
    coldMs: coldMs.map((ms) => Math.round(ms * 10) / 10),
    coldMedianMs: Math.round(median(coldMs) * 10) / 10,
    warmListMedianUs: Math.round(median(warmUs) * 10) / 10,
    resolveMedianUs: Math.round(median(resolveUs) * 10) / 10,
    // maxRSS is in KiB on Linux.
    peakRssMiB: Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10,
    node: process.version,
  };
}

function printTable(figures: Figures): void {
  const rows: [string, string][] = [
    ['sites', String(figures.sites)],
    ['tree build', `${figures.buildMs} ms`],
    [`cold discovery, median of ${figures.runs}`, `${figures.coldMedianMs} ms`],
    ['cold discovery, each run', figures.coldMs.map((ms) => `${ms}`).join(' ') + ' ms'],
    [`warm list(), per call (${WARM_CALLS} calls)`, `${figures.warmListMedianUs} µs`],
    [`resolve(domain), per call (${RESOLVE_CALLS} calls)`, `${figures.resolveMedianUs} µs`],
    ['peak RSS', `${figures.peakRssMiB} MiB`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  for (const [label, value] of rows) process.stdout.write(`${label.padEnd(width)}  ${value}\n`);
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const base = mkdtempSync(join(tmpdir(), 'site-discovery-bench-'));
  try {
    const root = join(base, 'virtual');
    const started = performance.now();
    buildVirtualRoot(root, options.sites);
    const buildMs = Math.round(performance.now() - started);
    const figures: Figures = { buildMs, ...(await measure(options, root, join(base, 'data'))) };
    printTable(figures);
    process.stdout.write(`${JSON.stringify({ bench: 'site-discovery', ...figures })}\n`);
  } finally {
    if (options.keep) process.stderr.write(`tree kept at ${base}\n`);
    else rmSync(base, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
