import { Controller, Get, HttpCode, Param, Post, Query, Res, StreamableFile } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiParam, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { CurrentPrincipal, RequireRole } from '../auth/auth.decorators';
import type { Principal } from '../auth/role';
import { ErrorCode } from '../common/errors/error-code';
import { ApiStandardProblems } from '../openapi/api-answers';
import { JobEngine } from './job-engine';
import { JobLogStore } from './job-log.store';
import { JobModel, toJobModel } from './job.model';
import { JobPageModel } from './job-page.model';
import { pageJobs } from './job-page';
import { GetJobQuery, ListAllJobsQuery } from './job-query.model';
import { JobRepository } from './job.repository';

const JOB_PARAM = {
  name: 'id',
  description: 'The job id from the 202 response',
  schema: { type: 'string' as const, format: 'uuid' },
};

@ApiTags('jobs')
@Controller('v1/jobs')
export class JobsController {
  constructor(
    private readonly engine: JobEngine,
    private readonly logs: JobLogStore,
    private readonly repository: JobRepository,
  ) {}

  /** List jobs of every kind, newest first, filtered; the cursor stays stable while new jobs arrive. */
  @Get()
  @RequireRole('monitor')
  @ApiOkResponse({ type: JobPageModel })
  @ApiStandardProblems()
  list(@Query() query: ListAllJobsQuery): JobPageModel {
    const { cursor, limit, since, until, ...filter } = query;
    return pageJobs(
      this.repository,
      { ...filter, since: since && new Date(since).toISOString(), until: until && new Date(until).toISOString() },
      { cursor, limit },
    );
  }

  /** Get a job: status, progress, steps, result or error (with `waitSeconds`, once it has ended). */
  @Get(':id')
  @RequireRole('monitor')
  @ApiParam(JOB_PARAM)
  @ApiOkResponse({ type: JobModel })
  @ApiStandardProblems(ErrorCode.JobNotFound)
  async get(
    @Param('id') id: string,
    @Query() query: GetJobQuery,
    @Res({ passthrough: true }) res: Response,
  ): Promise<JobModel> {
    if (!query.waitSeconds) return toJobModel(this.engine.get(id));
    // A caller that hangs up ends the wait (the response's 'close'; the request's fires once its body is read).
    const gone = new AbortController();
    const hangUp = (): void => gone.abort();
    res.once('close', hangUp);
    try {
      return toJobModel(await this.engine.waitForEnd(id, query.waitSeconds * 1000, gone.signal));
    } finally {
      res.off('close', hangUp);
    }
  }

  /** Get a job's log: the tool's messages, secrets redacted, as plain text. */
  @Get(':id/log')
  @RequireRole('monitor')
  @ApiParam(JOB_PARAM)
  @ApiProduces('text/plain')
  @ApiOkResponse({ description: 'The log, one timestamped line per message', schema: { type: 'string' } })
  @ApiStandardProblems(ErrorCode.JobNotFound)
  log(@Param('id') id: string, @Res({ passthrough: true }) res: Response): StreamableFile {
    const job = this.engine.get(id);
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    const stream = this.logs.read(job.id);
    return stream ? new StreamableFile(stream) : new StreamableFile(Buffer.alloc(0));
  }

  /** Cancel a job: a queued job never starts; a running one has its processes stopped. */
  @Post(':id/cancel')
  @HttpCode(202)
  @RequireRole('operator')
  @ApiParam(JOB_PARAM)
  @ApiAcceptedResponse({ type: JobModel, description: 'Cancelled, or being stopped' })
  @ApiStandardProblems(ErrorCode.JobNotFound, ErrorCode.JobNotCancellable)
  cancel(@Param('id') id: string, @CurrentPrincipal() principal: Principal): JobModel {
    return toJobModel(this.engine.cancel(id, principal.name));
  }
}
