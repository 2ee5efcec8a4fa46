import { Injectable } from '@nestjs/common';
import { decodeCursor, DEFAULT_PAGE_LIMIT, encodeCursor, type Page } from '../common/pagination/page';
import { backupPathsOf, type Site } from './site';
import { SiteDirectory } from './site-directory';
import type { ListSitesQuery, SiteDetailModel, SiteModel } from './site.model';
import { DatabaseServers } from '../exports/database-servers';
import type { SiteRef } from './site-ref';

const MAX_CACHED_PAGES = 256;

@Injectable()
export class SitesService {
  /** Keyed by the snapshot's site array, so a rescan drops every cached page with it. */
  private readonly pageCache = new WeakMap<Site[], Map<string, string>>();

  constructor(
    private readonly directory: SiteDirectory,
    private readonly databaseServers: DatabaseServers,
  ) {}

  /**
   * A page of sites, serialized. Pages are cached per scan snapshot: a page of 100 sites is ~25 kB of JSON, and
   * serializing it for every poll was the largest single cost of `GET /v1/sites` under load.
   */
  async listJson(query: ListSitesQuery): Promise<string> {
    const sites = await this.directory.list();
    let pages = this.pageCache.get(sites);
    if (!pages) {
      pages = new Map();
      this.pageCache.set(sites, pages);
    }
    const key = JSON.stringify([query.domain ?? null, query.cursor ?? null, query.limit ?? null]);
    let json = pages.get(key);
    if (json === undefined) {
      json = JSON.stringify(this.page(sites, query));
      if (pages.size >= MAX_CACHED_PAGES) pages.clear();
      pages.set(key, json);
    }
    return json;
  }

  private page(all: Site[], query: ListSitesQuery): Page<SiteModel> {
    let sites = all;
    if (query.domain) {
      const domain = query.domain.toLowerCase();
      sites = sites.filter((site) => site.domains.includes(domain));
    }
    const after = query.cursor ? decodeCursor(query.cursor, (value): value is number => Number.isInteger(value)) : 0;
    const limit = query.limit ?? DEFAULT_PAGE_LIMIT;
    const start = after === 0 ? 0 : lowerBound(sites, after);
    const items = sites.slice(start, start + limit);
    const more = start + limit < sites.length;
    return { items: items.map(toModel), nextCursor: more ? encodeCursor(items.at(-1)!.number) : null };
  }

  async get(ref: SiteRef): Promise<SiteDetailModel> {
    const site = await this.directory.resolve(ref);
    const { databases, unavailable } = await this.databaseServers.forSite(site);
    return { ...toModel(site), databases, databaseServersUnavailable: unavailable };
  }
}

/** Index of the first site whose number is above `after` (sites are sorted by number). */
function lowerBound(sites: Site[], after: number): number {
  let low = 0;
  let high = sites.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sites[mid].number <= after) low = mid + 1;
    else high = mid;
  }
  return low;
}

export function toModel(site: Site): SiteModel {
  return { id: site.id, domain: site.domain, domains: site.domains, paths: backupPathsOf(site) };
}
