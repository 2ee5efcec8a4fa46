import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';
import { AppConfig, ProviderName } from './app-config';
import { Environment } from './environment';
import { cronProblem } from '../scheduler/cron-schedule';
import { rawDatabasePathProblems } from './raw-database-paths';
import { redactUrlCredentials, urlCredentials } from '../common/process/redact';

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
  'DUPLICITY_SSH_KEY_FILE',
  'DUPLICITY_SSH_KNOWN_HOSTS',
  'DUPLICITY_TARGET_PASSWORD_FILE',
  'RESTIC_REPOSITORY',
  'RESTIC_PASSWORD_FILE',
  'BORG_REPOSITORY_ROOT',
  'BORG_PASSPHRASE_FILE',
];

export { RAW_DATABASE_DIRS } from './raw-database-paths';

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
    'DUPLICITY_SSH_KEY_FILE',
    'DUPLICITY_SSH_KNOWN_HOSTS',
    'DUPLICITY_TARGET_PASSWORD_FILE',
    'RESTIC_REPOSITORY',
    'RESTIC_PASSWORD_FILE',
    'BORG_REPOSITORY_ROOT',
    'BORG_PASSPHRASE_FILE',
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
      (message) =>
        `${error.property}: ${message} (got ${JSON.stringify(redactUrlCredentials(raw[error.property] ?? ''))})`,
    ),
  );

  const providers = [...new Set(env.PROVIDERS.split(',').map((name) => name.trim()))] as ProviderName[];
  const defaultProvider = (env.DEFAULT_PROVIDER ?? providers[0]) as ProviderName;
  if (env.DEFAULT_PROVIDER && !providers.includes(defaultProvider)) {
    problems.push(
      `DEFAULT_PROVIDER: ${env.DEFAULT_PROVIDER} is not one of the enabled PROVIDERS (${providers.join(', ')})`,
    );
  }
  const exportScheduleProblem = cronProblem(env.EXPORT_SCHEDULE);
  if (exportScheduleProblem) problems.push(`EXPORT_SCHEDULE: ${exportScheduleProblem}`);
  if (env.DUPLICITY_TARGET && urlCredentials(env.DUPLICITY_TARGET)?.password) {
    problems.push(
      `DUPLICITY_TARGET: ${redactUrlCredentials(env.DUPLICITY_TARGET)} holds a password, which would reach duplicity's ` +
        'argv and the job logs. Keep only the user in the URL (sftp://user@host/path) and put the password in a file ' +
        'named by DUPLICITY_TARGET_PASSWORD_FILE (mode 0600): the service hands it to duplicity as FTP_PASSWORD in its ' +
        'environment. For S3-like targets set the backend variables (AWS_ACCESS_KEY_ID...) in the service environment.',
    );
  }
  const extraServerPaths = (env.SERVER_BACKUP_EXTRA_PATHS ?? '').split(',').filter(Boolean);
  problems.push(...rawDatabasePathProblems(extraServerPaths));
  if (providers.includes('restic') && !env.RESTIC_PASSWORD_FILE) {
    problems.push('RESTIC_PASSWORD_FILE: restic is enabled and always encrypts; name a file holding its password');
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
      sshKeyFile: env.DUPLICITY_SSH_KEY_FILE,
      sshKnownHosts: env.DUPLICITY_SSH_KNOWN_HOSTS,
      targetPasswordFile: env.DUPLICITY_TARGET_PASSWORD_FILE,
    },
    targetRetry: { attempts: env.TARGET_RETRY_ATTEMPTS, maxSeconds: env.TARGET_RETRY_MAX_SECONDS },
    maxConcurrentJobs: env.MAX_CONCURRENT_JOBS,
    jobRetentionDays: env.JOB_RETENTION_DAYS,
    shutdownGraceSeconds: env.SHUTDOWN_GRACE_SECONDS,
    log: { level: env.LOG_LEVEL, format },
    bodyLimit: env.BODY_LIMIT,
    swaggerUi: env.SWAGGER_UI,
    bacula: {
      bconsole: env.BACULA_BCONSOLE,
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
    restic: {
      repository: env.RESTIC_REPOSITORY ?? `${stripTrailingSlash(env.DATA_DIR)}/restic-repository`,
      passwordFile: env.RESTIC_PASSWORD_FILE,
    },
    borg: {
      repositoryRoot: stripTrailingSlash(
        env.BORG_REPOSITORY_ROOT ?? `${stripTrailingSlash(env.DATA_DIR)}/borg-repositories`,
      ),
      passphraseFile: env.BORG_PASSPHRASE_FILE,
    },
    scheduleSpreadMinutes: env.SCHEDULE_SPREAD_MINUTES,
    webappCheckOrigin: stripTrailingSlash(env.WEBAPP_CHECK_ORIGIN),
    restores: { stagingTtlHours: env.RESTORE_STAGING_TTL_HOURS, minFree: parseMinFree(env.DATA_DIR_MIN_FREE) },
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

function parseMinFree(value: string): { percent: number } | { bytes: number } {
  if (value.endsWith('%')) return { percent: Number(value.slice(0, -1)) };
  const units: Record<string, number> = { K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };
  const unit = units[value.slice(-1)];
  return { bytes: unit ? Number(value.slice(0, -1)) * unit : Number(value) };
}
