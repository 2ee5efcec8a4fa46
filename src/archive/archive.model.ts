import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsString, MaxLength } from 'class-validator';
import { COMPRESSIONS, type Compression } from './compression';

export class ArchiveQuery {
  /** A directory of the site, relative to its root, inside `shadow` or `info` (never `shadow/var/lib`). */
  @IsString()
  @MaxLength(4096)
  @ApiProperty({ example: 'shadow/var/www' })
  path!: string;

  @IsOptional()
  @IsIn(COMPRESSIONS)
  @ApiPropertyOptional({ enum: COMPRESSIONS, default: 'none' })
  compression?: Compression;
}
