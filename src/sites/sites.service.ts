import { Injectable } from '@nestjs/common';
import { decodeCursor, encodeCursor, type Page } from '../common/pagination/page';
import { backupPathsOf, type Site } from './site';
import { SiteDirectory } from './site-directory';
import type { ListSitesQuery, SiteDetailModel, SiteModel } from './site.model';
import { ExportsService } from '../exports/exports.service';
import type { SiteRef } from './site-ref';

const DEFAULT_LIMIT = 100;

@Injectable()
export class SitesService {
  constructor(
    private readonly directory: SiteDirectory,
    private readonly exports: ExportsService,
  ) {}

  async list(query: ListSitesQuery): Promise<Page<SiteModel>> {
    let sites = await this.directory.list();
    if (query.domain) {
      const domain = query.domain.toLowerCase();
      sites = sites.filter((site) => site.domains.includes(domain));
    }
    const after = query.cursor ? decodeCursor(query.cursor, (value): value is number => Number.isInteger(value)) : 0;
    const limit = query.limit ?? DEFAULT_LIMIT;
    const start = after === 0 ? 0 : lowerBound(sites, after);
    const items = sites.slice(start, start + limit);
    const more = start + limit < sites.length;
    return { items: items.map(toModel), nextCursor: more ? encodeCursor(items.at(-1)!.number) : null };
  }

  async get(ref: SiteRef): Promise<SiteDetailModel> {
    const site = await this.directory.resolve(ref);
    const plan = await this.exports.planExport([site]);
    return {
      ...toModel(site),
      databases: plan.steps.map((step) => ({ engine: step.engine, name: step.database })),
      databaseServersUnavailable: plan.unlisted.map((problem) => ({
        engine: problem.engine,
        message: problem.error.message,
      })),
    };
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

/** Sites come from immutable scan snapshots, so each one's model is built once, not on every page served. */
const models = new WeakMap<Site, SiteModel>();

export function toModel(site: Site): SiteModel {
  let model = models.get(site);
  if (!model) {
    model = { id: site.id, domain: site.domain, domains: site.domains, paths: backupPathsOf(site) };
    models.set(site, model);
  }
  return model;
}
