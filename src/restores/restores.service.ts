import { removeServiceTree } from '../common/safe-fs';
import { Injectable, Logger, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { lstat, mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { roleAllows, type Principal } from '../auth/role';
import { AppError } from '../common/errors/app-error';
import { assertFreeSpace } from '../common/free-space';
import { ErrorCode } from '../common/errors/error-code';
import { AppConfig } from '../config/app-config';
import { Clock } from '../common/clock';
import { FINISHED_STATUSES, type Job } from '../jobs/job';
import { JobEngine, type JobRun } from '../jobs/job-engine';
import { JobHandler } from '../jobs/job-handler';
import { JobFailure } from '../jobs/job-failure';
import { ProviderRegistry } from '../providers/provider-registry';
import { RestorePointsService } from '../restore-points/restore-points.service';
import { SiteDirectory } from '../sites/site-directory';
import { subjectOf } from '../sites/site';
import type { SiteRef } from '../sites/site-ref';
import { restoreWorkArea, type BackupSubject } from '../providers/backup-provider';
import { BackupSubjects, SERVER_SUBJECT } from '../backup-subjects/backup-subjects';
import type { RestoreTarget } from './restore.model';
import { PRESERVED, recoverInterruptedSwap, swapIntoSite } from './site-swap';

type RestoreBody = { restorePoint: string; paths?: string[]; target?: RestoreTarget };

interface RestoreParams {
  restorePoint: string;
  paths: string[];
  target: RestoreTarget;
}

/** Restores a site's restore point into staging, or into the site itself through a swap. */
@JobHandler('restore')
@Injectable()
export class RestoresService implements JobHandler, OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(RestoresService.name);
  private sweeper: NodeJS.Timeout | undefined;

  constructor(
    private readonly engine: JobEngine,
    private readonly registry: ProviderRegistry,
    private readonly sites: SiteDirectory,
    private readonly restorePoints: RestorePointsService,
    private readonly config: AppConfig,
    private readonly subjects: BackupSubjects,
    private readonly clock: Clock,
  ) {}

  /** Expired staging restores go at start-up, hourly, and before each new restore. */
  onApplicationBootstrap(): void {
    this.sweepInBackground();
    this.sweeper = setInterval(() => this.sweepInBackground(), 3600_000).unref();
  }

  onModuleDestroy(): void {
    clearInterval(this.sweeper);
  }

  private sweepInBackground(): void {
    void this.expireStaging().catch((error: unknown) => this.logger.warn({ err: error }, 'staging sweep failed'));
  }

  /**
   * Removes staging restores whose job ended more than RESTORE_STAGING_TTL_HOURS ago (a directory whose job the
   * catalog forgot counts from its modification time); returns their job ids.
   */
  async expireStaging(): Promise<string[]> {
    const root = this.config.dataPath('restores');
    let names: string[];
    try {
      names = await readdir(root);
    } catch {
      return [];
    }
    const ttlMs = this.config.restores.stagingTtlHours * 3600_000;
    const now = this.clock.now().getTime();
    const removed: string[] = [];
    for (const name of names) {
      let endedAt: number;
      try {
        const job = this.engine.get(name);
        if (!FINISHED_STATUSES.includes(job.status)) continue;
        endedAt = Date.parse(job.finishedAt ?? job.createdAt);
      } catch {
        const stats = await lstat(this.config.dataPath('restores', name)).catch(() => undefined);
        if (!stats) continue;
        endedAt = stats.mtimeMs;
      }
      if (now - endedAt < ttlMs) continue;
      await removeServiceTree(this.config.dataPath('restores', name));
      removed.push(name);
      this.logger.log(`removed staging restore ${name}: older than ${this.config.restores.stagingTtlHours} h`);
    }
    return removed;
  }

  /** Deletes a finished staging restore of the site (`DELETE /v1/sites/{site}/restores/{job}`). */
  async deleteStaging(ref: SiteRef, jobId: string, by: Principal): Promise<void> {
    const site = await this.sites.resolve(ref);
    const job = this.engine.get(jobId);
    const params = job.params as unknown as Partial<RestoreParams>;
    if (job.kind !== 'restore' || job.site !== site.id || params.target !== 'staging') {
      throw new AppError(ErrorCode.StagingNotFound, `Job ${jobId} is not a staging restore of ${site.id}.`);
    }
    if (!FINISHED_STATUSES.includes(job.status)) {
      throw new AppError(
        ErrorCode.JobNotFinished,
        `Restore ${jobId} is ${job.status}; cancel it or wait for it to end.`,
      );
    }
    const destination = this.destinationOf(job.id, 'staging');
    if (!(await lstat(destination).catch(() => undefined))) {
      throw new AppError(ErrorCode.StagingNotFound, `The staging copy of restore ${jobId} is already gone.`);
    }
    await removeServiceTree(destination);
    this.logger.log({ jobId, by: by.name }, 'staging restore deleted');
  }

  /**
   * Refuses a restore that would leave less than DATA_DIR_MIN_FREE free where it lands (DATA_DIR for staging, the
   * sites' filesystem for in place), counting the restore point's size when the engine knows it.
   */
  private assertFreeSpace(target: RestoreTarget, pointBytes: number | null): Promise<void> {
    const where = target === 'in-place' ? this.config.virtualRoot : this.config.dataDir;
    return assertFreeSpace(where, this.config.restores.minFree, pointBytes, 'This restore');
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
    const nested = paths.find((path) => paths.some((other) => path.startsWith(`${other}/`)));
    if (nested !== undefined) {
      // One path inside another would be swapped in twice, the second time through what the first put there.
      throw new AppError(ErrorCode.ValidationFailed, `${nested} lies inside another path of the same restore.`, {
        errors: [
          { field: 'body.paths', messages: [`${nested} lies inside another listed path; list only the outer one`] },
        ],
      });
    }
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
    await this.expireStaging();
    await this.assertFreeSpace(target, point.bytes ?? null);
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
          // From here the site changes: a cancel can no longer undo it, so the job ends as what happened to the site
          // (succeeded, or failed with the site rolled back), never `cancelled`.
          run.commit('the in-place swap had begun');
          await swapIntoSite(subject.root, destination, swappedPaths(params), `${destination}-previous`);
        });
        await removeServiceTree(destination);
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
      await removeServiceTree(destination);
      await removeServiceTree(restoreWorkArea(destination));
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
    // An engine may still be writing there (a restore queued on the Bacula director): stop it before cleaning.
    if (job.provider) {
      await Promise.resolve()
        .then(() => this.registry.get(job.provider!).recoverRestores?.())
        .catch((error: unknown) =>
          this.logger.warn({ err: error, jobId: job.id }, 'stopping the engine’s restore failed'),
        );
    }
    await removeServiceTree(restoreWorkArea(destination));
    if (params.target !== 'in-place' || !job.site || !/^site\d+$/.test(job.site)) {
      await removeServiceTree(destination);
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
