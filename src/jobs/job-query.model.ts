import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsIn, IsInt, IsISO8601, IsOptional, Matches, Max, Min } from 'class-validator';
import { pageQuery } from '../common/pagination/page';
import { PROVIDER_NAMES } from '../config/environment';
import { JOB_KINDS, JOB_STATUSES, type JobKind, type JobStatus } from './job';

export const DEFAULT_JOB_PAGE_LIMIT = 50;

/** `limit` and `cursor` of the job lists. */
export class JobPageQuery extends pageQuery(DEFAULT_JOB_PAGE_LIMIT) {}

export class ListAllJobsQuery extends JobPageQuery {
  /** `siteN` or `server`. */
  @IsOptional()
  @Matches(/^(site[1-9][0-9]{0,8}|server)$/, { message: 'site must be siteN or server' })
  site?: string;

  @IsOptional()
  @IsIn(JOB_KINDS)
  @ApiPropertyOptional({ enum: JOB_KINDS })
  kind?: JobKind;

  @IsOptional()
  @IsIn(JOB_STATUSES)
  @ApiPropertyOptional({ enum: JOB_STATUSES })
  status?: JobStatus;

  @IsOptional()
  @IsIn(PROVIDER_NAMES)
  @ApiPropertyOptional({ enum: PROVIDER_NAMES })
  provider?: string;

  /** Jobs created at or after this time (ISO 8601). */
  @IsOptional()
  @IsISO8601({ strict: true })
  since?: string;

  /** Jobs created before this time (ISO 8601). */
  @IsOptional()
  @IsISO8601({ strict: true })
  until?: string;
}

/** The longest a `GET /v1/jobs/{id}` may hold its answer for a job to end: below common proxy idle timeouts. */
export const MAX_JOB_WAIT_SECONDS = 60;

export class GetJobQuery {
  /**
   * Hold the answer until the job has ended or this many seconds have passed, whichever comes first: the answer is
   * the job as it is then (ended or not), so a caller waits with one request a minute instead of a poll loop. 0 or
   * absent answers at once.
   */
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(MAX_JOB_WAIT_SECONDS)
  @ApiPropertyOptional({ type: 'integer', minimum: 0, maximum: MAX_JOB_WAIT_SECONDS, default: 0 })
  waitSeconds?: number;
}
