import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsBoolean,
  IsDefined,
  IsObject,
  ValidateIf,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  ValidateNested,
} from 'class-validator';
import { PROVIDER_NAMES } from '../config/environment';

export class LevelScheduleBody {
  /** Five-field cron expression (minute hour day month weekday); croner's `L` and `#n` are accepted. */
  @IsString()
  @MaxLength(200)
  @ApiProperty({ example: '0 2 * * 1-6' })
  cron!: string;

  /** IANA time zone the expression is read in; UTC when absent. */
  @IsOptional()
  @IsString()
  @MaxLength(64)
  @ApiPropertyOptional({ example: 'Europe/Berlin' })
  timezone?: string;
}

export class SchedulesBody {
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => LevelScheduleBody)
  @ApiPropertyOptional({ type: LevelScheduleBody, example: { cron: '0 2 * * 0#1', timezone: 'UTC' } })
  full?: LevelScheduleBody;

  /** Only for providers with a differential level (bacula). */
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => LevelScheduleBody)
  @ApiPropertyOptional({ type: LevelScheduleBody })
  differential?: LevelScheduleBody;

  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => LevelScheduleBody)
  @ApiPropertyOptional({ type: LevelScheduleBody, example: { cron: '0 2 * * 1-6', timezone: 'UTC' } })
  incremental?: LevelScheduleBody;
}

export class RetentionBody {
  @IsInt()
  @Min(0)
  @Max(36500)
  @ApiProperty({ example: 60, description: 'Fulls younger than this many days are kept' })
  fullDays!: number;

  @IsInt()
  @Min(0)
  @Max(1000)
  @ApiProperty({ example: 2, description: 'At least this many of the newest fulls are kept, whatever their age' })
  minFulls!: number;

  @IsInt()
  @Min(0)
  @Max(36500)
  @ApiProperty({ example: 20 })
  differentialDays!: number;

  @IsInt()
  @Min(0)
  @Max(36500)
  @ApiProperty({ example: 4 })
  incrementalDays!: number;
}

export class ReplayBudgetBody {
  /** The most backups a restore of the newest point may replay (the full included). */
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(10000)
  @ApiPropertyOptional({ example: 8 })
  maxChain?: number;

  /** The most bytes a restore of the newest point may read. */
  @IsOptional()
  @IsInt()
  @Min(1)
  @ApiPropertyOptional({ example: 10737418240 })
  maxReplayBytes?: number;
}

export class PolicyBody {
  @IsString()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/, {
    message: 'name must be 1-64 letters, digits, spaces, dots, dashes or underscores',
  })
  @ApiProperty({ example: 'weekly-cycle' })
  name!: string;

  @IsIn(PROVIDER_NAMES)
  @ApiProperty({ enum: PROVIDER_NAMES })
  provider!: string;

  /** Make this the policy of every site without one of its own (the previous default stops being one). */
  @IsOptional()
  @IsBoolean()
  @ApiPropertyOptional({ default: false })
  default?: boolean;

  @IsObject()
  @ValidateNested()
  @Type(() => SchedulesBody)
  @ApiProperty({ type: SchedulesBody })
  schedules!: SchedulesBody;

  @IsObject()
  @ValidateNested()
  @Type(() => RetentionBody)
  @ApiProperty({ type: RetentionBody })
  retention!: RetentionBody;

  /** Export the site's databases before each scheduled backup; absent: when the panel's automatic exports are off. */
  @IsOptional()
  @IsBoolean()
  @ApiPropertyOptional()
  exportDatabases?: boolean;

  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => ReplayBudgetBody)
  @ApiPropertyOptional({ type: ReplayBudgetBody })
  budget?: ReplayBudgetBody;
}

export class PolicyModel extends PolicyBody {
  @ApiProperty({ format: 'uuid' })
  id!: string;
  @ApiProperty()
  declare default: boolean;
  @ApiProperty({ format: 'date-time' })
  createdAt!: string;
  @ApiProperty({ format: 'date-time' })
  updatedAt!: string;
}

export class AssignPolicyBody {
  /** The policy's id, or null to fall back to the default policy. */
  @IsDefined()
  @ValidateIf((body: AssignPolicyBody) => body.policy !== null)
  @IsString()
  @MaxLength(64)
  @ApiProperty({ type: String, nullable: true, format: 'uuid' })
  policy!: string | null;
}

export class NextRunModel {
  @ApiProperty({ enum: ['full', 'differential', 'incremental'] })
  level!: string;
  @ApiProperty({ example: 'duplicity' })
  provider!: string;
  /** The policy that schedules it. */
  @ApiProperty({ format: 'uuid' })
  policy!: string;
  /** When it starts: the slot plus the site's fixed offset within SCHEDULE_SPREAD_MINUTES. */
  @ApiProperty({ format: 'date-time' })
  at!: string;
}

export class EffectivePolicyModel {
  @ApiProperty({ example: 'site12' })
  site!: string;
  /** `site`: assigned to the site; `default`: the default policy; `none`: no policy, nothing is scheduled. */
  @ApiProperty({ enum: ['site', 'default', 'none'] })
  source!: string;
  @ApiProperty({ type: PolicyModel, nullable: true })
  policy!: PolicyModel | null;
  /** The next scheduled backup of each level (also in `GET /v1/sites/{site}/status`). */
  @ApiProperty({ type: [NextRunModel] })
  nextRuns!: NextRunModel[];
}
