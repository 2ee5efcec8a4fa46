import { Injectable } from '@nestjs/common';
import { readlinkSync, stat } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { promisify } from 'node:util';
import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';
import { AppConfig } from '../config/app-config';
import { readServiceConfigSync } from './site-metadata';
import { isDomainName, SITE_ID, type SiteRef } from './site-ref';
import type { Site } from './site';

interface Snapshot {
  takenAt: number;
  rootMtimeMs: number;
  sites: Site[];
  byId: Map<string, Site>;
  byDomain: Map<string, Site>;
}

// fs/promises costs several times the callback API per call (nodejs/node#37583); this runs on every list() and resolve().
const statAsync = promisify(stat);

/**
 * The scan reads its many tiny files and links synchronously, this many per turn of the event loop (a few ms each),
 * then yields. One fs/promises call per file spent most of a scan in per-call overhead (10,000 sites: 0.6-1.1 s, now
 * about 0.2 s; see bench/site-discovery.ts), and this never holds the event loop for the whole scan.
 */
const SCAN_SLICE = 256;

/** How long a look at VIRTUAL_ROOT's mtime serves list() calls. */
const ROOT_CHECK_MS = 1000;

/** A full rescan at most this often even when VIRTUAL_ROOT's own mtime is unchanged (a siteinfo edit does not touch it). */
const MAX_SNAPSHOT_AGE_MS = 15_000;

/**
 * Discovers sites from VIRTUAL_ROOT: `siteN` directories, domain symlinks pointing at them, and the domain recorded in
 * each site's `info/`. The scan is cached and redone when VIRTUAL_ROOT changes or the snapshot ages.
 */
@Injectable()
export class SiteDirectory {
  private snapshot?: Snapshot;
  private scanning?: Promise<Snapshot>;
  private rootCheck?: { at: number; mtimeMs: Promise<number> };

  constructor(private readonly config: AppConfig) {}

  async list(): Promise<Site[]> {
    return (await this.current()).sites;
  }

  async resolve(ref: SiteRef): Promise<Site> {
    const find = (snapshot: Snapshot) =>
      ref.kind === 'id' ? snapshot.byId.get(ref.id) : snapshot.byDomain.get(ref.domain);
    // A miss looks at VIRTUAL_ROOT again: a site created a moment ago must not be a 404 for up to a second.
    const site = find(await this.current()) ?? find(await this.current(true));
    if (!site) {
      const name = ref.kind === 'id' ? ref.id : ref.domain;
      throw new AppError(ErrorCode.SiteNotFound, `No site ${name} exists under ${this.config.virtualRoot}.`);
    }
    return site;
  }

  /** Drops the cached scan, e.g. after a test builds a new tree. */
  invalidate(): void {
    this.snapshot = undefined;
    this.rootCheck = undefined;
  }

  private async current(recheck = false): Promise<Snapshot> {
    const rootMtimeMs = await this.rootMtimeMs(recheck);
    const cached = this.snapshot;
    if (cached && cached.rootMtimeMs === rootMtimeMs && Date.now() - cached.takenAt < MAX_SNAPSHOT_AGE_MS) {
      return cached;
    }
    // Concurrent callers share one scan.
    this.scanning ??= this.scan(rootMtimeMs).finally(() => {
      this.scanning = undefined;
    });
    this.snapshot = await this.scanning;
    return this.snapshot;
  }

  /**
   * VIRTUAL_ROOT's mtime, looked at once per ROOT_CHECK_MS however many requests ask: under load one stat per
   * request went through libuv's thread pool for every poll.
   */
  private rootMtimeMs(recheck: boolean): Promise<number> {
    const now = Date.now();
    if (!recheck && this.rootCheck && now - this.rootCheck.at < ROOT_CHECK_MS) return this.rootCheck.mtimeMs;
    const mtimeMs = statAsync(this.config.virtualRoot).then(
      (info) => info.mtimeMs,
      () => -1,
    );
    this.rootCheck = { at: now, mtimeMs };
    return mtimeMs;
  }

  private async scan(rootMtimeMs: number): Promise<Snapshot> {
    const root = this.config.virtualRoot;
    const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
    const siteIds: string[] = [];
    const links: string[] = [];
    for (const entry of entries) {
      if (entry.isDirectory() && SITE_ID.test(entry.name)) siteIds.push(entry.name);
      else if (entry.isSymbolicLink() && isDomainName(entry.name.toLowerCase())) links.push(entry.name);
    }

    const linkDomains = new Map<string, string[]>();
    await inSlices(links, (name) => {
      const target = basename(readlinkOrEmpty(join(root, name)));
      if (!SITE_ID.test(target)) return;
      const list = linkDomains.get(target) ?? [];
      list.push(name.toLowerCase());
      linkDomains.set(target, list);
    });

    const sites: Site[] = [];
    await inSlices(siteIds, (id) => {
      const siteRoot = join(root, id);
      const recorded = readServiceConfigSync(siteRoot, 'siteinfo')?.domain?.toLowerCase();
      const primary = recorded && isDomainName(recorded) ? recorded : undefined;
      const linked = (linkDomains.get(id) ?? []).sort();
      const domains = [...new Set([...(primary ? [primary] : []), ...linked])];
      sites.push({ id, number: Number(SITE_ID.exec(id)![1]), root: siteRoot, domain: domains[0] ?? null, domains });
    });
    sites.sort((a, b) => a.number - b.number);

    const byId = new Map(sites.map((site) => [site.id, site]));
    const byDomain = new Map<string, Site>();
    for (const site of sites) for (const domain of site.domains) if (!byDomain.has(domain)) byDomain.set(domain, site);
    return { takenAt: Date.now(), rootMtimeMs, sites, byId, byDomain };
  }
}

/** Runs `work` on every item, SCAN_SLICE items per turn of the event loop. */
async function inSlices<T>(items: readonly T[], work: (item: T) => void): Promise<void> {
  for (let start = 0; start < items.length; start += SCAN_SLICE) {
    if (start > 0) await nextTurn();
    const end = Math.min(start + SCAN_SLICE, items.length);
    for (let index = start; index < end; index++) work(items[index]);
  }
}

function readlinkOrEmpty(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}
