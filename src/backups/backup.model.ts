import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsOptional } from 'class-validator';
import { JobPageQuery } from '../jobs/job-query.model';
import { PROVIDER_NAMES } from '../config/environment';
import { BACKUP_LEVELS, type BackupLevel } from '../jobs/backup-level';

export class StartBackupBody {
  /** `full`, `incremental` or `differential` (Bacula only). An incremental with no full yet becomes a full. */
  @IsIn(BACKUP_LEVELS)
  @ApiProperty({ enum: BACKUP_LEVELS, example: 'incremental' })
  level!: BackupLevel;

  /** The engine; DEFAULT_PROVIDER when absent. */
  @IsOptional()
  @IsIn(PROVIDER_NAMES)
  @ApiPropertyOptional({ enum: PROVIDER_NAMES })
  provider?: string;

  /** Export the site's databases first, in the same job. Defaults to true when automatic exports are off. */
  @IsOptional()
  @IsBoolean()
  exportDatabases?: boolean;

  /** Back the files up even when a database export failed (the failure is listed in the result's warnings). */
  @IsOptional()
  @IsBoolean()
  continueOnExportFailure?: boolean;
}

export class ListJobsQuery extends JobPageQuery {}
