import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional } from 'class-validator';
import { PageModel, PageQuery } from '../common/pagination/page';
import { PROVIDER_NAMES } from '../config/environment';
import { BACKUP_LEVELS } from '../jobs/backup-level';

export class ReplayModel {
  /** Backups a restore replays: the full, then the differential and incrementals up to this point. */
  @ApiProperty({ example: 3 })
  sets!: number;
  /** Their stored bytes (duplicity: the sets' volumes and manifests; Bacula: JobBytes); null when unknown. */
  @ApiProperty({ type: Number, nullable: true, example: 73400320 })
  bytes!: number | null;
}

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
  /** What a restore of this point replays; the restore-time budget of a policy caps it. */
  @ApiPropertyOptional({ type: ReplayModel })
  replay?: ReplayModel;
}

export const LISTING_STATES = ['scanned', 'not-yet-scanned', 'scanning', 'scan-failed'] as const;
export type ListingState = (typeof LISTING_STATES)[number];

/** How current one provider's part of the listing is: it is always answered from the catalog, never by an engine. */
export class ProviderListingModel {
  @ApiProperty({ example: 'duplicity' })
  provider!: string;
  /**
   * `scanned`: the catalog holds the engine's listing as of `scannedAt` (refreshed after every backup).
   * `not-yet-scanned`/`scanning`: the engine was never asked for this site; a background scan is queued or running,
   * ask again later. `scan-failed`: the last scan failed (`error`); it is retried after a pause.
   */
  @ApiProperty({ enum: LISTING_STATES })
  state!: ListingState;
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  scannedAt!: string | null;
  @ApiProperty({ type: String, nullable: true })
  error!: string | null;
}

export class RestorePointPageModel extends PageModel(RestorePointModel) {
  @ApiProperty({ type: [ProviderListingModel] })
  listings!: ProviderListingModel[];
}

export class ListRestorePointsQuery extends PageQuery {
  /** Only this provider's points. */
  @IsOptional()
  @IsIn(PROVIDER_NAMES)
  @ApiPropertyOptional({ enum: PROVIDER_NAMES })
  provider?: string;
}
