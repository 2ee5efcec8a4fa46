import type { ProviderName } from '../config/app-config';
import type { JobContext } from '../jobs/job-context';
import type { BackupLevel } from '../jobs/backup-level';

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

export interface BackupRequest {
  subject: BackupSubject;
  level: BackupLevel;
  /** The time the backup is taken at, from the service's clock (engines that can be told it record it). */
  time?: Date;
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
  /**
   * The subject's restore points as the engine listed them once this backup had ended, when the provider read them
   * anyway (Bacula, in the session that followed the job): the job's restore-points step then asks nothing more.
   */
  points?: RestorePoint[];
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
  /** What a restore of this point replays: the backups of its chain and their stored bytes (null when unknown). */
  replay?: { sets: number; bytes: number | null };
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

/** A prune: the complete points the policy no longer keeps, and those it keeps (which must stay restorable). */
export interface PruneRequest {
  subject: BackupSubject;
  remove: RestorePoint[];
  keep: RestorePoint[];
  /** Incomplete and orphaned sets (what killed runs left); an engine that can may clean them up. */
  leftovers?: RestorePoint[];
}

export interface PruneOutcome {
  /** Bytes the target no longer holds, when the engine can tell. */
  bytesFreed: number | null;
  notes: string[];
}

/** The stored size of one backup set: the volumes and bytes a restore through it reads. */
export interface SetSize {
  volumes: number;
  bytes: number;
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
  /** Stops the restores a dead run of the service left running in the engine, before their work areas are removed. */
  recoverRestores?(): Promise<void>;
  /** What the engine can delete: single backups, or only whole chains, oldest first. */
  readonly pruneUnit?: 'point' | 'chain';
  /** Removes `remove` (already checked to leave every kept point restorable). */
  prune?(request: PruneRequest, context: JobContext): Promise<PruneOutcome>;
  /** Whether a prune killed midway left work that the next prune must finish even with nothing new to remove. */
  prunePending?(subject: BackupSubject): Promise<boolean>;
  /** Stored size per restore point id, when the engine's points carry none. */
  measureSets?(subject: BackupSubject): Promise<Map<string, SetSize>>;
  /** Every entry a restore point holds under `subject.root`, for engines whose listing is slow (indexed once). */
  listPointFiles?(subject: BackupSubject, point: RestorePoint, signal?: AbortSignal): Promise<PointFile[]>;
  /** The entries of one directory at a point, for engines with their own index; null when it was no directory. */
  listPointDirectory?(
    subject: BackupSubject,
    point: RestorePoint,
    dir: string,
    signal?: AbortSignal,
  ): Promise<PointFile[] | null>;
}

export type PointFileType = 'file' | 'dir' | 'symlink' | 'other';

/** One entry of a restore point; what an engine does not record is null. */
export interface PointFile {
  /** The directory holding it, relative to `subject.root` (`''` for the root itself). */
  dir: string;
  name: string;
  type: PointFileType;
  size: number | null;
  /** Permission bits with setuid/setgid/sticky. */
  mode: number | null;
  uid: number | null;
  gid: number | null;
  /** ISO 8601 UTC. */
  mtime: string | null;
  /** Symlinks: where the link points. */
  target: string | null;
}

/** The injection token holding every enabled provider. */
export const BACKUP_PROVIDERS = Symbol('BACKUP_PROVIDERS');
