import { Controller, Get, Param, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ApiBadRequestResponse, ApiNotFoundResponse, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import { RequireRole } from '../auth/auth.decorators';
import { ProblemModel } from '../common/errors/problem.model';
import { SiteRefPipe } from './site-ref.pipe';
import type { SiteRef } from './site-ref';
import { ListSitesQuery, SiteDetailModel, SitePageModel } from './site.model';
import { SitesService } from './sites.service';

export const SITE_PARAM = { name: 'site', description: '`siteN` or one of the site’s domain names', example: 'site1' };

@ApiTags('sites')
@Controller('v1/sites')
export class SitesController {
  constructor(private readonly sites: SitesService) {}

  /** List the sites discovered under VIRTUAL_ROOT, ordered by site number. */
  @Get()
  @RequireRole('monitor')
  @ApiOkResponse({ type: SitePageModel })
  @ApiBadRequestResponse({ type: ProblemModel, description: 'Bad query' })
  list(@Query() query: ListSitesQuery, @Res({ passthrough: true }) res: Response): Promise<string> {
    // A SitePageModel already serialized (see listJson): Express sends a string as it is, with this type.
    res.type('application/json');
    return this.sites.listJson(query);
  }

  /** Get one site by `siteN` or by domain, with its databases. */
  @Get(':site')
  @RequireRole('monitor')
  @ApiParam(SITE_PARAM)
  @ApiOkResponse({ type: SiteDetailModel })
  @ApiBadRequestResponse({ type: ProblemModel, description: 'Not a site id or domain name' })
  @ApiNotFoundResponse({ type: ProblemModel, description: 'No such site' })
  get(@Param('site', SiteRefPipe) site: SiteRef): Promise<SiteDetailModel> {
    return this.sites.get(site);
  }
}
