import { ApiProperty } from '@nestjs/swagger';
import { BACKUP_LEVELS, type BackupLevel } from '../jobs/backup-level';

export class ProviderModel {
  @ApiProperty({ example: 'duplicity' })
  name!: string;
  @ApiProperty({ enum: BACKUP_LEVELS, isArray: true, example: ['full', 'incremental'] })
  levels!: BackupLevel[];
  /** Whether the engine's binaries (and daemons) answer. */
  available!: boolean;
  @ApiProperty({ type: String, nullable: true, example: '0.8.22' })
  version!: string | null;
  /** Why it is unavailable. */
  reason?: string;
  /** What an operator should fix even though it works. */
  warnings!: string[];
  /** Whether requests without `provider` use this one. */
  default!: boolean;
}
