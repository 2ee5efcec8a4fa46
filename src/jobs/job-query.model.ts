import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsISO8601, IsOptional, Matches } from 'class-validator';
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
