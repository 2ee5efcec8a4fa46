import { Injectable, OnModuleInit } from '@nestjs/common';
import { Gauge } from 'prom-client';
import { MetricsService } from '../metrics/metrics.service';
import { SiteDirectory } from '../sites/site-directory';
import { ExportsService } from './exports.service';

const REFRESH_MS = 60_000;

/** `apiscp_backup_export_newest_timestamp_seconds`: when each database's newest export was made. */
@Injectable()
export class ExportMetrics implements OnModuleInit {
  private cache: { at: number; rows: Array<{ site: string; engine: string; database: string; at: number }> } = {
    at: 0,
    rows: [],
  };

  constructor(
    private readonly metrics: MetricsService,
    private readonly exports: ExportsService,
    private readonly sites: SiteDirectory,
  ) {}

  onModuleInit(): void {
    const newest = () => this.newest();
    new Gauge({
      name: 'apiscp_backup_export_newest_timestamp_seconds',
      help: 'When the newest export of each database was made (manifests are re-read at most once a minute).',
      labelNames: ['site', 'engine', 'database'],
      registers: [this.metrics.registry],
      async collect() {
        this.reset();
        for (const row of await newest())
          this.set({ site: row.site, engine: row.engine, database: row.database }, row.at);
      },
    });
  }

  private async newest(): Promise<Array<{ site: string; engine: string; database: string; at: number }>> {
    if (Date.now() - this.cache.at < REFRESH_MS) return this.cache.rows;
    const rows: Array<{ site: string; engine: string; database: string; at: number }> = [];
    for (const site of await this.sites.list()) {
      const seen = new Set<string>();
      // Newest first: the first entry per database is its newest.
      for (const entry of await this.exports.listExports(site)) {
        const key = `${entry.engine}/${entry.database}`;
        if (seen.has(key)) continue;
        seen.add(key);
        rows.push({
          site: site.id,
          engine: entry.engine,
          database: entry.database,
          at: Date.parse(entry.createdAt) / 1000,
        });
      }
    }
    this.cache = { at: Date.now(), rows };
    return rows;
  }

  /** Drops the cache after an export so the next scrape shows it. */
  invalidate(): void {
    this.cache.at = 0;
  }
}
