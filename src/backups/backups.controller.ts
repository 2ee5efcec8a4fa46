import { Body, Controller, Get, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { CurrentPrincipal, RequireRole } from '../auth/auth.decorators';
import { Idempotent } from '../idempotency/idempotent.decorator';
import type { Principal } from '../auth/role';
import { ApiJobAccepted, ApiStandardProblems, SITE_PROBLEMS } from '../openapi/api-answers';
import { ErrorCode } from '../common/errors/error-code';
import { JobRepository } from '../jobs/job.repository';
import { JobModel, toJobModel } from '../jobs/job.model';
import { JobPageModel } from '../jobs/job-page.model';
import { pageJobs } from '../jobs/job-page';
import { SiteDirectory } from '../sites/site-directory';
import { SiteRefPipe } from '../sites/site-ref.pipe';
import type { SiteRef } from '../sites/site-ref';
import { SITE_PARAM } from '../sites/sites.controller';
import { ListJobsQuery, StartBackupBody } from './backup.model';
import { BackupsService } from './backups.service';

@ApiTags('backups')
@Controller('v1/sites/:site/backups')
export class BackupsController {
  constructor(
    private readonly backups: BackupsService,
    private readonly jobs: JobRepository,
    private readonly sites: SiteDirectory,
  ) {}

  /** Start a backup of the site; returns the queued job at once. */
  @Post()
  @HttpCode(202)
  @Idempotent()
  @RequireRole('operator')
  @ApiParam(SITE_PARAM)
  @ApiJobAccepted()
  @ApiStandardProblems(
    ...SITE_PROBLEMS,
    ErrorCode.ProviderNotEnabled,
    ErrorCode.LevelNotSupported,
    ErrorCode.ScopeStoreFailed,
    ErrorCode.ShuttingDown,
  )
  async start(
    @Param('site', SiteRefPipe) site: SiteRef,
    @Body() body: StartBackupBody,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) res: Response,
  ): Promise<JobModel> {
    const job = await this.backups.start(site, body, principal);
    res.setHeader('Location', `/v1/jobs/${job.id}`);
    return toJobModel(job);
  }

  /** List the site's backup jobs, newest first. */
  @Get()
  @RequireRole('monitor')
  @ApiParam(SITE_PARAM)
  @ApiOkResponse({ type: JobPageModel })
  @ApiStandardProblems(...SITE_PROBLEMS)
  async list(@Param('site', SiteRefPipe) ref: SiteRef, @Query() query: ListJobsQuery): Promise<JobPageModel> {
    const site = await this.sites.resolve(ref);
    return pageJobs(this.jobs, { site: site.id, kind: 'backup' }, query);
  }
}
