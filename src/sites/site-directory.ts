import { Injectable } from '@nestjs/common';
import { readdir, readlink, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
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
    const rootMtimeMs = await stat(this.config.virtualRoot).then(
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
    const linkDomains = new Map<string, string[]>();
    await mapWithConcurrency(links, 64, async (name) => {
      const target = basename(await readlink(join(root, name)).catch(() => ''));
      if (!SITE_ID.test(target)) return;
      const list = linkDomains.get(target) ?? [];
      list.push(name.toLowerCase());
      linkDomains.set(target, list);
    });

    const sites = await mapWithConcurrency(siteIds, 64, async (id): Promise<Site> => {
      const siteRoot = join(root, id);
      const recorded = (await readServiceConfig(siteRoot, 'siteinfo'))?.domain?.toLowerCase();
      const primary = recorded && isDomainName(recorded) ? recorded : undefined;
      const linked = (linkDomains.get(id) ?? []).sort();
      const domains = [...new Set([...(primary ? [primary] : []), ...linked])];
      return { id, number: Number(SITE_ID.exec(id)![1]), root: siteRoot, domain: domains[0] ?? null, domains };
    });
    sites.sort((a, b) => a.number - b.number);

    const byId = new Map(sites.map((site) => [site.id, site]));
    const byDomain = new Map<string, Site>();
    for (const site of sites) for (const domain of site.domains) if (!byDomain.has(domain)) byDomain.set(domain, site);
    return { takenAt: Date.now(), rootMtimeMs, sites, byId, byDomain };
  }
}
