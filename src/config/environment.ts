import { Type } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  ValidateIf,
  registerDecorator,
  ValidationOptions,
} from 'class-validator';
import { isAbsolute } from 'node:path';

export const PROVIDER_NAMES = ['duplicity', 'bacula'] as const;
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function IsAbsolutePath(options?: ValidationOptions) {
  return (object: object, propertyName: string) =>
    registerDecorator({
      name: 'isAbsolutePath',
      target: object.constructor,
      propertyName,
      options: { message: `${propertyName} must be an absolute path`, ...options },
      validator: {
        validate: (value: unknown) => typeof value === 'string' && isAbsolute(value) && !value.includes('\0'),
      },
    });
}

/** The environment as the service accepts it; each property is named after its variable. */
export class Environment {
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(65535)
  PORT: number = 8080;

  @IsString()
  @Matches(/^[0-9A-Za-z.:\-[\]]+$/, { message: 'HOST must be a host name or an IP address' })
  HOST: string = '127.0.0.1';

  @IsAbsolutePath()
  VIRTUAL_ROOT: string = '/home/virtual';

  @IsAbsolutePath()
  DATA_DIR: string = '/var/lib/apiscp-backup-api';

  @IsAbsolutePath()
  APNSCP_ROOT: string = '/usr/local/apnscp';

  @IsOptional()
  @IsAbsolutePath()
  API_TOKENS_FILE?: string;

  @Matches(new RegExp(`^(${PROVIDER_NAMES.join('|')})(,(${PROVIDER_NAMES.join('|')}))*$`), {
    message: `PROVIDERS must be a comma-separated list of: ${PROVIDER_NAMES.join(', ')}`,
  })
  PROVIDERS: string = 'duplicity';

  @IsOptional()
  @IsIn(PROVIDER_NAMES)
  DEFAULT_PROVIDER?: string;

  @IsOptional()
  @Matches(/^[a-z][a-z0-9+.-]*:\/\/\S+$/, { message: 'DUPLICITY_TARGET must be a URL such as file:///srv/backups' })
  DUPLICITY_TARGET?: string;

  @IsOptional()
  @IsAbsolutePath()
  DUPLICITY_PASSPHRASE_FILE?: string;

  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(64)
  MAX_CONCURRENT_JOBS: number = 2;

  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(3600)
  SHUTDOWN_GRACE_SECONDS: number = 20;

  @IsIn(LOG_LEVELS)
  LOG_LEVEL: string = 'info';

  @ValidateIf((env: Environment) => env.LOG_FORMAT !== undefined)
  @IsIn(['json', 'pretty'])
  LOG_FORMAT?: string;

  @Matches(/^\d+(b|kb|mb)$/i, { message: 'BODY_LIMIT must look like 64kb or 1mb' })
  BODY_LIMIT: string = '64kb';

  @Type(() => Boolean)
  @IsBoolean()
  SWAGGER_UI: boolean = true;
}
