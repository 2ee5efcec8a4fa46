import { Injectable } from '@nestjs/common';
import { Clock } from '../common/clock';
import type { Principal } from '../auth/role';
import { JobEngine, type JobRun } from '../jobs/job-engine';
import { JobHandler } from '../jobs/job-handler';
import type { Job } from '../jobs/job';
import type { BackupLevel } from '../jobs/backup-level';
import { BackupSubjects, SERVER_SUBJECT } from '../backup-subjects/backup-subjects';
import { ExportJobsService, type ExportSummary } from '../exports/export-jobs.service';
import { JobFailure } from '../jobs/job-failure';
import { ScopesService } from '../scopes/scopes.service';
import { parseSiteRef } from '../sites/site-ref';
import { ProviderRegistry } from '../providers/provider-registry';
import { RestorePointsService } from '../restore-points/restore-points.service';
import { SiteDirectory } from '../sites/site-directory';
import type { SiteRef } from '../sites/site-ref';

type BackupBody = {
  level: BackupLevel;
  provider?: string;
  exportDatabases?: boolean;
  continueOnExportFailure?: boolean;
};

export interface BackupParams {
  level: BackupLevel;
  provider: string;
  exportDatabases: boolean;
  continueOnExportFailure: boolean;
  /** Why a scheduled backup has the level it has (the restore-time budget), copied into the result's notes. */
  notes?: string[];
}

/** Who scheduled backups are requested by. */
export const SCHEDULE_PRINCIPAL: Principal = { name: 'schedule', role: 'admin' };

/** Starts site backups as jobs and runs them: the provider's backup, then a refresh of the restore points. */
@JobHandler('backup')
@Injectable()
export class BackupsService implements JobHandler {
  constructor(
    private readonly engine: JobEngine,
    private readonly registry: ProviderRegistry,
    private readonly sites: SiteDirectory,
    private readonly restorePoints: RestorePointsService,
    private readonly subjects: BackupSubjects,
    private readonly scopes: ScopesService,
    private readonly exportJobs: ExportJobsService,
    private readonly clock: Clock,
  ) {}

  async start(ref: SiteRef, body: BackupBody, by: Principal): Promise<Job> {
    const site = await this.sites.resolve(ref);
    // With the panel's nightly exports off, a backup exports first so it never carries a stale export.
    const exportDatabases = body.exportDatabases ?? !(await this.scopes.automaticDatabaseExports());
    return this.enqueue(site.id, { ...body, exportDatabases }, by);
  }

  /** The server-wide locations (the seed's grants exports and mailbox maps) as their own backup. */
  startServer(body: BackupBody, by: Principal): Job {
    return this.enqueue(SERVER_SUBJECT, { ...body, exportDatabases: false }, by);
  }

  /** A scheduled backup of a site (synchronous, so the scheduler writes it in the transaction of its slot). */
  enqueueScheduled(
    site: string,
    body: Required<Pick<BackupBody, 'level' | 'provider' | 'exportDatabases'>>,
    notes: string[],
  ): Job {
    return this.enqueue(site, body, SCHEDULE_PRINCIPAL, notes);
  }

  private enqueue(subject: string, body: BackupBody, by: Principal, notes: string[] = []): Job {
    const provider = this.registry.forLevel(body.provider, body.level);
    const params: BackupParams = {
      level: body.level,
      provider: provider.name,
      exportDatabases: body.exportDatabases ?? false,
      continueOnExportFailure: body.continueOnExportFailure ?? false,
      ...(notes.length ? { notes } : {}),
    };
    return this.engine.enqueue({
      kind: 'backup',
      site: subject,
      provider: provider.name,
      level: body.level,
      params: { ...params },
      requestedBy: by.name,
      steps: [...(params.exportDatabases ? ['export-databases'] : []), 'backup', 'restore-points'],
    });
  }

  async run(run: JobRun): Promise<Record<string, unknown>> {
    const params = run.job.params as unknown as BackupParams;
    const provider = this.registry.get(params.provider);
    const subject = await this.subjects.resolve(run.job.site!);
    const exported = params.exportDatabases ? await this.exportFirst(run, params) : null;
    const outcome = await run.step(
      'backup',
      () => provider.backup({ subject, level: params.level, time: this.clock.now() }, run),
      (result) => (result.level !== params.level ? `made a ${result.level} backup: ${result.notes.join('; ')}` : null),
    );
    const points = await run.step(
      'restore-points',
      () => this.restorePoints.refresh(provider, subject, run, outcome.points),
      (list) => `${list.length} restore point(s)`,
    );
    const newest = points.filter((point) => point.state === 'complete').sort((a, b) => b.time.localeCompare(a.time))[0];
    return {
      level: outcome.level,
      requestedLevel: params.level,
      restorePoint: outcome.restorePointId ?? newest?.id ?? null,
      bytes: outcome.bytes,
      files: outcome.files,
      warnings: [
        ...outcome.warnings,
        ...(exported?.failed.map((f) => `export of ${f.engine}/${f.database ?? '*'} failed: ${f.message}`) ?? []),
      ],
      notes: [...(params.notes ?? []), ...outcome.notes],
      exports: exported?.files ?? [],
    };
  }

  /** Exports the site's databases into its tree before the files are backed up; a failure stops the job unless asked. */
  private async exportFirst(run: JobRun, params: BackupParams): Promise<ExportSummary> {
    const site = await this.sites.resolve(parseSiteRef(run.job.site!));
    return run.step(
      'export-databases',
      async () => {
        const summary = await this.exportJobs.exportSites([site], run);
        if (summary.failed.length > 0 && !params.continueOnExportFailure) {
          throw new JobFailure(
            'export-failed',
            `the database export failed, so no files were backed up (${summary.failed
              .map((f) => `${f.engine}/${f.database ?? '*'}: ${f.message}`)
              .join('; ')}); pass continueOnExportFailure to back up anyway`,
          );
        }
        return summary;
      },
      (summary) =>
        `${summary.exported} database(s) exported${summary.failed.length ? `, ${summary.failed.length} failed` : ''}`,
    );
  }

  async recover(job: Job): Promise<void> {
    if (!job.site || !job.provider) return;
    await this.registry.get(job.provider).recover?.(this.subjects.listingSubject(job.site));
  }
}
