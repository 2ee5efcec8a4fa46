import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsOptional } from 'class-validator';
import { PROVIDER_NAMES } from '../config/environment';

export class StartPruneBody {
  /** The provider whose restore points are pruned; the policy's provider when absent. */
  @IsOptional()
  @IsIn(PROVIDER_NAMES)
  @ApiPropertyOptional({ enum: PROVIDER_NAMES })
  provider?: string;

  /** List what would be removed (in the job's result) and remove nothing. A real run needs an admin token. */
  @IsOptional()
  @IsBoolean()
  @ApiPropertyOptional({ default: false })
  dryRun?: boolean;
}
