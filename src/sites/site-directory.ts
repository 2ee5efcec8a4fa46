import { Injectable } from '@nestjs/common';
import { readlink, stat } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';
import { mapWithConcurrency } from '../common/concurrency';
import { AppConfig } from '../config/app-config';
import { readServiceConfig } from './site-metadata';
import { isDomainName, SITE_ID, type SiteRef } from './site-ref';
import type { Site } from './site';

interface Snapshot {
  takenAt: number;
  rootMtimeMs: number;
  sites: Site[];
  byId: Map<string, Site>;
  byDomain: Map<string, Site>;
}

// The callback-based calls, promisified: fs/promises pays several times their per-call overhead, which dominates a scan
// of thousands of tiny files and links (nodejs/node#37583).
const readlinkAsync = promisify(readlink);
const statAsync = promisify(stat);

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

  constructor(private readonly config: AppConfig) {}

  async list(): Promise<Site[]> {
    return (await this.current()).sites;
  }

  async resolve(ref: SiteRef): Promise<Site> {
    const snapshot = await this.current();
    const site = ref.kind === 'id' ? snapshot.byId.get(ref.id) : snapshot.byDomain.get(ref.domain);
    if (!site) {
      const name = ref.kind === 'id' ? ref.id : ref.domain;
      throw new AppError(ErrorCode.SiteNotFound, `No site ${name} exists under ${this.config.virtualRoot}.`);
    }
    return site;
  }

  /** Drops the cached scan, e.g. after a test builds a new tree. */
  invalidate(): void {
    this.snapshot = undefined;
  }

  private async current(): Promise<Snapshot> {
    const rootMtimeMs = await statAsync(this.config.virtualRoot).then(
      (info) => info.mtimeMs,
      () => -1,
    );
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

  private async scan(rootMtimeMs: number): Promise<Snapshot> {
    const root = this.config.virtualRoot;
    const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
    const siteIds: string[] = [];
    const links: string[] = [];
    for (const entry of entries) {
      if (entry.isDirectory() && SITE_ID.test(entry.name)) siteIds.push(entry.name);
      else if (entry.isSymbolicLink() && isDomainName(entry.name.toLowerCase())) links.push(entry.name);
    }
    // Links and siteinfo files are independent reads: run both sets at once.
    const [linkDomains, sites] = await Promise.all([
      this.readDomainLinks(root, links),
      mapWithConcurrency(siteIds, 64, (id) => this.readSite(root, id)),
    ]);
    for (const site of sites) {
      const linked = (linkDomains.get(site.id) ?? []).sort();
      site.domains = [...new Set([...site.domains, ...linked])];
      site.domain = site.domains[0] ?? null;
    }
    sites.sort((a, b) => a.number - b.number);

    const byId = new Map(sites.map((site) => [site.id, site]));
    const byDomain = new Map<string, Site>();
    for (const site of sites) for (const domain of site.domains) if (!byDomain.has(domain)) byDomain.set(domain, site);
    return { takenAt: Date.now(), rootMtimeMs, sites, byId, byDomain };
  }

  /** siteN → the domains whose symlinks in VIRTUAL_ROOT point at it. */
  private async readDomainLinks(root: string, links: string[]): Promise<Map<string, string[]>> {
    const linkDomains = new Map<string, string[]>();
    await mapWithConcurrency(links, 64, async (name) => {
      const target = basename(await readlinkAsync(join(root, name)).catch(() => ''));
      if (!SITE_ID.test(target)) return;
      const list = linkDomains.get(target) ?? [];
      list.push(name.toLowerCase());
      linkDomains.set(target, list);
    });
    return linkDomains;
  }

  /** The site with only its recorded (primary) domain; linked domains are added by the caller. */
  private async readSite(root: string, id: string): Promise<Site> {
    const siteRoot = join(root, id);
    const recorded = (await readServiceConfig(siteRoot, 'siteinfo'))?.domain?.toLowerCase();
    const domains = recorded && isDomainName(recorded) ? [recorded] : [];
    return { id, number: Number(SITE_ID.exec(id)![1]), root: siteRoot, domain: domains[0] ?? null, domains };
  }
}
