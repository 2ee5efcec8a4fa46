import type { ProviderName } from '../config/app-config';

export const BACKUP_LEVELS = ['full', 'incremental', 'differential'] as const;
export type BackupLevel = (typeof BACKUP_LEVELS)[number];

export interface ProviderStatus {
  available: boolean;
  /** The engine's version as it reports it, when available. */
  version: string | null;
  /** Why it is unavailable. */
  reason?: string;
  /** Things an operator should fix even though it works (e.g. backups not encrypted). */
  warnings: string[];
}

/** What one backup covers: a site, or the server-wide locations. */
export interface BackupSubject {
  /** `siteN` or `server`: names the chain, the archive and the restore points. */
  key: string;
  /** The directory that restore paths are relative to (the site root, or `/` for the server). */
  root: string;
  /** Absolute paths (or globs for the server) to back up. */
  include: string[];
  /** Absolute paths under `include` to leave out. */
  exclude: string[];
}

export interface JobProgressUpdate {
  phase?: string;
  percent?: number | null;
  bytes?: number | null;
}

/** What a provider may do to the job it runs in. It never sees HTTP or the catalog. */
export interface JobContext {
  readonly jobId: string;
  readonly signal: AbortSignal;
  log(line: string): void;
  progress(update: JobProgressUpdate): void;
  /** The job's own scratch directory, removed when it ends. */
  readonly workDir: string;
  /** Records the pid of a child process so a restarted service can find and stop it. */
  trackPid(pid: number): void;
}

export interface BackupRequest {
  subject: BackupSubject;
  level: BackupLevel;
}

export interface BackupOutcome {
  /** The level actually made (an incremental with no full becomes a full). */
  level: BackupLevel;
  /** The restore point this backup created, when the provider can tell. */
  restorePointId: string | null;
  bytes: number | null;
  files: number | null;
  warnings: string[];
  notes: string[];
}

export type RestorePointState = 'complete' | 'incomplete' | 'orphaned';

export interface RestorePoint {
  /** Stable and unique per provider and subject. */
  id: string;
  provider: ProviderName;
  /** ISO 8601 UTC. */
  time: string;
  level: BackupLevel;
  /** Oldest first: every backup that must be replayed to restore this point, ending with this point. */
  chain: string[];
  bytes: number | null;
  files: number | null;
  state: RestorePointState;
}

export interface RestoreRequest {
  subject: BackupSubject;
  point: RestorePoint;
  /** Relative to `subject.root`; empty means everything the backup holds. */
  paths: string[];
  /** An empty directory: the restored files land as `destination/<path relative to subject.root>`. */
  destination: string;
}

/**
 * Where an engine may stage raw restored files for `destination`: its sibling, on the same filesystem so moving files
 * into place is a rename; removed when the restore ends, and by recovery after a crash.
 */
export function restoreWorkArea(destination: string): string {
  return `${destination}.work`;
}

export interface RestoreOutcome {
  files: number | null;
  bytes: number | null;
  warnings: string[];
}

/** One backup engine. Implementations own their command lines and parsers; they run only inside jobs. */
export interface BackupProvider {
  readonly name: ProviderName;
  readonly levels: readonly BackupLevel[];
  status(): Promise<ProviderStatus>;
  /** Why the level cannot be done, or undefined when it can. */
  refuseLevel?(level: BackupLevel): string | undefined;
  backup(request: BackupRequest, context: JobContext): Promise<BackupOutcome>;
  /** Reads the engine's own record of restore points (the catalog caches it). */
  scanRestorePoints(subject: BackupSubject, context?: JobContext): Promise<RestorePoint[]>;
  restore(request: RestoreRequest, context: JobContext): Promise<RestoreOutcome>;
  /** Cleans up what a run killed mid-way left behind (e.g. a stale lock). */
  recover?(subject: BackupSubject): Promise<void>;
}

/** The injection token holding every enabled provider. */
export const BACKUP_PROVIDERS = Symbol('BACKUP_PROVIDERS');
