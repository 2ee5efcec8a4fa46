import { Injectable } from '@nestjs/common';
import type { Response } from 'express';
import type { Principal } from '../auth/role';
import type { Site } from '../sites/site';
import { excludedMember, parseArchivePath } from './archive-path';
import { ArchiveJobs } from './archive-jobs';
import { COMPRESSION_MEDIA, type Compression } from './compression';
import { openDirectoryBeneath } from './directory-handle';
import { DirectoryTar } from './directory-tar';

export interface ArchiveRequest {
  path: string;
  compression: Compression;
}

@Injectable()
export class ArchiveService {
  constructor(
    private readonly tar: DirectoryTar,
    private readonly jobs: ArchiveJobs,
  ) {}

  /** Streams a live directory of a site as a pax tar into `res`; bad input fails before any byte is sent. */
  async streamLive(site: Site, request: ArchiveRequest, principal: Principal, res: Response): Promise<void> {
    const parts = parseArchivePath(request.path);
    const directory = await openDirectoryBeneath(site.root, parts, request.path);
    try {
      await this.streamOpened(
        { site: site.id, parts, directoryFd: directory.fd, compression: request.compression, principal },
        { source: 'live', path: parts.join('/'), compression: request.compression },
        res,
      );
    } finally {
      await directory.close();
    }
  }

  /** The shared tail of every download: headers, the job, the tar, and the job's outcome. */
  async streamOpened(
    what: {
      site: string;
      parts: string[];
      directoryFd: number;
      compression: Compression;
      principal: Principal;
      provider?: string;
    },
    params: Record<string, unknown>,
    res: Response,
    existing?: ReturnType<ArchiveJobs['start']>,
  ): Promise<void> {
    const job = existing ?? this.jobs.start(what.site, params, what.principal.name, what.provider ?? null);
    const media = COMPRESSION_MEDIA[what.compression];
    const name = `${what.site}-${what.parts.join('-')}${media.extension}`.replace(/[^A-Za-z0-9._-]/g, '_');
    res.status(200);
    res.setHeader('Content-Type', media.type);
    res.setHeader('Content-Disposition', `attachment; filename="${name}"`);
    res.setHeader('X-Job-Id', job.job.id);
    res.setHeader('Link', `</v1/jobs/${job.job.id}/log>; rel="related"`);
    const gone = new AbortController();
    const onClose = () => {
      if (!res.writableFinished) gone.abort();
    };
    res.once('close', onClose);
    try {
      const outcome = await this.tar.stream({
        directoryFd: what.directoryFd,
        exclude: [excludedMember(what.parts)].filter((member): member is string => member !== undefined),
        compression: what.compression,
        out: res,
        signal: gone.signal,
        log: job.log,
        onSpawn: job.trackPid,
      });
      if (outcome.complete) {
        await job.finish({
          ok: true,
          result: {
            tarBytes: outcome.tarBytes,
            skipped: outcome.skipped.length,
            warnings: outcome.warnings.length,
          },
        });
      } else {
        await job.finish({ ok: false, cancelled: gone.signal.aborted, message: outcome.error ?? 'the download broke' });
      }
    } catch (error) {
      if (!res.destroyed) res.destroy(error as Error);
      await job.finish({
        ok: false,
        cancelled: false,
        message: error instanceof Error ? error.message : String(error),
      });
    } finally {
      res.off('close', onClose);
    }
  }
}
