import { join } from 'node:path';
import type { PROVIDER_NAMES } from './environment';

export type ProviderName = (typeof PROVIDER_NAMES)[number];

/** The validated, typed configuration every part of the service reads. Built once at start-up by `loadConfig`. */
export class AppConfig {
  readonly port!: number;
  readonly host!: string;
  readonly virtualRoot!: string;
  readonly dataDir!: string;
  readonly apnscpRoot!: string;
  readonly tokensFile!: string;
  readonly providers!: ProviderName[];
  readonly defaultProvider!: ProviderName;
  readonly duplicity!: {
    target: string;
    passphraseFile?: string;
    sshKeyFile?: string;
    sshKnownHosts?: string;
    targetPasswordFile?: string;
  };
  readonly maxConcurrentJobs!: number;
  /** Finished jobs (and their logs) older than this are forgot; the newest success per site and kind is kept. */
  readonly jobRetentionDays!: number;
  readonly shutdownGraceSeconds!: number;
  readonly log!: { level: string; format: 'json' | 'pretty' };
  readonly bodyLimit!: string;
  readonly swaggerUi!: boolean;
  readonly bacula!: {
    bconsole: string;
    bconsoleConfig: string;
    includeDir: string;
    client: string;
    storage: string;
    pool: string;
    jobDefaults: string;
    compression: string;
    timeoutSeconds: number;
  };
  readonly mysql!: { host: string; port: number; socket?: string; user: string; passwordFile?: string };
  readonly pgsql!: { host: string; port: number; user: string; passwordFile?: string };
  /** `dir` is relative to a site's root. */
  readonly exports!: { dir: string; keep: number; schedule: string };
  /** The seed's server-wide locations are looked for under `root`; `extraPaths` are absolute. */
  readonly serverBackup!: { root: string; extraPaths: string[] };
  readonly webhooks!: { retryBaseMs: number; retryForMs: number; maxAttempts: number; timeoutMs: number };
  /** Tries of a job whose target is unreachable, and the longest wait between two (TARGET_RETRY_*). */
  readonly targetRetry!: { attempts: number; maxSeconds: number };
  /** One repository for the whole server; `passwordFile` is required when restic is enabled. */
  readonly restic!: { repository: string; passwordFile?: string };
  /** A site's repository is `<repositoryRoot>/<siteN>`; no passphrase file means unencrypted repositories. */
  readonly borg!: { repositoryRoot: string; passphraseFile?: string };
  /** Scheduled backups of many sites start spread over this window after their slot. */
  readonly scheduleSpreadMinutes!: number;
  /** Update Assurance fetches pages from this origin (no trailing slash). */
  readonly webappCheckOrigin!: string;
  /** Staging lifetime and the free-space reserve a restore must leave (`percent` of the filesystem, or `bytes`). */
  readonly restores!: { stagingTtlHours: number; minFree: { percent: number } | { bytes: number } };

  constructor(values: AppConfig) {
    Object.assign(this, values);
  }

  /** Where the service keeps its own state below DATA_DIR. */
  dataPath(...parts: string[]): string {
    return join(this.dataDir, ...parts);
  }
}
