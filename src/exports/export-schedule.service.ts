import { Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { Clock } from '../common/clock';
import { AppConfig } from '../config/app-config';
import { CronSchedule } from '../scheduler/cron-schedule';
import { ScopesService } from '../scopes/scopes.service';
import { ExportJobsService } from './export-jobs.service';
import { ExportsService } from './exports.service';

/**
 * The nightly export on servers without ApisCP (ApisCP runs its own from anacron): at EXPORT_SCHEDULE, when
 * `backups.automatic-database-exports` is true, one export job of every site, never beside a running one.
 */
@Injectable()
export class ExportScheduleService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ExportScheduleService.name);
  private readonly cron: CronSchedule;
  private timer?: NodeJS.Timeout;

  constructor(
    config: AppConfig,
    private readonly scopes: ScopesService,
    private readonly jobs: ExportJobsService,
    private readonly exports: ExportsService,
    private readonly clock: Clock,
  ) {
    // Local time, as cron reads it; croner steps over DST gaps and repeated hours once.
    this.cron = new CronSchedule(config.exports.schedule);
  }

  onApplicationBootstrap(): void {
    if (this.exports.exporterKind === 'apiscp') {
      this.logger.log('ApisCP exports databases nightly itself; no export schedule here');
      return;
    }
    this.arm();
  }

  onApplicationShutdown(): void {
    clearTimeout(this.timer);
  }

  /** One scheduled run: what the timer calls, public so tests can fire it. */
  async tick(): Promise<'started' | 'scope-off' | 'already-running'> {
    if (!(await this.scopes.automaticDatabaseExports())) return 'scope-off';
    if (this.jobs.hasActiveExport()) {
      this.logger.warn('nightly export skipped: an export is still queued or running');
      return 'already-running';
    }
    const job = await this.jobs.start(undefined, null);
    this.logger.log({ jobId: job.id }, 'nightly export started');
    return 'started';
  }

  private arm(): void {
    const now = this.clock.now();
    const next = this.cron.next(now);
    if (!next) return;
    this.timer = setTimeout(
      () => {
        this.tick()
          .catch((error: unknown) => this.logger.error({ err: error }, 'nightly export failed to start'))
          .finally(() => this.arm());
      },
      Math.max(0, Math.min(next.getTime() - now.getTime(), 2 ** 31 - 1)),
    );
    this.timer.unref();
  }
}
