import { Injectable, OnModuleInit } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { CatalogService } from '../catalog/catalog.service';
import { Clock } from '../common/clock';
import { MetricsService } from '../metrics/metrics.service';

/**
 * Points kept and removed by prunes, and the bytes they freed. The figures live in the catalog (prune_totals,
 * prune_kept) and are read at scrape time, so a restart neither resets the counters nor forgets what was kept.
 */
@Injectable()
export class PruneMetrics implements OnModuleInit {
  constructor(
    private readonly metrics: MetricsService,
    private readonly catalog: CatalogService,
    private readonly clock: Clock,
  ) {}

  onModuleInit(): void {
    const registers = [this.metrics.registry];
    const statement = (sql: string) => this.catalog.statement(sql);
    const totals = () =>
      statement('SELECT provider, points_removed, bytes_freed FROM prune_totals').all() as Array<{
        provider: string;
        points_removed: number;
        bytes_freed: number;
      }>;
    new Counter({
      name: 'apiscp_backup_prune_points_removed_total',
      help: 'Restore points removed by prune jobs (kept in the catalog: survives restarts).',
      labelNames: ['provider'],
      registers,
      collect() {
        this.reset();
        for (const row of totals()) this.inc({ provider: row.provider }, row.points_removed);
      },
    });
    new Counter({
      name: 'apiscp_backup_prune_bytes_freed_total',
      help: 'Bytes prune jobs freed at the backup target, where the engine can tell (kept in the catalog).',
      labelNames: ['provider'],
      registers,
      collect() {
        this.reset();
        for (const row of totals()) this.inc({ provider: row.provider }, row.bytes_freed);
      },
    });
    new Gauge({
      name: 'apiscp_backup_prune_points_kept',
      help: 'Complete restore points the policy kept at the last prune of each site.',
      labelNames: ['site', 'provider'],
      registers,
      collect() {
        this.reset();
        const rows = statement('SELECT site, provider, kept FROM prune_kept').all() as Array<{
          site: string;
          provider: string;
          kept: number;
        }>;
        for (const row of rows) this.set({ site: row.site, provider: row.provider }, row.kept);
      },
    });
  }

  /** Before a prune removes anything: the points it is about to remove, so a kill cannot lose their count. */
  notePending(site: string, provider: string, points: string[]): void {
    const insert = this.catalog.statement(
      'INSERT OR IGNORE INTO prune_pending (provider, site, point) VALUES (?, ?, ?)',
    );
    this.catalog.transaction(() => {
      for (const point of points) insert.run(provider, site, point);
    });
  }

  /**
   * Counts the noted points the engine no longer lists as removed, and clears the notes: after a prune, or at the
   * start of the next one when the service died in it. Returns how many were counted.
   */
  settlePending(site: string, provider: string, present: ReadonlySet<string>): number {
    return this.catalog.transaction(() => {
      const noted = this.catalog
        .statement('SELECT point FROM prune_pending WHERE provider = ? AND site = ?')
        .all(provider, site) as Array<{ point: string }>;
      const gone = noted.filter((row) => !present.has(row.point)).length;
      this.catalog.statement('DELETE FROM prune_pending WHERE provider = ? AND site = ?').run(provider, site);
      if (gone > 0) this.addTotals(provider, gone, 0);
      return gone;
    });
  }

  /** After a prune: what the policy kept, and the bytes the engine says it freed. */
  record(site: string, provider: string, kept: number, bytesFreed: number | null): void {
    this.catalog.transaction(() => {
      this.addTotals(provider, 0, Math.max(0, bytesFreed ?? 0));
      this.catalog
        .statement(
          `INSERT INTO prune_kept (site, provider, kept, at) VALUES (?, ?, ?, ?)
           ON CONFLICT (site, provider) DO UPDATE SET kept = excluded.kept, at = excluded.at`,
        )
        .run(site, provider, kept, this.clock.now().toISOString());
    });
  }

  private addTotals(provider: string, removed: number, bytesFreed: number): void {
    this.catalog
      .statement(
        `INSERT INTO prune_totals (provider, points_removed, bytes_freed) VALUES (?, ?, ?)
         ON CONFLICT (provider) DO UPDATE SET points_removed = points_removed + excluded.points_removed,
           bytes_freed = bytes_freed + excluded.bytes_freed`,
      )
      .run(provider, removed, bytesFreed);
  }
}
