import { Injectable, OnModuleInit } from '@nestjs/common';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { CatalogService } from '../catalog/catalog.service';
import { JobEngine } from '../jobs/job-engine';
import type { Job } from '../jobs/job';
import { ProviderRegistry } from '../providers/provider-registry';
import { SiteDirectory } from '../sites/site-directory';

const PREFIX = 'apiscp_backup_';
const GAUGES_NAMED_LIKE_COUNTERS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/**
 * Prometheus metrics. Counts and "last success" values are read from the catalog at scrape time, so they survive
 * restarts; durations are observed as jobs finish.
 */
@Injectable()
export class MetricsService implements OnModuleInit {
  readonly registry = new Registry();
  private readonly duration: Histogram<'kind' | 'provider' | 'status'>;
  /** Extra collectors other modules register (exports, webhooks). */
  private readonly extra: Array<() => void> = [];

  constructor(
    private readonly catalog: CatalogService,
    private readonly engine: JobEngine,
    private readonly providers: ProviderRegistry,
    private readonly sites: SiteDirectory,
  ) {
    collectDefaultMetrics({ register: this.registry, prefix: PREFIX + 'process_' });
    // prom-client names three gauges `*_total`, which Prometheus keeps for counters (`promtool check metrics` refuses
    // them); each is the sum of the per-type gauge of the same name without the suffix, so nothing is lost.
    for (const name of GAUGES_NAMED_LIKE_COUNTERS) this.registry.removeSingleMetric(`${PREFIX}process_${name}`);
    this.duration = new Histogram({
      name: `${PREFIX}job_duration_seconds`,
      help: 'Wall time of finished jobs, from start to end.',
      labelNames: ['kind', 'provider', 'status'],
      buckets: [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400],
      registers: [this.registry],
    });
    const statement = (sql: string) => this.catalog.statement(sql);
    new Counter({
      name: `${PREFIX}jobs_started_total`,
      help: 'Jobs that started running, by kind and provider.',
      labelNames: ['kind', 'provider'],
      registers: [this.registry],
      collect() {
        this.reset();
        // Jobs retention forgot are counted in forgotten_job_totals: a counter must never go down.
        const rows = statement(
          `SELECT kind, provider, SUM(n) AS n FROM (
             SELECT kind, COALESCE(provider, '') AS provider, COUNT(*) AS n FROM jobs WHERE started_at IS NOT NULL
             GROUP BY kind, provider
             UNION ALL SELECT kind, provider, started FROM forgotten_job_totals
           ) GROUP BY kind, provider HAVING SUM(n) > 0`,
        ).all() as Array<{ kind: string; provider: string; n: number }>;
        for (const row of rows) this.inc({ kind: row.kind, provider: row.provider }, row.n);
      },
    });
    new Counter({
      name: `${PREFIX}jobs_finished_total`,
      help: 'Jobs that ended, by kind, provider and final status.',
      labelNames: ['kind', 'provider', 'status'],
      registers: [this.registry],
      collect() {
        this.reset();
        const rows = statement(
          `SELECT kind, provider, status, SUM(n) AS n FROM (
             SELECT kind, COALESCE(provider, '') AS provider, status, COUNT(*) AS n FROM jobs
             WHERE status IN ('succeeded', 'failed', 'cancelled', 'interrupted') GROUP BY kind, provider, status
             UNION ALL SELECT kind, provider, status, finished FROM forgotten_job_totals
           ) GROUP BY kind, provider, status`,
        ).all() as Array<{ kind: string; provider: string; status: string; n: number }>;
        for (const row of rows) this.inc({ kind: row.kind, provider: row.provider, status: row.status }, row.n);
      },
    });
    new Gauge({
      name: `${PREFIX}jobs`,
      help: 'Jobs queued or running now.',
      labelNames: ['status'],
      registers: [this.registry],
      collect() {
        const rows = statement(
          `SELECT status, COUNT(*) AS n FROM jobs WHERE status IN ('queued', 'running') GROUP BY status`,
        ).all() as Array<{ status: string; n: number }>;
        this.set({ status: 'queued' }, rows.find((row) => row.status === 'queued')?.n ?? 0);
        this.set({ status: 'running' }, rows.find((row) => row.status === 'running')?.n ?? 0);
      },
    });
    const listSites = () => this.sites.list();
    const defaultProvider = () => this.providers.get().name;
    const availability = () => this.providerAvailability();
    new Gauge({
      name: `${PREFIX}last_success_timestamp_seconds`,
      help: 'When the newest successful backup of each site (and the server) finished, per provider; 0 when never.',
      labelNames: ['site', 'provider'],
      registers: [this.registry],
      async collect() {
        this.reset();
        const rows = statement(
          `SELECT site, provider, MAX(finished_at) AS at FROM jobs WHERE kind = 'backup' AND status = 'succeeded' GROUP BY site, provider`,
        ).all() as Array<{ site: string; provider: string; at: string }>;
        for (const row of rows) this.set({ site: row.site, provider: row.provider }, Date.parse(row.at) / 1000);
        // Sites never backed up show as 0, so "older than 26 hours" alerts catch them too.
        const backedUp = new Set(rows.map((row) => row.site));
        const provider = defaultProvider();
        for (const site of await listSites()) {
          if (!backedUp.has(site.id)) this.set({ site: site.id, provider }, 0);
        }
      },
    });
    new Gauge({
      name: `${PREFIX}restore_points`,
      help: 'Restore points known per site and provider (complete ones).',
      labelNames: ['site', 'provider'],
      registers: [this.registry],
      collect() {
        this.reset();
        const rows = statement(
          `SELECT subject, provider, COUNT(*) AS n FROM restore_points WHERE state = 'complete' GROUP BY subject, provider`,
        ).all() as Array<{ subject: string; provider: string; n: number }>;
        for (const row of rows) this.set({ site: row.subject, provider: row.provider }, row.n);
      },
    });
    new Counter({
      name: `${PREFIX}webhook_deliveries_failed_total`,
      help: 'Webhook deliveries given up after their retries, per event.',
      labelNames: ['event'],
      registers: [this.registry],
      collect() {
        this.reset();
        const rows = statement(
          `SELECT event, COUNT(*) AS n FROM webhook_deliveries WHERE status = 'failed' GROUP BY event`,
        ).all() as Array<{ event: string; n: number }>;
        for (const row of rows) this.inc({ event: row.event }, row.n);
      },
    });
    new Gauge({
      name: `${PREFIX}provider_up`,
      help: 'Whether each enabled provider is usable (1) or not (0).',
      labelNames: ['provider'],
      registers: [this.registry],
      async collect() {
        for (const { name, up } of await availability()) this.set({ provider: name }, up ? 1 : 0);
      },
    });
  }

  onModuleInit(): void {
    this.engine.onFinished((job) => this.observe(job));
  }

  /** Lets another module add its own metrics to the same registry. */
  addCollector(collect: () => void): void {
    this.extra.push(collect);
  }

  async render(): Promise<string> {
    for (const collect of this.extra) collect();
    return this.registry.metrics();
  }

  private observe(job: Job): void {
    if (!job.startedAt || !job.finishedAt) return;
    const seconds = (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000;
    this.duration.observe({ kind: job.kind, provider: job.provider ?? '', status: job.status }, seconds);
  }

  private providerAvailability(): Promise<Array<{ name: string; up: boolean }>> {
    return Promise.all(
      this.providers
        .all()
        .map(async (provider) => ({ name: provider.name, up: (await this.providers.status(provider)).available })),
    );
  }
}
