import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { JobLogStore } from './job-log.store';
import { JobRepository } from './job.repository';

const PRUNE_EVERY_MS = 6 * 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Forgets finished jobs older than JOB_RETENTION_DAYS, with their logs: nightly backups of a thousand sites add a
 * third of a million jobs a year, and every list, filter and metric scrape would read them. Runs at start and every
 * six hours. Staged restores under DATA_DIR/restores are the operator's and are left alone.
 */
@Injectable()
export class JobRetention implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(JobRetention.name);
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly config: AppConfig,
    private readonly repository: JobRepository,
    private readonly logs: JobLogStore,
    private readonly clock: Clock,
  ) {}

  onApplicationBootstrap(): void {
    void this.pruneSafely();
    this.timer = setInterval(() => void this.pruneSafely(), PRUNE_EVERY_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** Deletes what has aged out and returns the ids of the jobs it forgot. */
  async prune(): Promise<string[]> {
    const before = new Date(this.clock.now().getTime() - this.config.jobRetentionDays * DAY_MS).toISOString();
    const ids = this.repository.deleteFinishedBefore(before);
    for (const id of ids) await this.logs.remove(id);
    if (ids.length > 0) {
      this.logger.log(`forgot ${ids.length} jobs that ended over ${this.config.jobRetentionDays} days ago`);
    }
    return ids;
  }

  private async pruneSafely(): Promise<void> {
    try {
      await this.prune();
    } catch (error) {
      this.logger.warn({ err: error }, 'job retention failed; will try again later');
    }
  }
}
