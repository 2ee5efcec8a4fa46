import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import { RequireRole } from '../auth/auth.decorators';
import { ApiStandardProblems, SITE_PROBLEMS } from '../openapi/api-answers';
import { SiteDirectory } from '../sites/site-directory';
import { subjectOf } from '../sites/site';
import { SiteRefPipe } from '../sites/site-ref.pipe';
import type { SiteRef } from '../sites/site-ref';
import { SITE_PARAM } from '../sites/sites.controller';
import { ListRestorePointsQuery, RestorePointPageModel } from './restore-point.model';
import { RestorePointsService } from './restore-points.service';

@ApiTags('restore-points')
@Controller('v1/sites/:site/restore-points')
export class RestorePointsController {
  constructor(
    private readonly restorePoints: RestorePointsService,
    private readonly sites: SiteDirectory,
  ) {}

  /** List the site's restore points, newest first, each with the chain a restore replays. */
  @Get()
  @RequireRole('monitor')
  @ApiParam(SITE_PARAM)
  @ApiOkResponse({ type: RestorePointPageModel })
  @ApiStandardProblems(...SITE_PROBLEMS)
  async list(
    @Param('site', SiteRefPipe) ref: SiteRef,
    @Query() query: ListRestorePointsQuery,
  ): Promise<RestorePointPageModel> {
    return this.restorePoints.list(subjectOf(await this.sites.resolve(ref)), query);
  }
}
