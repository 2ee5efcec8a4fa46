import type { ProviderName } from '../config/app-config';
import type { BackupLevel } from '../jobs/backup-level';

export interface LevelSchedule {
  /** Five-field cron expression. */
  cron: string;
  /** IANA time zone the expression is read in (UTC when absent). */
  timezone?: string;
}

/** How long restore points are kept, in restore-point terms; every point a kept point's chain needs is kept too. */
export interface Retention {
  /** Fulls younger than this many days are kept. */
  fullDays: number;
  /** ... and at least this many of the newest fulls, whatever their age. */
  minFulls: number;
  differentialDays: number;
  incrementalDays: number;
}

/** The restore-time budget: the most a restore of the newest point may replay. */
export interface ReplayBudget {
  maxChain?: number;
  maxReplayBytes?: number;
}

export interface Policy {
  id: string;
  name: string;
  provider: ProviderName;
  /** The policy of every site that has none of its own. */
  default: boolean;
  schedules: Partial<Record<BackupLevel, LevelSchedule>>;
  retention: Retention;
  /** Export the site's databases first; absent: when the panel's automatic exports are off. */
  exportDatabases?: boolean;
  budget?: ReplayBudget;
  createdAt: string;
  updatedAt: string;
}

export type PolicySource = 'site' | 'default' | 'none';

/** Levels in the order a slot shared by several prefers them: a full covers a differential covers an incremental. */
export const LEVEL_RANK: Readonly<Record<BackupLevel, number>> = { full: 3, differential: 2, incremental: 1 };
