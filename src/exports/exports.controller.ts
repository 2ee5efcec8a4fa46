import { Body, Controller, Get, HttpCode, Param, Post, Res } from '@nestjs/common';
import { ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { CurrentPrincipal, RequireRole } from '../auth/auth.decorators';
import type { Principal } from '../auth/role';
import { ApiJobAccepted, ApiStandardProblems, SITE_PROBLEMS } from '../openapi/api-answers';
import { ErrorCode } from '../common/errors/error-code';
import { Idempotent } from '../idempotency/idempotent.decorator';
import { JobModel, toJobModel } from '../jobs/job.model';
import { SiteDirectory } from '../sites/site-directory';
import { SiteRefPipe } from '../sites/site-ref.pipe';
import type { SiteRef } from '../sites/site-ref';
import { SITE_PARAM } from '../sites/sites.controller';
import { ExportJobsService } from './export-jobs.service';
import { ExportFileModel, StartExportBody } from './exports-http.model';
import { ExportsService } from './exports.service';

@ApiTags('exports')
@Controller('v1')
export class ExportsController {
  constructor(
    private readonly jobs: ExportJobsService,
    private readonly exports: ExportsService,
    private readonly sites: SiteDirectory,
  ) {}

  /** Export the databases of some sites (all when `sites` is absent), logically and atomically, as one job. */
  @Post('exports')
  @HttpCode(202)
  @Idempotent()
  @RequireRole('operator')
  @ApiJobAccepted()
  @ApiStandardProblems(...SITE_PROBLEMS, ErrorCode.ShuttingDown)
  async start(
    @Body() body: StartExportBody,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) res: Response,
  ): Promise<JobModel> {
    const job = await this.jobs.start(body.sites, principal);
    res.setHeader('Location', `/v1/jobs/${job.id}`);
    return toJobModel(job);
  }

  /** List the site's database export files with their checksums, newest first. */
  @Get('sites/:site/exports')
  @RequireRole('monitor')
  @ApiParam(SITE_PARAM)
  @ApiOkResponse({ type: [ExportFileModel] })
  @ApiStandardProblems(...SITE_PROBLEMS)
  async list(@Param('site', SiteRefPipe) ref: SiteRef): Promise<ExportFileModel[]> {
    return this.exports.listExports(await this.sites.resolve(ref));
  }
}
