import { ApiJobAccepted, ApiStandardProblems, SITE_PROBLEMS } from '../openapi/api-answers';
import { ErrorCode } from '../common/errors/error-code';
import { Body, Controller, Get, HttpCode, Param, Post, Put, Res } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { CurrentPrincipal, RequireRole } from '../auth/auth.decorators';
import type { Principal } from '../auth/role';
import { Idempotent } from '../idempotency/idempotent.decorator';
import { JobModel, toJobModel } from '../jobs/job.model';
import { SiteRefPipe } from '../sites/site-ref.pipe';
import type { SiteRef } from '../sites/site-ref';
import { SITE_PARAM } from '../sites/sites.controller';
import {
  ASSURANCE_PARAM,
  AssuranceModel,
  SetSnapshotsBody,
  SNAPSHOT_PARAM,
  SnapshotDiffModel,
  SnapshotModel,
  StartAssuranceBody,
  StartedAssuranceModel,
  TakeSnapshotBody,
  WEBAPP_PARAM,
  WebappModel,
} from './webapp.model';
import { WebappsService } from './webapps.service';
import type { Assurance } from './assurance-store';

function toAssuranceModel(assurance: Assurance): AssuranceModel {
  const { host: _host, urlPath: _urlPath, shrink: _shrink, createdBy: _createdBy, ...model } = assurance;
  return model;
}

@ApiTags('webapps')
@Controller('v1/sites/:site/webapps')
@ApiParam(SITE_PARAM)
export class WebappsController {
  constructor(private readonly webapps: WebappsService) {}

  /** The web apps found in the site's docroots, with their type, version, database and snapshots. */
  @Get()
  @RequireRole('monitor')
  @ApiStandardProblems(
    ...SITE_PROBLEMS,
    ErrorCode.WebappNotFound,
    ErrorCode.SnapshotNotFound,
    ErrorCode.AssuranceNotFound,
    ErrorCode.WebappSnapshotsDisabled,
    ErrorCode.AssuranceNotReady,
    ErrorCode.WebappUnsupported,
    ErrorCode.ShuttingDown,
  )
  @ApiOkResponse({ type: [WebappModel] })
  list(@Param('site', SiteRefPipe) site: SiteRef): Promise<WebappModel[]> {
    return this.webapps.list(site);
  }

  /** One web app. */
  @Get(':app')
  @RequireRole('monitor')
  @ApiStandardProblems(
    ...SITE_PROBLEMS,
    ErrorCode.WebappNotFound,
    ErrorCode.SnapshotNotFound,
    ErrorCode.AssuranceNotFound,
    ErrorCode.WebappSnapshotsDisabled,
    ErrorCode.AssuranceNotReady,
    ErrorCode.WebappUnsupported,
    ErrorCode.ShuttingDown,
  )
  @ApiParam(WEBAPP_PARAM)
  @ApiOkResponse({ type: WebappModel })
  get(@Param('site', SiteRefPipe) site: SiteRef, @Param('app') app: string): Promise<WebappModel> {
    return this.webapps.get(site, app);
  }

  /** Turn snapshots (and with them Update Assurance) on or off for an app (admin). */
  @Put(':app/snapshots')
  @RequireRole('admin')
  @ApiStandardProblems(
    ...SITE_PROBLEMS,
    ErrorCode.WebappNotFound,
    ErrorCode.SnapshotNotFound,
    ErrorCode.AssuranceNotFound,
    ErrorCode.WebappSnapshotsDisabled,
    ErrorCode.AssuranceNotReady,
    ErrorCode.WebappUnsupported,
    ErrorCode.ShuttingDown,
  )
  @ApiParam(WEBAPP_PARAM)
  @ApiOkResponse({ type: WebappModel })
  setSnapshots(
    @Param('site', SiteRefPipe) site: SiteRef,
    @Param('app') app: string,
    @Body() body: SetSnapshotsBody,
  ): Promise<WebappModel> {
    return this.webapps.setSnapshots(site, app, body);
  }

  /** Take a snapshot: a commit of the files and an export of the app's database; returns the queued job. */
  @Post(':app/snapshots')
  @HttpCode(202)
  @Idempotent()
  @RequireRole('operator')
  @ApiStandardProblems(
    ...SITE_PROBLEMS,
    ErrorCode.WebappNotFound,
    ErrorCode.SnapshotNotFound,
    ErrorCode.AssuranceNotFound,
    ErrorCode.WebappSnapshotsDisabled,
    ErrorCode.AssuranceNotReady,
    ErrorCode.WebappUnsupported,
    ErrorCode.ShuttingDown,
  )
  @ApiParam(WEBAPP_PARAM)
  @ApiJobAccepted()
  async take(
    @Param('site', SiteRefPipe) site: SiteRef,
    @Param('app') app: string,
    @Body() body: TakeSnapshotBody,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) res: Response,
  ): Promise<JobModel> {
    const job = await this.webapps.startSnapshot(site, app, body, principal);
    res.setHeader('Location', `/v1/jobs/${job.id}`);
    return toJobModel(job);
  }

  /** The app's snapshots, newest first. */
  @Get(':app/snapshots')
  @RequireRole('monitor')
  @ApiStandardProblems(
    ...SITE_PROBLEMS,
    ErrorCode.WebappNotFound,
    ErrorCode.SnapshotNotFound,
    ErrorCode.AssuranceNotFound,
    ErrorCode.WebappSnapshotsDisabled,
    ErrorCode.AssuranceNotReady,
    ErrorCode.WebappUnsupported,
    ErrorCode.ShuttingDown,
  )
  @ApiParam(WEBAPP_PARAM)
  @ApiOkResponse({ type: [SnapshotModel] })
  snapshots(@Param('site', SiteRefPipe) site: SiteRef, @Param('app') app: string): Promise<SnapshotModel[]> {
    return this.webapps.listSnapshots(site, app);
  }

  /** What changed in the app's files since the snapshot (operator: it reads the whole tree). */
  @Get(':app/snapshots/:snapshot/diff')
  @RequireRole('operator')
  @ApiStandardProblems(
    ...SITE_PROBLEMS,
    ErrorCode.WebappNotFound,
    ErrorCode.SnapshotNotFound,
    ErrorCode.AssuranceNotFound,
    ErrorCode.WebappSnapshotsDisabled,
    ErrorCode.AssuranceNotReady,
    ErrorCode.WebappUnsupported,
    ErrorCode.ShuttingDown,
  )
  @ApiParam(WEBAPP_PARAM)
  @ApiParam(SNAPSHOT_PARAM)
  @ApiOkResponse({ type: SnapshotDiffModel })
  diff(
    @Param('site', SiteRefPipe) site: SiteRef,
    @Param('app') app: string,
    @Param('snapshot') snapshot: string,
  ): Promise<SnapshotDiffModel> {
    return this.webapps.diff(site, app, snapshot);
  }

  /** Put the app's files and database back as they were at the snapshot, as one job (admin). */
  @Post(':app/snapshots/:snapshot/rollback')
  @HttpCode(202)
  @Idempotent()
  @RequireRole('admin')
  @ApiStandardProblems(
    ...SITE_PROBLEMS,
    ErrorCode.WebappNotFound,
    ErrorCode.SnapshotNotFound,
    ErrorCode.AssuranceNotFound,
    ErrorCode.WebappSnapshotsDisabled,
    ErrorCode.AssuranceNotReady,
    ErrorCode.WebappUnsupported,
    ErrorCode.ShuttingDown,
  )
  @ApiParam(WEBAPP_PARAM)
  @ApiParam(SNAPSHOT_PARAM)
  @ApiJobAccepted()
  async rollback(
    @Param('site', SiteRefPipe) site: SiteRef,
    @Param('app') app: string,
    @Param('snapshot') snapshot: string,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) res: Response,
  ): Promise<JobModel> {
    const job = await this.webapps.startRollback(site, app, snapshot, principal);
    res.setHeader('Location', `/v1/jobs/${job.id}`);
    return toJobModel(job);
  }

  /** Before an update: a pre-update snapshot and a baseline of the app's page; returns the assurance and its job. */
  @Post(':app/assurance')
  @HttpCode(202)
  @Idempotent()
  @RequireRole('operator')
  @ApiStandardProblems(
    ...SITE_PROBLEMS,
    ErrorCode.WebappNotFound,
    ErrorCode.SnapshotNotFound,
    ErrorCode.AssuranceNotFound,
    ErrorCode.WebappSnapshotsDisabled,
    ErrorCode.AssuranceNotReady,
    ErrorCode.WebappUnsupported,
    ErrorCode.ShuttingDown,
  )
  @ApiParam(WEBAPP_PARAM)
  @ApiAcceptedResponse({ type: StartedAssuranceModel })
  async startAssurance(
    @Param('site', SiteRefPipe) site: SiteRef,
    @Param('app') app: string,
    @Body() body: StartAssuranceBody,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) res: Response,
  ): Promise<StartedAssuranceModel> {
    const { assurance, job } = await this.webapps.startAssurance(site, app, body, principal);
    res.setHeader('Location', `/v1/sites/${assurance.site}/webapps/${assurance.app}/assurance/${assurance.id}`);
    return { assurance: toAssuranceModel(assurance), job: toJobModel(job) };
  }

  /** An update assurance: its baseline, status, and why it rolled back. */
  @Get(':app/assurance/:assurance')
  @RequireRole('monitor')
  @ApiStandardProblems(
    ...SITE_PROBLEMS,
    ErrorCode.WebappNotFound,
    ErrorCode.SnapshotNotFound,
    ErrorCode.AssuranceNotFound,
    ErrorCode.WebappSnapshotsDisabled,
    ErrorCode.AssuranceNotReady,
    ErrorCode.WebappUnsupported,
    ErrorCode.ShuttingDown,
  )
  @ApiParam(WEBAPP_PARAM)
  @ApiParam(ASSURANCE_PARAM)
  @ApiOkResponse({ type: AssuranceModel })
  async getAssurance(
    @Param('site', SiteRefPipe) site: SiteRef,
    @Param('app') app: string,
    @Param('assurance') id: string,
  ): Promise<AssuranceModel> {
    return toAssuranceModel(await this.webapps.getAssurance(site, app, id));
  }

  /** After the update: check the page again; a broken app is rolled back to the pre-update snapshot (admin). */
  @Post(':app/assurance/:assurance/confirm')
  @HttpCode(202)
  @Idempotent()
  @RequireRole('admin')
  @ApiStandardProblems(
    ...SITE_PROBLEMS,
    ErrorCode.WebappNotFound,
    ErrorCode.SnapshotNotFound,
    ErrorCode.AssuranceNotFound,
    ErrorCode.WebappSnapshotsDisabled,
    ErrorCode.AssuranceNotReady,
    ErrorCode.WebappUnsupported,
    ErrorCode.ShuttingDown,
  )
  @ApiParam(WEBAPP_PARAM)
  @ApiParam(ASSURANCE_PARAM)
  @ApiJobAccepted()
  async confirm(
    @Param('site', SiteRefPipe) site: SiteRef,
    @Param('app') app: string,
    @Param('assurance') id: string,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) res: Response,
  ): Promise<JobModel> {
    const job = await this.webapps.confirm(site, app, id, principal);
    res.setHeader('Location', `/v1/jobs/${job.id}`);
    return toJobModel(job);
  }
}
