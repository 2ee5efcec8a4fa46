import { ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsIn, IsOptional, IsString, Matches, MaxLength } from 'class-validator';

export const RESTORE_TARGETS = ['staging', 'in-place'] as const;
export type RestoreTarget = (typeof RESTORE_TARGETS)[number];

export class StartRestoreBody {
  /** A restore point id from `GET /v1/sites/{site}/restore-points`. */
  @IsString()
  @Matches(/^(duplicity|bacula|restic|borg)-[0-9A-Za-z]{1,40}$/, {
    message: 'restorePoint must be a restore point id such as duplicity-20261126T110204Z',
  })
  restorePoint!: string;

  /** Paths inside the site to restore (`shadow/var/www/html`, `info/users`); everything when absent. */
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(100)
  @IsString({ each: true })
  @MaxLength(4096, { each: true })
  // No control characters (a newline would split a tool's line-oriented output and name a different file).
  // eslint-disable-next-line no-control-regex
  @Matches(/^(shadow|info)(\/(?!\.\.?(\/|$))[^/\x00-\x1f\x7f]+)*$/, {
    each: true,
    message:
      'each path must be relative to the site, start with shadow or info, and hold no . or .. segment and no control character',
  })
  paths?: string[];

  /** `staging` (default): a new directory under DATA_DIR. `in-place` (admin): swapped into the site only once complete. */
  @IsOptional()
  @IsIn(RESTORE_TARGETS)
  @ApiPropertyOptional({ enum: RESTORE_TARGETS, default: 'staging' })
  target?: RestoreTarget;
}
