import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsOptional, IsString, MaxLength } from 'class-validator';

export class StartExportBody {
  /** Sites to export (`siteN` or domains); every site when absent. Unknown names are a 404 and nothing starts. */
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(10_000)
  @IsString({ each: true })
  @MaxLength(253, { each: true })
  @ApiPropertyOptional({ type: [String], example: ['site1', 'example.com'] })
  sites?: string[];
}

export class ExportFileModel {
  @ApiProperty({ enum: ['mysql', 'pgsql'] })
  engine!: string;
  @ApiProperty({ example: 'shop1_wp' })
  database!: string;
  /** Relative to the site's root: inside `shadow/`, so the site's own backup carries it. */
  @ApiProperty({ example: 'shadow/var/backups/databases/mysql/shop1_wp.20261126T023000.000Z.sql.gz' })
  file!: string;
  bytes!: number;
  /** Of the file as stored, so `sha256sum` verifies it. */
  @ApiProperty({ example: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' })
  sha256!: string;
  @ApiProperty({ format: 'date-time' })
  createdAt!: string;
}

export class SiteDatabaseModel {
  @ApiProperty({ enum: ['mysql', 'pgsql'] })
  engine!: string;
  @ApiProperty({ example: 'shop1_wp' })
  name!: string;
}
