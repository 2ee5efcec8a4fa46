import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { roleAllows, type Principal } from '../auth/role';
import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';
import { AppConfig } from '../config/app-config';
import type { Job } from '../jobs/job';
import { JobEngine, type JobHandler, type JobRun } from '../jobs/job-engine';
import { JobFailure } from '../jobs/job-failure';
import { ProviderRegistry } from '../providers/provider-registry';
import { RestorePointsService } from '../restore-points/restore-points.service';
import { SiteDirectory } from '../sites/site-directory';
import { subjectOf } from '../sites/site';
import type { SiteRef } from '../sites/site-ref';
import { restoreWorkArea, type BackupSubject } from '../providers/backup-provider';
import { BackupSubjects, SERVER_SUBJECT } from '../backups/backup-subjects';
import type { RestoreTarget } from './restore.model';
import { PRESERVED, recoverInterruptedSwap, swapIntoSite } from './site-swap';

type RestoreBody = { restorePoint: string; paths?: string[]; target?: RestoreTarget };

interface RestoreParams {
  restorePoint: string;
  paths: string[];
  target: RestoreTarget;
}

/** Restores a site's restore point into staging, or into the site itself through a swap. */
@Injectable()
export class RestoresService implements JobHandler, OnModuleInit {
  readonly kind = 'restore' as const;
  private readonly logger = new Logger(RestoresService.name);

  constructor(
    private readonly engine: JobEngine,
    private readonly registry: ProviderRegistry,
    private readonly sites: SiteDirectory,
    private readonly restorePoints: RestorePointsService,
    private readonly config: AppConfig,
    private readonly subjects: BackupSubjects,
  ) {}

  onModuleInit(): void {
    this.engine.register(this);
  }

  async start(ref: SiteRef, body: RestoreBody, by: Principal): Promise<Job> {
    const site = await this.sites.resolve(ref);
    return this.enqueue(subjectOf(site), body, by);
  }

  /** Server-wide restores go to staging only, whole: the operator puts grants and maps back by hand. */
  startServer(body: RestoreBody, by: Principal): Promise<Job> {
    if (body.target === 'in-place' || body.paths?.length) {
      throw new AppError(ErrorCode.ValidationFailed, 'A server restore goes whole to staging.', {
        errors: [{ field: 'body', messages: ['server restores take no paths and no in-place target'] }],
      });
    }
    return this.enqueue(this.subjects.listingSubject(SERVER_SUBJECT), body, by);
  }

  private async enqueue(subject: BackupSubject, body: RestoreBody, by: Principal): Promise<Job> {
    const target = body.target ?? 'staging';
    if (target === 'in-place' && !roleAllows(by.role, 'admin')) {
      throw new AppError(
        ErrorCode.Forbidden,
        `An in-place restore needs role admin; token ${by.name} has role ${by.role}.`,
      );
    }
    const paths = [...new Set(body.paths ?? [])];
    for (const path of paths) {
      if (PRESERVED.some((kept) => path === kept || path.startsWith(`${kept}/`))) {
        throw new AppError(
          ErrorCode.ValidationFailed,
          `${path} is never backed up (raw database files): it cannot be restored.`,
          {
            errors: [
              { field: 'body.paths', messages: [`${path} lies under ${PRESERVED.join(', ')}, which backups exclude`] },
            ],
          },
        );
      }
    }
    const point = await this.restorePoints.get(subject, body.restorePoint);
    if (point.state !== 'complete') {
      throw new AppError(
        ErrorCode.RestorePointNotFound,
        `Restore point ${point.id} is ${point.state} and cannot be restored.`,
      );
    }
    this.registry.get(point.provider);
    const params: RestoreParams = { restorePoint: point.id, paths, target };
    return this.engine.enqueue({
      kind: 'restore',
      site: subject.key,
      provider: point.provider,
      level: point.level,
      params: { ...params },
      requestedBy: by.name,
      steps: target === 'in-place' ? ['restore', 'swap'] : ['restore'],
    });
  }

  async run(run: JobRun): Promise<Record<string, unknown>> {
    const params = run.job.params as unknown as RestoreParams;
    const subject = await this.subjects.resolve(run.job.site!);
    const point = await this.restorePoints.get(subject, params.restorePoint);
    const provider = this.registry.get(point.provider);
    const destination = this.destinationOf(run.jobId, params.target);
    await mkdir(destination, { recursive: true, mode: 0o700 });
    try {
      const outcome = await run.step(
        'restore',
        () => provider.restore({ subject, point, paths: params.paths, destination }, run),
        (result) => (result.warnings.length ? result.warnings.join('; ') : null),
      );
      if (params.target === 'in-place') {
        await run.step('swap', async () => {
          if (run.signal.aborted) throw new JobFailure('cancelled', 'cancelled before the swap');
          await swapIntoSite(subject.root, destination, swappedPaths(params), `${destination}-previous`);
        });
        await rm(destination, { recursive: true, force: true });
      }
      return {
        restorePoint: point.id,
        chain: point.chain,
        target: params.target,
        destination: params.target === 'in-place' ? subject.root : destination,
        paths: params.paths,
        files: outcome.files,
        bytes: outcome.bytes,
        warnings: outcome.warnings,
      };
    } catch (error) {
      // A staging restore that failed leaves nothing half-made behind; neither does an in-place one (the site is untouched).
      await rm(destination, { recursive: true, force: true });
      await rm(restoreWorkArea(destination), { recursive: true, force: true });
      throw error;
    }
  }

  /**
   * A restore the service died in: a staging restore's directory goes (the job is not a success, so nothing half
   * restored stays); an in-place one puts the site back as it was unless its swap had committed.
   */
  async recover(job: Job): Promise<void> {
    const params = job.params as unknown as RestoreParams;
    const destination = this.destinationOf(job.id, params.target);
    await rm(restoreWorkArea(destination), { recursive: true, force: true });
    if (params.target !== 'in-place' || !job.site || !/^site\d+$/.test(job.site)) {
      await rm(destination, { recursive: true, force: true });
      return;
    }
    const siteRoot = join(this.config.virtualRoot, job.site);
    const found = await recoverInterruptedSwap(siteRoot, destination, swappedPaths(params), `${destination}-previous`);
    if (found === 'rolled-back')
      this.logger.warn(`${job.site}: put back the files an interrupted in-place restore had moved`);
    if (found === 'committed') this.logger.warn(`${job.site}: the interrupted in-place restore had already swapped in`);
  }

  private destinationOf(jobId: string, target: RestoreTarget): string {
    return target === 'in-place'
      ? join(this.config.virtualRoot, `.restore-${jobId}`)
      : this.config.dataPath('restores', jobId);
  }
}

function swappedPaths(params: RestoreParams): string[] {
  return params.paths.length ? params.paths : ['shadow', 'info'];
}
