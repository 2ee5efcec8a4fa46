import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional } from 'class-validator';
import { PageModel, PageQuery } from '../common/pagination/page';
import { PROVIDER_NAMES } from '../config/environment';
import { BACKUP_LEVELS } from '../providers/backup-provider';

export class RestorePointModel {
  @ApiProperty({ example: 'duplicity-20261126T110204Z' })
  id!: string;
  @ApiProperty({ example: 'duplicity' })
  provider!: string;
  @ApiProperty({ format: 'date-time' })
  time!: string;
  @ApiProperty({ enum: BACKUP_LEVELS })
  level!: string;
  /** Oldest first: every backup replayed to restore this point (the full, then the differential or incrementals up to it). */
  @ApiProperty({ example: ['duplicity-20261120T020000Z', 'duplicity-20261121T020000Z'] })
  chain!: string[];
  @ApiPropertyOptional({ type: Number, nullable: true })
  bytes!: number | null;
  @ApiPropertyOptional({ type: Number, nullable: true })
  files!: number | null;
  /** Only `complete` points can be restored; `incomplete` and `orphaned` sets are listed so an operator sees them. */
  @ApiProperty({ enum: ['complete', 'incomplete', 'orphaned'] })
  state!: string;
}

export class RestorePointPageModel extends PageModel(RestorePointModel) {}

export class ListRestorePointsQuery extends PageQuery {
  /** Only this provider's points. */
  @IsOptional()
  @IsIn(PROVIDER_NAMES)
  @ApiPropertyOptional({ enum: PROVIDER_NAMES })
  provider?: string;
}
