import { ApiProperty } from '@nestjs/swagger';
import { IsBoolean, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { JobModel } from '../jobs/job.model';
import { ASSURANCE_STATUSES, type AssuranceStatus } from './assurance-store';
import { WEBAPP_TYPES, type WebappType } from './webapp-types';

export const WEBAPP_PARAM = {
  name: 'app',
  description: 'A web app id from `GET /v1/sites/{site}/webapps`',
  example: 'html-1a2b3c',
};
export const SNAPSHOT_PARAM = {
  name: 'snapshot',
  description: 'A snapshot id (its commit)',
  example: '0123456789abcdef0123456789abcdef01234567',
};
export const ASSURANCE_PARAM = { name: 'assurance', description: 'An update assurance id', format: 'uuid' };

export class WebappDatabaseModel {
  @ApiProperty({ enum: ['mysql', 'pgsql'] })
  engine!: string;
  @ApiProperty({ example: 'shop1_wp' })
  name!: string;
}

export class WebappSnapshotsSummaryModel {
  enabled!: boolean;
  includeUploads!: boolean;
  count!: number;
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  newest!: string | null;
}

export class WebappModel {
  @ApiProperty({ example: 'html-1a2b3c' })
  id!: string;
  /** Relative to the site's `shadow`. */
  @ApiProperty({ example: 'var/www/html' })
  path!: string;
  @ApiProperty({ enum: WEBAPP_TYPES })
  type!: WebappType;
  @ApiProperty({ type: String, nullable: true, example: '6.4.2' })
  version!: string | null;
  /** The app's database when its configuration names one of the site's own (by prefix). */
  @ApiProperty({ type: WebappDatabaseModel, nullable: true })
  database!: WebappDatabaseModel | null;
  snapshots!: WebappSnapshotsSummaryModel;
}

export class SetSnapshotsBody {
  /** Start (or stop) taking snapshots; enabling also enables Update Assurance. */
  @IsBoolean()
  enabled!: boolean;

  /** Also snapshot uploaded media (left out by default). */
  @IsOptional()
  @IsBoolean()
  includeUploads?: boolean;
}

export class TakeSnapshotBody {
  @IsOptional()
  @IsString()
  @MaxLength(500)
  @Matches(/^[^\0]*$/, { message: 'message must not contain NUL' })
  message?: string;
}

export class SnapshotDatabaseModel {
  @ApiProperty({ enum: ['mysql', 'pgsql'] })
  engine!: string;
  name!: string;
  /** Size of the logical export tied to the snapshot. */
  bytes!: number;
  sha256!: string;
}

export class SnapshotModel {
  @ApiProperty({ example: '0123456789abcdef0123456789abcdef01234567' })
  id!: string;
  @ApiProperty({ format: 'date-time' })
  time!: string;
  message!: string;
  @ApiProperty({ enum: ['manual', 'pre-update', 'pre-rollback'] })
  kind!: string;
  /** Files that changed since the snapshot before it. */
  filesChanged!: number;
  @ApiProperty({ type: SnapshotDatabaseModel, nullable: true })
  database!: SnapshotDatabaseModel | null;
}

export class DiffPathModel {
  path!: string;
  @ApiProperty({ enum: ['added', 'modified', 'deleted'] })
  change!: string;
}

export class SnapshotDiffModel {
  snapshot!: string;
  added!: number;
  modified!: number;
  deleted!: number;
  @ApiProperty({ type: [DiffPathModel] })
  paths!: DiffPathModel[];
  truncated!: boolean;
}

export class StartAssuranceBody {
  /** The page to check: a path (`/shop/`) or an absolute URL whose host is sent as `Host`; the app's root by default. */
  @IsOptional()
  @IsString()
  @MaxLength(2048)
  @Matches(/^(\/[^\s]*|https?:\/\/[^\s/]+(\/[^\s]*)?)$/, {
    message: 'url must be a path starting with / or an http(s) URL',
  })
  url?: string;

  /** How much smaller (in percent) the page may get before it counts as broken; 50 by default. */
  @IsOptional()
  @IsInt()
  @Min(5)
  @Max(100)
  shrinkPercent?: number;
}

export class PageCheckModel {
  url!: string;
  @ApiProperty({ type: Number, nullable: true })
  status!: number | null;
  @ApiProperty({ type: String, nullable: true })
  title!: string | null;
  bytes!: number;
  @ApiProperty({ type: [String] })
  markers!: string[];
  @ApiProperty({ type: String, nullable: true })
  error!: string | null;
}

export class AssuranceModel {
  @ApiProperty({ format: 'uuid' })
  id!: string;
  site!: string;
  app!: string;
  @ApiProperty({ enum: ASSURANCE_STATUSES })
  status!: AssuranceStatus;
  /** The pre-update snapshot. */
  @ApiProperty({ type: String, nullable: true })
  snapshot!: string | null;
  @ApiProperty({ type: PageCheckModel, nullable: true })
  baseline!: PageCheckModel | null;
  @ApiProperty({ type: PageCheckModel, nullable: true })
  lastCheck!: PageCheckModel | null;
  /** Why the update was judged broken. */
  @ApiProperty({ type: [String] })
  reasons!: string[];
  @ApiProperty({ type: String, nullable: true })
  prepareJob!: string | null;
  @ApiProperty({ type: String, nullable: true })
  confirmJob!: string | null;
  @ApiProperty({ format: 'date-time' })
  createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  finishedAt!: string | null;
}

export class StartedAssuranceModel {
  assurance!: AssuranceModel;
  /** The job taking the pre-update snapshot and the baseline. */
  job!: JobModel;
}
