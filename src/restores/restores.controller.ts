import { Body, Controller, Delete, HttpCode, Param, Post, Res } from '@nestjs/common';
import { ApiNoContentResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { CurrentPrincipal, RequireRole } from '../auth/auth.decorators';
import { Idempotent } from '../idempotency/idempotent.decorator';
import type { Principal } from '../auth/role';
import { ApiJobAccepted, ApiStandardProblems, SITE_PROBLEMS } from '../openapi/api-answers';
import { ErrorCode } from '../common/errors/error-code';
import { JobModel, toJobModel } from '../jobs/job.model';
import { SiteRefPipe } from '../sites/site-ref.pipe';
import type { SiteRef } from '../sites/site-ref';
import { SITE_PARAM } from '../sites/sites.controller';
import { StartRestoreBody } from './restore.model';
import { RestoresService } from './restores.service';

@ApiTags('restores')
@Controller('v1/sites/:site/restores')
export class RestoresController {
  constructor(private readonly restores: RestoresService) {}

  /** Restore a restore point into staging (operator) or in place (admin); returns the queued job. */
  @Post()
  @HttpCode(202)
  @Idempotent()
  @RequireRole('operator')
  @ApiParam(SITE_PARAM)
  @ApiJobAccepted()
  @ApiStandardProblems(
    ...SITE_PROBLEMS,
    ErrorCode.RestorePointNotFound,
    ErrorCode.Forbidden,
    ErrorCode.ProviderNotEnabled,
    ErrorCode.ShuttingDown,
    ErrorCode.InsufficientStorage,
  )
  async start(
    @Param('site', SiteRefPipe) site: SiteRef,
    @Body() body: StartRestoreBody,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) res: Response,
  ): Promise<JobModel> {
    const job = await this.restores.start(site, body, principal);
    res.setHeader('Location', `/v1/jobs/${job.id}`);
    return toJobModel(job);
  }

  /** Delete a finished staging restore's files now (they also expire after RESTORE_STAGING_TTL_HOURS). */
  @Delete(':job')
  @HttpCode(204)
  @RequireRole('operator')
  @ApiParam(SITE_PARAM)
  @ApiParam({ name: 'job', description: 'The restore job id' })
  @ApiNoContentResponse({ description: 'The staging copy is gone' })
  @ApiStandardProblems(...SITE_PROBLEMS, ErrorCode.JobNotFound, ErrorCode.StagingNotFound, ErrorCode.JobNotFinished)
  async deleteStaging(
    @Param('site', SiteRefPipe) site: SiteRef,
    @Param('job') job: string,
    @CurrentPrincipal() principal: Principal,
  ): Promise<void> {
    await this.restores.deleteStaging(site, job, principal);
  }
}
