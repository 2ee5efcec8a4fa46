import type { DuplicityLevel, DuplicityRecord } from './duplicity-log-fd';
import { duplicityTimeToIso, splitQuotedPath } from './duplicity-names';

/** duplicity's log codes (log.py InfoCode / WarningCode / ErrorCode) that the parsers read. */
export const DuplicityCode = {
  info: {
    generic: 1,
    progress: 2,
    collectionStatus: 3,
    fileNew: 4,
    fileChanged: 5,
    fileDeleted: 6,
    restoreWriting: 7,
    fileList: 10,
    uploadProgress: 16,
  },
  warning: { incompleteBackup: 5, orphanedBackup: 6, noSignaturesForTime: 11 },
  error: {
    commandLine: 2,
    restoreDirExists: 11,
    sourceMissing: 13,
    restorePathNotFound: 19,
    userError: 23,
    exception: 30,
    gpgFailed: 31,
    sourceMismatch: 42,
  },
} as const;

export type FileChange = 'added' | 'changed' | 'deleted';

export type DuplicityEvent =
  /**
   * From a backup at --verbosity info. `added` (INFO 4) means "stored whole": a new file, but also a directory or
   * symlink whose metadata changed. With --progress every file is reported twice (dry run, then the real pass).
   */
  | { kind: 'file'; change: FileChange; path: string }
  /** INFO 2 after each volume of a backup: source bytes read so far (cumulative, unchanged files included). */
  | { kind: 'bytes'; bytes: number; volume: number | null }
  /** INFO 2 from the --progress dry run: source bytes counted so far; the last one is the total to read. */
  | { kind: 'scanned'; bytes: number }
  /** INFO 2 during a restore: volumes processed out of all volumes of the chain up to the restored time. */
  | { kind: 'volumes'; done: number; total: number }
  /**
   * NOTICE 16, only with --progress (every --progress-rate seconds, default 3, and once at 100 at the end):
   * bytes written to the target so far, whole seconds since the first sample, an estimated percent (capped at 99
   * until the final record), estimated seconds left, an averaged bytes/s, and whether nothing was written lately.
   */
  | {
      kind: 'progress';
      bytes: number;
      elapsedSeconds: number;
      percent: number;
      etaSeconds: number;
      bytesPerSecond: number;
      stalled: boolean;
    }
  /** INFO 7 during a restore at --verbosity info. */
  | { kind: 'restored'; path: string; type: string }
  /** INFO 10 from list-current-files: `mtime` is the file's, ISO 8601 UTC. */
  | { kind: 'listed'; path: string; mtime: string; type: string }
  /** NOTICE 1 "Backup Statistics" at the end of a backup; numeric values as numbers. */
  | { kind: 'statistics'; values: Record<string, string | number> }
  | { kind: 'error'; code: number; message: string }
  | { kind: 'warning'; code: number; message: string }
  | { kind: 'other'; level: DuplicityLevel; code: number; message: string };

const STATISTICS_HEADER = /^-+\[ Backup Statistics \]-+$/;

export function interpretRecord(record: DuplicityRecord): DuplicityEvent {
  const message = record.text.join('\n').trim();
  const other: DuplicityEvent = { kind: 'other', level: record.level, code: record.code, message };
  switch (record.level) {
    case 'ERROR':
      return { kind: 'error', code: record.code, message };
    case 'WARNING':
      return { kind: 'warning', code: record.code, message };
    case 'NOTICE':
      if (record.code === DuplicityCode.info.uploadProgress) return progressEvent(record.extra) ?? other;
      if (record.code === DuplicityCode.info.generic && STATISTICS_HEADER.test(record.text[0] ?? '')) {
        return { kind: 'statistics', values: parseStatistics(record.text) };
      }
      return other;
    case 'INFO':
      return infoEvent(record, message) ?? other;
    default:
      return other;
  }
}

const FILE_CHANGES: Record<number, FileChange> = {
  [DuplicityCode.info.fileNew]: 'added',
  [DuplicityCode.info.fileChanged]: 'changed',
  [DuplicityCode.info.fileDeleted]: 'deleted',
};

function infoEvent(record: DuplicityRecord, message: string): DuplicityEvent | null {
  const change = FILE_CHANGES[record.code];
  if (change) {
    const split = splitQuotedPath(record.extra);
    return split && split.rest === '' ? { kind: 'file', change, path: split.path } : null;
  }
  switch (record.code) {
    case DuplicityCode.info.progress: {
      const numbers = record.extra.split(' ').map(Number);
      if (numbers.some((n) => !Number.isSafeInteger(n))) return null;
      if (numbers.length === 2) return { kind: 'volumes', done: numbers[0], total: numbers[1] };
      if (numbers.length !== 1) return null;
      if (message === '') return { kind: 'scanned', bytes: numbers[0] };
      const volume = /^Processed volume (\d+)$/.exec(message);
      return { kind: 'bytes', bytes: numbers[0], volume: volume ? Number(volume[1]) : null };
    }
    case DuplicityCode.info.restoreWriting: {
      const split = splitQuotedPath(record.extra);
      return split && /^\w+$/.test(split.rest) ? { kind: 'restored', path: split.path, type: split.rest } : null;
    }
    case DuplicityCode.info.fileList: {
      const m = /^(\d{8}T\d{6}Z) (.*)$/s.exec(record.extra);
      const split = m ? splitQuotedPath(m[2]) : null;
      if (!m || !split || !/^\w+$/.test(split.rest)) return null;
      return { kind: 'listed', path: split.path, mtime: duplicityTimeToIso(m[1]), type: split.rest };
    }
    default:
      return null;
  }
}

function progressEvent(extra: string): DuplicityEvent | null {
  const numbers = extra.split(' ').map(Number);
  if (numbers.length !== 6 || numbers.some((n) => !Number.isFinite(n))) return null;
  const [bytes, elapsedSeconds, percent, etaSeconds, bytesPerSecond, stalled] = numbers;
  return { kind: 'progress', bytes, elapsedSeconds, percent, etaSeconds, bytesPerSecond, stalled: stalled !== 0 };
}

/** `SourceFileSize 12368 (12.1 KB)` → SourceFileSize: 12368; the human part in brackets is dropped. */
function parseStatistics(text: string[]): Record<string, string | number> {
  const values: Record<string, string | number> = {};
  for (const line of text) {
    const m = /^([A-Za-z]+) (\S+)/.exec(line);
    if (!m) continue;
    values[m[1]] = /^-?\d+(\.\d+)?$/.test(m[2]) ? Number(m[2]) : m[2];
  }
  return values;
}

/** The statistics of a finished backup, when its log holds them. */
export function findStatistics(records: Iterable<DuplicityRecord>): Record<string, string | number> | null {
  let found: Record<string, string | number> | null = null;
  for (const record of records) {
    const event = interpretRecord(record);
    if (event.kind === 'statistics') found = event.values;
  }
  return found;
}

export interface ListedFile {
  /** Relative to the backup's source directory; `.` is the source directory itself. */
  path: string;
  /** The file's mtime, ISO 8601 UTC. */
  mtime: string;
  /** duplicity's type: `reg`, `dir`, `sym`, `fifo`, `sock`, `chr`, `blk`. */
  type: string;
}

/**
 * The files of `list-current-files [--time T]`. Two gaps found in 0.8.22: a name that is not valid UTF-8 makes
 * duplicity's logger fail for that file ("--- Logging error ---" on stderr), so the file is missing here although it
 * is backed up and restored; and WARNING 11 means the chain for T had no signatures, so the list is of another chain.
 */
export function parseListCurrentFiles(records: Iterable<DuplicityRecord>): ListedFile[] {
  const files: ListedFile[] = [];
  for (const record of records) {
    if (record.level !== 'INFO' || record.code !== DuplicityCode.info.fileList) continue;
    const event = interpretRecord(record);
    if (event.kind === 'listed') files.push({ path: event.path, mtime: event.mtime, type: event.type });
  }
  return files;
}
