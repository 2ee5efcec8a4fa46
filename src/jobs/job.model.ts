import { ApiProperty } from '@nestjs/swagger';
import { PROVIDER_NAMES } from '../config/environment';
import { BACKUP_LEVELS } from './backup-level';
import { RESTORE_TARGETS } from '../restores/restore.model';
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
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  startedAt!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  finishedAt!: string | null;
  @ApiProperty({ type: String, nullable: true })
  detail!: string | null;
}

export class JobErrorModel {
  @ApiProperty({ example: 'target-unreachable' })
  code!: string;
  message!: string;
  /** Whether starting the same job again, unchanged, can succeed (a target that was down: yes; a bad key: no). */
  @ApiProperty({ example: true })
  retryable!: boolean;
}

/** What every job has; `JobModel` and the per-kind models add `kind`, `request` and `result`. */
class JobCommonModel {
  @ApiProperty({ format: 'uuid' })
  id!: string;
  /** `siteN`, `server`, or null for a job over several sites. */
  @ApiProperty({ type: String, nullable: true, example: 'site12' })
  site!: string | null;
  /** The engine; null for an export. */
  @ApiProperty({ enum: PROVIDER_NAMES, nullable: true, example: 'duplicity' })
  provider!: string | null;
  /** The level asked for (a backup) or of the restore point (a restore); null for an export. */
  @ApiProperty({ enum: BACKUP_LEVELS, nullable: true, example: 'incremental' })
  level!: string | null;
  @ApiProperty({ enum: JOB_STATUSES })
  status!: JobStatus;
  progress!: JobProgressModel;
  @ApiProperty({ type: [JobStepModel] })
  steps!: JobStepModel[];
  @ApiProperty({ type: JobErrorModel, nullable: true })
  error!: JobErrorModel | null;
  /** The name of the token that started it (`schedule` for the nightly export). */
  @ApiProperty({ type: String, nullable: true })
  requestedBy!: string | null;
  @ApiProperty({ format: 'date-time' })
  createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  startedAt!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  finishedAt!: string | null;
}

/**
 * A job. In the spec this schema is the union of `BackupJobModel`, `ExportJobModel` and `RestoreJobModel`,
 * discriminated by `kind` (see buildOpenApiDocument), so that `request` and `result` are typed per kind.
 */
export class JobModel extends JobCommonModel {
  @ApiProperty({ enum: JOB_KINDS })
  kind!: JobKind;
  /** The request that started the job. */
  @ApiProperty({ type: 'object', additionalProperties: true })
  request!: object;
  /** What the job produced, once it succeeded; null until then and when it did not. */
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true })
  result!: object | null;
}

export class BackupJobRequestModel {
  @ApiProperty({ enum: BACKUP_LEVELS })
  level!: string;
  @ApiProperty({ enum: PROVIDER_NAMES })
  provider!: string;
  exportDatabases!: boolean;
  continueOnExportFailure!: boolean;
}

/** A database export file a job wrote. */
export class ExportedFileModel {
  @ApiProperty({ example: 'site12' })
  site!: string;
  @ApiProperty({ enum: ['mysql', 'pgsql'] })
  engine!: string;
  @ApiProperty({ example: 'shop1_wp' })
  database!: string;
  /** Relative to the site's root. */
  @ApiProperty({ example: 'shadow/var/backups/databases/mysql/shop1_wp.20261126T023000.000Z.sql.gz' })
  file!: string;
  @ApiProperty({ type: 'integer' })
  bytes!: number;
  @ApiProperty({ example: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' })
  sha256!: string;
}

/** A database that was not exported, and why. */
export class FailedExportModel {
  @ApiProperty({ example: 'site12' })
  site!: string;
  @ApiProperty({ enum: ['mysql', 'pgsql'] })
  engine!: string;
  /** Null when the site's databases of this engine could not even be listed. */
  @ApiProperty({ type: String, nullable: true })
  database!: string | null;
  @ApiProperty({ example: 'server-unreachable' })
  code!: string;
  message!: string;
}

export class BackupJobResultModel {
  /** The level made (an incremental with no full yet becomes a full). */
  @ApiProperty({ enum: BACKUP_LEVELS })
  level!: string;
  @ApiProperty({ enum: BACKUP_LEVELS })
  requestedLevel!: string;
  /** The restore point this backup made, to restore it with `POST .../restores`. */
  @ApiProperty({ type: String, nullable: true, example: 'duplicity-20261126T110204Z' })
  restorePoint!: string | null;
  @ApiProperty({ type: 'integer', nullable: true })
  bytes!: number | null;
  @ApiProperty({ type: 'integer', nullable: true })
  files!: number | null;
  warnings!: string[];
  notes!: string[];
  /** The database exports made first, in the same job. */
  @ApiProperty({ type: [ExportedFileModel] })
  exports!: ExportedFileModel[];
}

export class ExportJobRequestModel {
  /** The sites asked for, or null for every site. */
  @ApiProperty({ type: [String], nullable: true, example: ['site12'] })
  sites!: string[] | null;
}

export class ExportJobResultModel {
  /** How many sites were exported. */
  @ApiProperty({ type: 'integer' })
  sites!: number;
  /** How many databases were exported. */
  @ApiProperty({ type: 'integer' })
  exported!: number;
  @ApiProperty({ type: [FailedExportModel] })
  failed!: FailedExportModel[];
  @ApiProperty({ type: [ExportedFileModel] })
  files!: ExportedFileModel[];
}

export class RestoreJobRequestModel {
  @ApiProperty({ example: 'duplicity-20261126T110204Z' })
  restorePoint!: string;
  /** Empty: everything. */
  paths!: string[];
  @ApiProperty({ enum: RESTORE_TARGETS })
  target!: string;
}

export class RestoreJobResultModel {
  @ApiProperty({ example: 'duplicity-20261126T110204Z' })
  restorePoint!: string;
  chain!: string[];
  @ApiProperty({ enum: RESTORE_TARGETS })
  target!: string;
  /** The staging directory, or the site's root for an in-place restore. */
  @ApiProperty({ example: '/var/lib/apiscp-backup-api/restores/0b6c2f0e-3f5e-4d3c-9a57-0d7e1b5f8c11' })
  destination!: string;
  paths!: string[];
  @ApiProperty({ type: 'integer', nullable: true })
  files!: number | null;
  @ApiProperty({ type: 'integer', nullable: true })
  bytes!: number | null;
  warnings!: string[];
}

export class BackupJobModel extends JobCommonModel {
  @ApiProperty({ enum: ['backup'] })
  kind!: 'backup';
  request!: BackupJobRequestModel;
  @ApiProperty({ type: BackupJobResultModel, nullable: true })
  result!: BackupJobResultModel | null;
}

export class ExportJobModel extends JobCommonModel {
  @ApiProperty({ enum: ['export'] })
  kind!: 'export';
  request!: ExportJobRequestModel;
  @ApiProperty({ type: ExportJobResultModel, nullable: true })
  result!: ExportJobResultModel | null;
}

export class RestoreJobModel extends JobCommonModel {
  @ApiProperty({ enum: ['restore'] })
  kind!: 'restore';
  request!: RestoreJobRequestModel;
  @ApiProperty({ type: RestoreJobResultModel, nullable: true })
  result!: RestoreJobResultModel | null;
}

/** A retention run (`POST /v1/sites/{site}/prune`, or after a scheduled backup). */
export class PruneJobModel extends JobCommonModel {
  @ApiProperty({ enum: ['prune'] })
  kind!: 'prune';
  /** `{provider, dryRun}`. */
  @ApiProperty({ type: 'object', additionalProperties: true })
  request!: object;
  /** `{dryRun, kept, removed: [{id, time, level}], bytesFreed, ...}` once it succeeded. */
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true })
  result!: object | null;
}

/** A web app snapshot, rollback, or the two halves of an Update Assurance. */
export class WebappJobModel extends JobCommonModel {
  @ApiProperty({ enum: ['webapp'] })
  kind!: 'webapp';
  @ApiProperty({ enum: ['snapshot', 'rollback', 'assurance', 'confirm'], nullable: true, example: 'snapshot' })
  declare level: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true })
  request!: object;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true })
  result!: object | null;
}

/** A directory streamed as a tar (live, or from a restore point); its log lists what was skipped or changed. */
export class ArchiveJobModel extends JobCommonModel {
  @ApiProperty({ enum: ['archive'] })
  kind!: 'archive';
  @ApiProperty({ type: 'object', additionalProperties: true })
  request!: object;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true })
  result!: object | null;
}

/** The schemas `JobModel` stands for in the spec, by `kind`. */
export const JOB_MODELS_BY_KIND = {
  backup: BackupJobModel,
  export: ExportJobModel,
  restore: RestoreJobModel,
  prune: PruneJobModel,
  webapp: WebappJobModel,
  archive: ArchiveJobModel,
} as const satisfies Record<JobKind, unknown>;

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
    error: job.error ? { ...job.error, retryable: job.error.retryable ?? false } : null,
    requestedBy: job.requestedBy,
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
  };
}
