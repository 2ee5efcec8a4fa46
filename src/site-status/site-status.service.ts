import { Injectable } from '@nestjs/common';
import { JobRepository } from '../jobs/job.repository';
import { toJobModel } from '../jobs/job.model';
import { RestorePointsService } from '../restore-points/restore-points.service';
import { SchedulerService } from '../scheduler/scheduler.service';
import { SiteDirectory } from '../sites/site-directory';
import { subjectOf } from '../sites/site';
import type { SiteRef } from '../sites/site-ref';
import type { SiteStatusModel } from './site-status.model';

@Injectable()
export class SiteStatusService {
  constructor(
    private readonly sites: SiteDirectory,
    private readonly jobs: JobRepository,
    private readonly restorePoints: RestorePointsService,
    private readonly scheduler: SchedulerService,
  ) {}

  async get(ref: SiteRef): Promise<SiteStatusModel> {
    const site = await this.sites.resolve(ref);
    const subject = subjectOf(site);
    const newest = (await this.restorePoints.list(subject, { limit: 20 })).items.find(
      (point) => point.state === 'complete',
    );
    return {
      site: site.id,
      lastSuccessfulBackups: this.jobs.lastSuccessfulBackups(site.id).map((job) => ({
        provider: job.provider ?? '',
        jobId: job.id,
        finishedAt: job.finishedAt!,
        level: (job.result?.level as string | undefined) ?? job.level,
        restorePoint: (job.result?.restorePoint as string | undefined) ?? null,
      })),
      newestRestorePoint: newest ?? null,
      activeJobs: this.jobs.active(site.id).map(toJobModel),
      nextRuns: this.scheduler.nextRuns(site.id),
    };
  }
}
