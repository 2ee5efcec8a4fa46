import { Body, Controller, HttpCode, Param, Post, Res } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBadRequestResponse, ApiNotFoundResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { CurrentPrincipal, RequireRole } from '../auth/auth.decorators';
import { Idempotent } from '../idempotency/idempotent.decorator';
import type { Principal } from '../auth/role';
import { ProblemModel } from '../common/errors/problem.model';
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
  @ApiAcceptedResponse({ type: JobModel })
  @ApiBadRequestResponse({ type: ProblemModel })
  @ApiNotFoundResponse({ type: ProblemModel, description: 'No such site or restore point' })
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
}
