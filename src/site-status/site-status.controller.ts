import { Controller, Get, Param } from '@nestjs/common';
import { ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import { RequireRole } from '../auth/auth.decorators';
import { ApiStandardProblems, SITE_PROBLEMS } from '../openapi/api-answers';
import { SiteRefPipe } from '../sites/site-ref.pipe';
import type { SiteRef } from '../sites/site-ref';
import { SITE_PARAM } from '../sites/sites.controller';
import { SiteStatusModel } from './site-status.model';
import { SiteStatusService } from './site-status.service';

@ApiTags('sites')
@Controller('v1/sites/:site/status')
export class SiteStatusController {
  constructor(private readonly status: SiteStatusService) {}

  /** A site's backup status in one call: last success per provider, newest restore point, active jobs. */
  @Get()
  @RequireRole('monitor')
  @ApiParam(SITE_PARAM)
  @ApiOkResponse({ type: SiteStatusModel })
  @ApiStandardProblems(...SITE_PROBLEMS)
  get(@Param('site', SiteRefPipe) site: SiteRef): Promise<SiteStatusModel> {
    return this.status.get(site);
  }
}
