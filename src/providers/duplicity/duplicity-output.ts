import type { ProviderName } from '../../config/app-config';
import type { RestorePoint } from '../backup-provider';
import {
  duplicityTimeToIso,
  parseDuplicityFileName,
  splitQuotedPath,
  type DuplicitySetRef,
  type DuplicitySetType,
} from './duplicity-names';

/*
 * Parsers for duplicity 0.8.22's machine-readable log (`--log-fd N`), built from captured output
 * (test/fixtures/duplicity). A record is written as one block:
 *
 *   LEVEL CODE[ extra]        the control line; collection-status's extra spans several lines
 *   . human text              every line of the message, prefixed ". " (a message line may hold half a file name)
 *   <blank line>              end of record
 *
 * What reaches the fd depends on --verbosity: at the default (notice) only NOTICE/WARNING/ERROR records and forced
 * ones (collection-status, list-current-files, statistics) arrive; file records (INFO 4/5/6/7) and INFO 2 need
 * `--verbosity info`.
 */

export type DuplicityLevel = 'ERROR' | 'WARNING' | 'NOTICE' | 'INFO' | 'DEBUG';

export interface DuplicityRecord {
  level: DuplicityLevel;
  code: number;
  /** The control line after the code. Lines after the first are joined with `\n` (collection-status starts with one). */
  extra: string;
  /** The human message, one entry per line, without the `. ` prefix. */
  text: string[];
}

const HEADER = /^(ERROR|WARNING|NOTICE|INFO|DEBUG) (\d+)(?: (.*))?$/;

/** Turns log-fd lines, fed one at a time as they arrive, into records. */
export class LogFdParser {
  private current: DuplicityRecord | null = null;
  private inText = false;
  /** Lines outside any record. Always 0 on real output; counted so a format change shows. */
  skippedLines = 0;

  push(rawLine: string): DuplicityRecord[] {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (this.current === null) {
      if (line !== '' && !this.start(line)) this.skippedLines += 1;
      return [];
    }
    if (line === '') return [this.finish()];
    if (line.startsWith('. ') || line === '.') {
      this.current.text.push(line.slice(2));
      this.inText = true;
      return [];
    }
    if (!this.inText) {
      this.current.extra += `\n${line}`;
      return [];
    }
    // Only a writer that died mid-record gets here; keep what is usable.
    const finished = this.finish();
    if (!this.start(line)) this.skippedLines += 1;
    return [finished];
  }

  /** The record the stream ended inside (a killed duplicity leaves one without its blank line). */
  flush(): DuplicityRecord[] {
    return this.current === null ? [] : [this.finish()];
  }

  private start(line: string): boolean {
    const m = HEADER.exec(line);
    if (!m) return false;
    this.current = { level: m[1] as DuplicityLevel, code: Number(m[2]), extra: m[3] ?? '', text: [] };
    this.inText = false;
    return true;
  }

  private finish(): DuplicityRecord {
    const record = this.current as DuplicityRecord;
    this.current = null;
    this.inText = false;
    return record;
  }
}

/** Every record in a finished log (lines, or the whole text). */
export function parseLogRecords(lines: Iterable<string> | string): DuplicityRecord[] {
  const parser = new LogFdParser();
  const records: DuplicityRecord[] = [];
  for (const line of typeof lines === 'string' ? lines.split('\n') : lines) records.push(...parser.push(line));
  records.push(...parser.flush());
  return records;
}

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

export interface DuplicitySet {
  type: DuplicitySetType;
  /** duplicity form, e.g. `20261126T212109Z` (an incremental's end time). */
  time: string;
  iso: string;
  volumes: number;
  encrypted: boolean;
}

export interface DuplicityChain {
  /**
   * `chain-complete`: the newest chain, matched by its signature chain; the next incremental extends it.
   * The others (`chain-no-sig N`, a misnomer: they usually do have signatures) are older chains, or every chain when
   * the newest one's signatures are gone. Both kinds restore (checked with real duplicity, signatures deleted too).
   */
  primary: boolean;
  /** Oldest first: the full, then its incrementals. */
  sets: DuplicitySet[];
}

export interface CollectionStatus {
  backend: string | null;
  /** Oldest first (duplicity prints the secondary chains by time, then the primary one). */
  chains: DuplicityChain[];
  /** Sets whose full is gone (duplicity lists their files in a WARNING 6: see `orphaned`). */
  orphanedSets: number;
  /**
   * Sets on the target without a manifest, from an interrupted run. Only counted when the archive dir holds no
   * `.part` manifest for it: with one, duplicity counts the set complete (see `partialSetsIn`).
   */
  incompleteSets: number;
  /** The orphaned sets by name, when duplicity's warning listed them. */
  orphaned: DuplicitySetRef[];
  /** Lines of the status block that were not understood (empty on every output seen so far). */
  unrecognized: string[];
}

/** Reads collection-status's INFO 3 record; null when the log has none (the command failed). */
export function parseCollectionStatus(records: Iterable<DuplicityRecord>): CollectionStatus | null {
  let block: DuplicityRecord | null = null;
  const orphaned = new Map<string, DuplicitySetRef>();
  for (const record of records) {
    if (record.level === 'INFO' && record.code === DuplicityCode.info.collectionStatus && record.extra.includes('\n')) {
      block = record;
    }
    if (record.level === 'WARNING' && record.code === DuplicityCode.warning.orphanedBackup) {
      for (const set of orphanedSetsIn(record.text)) orphaned.set(set.time, set);
    }
  }
  if (!block) return null;

  const status: CollectionStatus = {
    backend: null,
    chains: [],
    orphanedSets: 0,
    incompleteSets: 0,
    orphaned: [...orphaned.values()].sort((a, b) => a.time.localeCompare(b.time)),
    unrecognized: [],
  };
  let chain: DuplicityChain | null = null;
  for (const line of block.extra.split('\n')) {
    if (line.trim() === '') continue;
    const set = /^ (full|inc) (\d{8}T\d{6}Z) (\d+) (enc|noenc)$/.exec(line);
    if (set && chain) {
      const [, type, time, volumes, enc] = set;
      chain.sets.push({
        type: type as DuplicitySetType,
        time,
        iso: duplicityTimeToIso(time),
        volumes: Number(volumes),
        encrypted: enc === 'enc',
      });
      continue;
    }
    const [key, ...rest] = line.split(' ');
    const value = rest.join(' ');
    if (key === 'chain-complete' || (key === 'chain-no-sig' && /^\d+$/.test(value))) {
      chain = { primary: key === 'chain-complete', sets: [] };
      status.chains.push(chain);
    } else if (key === 'orphaned-sets-num' && /^\d+$/.test(value)) {
      status.orphanedSets = Number(value);
    } else if (key === 'incomplete-sets-num' && /^\d+$/.test(value)) {
      status.incompleteSets = Number(value);
    } else if (key === 'backend') {
      status.backend = value;
    } else if (key !== 'archive-dir') {
      // archive-dir prints a Path object's repr, "(. dir)": nothing to read there.
      status.unrecognized.push(line);
    }
  }
  return status;
}

/** WARNING 6 lists each orphaned set as `[name, name, ...]`, one set a line. */
function orphanedSetsIn(text: string[]): DuplicitySetRef[] {
  const sets: DuplicitySetRef[] = [];
  for (const line of text) {
    const m = /^\[(.*)\]$/.exec(line.trim());
    if (!m) continue;
    const names = m[1].split(', ').map(parseDuplicityFileName);
    const set = names.find((n) => n !== null)?.set;
    if (set) sets.push(set);
  }
  return sets;
}

export interface RestorePointOptions {
  /** Sets an interrupted run left half-written (`partialSetsIn` of the archive dir's listing). */
  partialSets?: readonly DuplicitySetRef[];
}

export function duplicityRestorePointId(time: string): string {
  return `duplicity-${time}`;
}

/**
 * Restore points, newest first. A set of any listed chain is `complete`: secondary chains restore as well as the
 * primary one. A set the archive dir holds a `.part` manifest for is `incomplete` (duplicity still lists it in a
 * chain, and a restore of it "succeeds" with only the files written before the interruption), and so is everything
 * after it in its chain. Orphaned sets are `orphaned`; their chain is only themselves, since their full is gone.
 */
export function toRestorePoints(
  status: CollectionStatus,
  provider: ProviderName = 'duplicity',
  options: RestorePointOptions = {},
): RestorePoint[] {
  const partial = new Set((options.partialSets ?? []).map((set) => set.time));
  const points = new Map<string, RestorePoint>();
  const point = (set: DuplicitySetRef, chain: string[], state: RestorePoint['state']): RestorePoint => ({
    id: duplicityRestorePointId(set.time),
    provider,
    time: set.iso,
    level: set.type === 'full' ? 'full' : 'incremental',
    chain,
    bytes: null,
    files: null,
    state,
  });

  for (const chain of status.chains) {
    const ids: string[] = [];
    let broken = false;
    for (const set of chain.sets) {
      ids.push(duplicityRestorePointId(set.time));
      broken ||= partial.has(set.time);
      points.set(set.time, point(set, [...ids], broken ? 'incomplete' : 'complete'));
    }
  }
  for (const set of status.orphaned) {
    if (!points.has(set.time)) points.set(set.time, point(set, [duplicityRestorePointId(set.time)], 'orphaned'));
  }
  for (const set of options.partialSets ?? []) {
    if (points.has(set.time)) continue;
    // Not in any chain (the status was read without this archive dir): hang it under the chain it extends.
    const base = set.startTime ? points.get(set.startTime) : undefined;
    const chain = [...(base?.chain ?? []), duplicityRestorePointId(set.time)];
    points.set(set.time, point(set, chain, 'incomplete'));
  }
  return [...points.values()].sort((a, b) => b.time.localeCompare(a.time));
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

/**
 * The ERROR record that ended the run: the one whose code is the exit code, else the first. (A run refused for the
 * lock writes ERROR 23, then two ERROR 1 "Could not release lockfile" while exiting.)
 */
export function findFatalError(
  records: Iterable<DuplicityRecord>,
  exitCode: number | null,
): DuplicityRecord | undefined {
  let first: DuplicityRecord | undefined;
  for (const record of records) {
    if (record.level !== 'ERROR') continue;
    if (record.code === exitCode) return record;
    first ??= record;
  }
  return first;
}

export interface DuplicityFailure {
  /** Stable, for the job's `error.code`. */
  code: string;
  /** What happened and what to do, with duplicity's own words at the end. */
  message: string;
}

/** Turns a failed run into a stable code and an actionable message. */
export function duplicityErrorFor(
  exitCode: number | null,
  stderrTail: string,
  lastError?: DuplicityRecord,
): DuplicityFailure {
  const said = errorSummary(lastError) ?? lastMeaningfulLine(stderrTail);
  const evidence = `${lastError?.extra ?? ''}\n${lastError?.text.join('\n') ?? ''}\n${stderrTail}`;
  const fail = (code: string, advice: string): DuplicityFailure => ({
    code,
    message: said ? `${advice} (duplicity: ${said})` : advice,
  });
  switch (exitCode) {
    case null:
    case 137:
    case 143:
      return fail('duplicity-killed', 'duplicity was stopped by a signal before it finished.');
    case DuplicityCode.error.commandLine:
      return fail('duplicity-usage', 'duplicity rejected its command line; this is a bug in the provider.');
    case DuplicityCode.error.restoreDirExists:
      return fail(
        'duplicity-restore-destination-exists',
        'The restore destination already exists; duplicity restores only into a directory that does not exist yet.',
      );
    case DuplicityCode.error.sourceMissing:
      return fail('duplicity-source-missing', 'The directory to back up does not exist.');
    case DuplicityCode.error.restorePathNotFound:
      return fail(
        'duplicity-path-not-in-backup',
        'The requested path is not in the backup at that restore point; list the restore point’s files and retry.',
      );
    case DuplicityCode.error.userError:
      if (/Another duplicity instance is already running/.test(evidence)) {
        return fail(
          'duplicity-locked',
          'Another duplicity process is using this archive (same archive dir and name); retry when it has finished.',
        );
      }
      if (/UnsupportedBackendScheme|scheme not supported/.test(evidence)) {
        return fail(
          'duplicity-unsupported-target',
          'duplicity does not support the target URL; check DUPLICITY_TARGET.',
        );
      }
      return fail('duplicity-user-error', 'duplicity refused the request.');
    case DuplicityCode.error.exception:
      if (/CollectionsError/.test(evidence) && /No (backup|signature) chains found/.test(evidence)) {
        // list-current-files says "signature" chains: it reads signatures only, so deleted ones look the same.
        return fail('duplicity-no-backups', 'There is no backup (or no signature file to list it from) at the target.');
      }
      if (/EOFError|getpass|passphrase/i.test(evidence)) {
        return fail(
          'duplicity-passphrase-required',
          'The backups are encrypted and duplicity got no passphrase; set DUPLICITY_PASSPHRASE_FILE.',
        );
      }
      return fail('duplicity-exception', 'duplicity stopped on an internal error.');
    case DuplicityCode.error.gpgFailed:
      return fail('duplicity-gpg-failed', 'GnuPG failed; check the passphrase and GNUPGHOME.');
    case DuplicityCode.error.sourceMismatch:
      return fail(
        'duplicity-source-mismatch',
        'This archive was made from another source directory; back up the same absolute path, or start a new target.',
      );
    case 50:
    case 54:
    case 55:
      // A generic backend error (exit 50 for a failed put) carries the OS error; the target is there but refuses writes.
      if (/Read-only file system/.test(evidence)) {
        return fail(
          'duplicity-backend-read-only',
          'The backup target is read-only; remount it read-write or point DUPLICITY_TARGET at a writable place.',
        );
      }
      if (/Permission denied/.test(evidence)) {
        return fail('duplicity-backend-permission-denied', 'The backup target refused access; check its permissions.');
      }
      if (/No space left on device|Disk quota exceeded/.test(evidence)) {
        return fail('duplicity-backend-no-space', 'The backup target is full.');
      }
      return fail('duplicity-backend-error', 'The backup target failed; check that DUPLICITY_TARGET is reachable.');
    case 51:
      return fail('duplicity-backend-permission-denied', 'The backup target refused access; check its permissions.');
    case 52:
      return fail(
        'duplicity-backend-not-found',
        'The backup target or a file in it does not exist and cannot be created; check DUPLICITY_TARGET.',
      );
    case 53:
      return fail('duplicity-backend-no-space', 'The backup target is full.');
    default:
      return fail('duplicity-failed', `duplicity failed with exit code ${exitCode}.`);
  }
}

/** The message of an ERROR record; for a Python traceback, its last line (the exception). */
function errorSummary(record: DuplicityRecord | undefined): string | null {
  if (!record) return null;
  const lines = record.text.map((line) => line.trim()).filter((line) => line !== '');
  if (lines.length === 0) return null;
  return lines[0].startsWith('Traceback') ? lines[lines.length - 1] : lines.join(' ');
}

function lastMeaningfulLine(text: string): string | null {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('Could not release lockfile'));
  return lines.length === 0 ? null : lines[lines.length - 1];
}
