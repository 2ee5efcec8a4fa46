import { Injectable } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { JobFailure } from '../jobs/job-failure';
import type { BackupSubject } from '../providers/backup-provider';
import { expandPattern, serverPatterns } from '../server/server-locations';
import { SiteDirectory } from '../sites/site-directory';
import { subjectOf } from '../sites/site';
import { parseSiteRef } from '../sites/site-ref';

export const SERVER_SUBJECT = 'server';

/** Turns a job's subject key (`siteN` or `server`) into what its backup holds, read afresh when the job runs. */
@Injectable()
export class BackupSubjects {
  constructor(
    private readonly sites: SiteDirectory,
    private readonly config: AppConfig,
  ) {}

  async resolve(key: string): Promise<BackupSubject> {
    if (key === SERVER_SUBJECT) return this.server();
    return subjectOf(await this.sites.resolve(parseSiteRef(key)));
  }

  /** The server-wide locations that exist now; restore paths are relative to `/`. */
  async server(): Promise<BackupSubject> {
    const include = (await Promise.all(serverPatterns(this.config).map(expandPattern))).flat();
    if (include.length === 0) {
      throw new JobFailure(
        'nothing-to-back-up',
        `None of the server locations exist: ${serverPatterns(this.config).join(', ')}.`,
      );
    }
    return { key: SERVER_SUBJECT, root: '/', include: [...new Set(include)], exclude: [] };
  }

  /** A subject for listing restore points, which needs no paths. */
  listingSubject(key: string): BackupSubject {
    return { key, root: '/', include: [], exclude: [] };
  }
}
