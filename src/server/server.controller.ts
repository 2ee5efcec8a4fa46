import { Body, Controller, Get, HttpCode, Post, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { CurrentPrincipal, RequireRole } from '../auth/auth.decorators';
import { Idempotent } from '../idempotency/idempotent.decorator';
import type { Principal } from '../auth/role';
import { ApiJobAccepted, ApiStandardProblems } from '../openapi/api-answers';
import { ErrorCode } from '../common/errors/error-code';
import { StartBackupBody, ListJobsQuery } from '../backups/backup.model';
import { BackupSubjects, SERVER_SUBJECT } from '../backup-subjects/backup-subjects';
import { BackupsService } from '../backups/backups.service';
import { JobModel, toJobModel } from '../jobs/job.model';
import { JobPageModel } from '../jobs/job-page.model';
import { pageJobs } from '../jobs/job-page';
import { JobRepository } from '../jobs/job.repository';
import { ListRestorePointsQuery, RestorePointPageModel } from '../restore-points/restore-point.model';
import { RestorePointsService } from '../restore-points/restore-points.service';
import { StartRestoreBody } from '../restores/restore.model';
import { RestoresService } from '../restores/restores.service';

/** The server-wide locations the seed recommends (mailbox maps, MySQL and PostgreSQL grant exports) as one subject. */
@ApiTags('server')
@Controller('v1/server')
export class ServerController {
  constructor(
    private readonly backups: BackupsService,
    private readonly restores: RestoresService,
    private readonly restorePoints: RestorePointsService,
    private readonly subjects: BackupSubjects,
    private readonly jobs: JobRepository,
  ) {}

  /** Start a backup of the server-wide locations (never raw database directories). */
  @Post('backups')
  @HttpCode(202)
  @Idempotent()
  @RequireRole('operator')
  @ApiJobAccepted()
  @ApiStandardProblems(ErrorCode.ProviderNotEnabled, ErrorCode.LevelNotSupported, ErrorCode.ShuttingDown)
  start(
    @Body() body: StartBackupBody,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) res: Response,
  ): JobModel {
    const job = this.backups.startServer(body, principal);
    res.setHeader('Location', `/v1/jobs/${job.id}`);
    return toJobModel(job);
  }

  /** List the server backup jobs, newest first. */
  @Get('backups')
  @RequireRole('monitor')
  @ApiOkResponse({ type: JobPageModel })
  @ApiStandardProblems()
  list(@Query() query: ListJobsQuery): JobPageModel {
    return pageJobs(this.jobs, { site: SERVER_SUBJECT, kind: 'backup' }, query);
  }

  /** List the server backup's restore points, newest first. */
  @Get('restore-points')
  @RequireRole('monitor')
  @ApiOkResponse({ type: RestorePointPageModel })
  @ApiStandardProblems()
  restorePointsList(@Query() query: ListRestorePointsQuery): Promise<RestorePointPageModel> {
    return this.restorePoints.list(this.subjects.listingSubject(SERVER_SUBJECT), query);
  }

  /** Restore a server restore point, whole, into a staging directory. */
  @Post('restores')
  @HttpCode(202)
  @Idempotent()
  @RequireRole('operator')
  @ApiJobAccepted()
  @ApiStandardProblems(ErrorCode.RestorePointNotFound, ErrorCode.ProviderNotEnabled, ErrorCode.ShuttingDown)
  async restore(
    @Body() body: StartRestoreBody,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) res: Response,
  ): Promise<JobModel> {
    const job = await this.restores.startServer(body, principal);
    res.setHeader('Location', `/v1/jobs/${job.id}`);
    return toJobModel(job);
  }
}
