/** The backup levels a job can ask for; each engine supports a subset (its `levels`). */
export const BACKUP_LEVELS = ['full', 'incremental', 'differential'] as const;
export type BackupLevel = (typeof BACKUP_LEVELS)[number];
