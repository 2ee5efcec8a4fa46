import type { Policy } from '../policies/policy';
import { BACKUP_LEVELS, type BackupLevel } from '../jobs/backup-level';
import { CronSchedule } from './cron-schedule';

export interface NextRun {
  level: BackupLevel;
  provider: string;
  policy: string;
  /** When the site's backup of this level next starts (its slot plus the site's spread offset). */
  at: string;
}

const schedules = new Map<string, CronSchedule>();

/** The parsed schedule of a policy's level (parsed once per expression and zone). */
export function scheduleOf(policy: Policy, level: BackupLevel): CronSchedule | undefined {
  const spec = policy.schedules[level];
  if (!spec) return undefined;
  const key = `${spec.cron}\u0000${spec.timezone ?? 'UTC'}`;
  let schedule = schedules.get(key);
  if (!schedule) schedules.set(key, (schedule = new CronSchedule(spec.cron, spec.timezone ?? 'UTC')));
  return schedule;
}

/** A site's fixed delay after each slot: a hash of its id, in whole seconds within the spread window. */
export function spreadOffsetMs(site: string, spreadMinutes: number): number {
  const window = spreadMinutes * 60;
  if (window === 0) return 0;
  let hash = 0x811c9dc5;
  for (let i = 0; i < site.length; i++) hash = Math.imul(hash ^ site.charCodeAt(i), 0x01000193) >>> 0;
  return (hash % window) * 1000;
}

/** The next start of each scheduled level of a site under `policy`. */
export function nextRunsOf(policy: Policy, site: string, now: Date, spreadMinutes: number): NextRun[] {
  const offset = spreadOffsetMs(site, spreadMinutes);
  const runs: NextRun[] = [];
  for (const level of BACKUP_LEVELS) {
    const next = scheduleOf(policy, level)?.next(new Date(now.getTime() - offset));
    if (next) {
      runs.push({
        level,
        provider: policy.provider,
        policy: policy.id,
        at: new Date(next.getTime() + offset).toISOString(),
      });
    }
  }
  return runs;
}
