import { Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import type { Principal } from '../auth/role';
import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';
import type { Job } from '../jobs/job';
import { JobEngine, type JobRun } from '../jobs/job-engine';
import { JobHandler } from '../jobs/job-handler';
import { JobFailure } from '../jobs/job-failure';
import type { Site } from '../sites/site';
import { SiteDirectory } from '../sites/site-directory';
import { parseSiteRef } from '../sites/site-ref';
import { failedResult, succeededResult } from './export-error';
import type { ExportStepResult } from './export.model';
import { ExportMetrics } from './export-metrics';
import { ExportsService } from './exports.service';

export interface ExportSummary {
  exported: number;
  failed: Array<{ site: string; engine: string; database: string | null; code: string; message: string }>;
  files: Array<{ site: string; engine: string; database: string; file: string; bytes: number; sha256: string }>;
}

/** Export jobs (`POST /v1/exports`, the nightly run) and the export step of a backup. */
@JobHandler('export')
@Injectable()
export class ExportJobsService implements JobHandler, OnApplicationBootstrap {
  private readonly logger = new Logger(ExportJobsService.name);

  constructor(
    private readonly engine: JobEngine,
    private readonly exports: ExportsService,
    private readonly sites: SiteDirectory,
    private readonly metrics: ExportMetrics,
  ) {}

  /** Removes what exports killed mid-way left behind, in the background so start-up stays fast. */
  onApplicationBootstrap(): void {
    void this.sites
      .list()
      .then(async (sites) => {
        let removed = 0;
        for (const site of sites) removed += (await this.exports.removeLeftovers(site)).length;
        if (removed > 0) this.logger.warn(`removed ${removed} partial export file(s) left by an interrupted export`);
      })
      .catch((error: unknown) => this.logger.warn({ err: error }, 'leftover export cleanup failed'));
  }

  /** Starts an export of the named sites (all when absent); every name must exist, or nothing starts. */
  async start(refs: string[] | undefined, by: Principal | null): Promise<Job> {
    const sites = refs ? await this.resolveAll(refs) : null;
    return this.engine.enqueue({
      kind: 'export',
      site: sites?.length === 1 ? sites[0].id : null,
      provider: null,
      level: null,
      params: { sites: sites ? sites.map((site) => site.id) : null },
      requestedBy: by?.name ?? 'schedule',
    });
  }

  hasActiveExport(): boolean {
    return this.engine.hasActive('export');
  }

  async run(run: JobRun): Promise<Record<string, unknown>> {
    const wanted = (run.job.params as { sites: string[] | null }).sites;
    const sites = wanted
      ? await Promise.all(wanted.map((id) => this.sites.resolve(parseSiteRef(id))))
      : await this.sites.list();
    const summary = await this.exportSites(sites, run);
    if (summary.failed.length > 0) {
      throw new JobFailure(
        'export-failed',
        `${summary.failed.length} database export(s) failed: ${summary.failed
          .map((failure) => `${failure.site}/${failure.engine}/${failure.database ?? '*'} (${failure.message})`)
          .join('; ')}`,
      );
    }
    return { sites: sites.length, ...summary };
  }

  /**
   * Exports every database of `sites`, one job step per database, carrying on past failures; the caller decides
   * what a failure means.
   */
  async exportSites(sites: readonly Site[], run: JobRun): Promise<ExportSummary> {
    const summary: ExportSummary = { exported: 0, failed: [], files: [] };
    this.metrics.invalidate();
    const record = (result: ExportStepResult) => {
      if (result.status === 'succeeded' && result.entry) {
        summary.exported++;
        summary.files.push({ site: result.site, ...result.entry });
      } else {
        summary.failed.push({
          site: result.site,
          engine: result.engine,
          database: result.database,
          code: result.error?.code ?? result.status,
          message: result.error?.message ?? result.status,
        });
      }
    };
    // A job over several sites (site null) takes each site's lock while it works on it, as a site job would: nothing
    // is backed up or swapped in place under a half-written export. A site's own job already holds its lock.
    const locked = <T>(siteIds: string[], work: () => Promise<T>): Promise<T> =>
      run.job.site !== null || siteIds.length === 0
        ? work()
        : run.withSiteLock(siteIds[0], () => locked(siteIds.slice(1), work));
    if (this.exports.exporterKind === 'apiscp') {
      // ApisCP's backup_dbs.php exports everything in one run: one step, under every site's lock (taken in order).
      const ids = sites.map((site) => site.id).sort();
      const outcome = await locked(ids, () =>
        run.step('export-databases (backup_dbs.php)', () => this.exports.runExport(sites, run)),
      );
      outcome.results.forEach(record);
      return summary;
    }
    const plan = await this.exports.planExport(sites);
    for (const problem of plan.unlisted) {
      run.log(`${problem.engine}: cannot list databases: ${problem.error.message}`);
      for (const site of problem.sites) {
        summary.failed.push({ site, engine: problem.engine, database: null, ...problem.error });
      }
    }
    run.log(`exporting ${plan.steps.length} database(s) of ${sites.length} site(s)`);
    let done = 0;
    for (const siteId of [...new Set(plan.steps.map((step) => step.site.id))]) {
      await locked([siteId], async () => {
        for (const step of plan.steps.filter((candidate) => candidate.site.id === siteId)) {
          const name = `export ${step.site.id}/${step.engine}/${step.database}`;
          const started = Date.now();
          try {
            const entry = await run.step(
              name,
              () => this.exports.exportDatabase(step, run),
              (made) => `${made.bytes} bytes, sha256 ${made.sha256}`,
            );
            record(succeededResult(step, entry, Date.now() - started));
          } catch (error) {
            if (run.signal.aborted) throw error;
            record(failedResult(step, error, Date.now() - started));
          }
          run.progress({ percent: Math.round((++done / plan.steps.length) * 100) });
        }
      });
    }
    return summary;
  }

  private async resolveAll(refs: string[]): Promise<Site[]> {
    const missing: string[] = [];
    const sites: Site[] = [];
    for (const ref of [...new Set(refs)]) {
      try {
        sites.push(await this.sites.resolve(parseSiteRef(ref)));
      } catch (error) {
        if (error instanceof AppError && error.code === ErrorCode.SiteNotFound) missing.push(ref);
        else throw error;
      }
    }
    if (missing.length > 0) {
      throw new AppError(ErrorCode.SiteNotFound, `No such site(s): ${missing.join(', ')}. Nothing was exported.`, {
        missing,
      });
    }
    return sites;
  }
}
