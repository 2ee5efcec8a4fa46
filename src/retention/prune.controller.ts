import { ApiJobAccepted, ApiStandardProblems, SITE_PROBLEMS } from '../openapi/api-answers';
import { ErrorCode } from '../common/errors/error-code';
import { Body, Controller, HttpCode, Param, Post, Res } from '@nestjs/common';
import { ApiParam, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { CurrentPrincipal, RequireRole } from '../auth/auth.decorators';
import type { Principal } from '../auth/role';
import { Idempotent } from '../idempotency/idempotent.decorator';
import { JobModel, toJobModel } from '../jobs/job.model';
import { SiteRefPipe } from '../sites/site-ref.pipe';
import type { SiteRef } from '../sites/site-ref';
import { SITE_PARAM } from '../sites/sites.controller';
import { StartPruneBody } from './prune.model';
import { PruneService } from './prune.service';

@ApiTags('retention')
@Controller('v1/sites/:site/prune')
export class PruneController {
  constructor(private readonly prune: PruneService) {}

  /**
   * Remove the restore points the site's policy no longer keeps (a job; `dryRun` lists them in its result instead).
   * Never a point a kept point's chain needs, never the newest complete chain, never beside the site's other jobs.
   */
  @Post()
  @HttpCode(202)
  @Idempotent()
  @RequireRole('operator')
  @ApiStandardProblems(
    ...SITE_PROBLEMS,
    ErrorCode.Forbidden,
    ErrorCode.LevelNotSupported,
    ErrorCode.PolicyRequired,
    ErrorCode.ProviderNotEnabled,
    ErrorCode.ShuttingDown,
  )
  @ApiParam(SITE_PARAM)
  @ApiJobAccepted()
  async start(
    @Param('site', SiteRefPipe) site: SiteRef,
    @Body() body: StartPruneBody,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) res: Response,
  ): Promise<JobModel> {
    const job = await this.prune.start(site, body, principal);
    res.setHeader('Location', `/v1/jobs/${job.id}`);
    return toJobModel(job);
  }
}
