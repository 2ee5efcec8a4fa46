import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsString, MaxLength } from 'class-validator';
import { PageModel, PageQuery } from '../common/pagination/page';

export class ListPointFilesQuery extends PageQuery {
  /** A directory of the site as it was at the point, relative to the site root, inside `shadow` or `info`. */
  @IsString()
  @MaxLength(4096)
  @ApiProperty({ example: 'shadow/var/www' })
  path!: string;
}

export class PointFileContentQuery {
  /** A regular file of the site as it was at the point, relative to the site root. */
  @IsString()
  @MaxLength(4096)
  @ApiProperty({ example: 'shadow/var/www/html/index.php' })
  path!: string;
}

/** One entry of a directory at a restore point. What the engine does not record is null (duplicity: size, mode, owner, target). */
export class PointFileModel {
  @ApiProperty({ example: 'index.php' })
  name!: string;
  @ApiProperty({ example: 'shadow/var/www/html/index.php' })
  path!: string;
  @ApiProperty({ enum: ['file', 'dir', 'symlink', 'other'] })
  type!: string;
  @ApiPropertyOptional({ type: Number, nullable: true })
  size!: number | null;
  /** Octal permission bits with setuid/setgid/sticky, e.g. `2775`. */
  @ApiPropertyOptional({ type: String, nullable: true, example: '0644' })
  mode!: string | null;
  @ApiPropertyOptional({ type: Number, nullable: true })
  uid!: number | null;
  @ApiPropertyOptional({ type: Number, nullable: true })
  gid!: number | null;
  @ApiPropertyOptional({ type: String, nullable: true, format: 'date-time' })
  mtime!: string | null;
  @ApiPropertyOptional({ type: String, nullable: true })
  target!: string | null;
}

export class PointFilePageModel extends PageModel(PointFileModel) {}
