import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { AppConfig, ProviderName } from './app-config';
import { CronExpression } from '../common/schedule/cron';
import { Environment } from './environment';

/** Variables without a default, which `new Environment()` does not list. */
export const OPTIONAL_VARIABLES = [
  'API_TOKENS_FILE',
  'DEFAULT_PROVIDER',
  'DUPLICITY_TARGET',
  'DUPLICITY_PASSPHRASE_FILE',
  'LOG_FORMAT',
  'MYSQL_SOCKET',
  'MYSQL_PASSWORD_FILE',
  'PGPASSWORD_FILE',
  'SERVER_BACKUP_EXTRA_PATHS',
];

/** Raw database directories: never backed up as files (the seed's "direct file-level backups are dangerous"). */
export const RAW_DATABASE_DIRS = ['/var/lib/mysql', '/var/lib/pgsql', '/var/lib/postgresql'];

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Reads every variable of the configuration contract once; a bad value throws a ConfigError naming each problem. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): AppConfig {
  const known = Object.keys(new Environment());
  const raw: Record<string, string> = {};
  for (const name of [
    ...known,
    'API_TOKENS_FILE',
    'DEFAULT_PROVIDER',
    'DUPLICITY_TARGET',
    'DUPLICITY_PASSPHRASE_FILE',
  ]) {
    const value = source[name];
    if (value !== undefined && value !== '') raw[name] = value;
  }
  if (raw.SWAGGER_UI !== undefined) {
    (raw as Record<string, unknown>).SWAGGER_UI = parseBoolean(raw.SWAGGER_UI);
  }
  const env = plainToInstance(Environment, raw, { exposeDefaultValues: true });
  const problems = validateSync(env, { forbidUnknownValues: false }).flatMap((error) =>
    Object.values(error.constraints ?? {}).map(
      (message) => `${error.property}: ${message} (got ${JSON.stringify(raw[error.property])})`,
    ),
  );

  const providers = [...new Set(env.PROVIDERS.split(',').map((name) => name.trim()))] as ProviderName[];
  const defaultProvider = (env.DEFAULT_PROVIDER ?? providers[0]) as ProviderName;
  if (env.DEFAULT_PROVIDER && !providers.includes(defaultProvider)) {
    problems.push(
      `DEFAULT_PROVIDER: ${env.DEFAULT_PROVIDER} is not one of the enabled PROVIDERS (${providers.join(', ')})`,
    );
  }
  try {
    new CronExpression(env.EXPORT_SCHEDULE);
  } catch (error) {
    problems.push(`EXPORT_SCHEDULE: ${(error as Error).message}`);
  }
  const extraServerPaths = (env.SERVER_BACKUP_EXTRA_PATHS ?? '').split(',').filter(Boolean);
  for (const path of extraServerPaths) {
    const raw = RAW_DATABASE_DIRS.find((dir) => path === dir || path.startsWith(`${dir}/`));
    if (raw) {
      problems.push(
        `SERVER_BACKUP_EXTRA_PATHS: ${path} is inside ${raw}, a live database directory. Copying it is not atomic and ` +
          'yields corrupt backups; databases are exported logically instead (see POST /v1/exports).',
      );
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const format =
    (env.LOG_FORMAT as 'json' | 'pretty' | undefined) ??
    (source.NODE_ENV === 'production' || !process.stdout.isTTY ? 'json' : 'pretty');
  return new AppConfig({
    port: env.PORT,
    host: env.HOST,
    virtualRoot: stripTrailingSlash(env.VIRTUAL_ROOT),
    dataDir: stripTrailingSlash(env.DATA_DIR),
    apnscpRoot: stripTrailingSlash(env.APNSCP_ROOT),
    tokensFile: env.API_TOKENS_FILE ?? `${stripTrailingSlash(env.DATA_DIR)}/tokens.json`,
    providers,
    defaultProvider,
    duplicity: {
      target: stripTrailingSlash(env.DUPLICITY_TARGET ?? `file://${stripTrailingSlash(env.DATA_DIR)}/duplicity`),
      passphraseFile: env.DUPLICITY_PASSPHRASE_FILE,
    },
    maxConcurrentJobs: env.MAX_CONCURRENT_JOBS,
    jobRetentionDays: env.JOB_RETENTION_DAYS,
    shutdownGraceSeconds: env.SHUTDOWN_GRACE_SECONDS,
    log: { level: env.LOG_LEVEL, format },
    bodyLimit: env.BODY_LIMIT,
    swaggerUi: env.SWAGGER_UI,
    bacula: {
      bconsoleConfig: env.BACULA_BCONSOLE_CONFIG,
      includeDir: env.BACULA_INCLUDE_DIR,
      client: env.BACULA_CLIENT,
      storage: env.BACULA_STORAGE,
      pool: env.BACULA_POOL,
      jobDefaults: env.BACULA_JOB_DEFAULTS,
      compression: env.BACULA_COMPRESSION,
      timeoutSeconds: env.BACULA_TIMEOUT_SECONDS,
    },
    mysql: {
      host: env.MYSQL_HOST,
      port: env.MYSQL_PORT,
      socket: env.MYSQL_SOCKET,
      user: env.MYSQL_USER,
      passwordFile: env.MYSQL_PASSWORD_FILE,
    },
    pgsql: { host: env.PGHOST, port: env.PGPORT, user: env.PGUSER, passwordFile: env.PGPASSWORD_FILE },
    exports: { dir: env.EXPORT_DIR, keep: env.EXPORT_KEEP, schedule: env.EXPORT_SCHEDULE },
    serverBackup: { root: env.SERVER_BACKUP_ROOT, extraPaths: extraServerPaths },
    webhooks: {
      retryBaseMs: env.WEBHOOK_RETRY_BASE_MS,
      retryForMs: env.WEBHOOK_RETRY_FOR_SECONDS * 1000,
      maxAttempts: env.WEBHOOK_MAX_ATTEMPTS,
      timeoutMs: env.WEBHOOK_TIMEOUT_SECONDS * 1000,
    },
  } as AppConfig);
}

function parseBoolean(value: string): boolean | string {
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  return value;
}

function stripTrailingSlash(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}
