import { Controller, Get, Param, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import { RequireRole } from '../auth/auth.decorators';
import { ApiStandardProblems, SITE_PROBLEMS } from '../openapi/api-answers';
import { SiteRefPipe } from './site-ref.pipe';
import type { SiteRef } from './site-ref';
import { ListSitesQuery, SiteDetailModel, SitePageModel } from './site.model';
import { SitesService } from './sites.service';

/** `siteN` or a domain name, any case (the service lower-cases it; a top-level label must not be all digits). */
export const SITE_REF_PATTERN =
  '^([Ss][Ii][Tt][Ee][1-9][0-9]{0,8}|([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)$';

export const SITE_PARAM = {
  name: 'site',
  description: '`siteN` or one of the site’s domain names',
  example: 'site1',
  schema: { type: 'string' as const, pattern: SITE_REF_PATTERN, maxLength: 253 },
};

@ApiTags('sites')
@Controller('v1/sites')
export class SitesController {
  constructor(private readonly sites: SitesService) {}

  /** List the sites discovered under VIRTUAL_ROOT, ordered by site number. */
  @Get()
  @RequireRole('monitor')
  @ApiOkResponse({ type: SitePageModel })
  @ApiStandardProblems()
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
  @ApiStandardProblems(...SITE_PROBLEMS)
  get(@Param('site', SiteRefPipe) site: SiteRef): Promise<SiteDetailModel> {
    return this.sites.get(site);
  }
}
