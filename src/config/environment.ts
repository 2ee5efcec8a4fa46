import 'reflect-metadata';
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

export const PROVIDER_NAMES = ['duplicity', 'bacula', 'restic', 'borg'] as const;
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
  @Max(36500)
  JOB_RETENTION_DAYS: number = 90;

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

  // Webhook deliveries: backoff base, how long and how often to retry, per-attempt timeout.
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(60_000)
  WEBHOOK_RETRY_BASE_MS: number = 1000;

  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(604_800)
  WEBHOOK_RETRY_FOR_SECONDS: number = 86_400;

  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(10_000)
  WEBHOOK_MAX_ATTEMPTS: number = 200;

  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(300)
  WEBHOOK_TIMEOUT_SECONDS: number = 10;

  /** Where the seed's server-wide locations are looked for (`/`; a test or chroot sets another root). */
  @IsAbsolutePath()
  SERVER_BACKUP_ROOT: string = '/';

  /** More absolute paths or globs for the server backup, comma separated. */
  @IsOptional()
  @Matches(/^\/[^,\0]*(,\/[^,\0]*)*$/, { message: 'SERVER_BACKUP_EXTRA_PATHS must be comma-separated absolute paths' })
  SERVER_BACKUP_EXTRA_PATHS?: string;

  // Bacula: the director is reached through bconsole; per-site Job/FileSet fragments go to BACULA_INCLUDE_DIR.
  @IsAbsolutePath()
  BACULA_BCONSOLE_CONFIG: string = '/etc/bacula/bconsole.conf';

  // The bconsole program: found on the children's fixed PATH, or an absolute path (Bacula's own packages install
  // it under /opt/bacula/bin).
  @Matches(/^(bconsole|\/[^\0]+)$/, { message: 'BACULA_BCONSOLE must be "bconsole" or an absolute path' })
  BACULA_BCONSOLE: string = 'bconsole';

  @IsAbsolutePath()
  BACULA_INCLUDE_DIR: string = '/etc/bacula/apiscp-backup-api.d';

  @IsString()
  @Matches(/^[\w.-]{1,127}$/, { message: 'BACULA_CLIENT must be a Bacula resource name' })
  BACULA_CLIENT: string = 'apiscp-fd';

  @IsString()
  @Matches(/^[\w.-]{1,127}$/, { message: 'BACULA_STORAGE must be a Bacula resource name' })
  BACULA_STORAGE: string = 'File1';

  @IsString()
  @Matches(/^[\w.-]{1,127}$/, { message: 'BACULA_POOL must be a Bacula resource name' })
  BACULA_POOL: string = 'File';

  @IsString()
  @Matches(/^[\w.-]{1,127}$/, { message: 'BACULA_JOB_DEFAULTS must be a Bacula resource name' })
  BACULA_JOB_DEFAULTS: string = 'apiscp-backup-api-defaults';

  @IsIn(['none', 'GZIP', 'GZIP1', 'GZIP6', 'GZIP9', 'LZO'])
  BACULA_COMPRESSION: string = 'GZIP';

  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(600)
  BACULA_TIMEOUT_SECONDS: number = 20;

  // Database exports (native exporter).
  @IsString()
  @Matches(/^[\w.:-]{1,253}$/, { message: 'MYSQL_HOST must be a host name or IP' })
  MYSQL_HOST: string = 'localhost';

  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(65535)
  MYSQL_PORT: number = 3306;

  @IsOptional()
  @IsAbsolutePath()
  MYSQL_SOCKET?: string;

  @IsString()
  @Matches(/^[\w.-]{1,80}$/, { message: 'MYSQL_USER must be a user name' })
  MYSQL_USER: string = 'root';

  @IsOptional()
  @IsAbsolutePath()
  MYSQL_PASSWORD_FILE?: string;

  @IsString()
  @Matches(/^[\w.:/-]{1,253}$/, { message: 'PGHOST must be a host name, IP or socket directory' })
  PGHOST: string = '/var/run/postgresql';

  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(65535)
  PGPORT: number = 5432;

  @IsString()
  @Matches(/^[\w.-]{1,80}$/, { message: 'PGUSER must be a user name' })
  PGUSER: string = 'postgres';

  @IsOptional()
  @IsAbsolutePath()
  PGPASSWORD_FILE?: string;

  /** Relative to a site's root: where its exports land (inside shadow so its backup carries them). */
  @Matches(/^shadow\/(?!var\/lib(\/|$))[\w./-]+$/, {
    message: 'EXPORT_DIR must be a relative path inside shadow/ and outside shadow/var/lib',
  })
  EXPORT_DIR: string = 'shadow/var/backups/databases';

  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  EXPORT_KEEP: number = 3;

  @IsString()
  @Matches(/^\S+( \S+){4}$/, { message: 'EXPORT_SCHEDULE must be a five-field cron expression' })
  EXPORT_SCHEDULE: string = '30 2 * * *';

  /** The private key duplicity's sftp/scp backend logs in with (paramiko: `-oIdentityFile`). */
  @IsOptional()
  @IsAbsolutePath()
  DUPLICITY_SSH_KEY_FILE?: string;

  /** The known host keys of sftp/scp targets (`ssh-keyscan` output); an unknown or changed key fails the job. */
  @IsOptional()
  @IsAbsolutePath()
  DUPLICITY_SSH_KNOWN_HOSTS?: string;

  /** How many times a job tries a target that is unreachable (the first try included) before it fails. */
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(20)
  TARGET_RETRY_ATTEMPTS: number = 4;

  /** The longest wait between two tries of an unreachable target (the backoff doubles from 2 s up to this). */
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(3600)
  TARGET_RETRY_MAX_SECONDS: number = 60;
  // restic: one repository for the server (sites told apart by --host); borg: one repository per site under a root.
  @IsOptional()
  @Matches(/^\S+$/, {
    message: 'RESTIC_REPOSITORY must be a restic repository location (a path or a URL such as sftp:…)',
  })
  RESTIC_REPOSITORY?: string;

  @IsOptional()
  @IsAbsolutePath()
  RESTIC_PASSWORD_FILE?: string;

  @IsOptional()
  @Matches(/^(\/[^\0\s]*|ssh:\/\/\S+)$/, {
    message: 'BORG_REPOSITORY_ROOT must be an absolute path or an ssh:// URL',
  })
  BORG_REPOSITORY_ROOT?: string;

  @IsOptional()
  @IsAbsolutePath()
  BORG_PASSPHRASE_FILE?: string;

  /** Sites on one schedule start spread over this many minutes after each slot (by a hash of the site), not at once. */
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(1440)
  SCHEDULE_SPREAD_MINUTES: number = 30;
  /** Where Update Assurance fetches a site's pages from (this server), with the site's domain as Host. */
  @Matches(/^https?:\/\/[^/\s?#]+\/?$/, {
    message: 'WEBAPP_CHECK_ORIGIN must be an http(s) origin such as http://127.0.0.1',
  })
  WEBAPP_CHECK_ORIGIN: string = 'http://127.0.0.1';
  /** A file holding the password of DUPLICITY_TARGET's user; given to duplicity as FTP_PASSWORD in its environment. */
  @IsOptional()
  @IsAbsolutePath()
  DUPLICITY_TARGET_PASSWORD_FILE?: string;

  /** Staging restores older than this are removed (hours after the restore ended). */
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(24 * 365)
  RESTORE_STAGING_TTL_HOURS: number = 72;

  /** The free space a restore must leave on its filesystem: a percentage (`5%`) or bytes (`10G`, `500M`). */
  @Matches(/^(\d{1,2}(\.\d+)?%|100%|\d+[KMGT]?)$/, {
    message: 'DATA_DIR_MIN_FREE must be a percentage (5%) or a size (10G)',
  })
  DATA_DIR_MIN_FREE: string = '5%';
}
