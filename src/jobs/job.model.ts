import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { JOB_KINDS, JOB_STATUSES, type Job, type JobKind, type JobStatus } from './job';

export class JobProgressModel {
  /** What the job is doing now (its current step). */
  @ApiProperty({ type: String, nullable: true, example: 'backup' })
  phase!: string | null;
  @ApiProperty({ type: Number, nullable: true, example: 42.5 })
  percent!: number | null;
  @ApiProperty({ type: Number, nullable: true, example: 104857600 })
  bytes!: number | null;
}

export class JobStepModel {
  @ApiProperty({ example: 'backup' })
  name!: string;
  @ApiProperty({ enum: ['pending', 'running', 'succeeded', 'failed', 'skipped', 'cancelled'] })
  status!: string;
  @ApiProperty({ type: String, nullable: true })
  startedAt!: string | null;
  @ApiProperty({ type: String, nullable: true })
  finishedAt!: string | null;
  @ApiProperty({ type: String, nullable: true })
  detail!: string | null;
}

export class JobErrorModel {
  @ApiProperty({ example: 'duplicity-backend-unavailable' })
  code!: string;
  message!: string;
}

export class JobModel {
  @ApiProperty({ format: 'uuid' })
  id!: string;
  @ApiProperty({ enum: JOB_KINDS })
  kind!: JobKind;
  /** `siteN`, `server`, or null for a job over several sites. */
  @ApiProperty({ type: String, nullable: true, example: 'site12' })
  site!: string | null;
  @ApiProperty({ type: String, nullable: true, example: 'duplicity' })
  provider!: string | null;
  @ApiProperty({ type: String, nullable: true, example: 'incremental' })
  level!: string | null;
  @ApiProperty({ enum: JOB_STATUSES })
  status!: JobStatus;
  progress!: JobProgressModel;
  @ApiProperty({ type: [JobStepModel] })
  steps!: JobStepModel[];
  /** The request that started the job. */
  @ApiProperty({ type: 'object', additionalProperties: true })
  request!: Record<string, unknown>;
  /** What the job produced (e.g. the restore's staging directory), once it succeeded. */
  @ApiPropertyOptional({ type: 'object', additionalProperties: true, nullable: true })
  result!: Record<string, unknown> | null;
  @ApiProperty({ type: JobErrorModel, nullable: true })
  error!: JobErrorModel | null;
  /** The name of the token that started it. */
  @ApiProperty({ type: String, nullable: true })
  requestedBy!: string | null;
  @ApiProperty({ format: 'date-time' })
  createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  startedAt!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  finishedAt!: string | null;
}

export function toJobModel(job: Job): JobModel {
  return {
    id: job.id,
    kind: job.kind,
    site: job.site,
    provider: job.provider,
    level: job.level,
    status: job.status,
    progress: job.progress,
    steps: job.steps,
    request: job.params,
    result: job.result,
    error: job.error,
    requestedBy: job.requestedBy,
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
  };
}
