import { ApiProperty } from '@nestjs/swagger';
import { IsBoolean, IsDefined } from 'class-validator';

export class ScopeModel {
  @ApiProperty({ example: 'backups.automatic-database-exports' })
  name!: string;
  value!: boolean;
  /** `apiscp` when read through cpcmd on an ApisCP server, `local` when kept by this service. */
  @ApiProperty({ enum: ['apiscp', 'local'] })
  source!: 'apiscp' | 'local';
}

export class SetScopeBody {
  /** The new value. Only true or false (JSON booleans) are accepted. */
  @IsDefined()
  @IsBoolean()
  value!: boolean;
}
