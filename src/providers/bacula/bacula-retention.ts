import { mkdir, readFile, rm } from 'node:fs/promises';
import { OpenedDir, withDir, writeFileAtomic } from '../../common/safe-fs';
import type { AppConfig } from '../../config/app-config';
import { JobFailure } from '../../jobs/job-failure';
import type { BackupSubject, PruneOutcome, PruneRequest } from '../backup-provider';
import type { JobContext } from '../../jobs/job-context';
import { jobIdOf } from './bacula-restore-points';
import type { BconsoleClient } from './bconsole-client';
import { parseTable, splitReplies } from './bconsole-output';

const VOLUME_NAME = /^[A-Za-z0-9._:-]{1,127}$/;
const SUBJECT_KEY = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The volumes a prune is about to empty, noted under DATA_DIR before its `delete jobid` (which also drops the JobMedia
 * records that name them): a prune killed before their purge leaves this note, and the next prune of the subject purges
 * and truncates them although no restore point is left to name them.
 */
function pendingName(subject: BackupSubject): string {
  if (!SUBJECT_KEY.test(subject.key)) throw new JobFailure('prune-refused', 'not a subject key');
  return `${subject.key}.json`;
}

function pendingFile(config: AppConfig, subject: BackupSubject): string {
  return config.dataPath('bacula', 'prune-volumes', pendingName(subject));
}

async function readPending(config: AppConfig, subject: BackupSubject): Promise<string[]> {
  const text = await readFile(pendingFile(config, subject), 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return '[]';
    throw error;
  });
  const parsed: unknown = JSON.parse(text);
  return Array.isArray(parsed) ? parsed.filter((v): v is string => typeof v === 'string' && VOLUME_NAME.test(v)) : [];
}

async function writePending(config: AppConfig, subject: BackupSubject, volumes: string[]): Promise<void> {
  const name = pendingName(subject);
  const dir = config.dataPath('bacula', 'prune-volumes');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await withDir(OpenedDir.openTrusted(dir), (opened) => writeFileAtomic(opened, name, JSON.stringify(volumes)));
}

export async function hasPendingVolumes(config: AppConfig, subject: BackupSubject): Promise<boolean> {
  return (await readPending(config, subject)).length > 0;
}

/**
 * Retention for Bacula, one job at a time: the volumes the expired jobs wrote to are noted, the jobs are deleted from
 * the catalog (`delete jobid=…`), then each of those volumes that no job refers to any more is purged and truncated
 * (`truncate` frees the space only with `Action On Purge = Truncate` in the Pool; otherwise Bacula recycles it later).
 * A prune killed midway has deleted some expired jobs and none that is kept: every kept point stays restorable, and
 * the volumes it had not purged yet are noted (pendingFile) for the next prune to finish.
 */
export async function pruneBacula(
  request: PruneRequest,
  bconsole: BconsoleClient,
  config: AppConfig,
  context: JobContext,
): Promise<PruneOutcome> {
  const notes: string[] = [];
  const jobIds = request.remove.map((point) => jobIdOf(point.id));
  if (jobIds.some((id) => id === null)) throw new JobFailure('prune-refused', 'not a Bacula restore point id');
  const carried = await readPending(config, request.subject);
  if (jobIds.length === 0 && carried.length === 0) return { bytesFreed: 0, notes: ['nothing to remove'] };
  const options = {
    signal: context.signal,
    onSpawn: (pid: number) => context.trackPid(pid),
    timeoutMs: Math.max(config.bacula.timeoutSeconds * 1000, 120_000),
  };
  const run = async (command: string): Promise<string> =>
    splitReplies(await bconsole.command([command], options), [command])[0] ?? '';

  // The volumes the expired jobs wrote to, before their JobMedia records go with them.
  const candidates = new Set<string>(carried);
  if (carried.length > 0) notes.push(`finishing a killed prune: volume(s) ${carried.join(', ')}`);
  for (const id of jobIds) {
    for (const row of parseTable(await run(`list jobmedia jobid=${id}`))) {
      if (VOLUME_NAME.test(row.VolumeName ?? '')) candidates.add(row.VolumeName);
    }
  }
  await writePending(config, request.subject, [...candidates]);
  if (jobIds.length > 0) {
    context.log(`deleting Bacula job(s) ${jobIds.join(', ')}`);
    const deleted = await run(`delete jobid=${jobIds.join(',')}`);
    for (const id of jobIds) {
      if (!new RegExp(`JobId=${id} and associated records deleted`).test(deleted)) {
        throw new JobFailure(
          'bacula-delete-failed',
          `the director did not confirm deleting JobId ${id}: ${deleted.slice(-300)}`,
        );
      }
    }
  }

  const stillUsed = new Set(parseTable(await run('list jobmedia')).map((row) => row.VolumeName));
  const volumes = new Map(
    parseTable(await run(`list volumes pool=${config.bacula.pool}`)).map((row) => [row.VolumeName, row]),
  );
  let bytesFreed = 0;
  for (const volume of candidates) {
    const row = volumes.get(volume);
    if (stillUsed.has(volume) || !row || row.VolStatus === 'Append') continue;
    await run(`purge volume=${volume} yes`);
    const truncated = await run(
      `truncate volstatus=Purged storage=${config.bacula.storage} pool=${config.bacula.pool} volume=${volume} yes`,
    );
    if (/Truncate not allowed|not defined in the Pool/i.test(truncated)) {
      notes.push(
        `volume ${volume} purged; the pool has no "Action On Purge = Truncate", so Bacula reuses its space later`,
      );
      continue;
    }
    const after = parseTable(await run(`list volumes pool=${config.bacula.pool}`)).find((r) => r.VolumeName === volume);
    const before = Number((row.VolBytes ?? '').replace(/,/g, ''));
    const now = Number((after?.VolBytes ?? '').replace(/,/g, ''));
    if (Number.isFinite(before) && Number.isFinite(now) && now < before) bytesFreed += before - now;
    notes.push(`volume ${volume} emptied, purged and truncated`);
  }
  // Every noted volume is done: purged, or still holding a job (another prune may have kept it), or gone.
  await rm(pendingFile(config, request.subject), { force: true });
  return { bytesFreed, notes };
}
