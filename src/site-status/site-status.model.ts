import { ApiProperty } from '@nestjs/swagger';
import { JobModel } from '../jobs/job.model';
import { NextRunModel } from '../policies/policy.model';
import { RestorePointModel } from '../restore-points/restore-point.model';

export class LastBackupModel {
  @ApiProperty({ example: 'duplicity' })
  provider!: string;
  @ApiProperty({ format: 'uuid' })
  jobId!: string;
  @ApiProperty({ format: 'date-time' })
  finishedAt!: string;
  @ApiProperty({ type: String, nullable: true, example: 'incremental' })
  level!: string | null;
  @ApiProperty({ type: String, nullable: true })
  restorePoint!: string | null;
}

/** One answer for billing and monitoring: is this site backed up, and is anything running for it. */
export class SiteStatusModel {
  @ApiProperty({ example: 'site12' })
  site!: string;
  /** The newest successful backup per provider. */
  @ApiProperty({ type: [LastBackupModel] })
  lastSuccessfulBackups!: LastBackupModel[];
  @ApiProperty({ type: RestorePointModel, nullable: true })
  newestRestorePoint!: RestorePointModel | null;
  /** Queued and running jobs of the site, oldest first. */
  @ApiProperty({ type: [JobModel] })
  activeJobs!: JobModel[];
  /** The next scheduled backup of each level, from the site's policy (empty without one). */
  @ApiProperty({ type: [NextRunModel] })
  nextRuns!: NextRunModel[];
}
