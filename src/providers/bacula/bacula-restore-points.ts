import type { RestorePoint } from '../backup-provider';
import type { BackupLevel } from '../../jobs/backup-level';
import type { BaculaJobRecord } from './bconsole-output';

export const LEVEL_OF: Readonly<Record<string, BackupLevel>> = { F: 'full', D: 'differential', I: 'incremental' };
export const LEVEL_NAME: Readonly<Record<BackupLevel, string>> = {
  full: 'Full',
  differential: 'Differential',
  incremental: 'Incremental',
};

/** Terminated normally (T) or with warnings (W): the only jobs a restore can use. */
export const USABLE_STATUSES = new Set(['T', 'W']);

export const POINT_PREFIX = 'bacula-';

export function pointIdOf(jobId: number): string {
  return `${POINT_PREFIX}${jobId}`;
}

/** The JobId a `bacula-N` restore point id names, or null. */
export function jobIdOf(pointId: string): number | null {
  const match = /^bacula-([1-9]\d{0,18})$/.exec(pointId);
  return match ? Number(match[1]) : null;
}

/**
 * A job's time in ISO 8601 UTC: JobTDate (seconds since the epoch) when set; otherwise StartTime, which the director
 * prints in its own local time and is read here in the service's (the same machine, or the same zone, in practice).
 */
export function isoTimeOf(record: BaculaJobRecord): string {
  if (record.jobTDate) return new Date(record.jobTDate * 1000).toISOString().replace('.000Z', 'Z');
  const local = record.startTime ?? record.endTime;
  if (!local) return new Date(0).toISOString().replace('.000Z', 'Z');
  const [date, time] = local.split(' ');
  const [y, mo, d] = date.split('-').map(Number);
  const [h, mi, s] = time.split(':').map(Number);
  return new Date(y, mo - 1, d, h, mi, s).toISOString().replace('.000Z', 'Z');
}

/**
 * Every usable backup job of a subject as a restore point, newest first, each with the chain a restore replays, oldest
 * first: the last full before it; then the last differential after that full, if any; then the incrementals after
 * that differential (or full). Bacula bases a job on the last one with the same Job, Client and FileSet, so chains
 * are built per client and FileSet. A chain that does not start with a full, or whose file records were pruned from
 * the catalog (PurgedFiles), cannot be restored file by file: it is `incomplete`.
 */
export function restorePointsOf(records: readonly BaculaJobRecord[]): RestorePoint[] {
  const usable = records
    .filter((record) => record.type === 'B' && USABLE_STATUSES.has(record.status) && LEVEL_OF[record.level])
    .sort((a, b) => a.jobId - b.jobId);
  const lines = new Map<
    string,
    { full: BaculaJobRecord | null; differential: BaculaJobRecord | null; incrementals: BaculaJobRecord[] }
  >();
  const points: RestorePoint[] = [];
  for (const record of usable) {
    const key = `${record.clientName}\u0000${record.fileSet}`;
    let line = lines.get(key);
    if (!line) lines.set(key, (line = { full: null, differential: null, incrementals: [] }));
    const level = LEVEL_OF[record.level];
    let chain: BaculaJobRecord[];
    if (level === 'full') {
      line.full = record;
      line.differential = null;
      line.incrementals = [];
      chain = [record];
    } else if (level === 'differential') {
      line.differential = record;
      line.incrementals = [];
      chain = [...(line.full ? [line.full] : []), record];
    } else {
      line.incrementals.push(record);
      chain = [
        ...(line.full ? [line.full] : []),
        ...(line.differential ? [line.differential] : []),
        ...line.incrementals,
      ];
    }
    const complete = LEVEL_OF[chain[0].level] === 'full' && chain.every((job) => !job.purgedFiles);
    points.push({
      id: pointIdOf(record.jobId),
      provider: 'bacula',
      time: isoTimeOf(record),
      level,
      chain: chain.map((job) => pointIdOf(job.jobId)),
      bytes: record.bytes,
      files: record.files,
      state: complete ? 'complete' : 'incomplete',
    });
  }
  return points.reverse();
}
