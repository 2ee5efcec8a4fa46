import { ApiStandardProblems, SITE_PROBLEMS } from '../openapi/api-answers';
import { ErrorCode } from '../common/errors/error-code';
import { Controller, Get, Param, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiParam, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { CurrentPrincipal, RequireRole } from '../auth/auth.decorators';
import type { Principal } from '../auth/role';
import { SiteDirectory } from '../sites/site-directory';
import { SiteRefPipe } from '../sites/site-ref.pipe';
import type { SiteRef } from '../sites/site-ref';
import { SITE_PARAM } from '../sites/sites.controller';
import { ArchiveQuery } from './archive.model';
import { ArchiveService } from './archive.service';
import { RestorePointArchiveService } from './restore-point-archive.service';

const TAR_DESCRIPTION =
  'A POSIX pax tar (GNU tar and bsdtar restore it with --xattrs --acls): files, directories, symlinks as links, ' +
  'hardlinks, modes, owners, mtimes, every xattr (SCHILY.xattr.*) and access/default ACL (SCHILY.acl.*). Devices, ' +
  'FIFOs and sockets are left out and listed in the log of the job named by X-Job-Id.';

@ApiTags('archive')
@Controller('v1/sites/:site/archive')
export class ArchiveController {
  constructor(
    private readonly archive: ArchiveService,
    private readonly sites: SiteDirectory,
  ) {}

  /** Download a live directory of the site as a tar that keeps xattrs and ACLs. */
  @Get()
  @RequireRole('operator')
  @ApiStandardProblems(
    ...SITE_PROBLEMS,
    ErrorCode.ArchivePathInvalid,
    ErrorCode.ArchivePathNotFound,
    ErrorCode.ArchiveRestoreFailed,
    ErrorCode.RestorePointNotFound,
    ErrorCode.InsufficientStorage,
    ErrorCode.ShuttingDown,
  )
  @ApiParam(SITE_PARAM)
  @ApiProduces('application/x-tar', 'application/gzip', 'application/zstd')
  @ApiOkResponse({ description: TAR_DESCRIPTION, schema: { type: 'string', format: 'binary' } })
  async download(
    @Param('site', SiteRefPipe) ref: SiteRef,
    @Query() query: ArchiveQuery,
    @CurrentPrincipal() principal: Principal,
    @Res() res: Response,
  ): Promise<void> {
    const site = await this.sites.resolve(ref);
    await this.archive.streamLive(site, { path: query.path, compression: query.compression ?? 'none' }, principal, res);
  }
}

@ApiTags('archive')
@Controller('v1/sites/:site/restore-points/:id/archive')
export class RestorePointArchiveController {
  constructor(
    private readonly archive: RestorePointArchiveService,
    private readonly sites: SiteDirectory,
  ) {}

  /**
   * Download a directory as it was at a restore point: the engine restores it (xattrs and ACLs re-applied) into a
   * temporary work area, removed when the stream ends or breaks; the same tar as a live download.
   */
  @Get()
  @RequireRole('operator')
  @ApiStandardProblems(
    ...SITE_PROBLEMS,
    ErrorCode.ArchivePathInvalid,
    ErrorCode.ArchivePathNotFound,
    ErrorCode.ArchiveRestoreFailed,
    ErrorCode.RestorePointNotFound,
    ErrorCode.InsufficientStorage,
    ErrorCode.ShuttingDown,
  )
  @ApiParam(SITE_PARAM)
  @ApiParam({ name: 'id', description: 'A restore point id, as GET /v1/sites/{site}/restore-points lists it' })
  @ApiProduces('application/x-tar', 'application/gzip', 'application/zstd')
  @ApiOkResponse({ description: TAR_DESCRIPTION, schema: { type: 'string', format: 'binary' } })
  async download(
    @Param('site', SiteRefPipe) ref: SiteRef,
    @Param('id') id: string,
    @Query() query: ArchiveQuery,
    @CurrentPrincipal() principal: Principal,
    @Res() res: Response,
  ): Promise<void> {
    const site = await this.sites.resolve(ref);
    await this.archive.stream(site, id, { path: query.path, compression: query.compression ?? 'none' }, principal, res);
  }
}
