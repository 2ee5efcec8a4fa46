import { removeServiceTree } from '../common/safe-fs';
import { Injectable, Logger, OnModuleInit } from '@nestjs/common';
import type { Response } from 'express';
import { mkdir } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { Principal } from '../auth/role';
import { AppError } from '../common/errors/app-error';
import { assertFreeSpace } from '../common/free-space';
import { ErrorCode } from '../common/errors/error-code';
import { AppConfig } from '../config/app-config';
import { restoreWorkArea } from '../providers/backup-provider';
import { type JobContext } from '../jobs/job-context';
import { ProviderRegistry } from '../providers/provider-registry';
import { RestorePointsService } from '../restore-points/restore-points.service';
import { subjectOf, type Site } from '../sites/site';
import { assertPointIdShape, parseArchivePath } from './archive-path';
import { ArchiveJobs, type ArchiveJob } from './archive-jobs';
import { ArchiveService, type ArchiveRequest } from './archive.service';
import { openDirectoryBeneath } from './directory-handle';

/**
 * A directory or a file as it was at a restore point: the point's engine restores just that path (with the
 * attribute manifest re-applied, as every restore does) into a work area under DATA_DIR/archives, the answer
 * streams from there, and the work area goes when the stream ends or breaks (or at the next start after a crash).
 * Like a staging restore, it is refused (507) when it would leave less than DATA_DIR_MIN_FREE free on DATA_DIR.
 */
@Injectable()
export class RestorePointArchiveService implements OnModuleInit {
  private readonly logger = new Logger(RestorePointArchiveService.name);

  constructor(
    private readonly restorePoints: RestorePointsService,
    private readonly registry: ProviderRegistry,
    private readonly jobs: ArchiveJobs,
    private readonly archive: ArchiveService,
    private readonly config: AppConfig,
  ) {}

  /** Downloads run inside requests: whatever is under DATA_DIR/archives at start-up was left by a dead process. */
  async onModuleInit(): Promise<void> {
    await removeServiceTree(this.config.dataPath('archives')).catch((error: unknown) =>
      this.logger.warn({ err: error }, 'could not clear DATA_DIR/archives'),
    );
  }

  /** The tar of a directory at a point. */
  async stream(
    site: Site,
    pointId: string,
    request: ArchiveRequest,
    principal: Principal,
    res: Response,
  ): Promise<void> {
    const parts = parseArchivePath(request.path);
    await this.withRestored(
      site,
      pointId,
      parts,
      principal,
      res,
      { compression: request.compression },
      async (destination, job, pointName) => {
        let directory;
        try {
          directory = await openDirectoryBeneath(destination, parts, request.path);
        } catch (error) {
          throw error instanceof AppError
            ? new AppError(ErrorCode.ArchivePathNotFound, `${request.path} is not a directory at ${pointName}.`)
            : error;
        }
        try {
          await this.archive.streamOpened(
            { site: site.id, parts, directoryFd: directory.fd, compression: request.compression, principal },
            {},
            res,
            job,
          );
        } finally {
          await directory.close();
        }
      },
    );
  }

  /** One regular file as it was at a point, as bytes. */
  async streamFile(site: Site, pointId: string, path: string, principal: Principal, res: Response): Promise<void> {
    const parts = parseArchivePath(path);
    if (parts.length < 2) throw new AppError(ErrorCode.ArchivePathInvalid, `${path} is not a file path.`);
    await this.withRestored(
      site,
      pointId,
      parts,
      principal,
      res,
      { file: true },
      async (destination, job, pointName) => {
        const notAFile = () =>
          new AppError(ErrorCode.ArchivePathNotFound, `${path} was not a regular file at ${pointName}.`);
        const directory = await openDirectoryBeneath(destination, parts.slice(0, -1), path).catch((error: unknown) => {
          throw error instanceof AppError ? notAFile() : error;
        });
        try {
          // Opened without following a link and without blocking on a FIFO; only a regular file is sent.
          const opened = await directory
            .openRegularFile(parts.at(-1)!, { maxBytes: Number.MAX_SAFE_INTEGER, allowHardlinks: true })
            .catch(() => {
              throw notAFile();
            });
          const file = opened.handle;
          const info = opened.stats;
          try {
            res.status(200);
            res.setHeader('Content-Type', 'application/octet-stream');
            res.setHeader('Content-Length', String(info.size));
            res.setHeader(
              'Content-Disposition',
              `attachment; filename="${parts.at(-1)!.replace(/[^A-Za-z0-9._-]/g, '_')}"`,
            );
            res.setHeader('X-Job-Id', job.job.id);
            const stream = file.createReadStream({ start: 0, end: Math.max(0, info.size - 1), autoClose: false });
            if (info.size === 0) {
              stream.destroy();
              res.end();
            } else {
              await pipeline(stream, res);
            }
            await job.finish({ ok: true, result: { bytes: info.size } });
          } finally {
            await file.close();
          }
        } finally {
          await directory.close();
        }
      },
    );
  }

  /**
   * Restores `parts` of the point into a fresh work area, runs `body` on it, and always removes it. A failure
   * before any byte was sent is a problem+json answer; the job records every outcome.
   */
  private async withRestored(
    site: Site,
    pointId: string,
    parts: string[],
    principal: Principal,
    res: Response,
    params: Record<string, unknown>,
    body: (destination: string, job: ArchiveJob, point: string) => Promise<void>,
  ): Promise<void> {
    assertPointIdShape(pointId);
    const subject = subjectOf(site);
    const point = await this.restorePoints.get(subject, pointId);
    if (point.state !== 'complete') {
      throw new AppError(
        ErrorCode.RestorePointNotFound,
        `Restore point ${point.id} is ${point.state} and cannot be read.`,
      );
    }
    const provider = this.registry.get(point.provider);
    // The work area is a restore under DATA_DIR: the same reserve as a staging restore, checked before the engine
    // starts (and before any job exists), counting the point's size as a restore of it does.
    await assertFreeSpace(
      this.config.dataDir,
      this.config.restores.minFree,
      point.bytes ?? null,
      "This download's restore work area",
    );
    const started = this.jobs.start(
      site.id,
      { source: 'restore-point', restorePoint: point.id, path: parts.join('/'), ...params },
      principal.name,
      provider.name,
    );
    // The job ends only once the work area is gone, so whoever waits on the job finds nothing left behind.
    let outcome: Parameters<ArchiveJob['finish']>[0] | undefined;
    const job: ArchiveJob = {
      ...started,
      finish: (result) => {
        outcome ??= result;
        return Promise.resolve();
      },
    };
    const destination = this.config.dataPath('archives', started.job.id);
    const workDir = `${destination}.scratch`;
    const gone = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) gone.abort();
    };
    res.once('close', onClose);
    try {
      await mkdir(destination, { recursive: true, mode: 0o700 });
      await mkdir(workDir, { recursive: true, mode: 0o700 });
      const context: JobContext = {
        jobId: job.job.id,
        signal: gone.signal,
        log: job.log,
        progress: () => undefined,
        workDir,
        trackPid: job.trackPid,
      };
      job.log(`restoring ${parts.join('/')} of ${point.id} (${provider.name})`);
      try {
        const outcome = await provider.restore({ subject, point, paths: [parts.join('/')], destination }, context);
        for (const warning of outcome.warnings) job.log(`restore warning: ${warning}`);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        throw new AppError(ErrorCode.ArchiveRestoreFailed, `${point.id}: ${message}`);
      }
      await body(destination, job, point.id);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      await job.finish({ ok: false, cancelled: gone.signal.aborted, message });
      if (res.headersSent && !res.destroyed) res.destroy(error as Error);
      if (!res.headersSent) throw error;
    } finally {
      res.off('close', onClose);
      // The restored tree holds whatever the backup held, links included: removed from descriptors, never followed.
      for (const tree of [destination, restoreWorkArea(destination), workDir]) await removeServiceTree(tree);
      await started.finish(outcome ?? { ok: false, cancelled: gone.signal.aborted, message: 'the download broke' });
    }
  }
}
