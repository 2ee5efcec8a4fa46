import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunResult } from '../../common/process/process-runner';
import { JobFailure } from '../../jobs/job-failure';
import type { BackupSubject, PointFile, PointFileType, RestorePoint } from '../backup-provider';
import type { JobContext } from '../../jobs/job-context';
import { duplicityErrorFor, findFatalError } from './duplicity-errors';
import { parseListCurrentFiles } from './duplicity-events';
import { layoutOfPoint, subjectPathOf, type DuplicityLayout } from './duplicity-layout';
import { type DuplicityRecord } from './duplicity-log-fd';

/** What listing needs from the provider: its scratch area, its common options, its target, its runner. */
export interface DuplicityFilesAccess {
  scratchParent(): Promise<string>;
  common(archiveDir: string): Promise<string[]>;
  target: string;
  /** The layouts the subject's points may have (duplicity-layout.ts), the current one first. */
  layouts: DuplicityLayout[];
  run(args: string[], onRecord: (record: DuplicityRecord) => void): Promise<RunResult>;
}

const TYPES: Record<string, PointFileType> = { reg: 'file', dir: 'dir', sym: 'symlink' };

/**
 * The files of a point from `list-current-files --time T`: names, types and mtimes only (duplicity lists nothing
 * else; size, mode, owner and link target stay null). Like the restore-point scan it runs on a throw-away archive
 * dir, so it never waits on the lock of a running backup. Slow on big points: the caller indexes it once.
 */
export async function listDuplicityPointFiles(
  subject: BackupSubject,
  point: RestorePoint,
  access: DuplicityFilesAccess,
): Promise<PointFile[]> {
  const time = point.id.replace(/^duplicity-/, '');
  const scratch = await mkdtemp(join(await access.scratchParent(), `${subject.key}-files-`));
  try {
    const records: DuplicityRecord[] = [];
    const result = await access.run(
      ['list-current-files', '--time', time, ...(await access.common(scratch)), access.target],
      (record) => records.push(record),
    );
    if (result.exitCode !== 0 || result.cancelled) {
      const error = duplicityErrorFor(result.exitCode, result.stderrTail, findFatalError(records, result.exitCode));
      throw new JobFailure(result.cancelled ? 'cancelled' : error.code, error.message);
    }
    const listedFiles = parseListCurrentFiles(records);
    const layout = layoutOfPoint(access.layouts, (path) => listedFiles.some((listed) => listed.path === path));
    const files: PointFile[] = [];
    for (const listed of listedFiles) {
      const path = subjectPathOf(listed.path, layout);
      if (path === undefined || path === '') continue;
      const slash = path.lastIndexOf('/');
      files.push({
        dir: slash < 0 ? '' : path.slice(0, slash),
        name: path.slice(slash + 1),
        type: TYPES[listed.type] ?? 'other',
        size: null,
        mode: null,
        uid: null,
        gid: null,
        mtime: listed.mtime,
        target: null,
      });
    }
    return files;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The provider's duplicity helper takes a job context; a listing has only its caller's signal. */
export function signalContext(signal: AbortSignal): JobContext {
  return {
    jobId: 'list-files',
    signal,
    log: () => undefined,
    progress: () => undefined,
    workDir: tmpdir(),
    trackPid: () => undefined,
  };
}
