import { Injectable, OnModuleInit } from '@nestjs/common';
import type { Principal } from '../auth/role';
import { JobEngine, type JobHandler, type JobRun } from '../jobs/job-engine';
import type { Job } from '../jobs/job';
import type { BackupLevel } from '../providers/backup-provider';
import { BackupSubjects, SERVER_SUBJECT } from './backup-subjects';
import { ProviderRegistry } from '../providers/provider-registry';
import { RestorePointsService } from '../restore-points/restore-points.service';
import { SiteDirectory } from '../sites/site-directory';
import type { SiteRef } from '../sites/site-ref';

type BackupBody = { level: BackupLevel; provider?: string; exportDatabases?: boolean };

export interface BackupParams {
  level: BackupLevel;
  provider: string;
  exportDatabases: boolean;
}

/** Starts site backups as jobs and runs them: the provider's backup, then a refresh of the restore points. */
@Injectable()
export class BackupsService implements JobHandler, OnModuleInit {
  readonly kind = 'backup' as const;

  constructor(
    private readonly engine: JobEngine,
    private readonly registry: ProviderRegistry,
    private readonly sites: SiteDirectory,
    private readonly restorePoints: RestorePointsService,
    private readonly subjects: BackupSubjects,
  ) {}

  onModuleInit(): void {
    this.engine.register(this);
  }

  async start(ref: SiteRef, body: BackupBody, by: Principal): Promise<Job> {
    const site = await this.sites.resolve(ref);
    return this.enqueue(site.id, body, by);
  }

  /** The server-wide locations (the seed's grants exports and mailbox maps) as their own backup. */
  startServer(body: BackupBody, by: Principal): Job {
    return this.enqueue(SERVER_SUBJECT, { ...body, exportDatabases: false }, by);
  }

  private enqueue(subject: string, body: BackupBody, by: Principal): Job {
    const provider = this.registry.forLevel(body.provider, body.level);
    const params: BackupParams = {
      level: body.level,
      provider: provider.name,
      exportDatabases: body.exportDatabases ?? false,
    };
    return this.engine.enqueue({
      kind: 'backup',
      site: subject,
      provider: provider.name,
      level: body.level,
      params: { ...params },
      requestedBy: by.name,
      steps: ['backup', 'restore-points'],
    });
  }

  async run(run: JobRun): Promise<Record<string, unknown>> {
    const params = run.job.params as unknown as BackupParams;
    const provider = this.registry.get(params.provider);
    const subject = await this.subjects.resolve(run.job.site!);
    const outcome = await run.step(
      'backup',
      () => provider.backup({ subject, level: params.level }, run),
      (result) => (result.level !== params.level ? `made a ${result.level} backup: ${result.notes.join('; ')}` : null),
    );
    const points = await run.step(
      'restore-points',
      () => this.restorePoints.refresh(provider, subject, run),
      (list) => `${list.length} restore point(s)`,
    );
    const newest = points.filter((point) => point.state === 'complete').sort((a, b) => b.time.localeCompare(a.time))[0];
    return {
      level: outcome.level,
      requestedLevel: params.level,
      restorePoint: outcome.restorePointId ?? newest?.id ?? null,
      bytes: outcome.bytes,
      files: outcome.files,
      warnings: outcome.warnings,
      notes: outcome.notes,
    };
  }

  async recover(job: Job): Promise<void> {
    if (!job.site || !job.provider) return;
    await this.registry.get(job.provider).recover?.(this.subjects.listingSubject(job.site));
  }
}
