import { ApiStandardProblems, SITE_PROBLEMS } from '../openapi/api-answers';
import { ErrorCode } from '../common/errors/error-code';
import { Controller, Get, Param, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiParam, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { RestorePointArchiveService } from '../archive/restore-point-archive.service';
import { CurrentPrincipal, RequireRole } from '../auth/auth.decorators';
import type { Principal } from '../auth/role';
import { SiteDirectory } from '../sites/site-directory';
import { SiteRefPipe } from '../sites/site-ref.pipe';
import type { SiteRef } from '../sites/site-ref';
import { SITE_PARAM } from '../sites/sites.controller';
import { ListPointFilesQuery, PointFileContentQuery, PointFilePageModel } from './browse.model';
import { BrowseService } from './browse.service';

const POINT_PARAM = { name: 'id', description: 'A restore point id, as GET /v1/sites/{site}/restore-points lists it' };

@ApiTags('restore-points')
@Controller('v1/sites/:site/restore-points/:id/files')
export class BrowseController {
  constructor(
    private readonly browse: BrowseService,
    private readonly files: RestorePointArchiveService,
    private readonly sites: SiteDirectory,
  ) {}

  /**
   * The entries of one directory at a restore point, by name. The first listing of a duplicity point reads the
   * engine (slow on a big site) and indexes it; every later one is a catalog read. Operator: it may run the engine.
   */
  @Get()
  @RequireRole('operator')
  @ApiStandardProblems(
    ...SITE_PROBLEMS,
    ErrorCode.ArchivePathInvalid,
    ErrorCode.ArchivePathNotFound,
    ErrorCode.ArchiveRestoreFailed,
    ErrorCode.RestorePointNotFound,
    ErrorCode.ListingNotSupported,
    ErrorCode.InsufficientStorage,
  )
  @ApiParam(SITE_PARAM)
  @ApiParam(POINT_PARAM)
  @ApiOkResponse({ type: PointFilePageModel })
  async list(
    @Param('site', SiteRefPipe) ref: SiteRef,
    @Param('id') id: string,
    @Query() query: ListPointFilesQuery,
  ): Promise<PointFilePageModel> {
    return this.browse.list(await this.sites.resolve(ref), id, query);
  }

  /** One file as it was at the point (restored by its engine into a work area that is removed afterwards). */
  @Get('content')
  @RequireRole('operator')
  @ApiStandardProblems(
    ...SITE_PROBLEMS,
    ErrorCode.ArchivePathInvalid,
    ErrorCode.ArchivePathNotFound,
    ErrorCode.ArchiveRestoreFailed,
    ErrorCode.RestorePointNotFound,
    ErrorCode.ListingNotSupported,
    ErrorCode.InsufficientStorage,
  )
  @ApiParam(SITE_PARAM)
  @ApiParam(POINT_PARAM)
  @ApiProduces('application/octet-stream')
  @ApiOkResponse({ description: 'The file’s bytes', schema: { type: 'string', format: 'binary' } })
  async content(
    @Param('site', SiteRefPipe) ref: SiteRef,
    @Param('id') id: string,
    @Query() query: PointFileContentQuery,
    @CurrentPrincipal() principal: Principal,
    @Res() res: Response,
  ): Promise<void> {
    await this.files.streamFile(await this.sites.resolve(ref), id, query.path, principal, res);
  }
}
