import type { RestorePoint } from '../backup-provider';
import { placeInRoot, type PointFileEntry } from '../restic/restic-output';

/*
 * Parsers for borg 1.2.4's output, built from captured runs (test/fixtures/borg). With `--log-json` every log line and
 * progress report is one JSON object a line on stderr (`archive_progress`, `progress_message`, `log_message` with a
 * `msgid` such as `PassphraseWrong` or `LockTimeout`); `--json` prints the result (`create`, `list`) as one pretty
 * JSON document on stdout. Exit codes: 0 ok, 1 warning, 2 error.
 */

const POINT_PREFIX = 'borg-';

export type BorgLogEvent =
  | { kind: 'progress'; originalBytes: number; files: number; path: string | null }
  | { kind: 'log'; level: string; msgid: string | null; message: string }
  | { kind: 'other' };

/** One stderr line of a `--log-json` run. A line that is not JSON (a Python traceback) is a log line of its own. */
export function parseLogLine(line: string): BorgLogEvent {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return line.trim() ? { kind: 'log', level: 'ERROR', msgid: null, message: line.trim() } : { kind: 'other' };
  }
  if (!isRecord(value)) return { kind: 'other' };
  if (value.type === 'archive_progress' && typeof value.original_size === 'number') {
    return {
      kind: 'progress',
      originalBytes: value.original_size,
      files: typeof value.nfiles === 'number' ? value.nfiles : 0,
      path: typeof value.path === 'string' ? value.path : null,
    };
  }
  if (value.type === 'log_message') {
    return {
      kind: 'log',
      level: typeof value.levelname === 'string' ? value.levelname : 'INFO',
      msgid: typeof value.msgid === 'string' ? value.msgid : null,
      message: typeof value.message === 'string' ? value.message : '',
    };
  }
  return { kind: 'other' };
}

export interface BorgArchiveStats {
  id: string;
  name: string;
  files: number;
  originalBytes: number;
  deduplicatedBytes: number;
}

/** `borg create --json`'s stdout. */
export function parseCreateResult(text: string): BorgArchiveStats | null {
  try {
    const value: unknown = JSON.parse(text);
    if (!isRecord(value) || !isRecord(value.archive) || !isRecord(value.archive.stats)) return null;
    const { archive } = value;
    const stats = archive.stats as Record<string, unknown>;
    return {
      id: typeof archive.id === 'string' ? archive.id : '',
      name: typeof archive.name === 'string' ? archive.name : '',
      files: typeof stats.nfiles === 'number' ? stats.nfiles : 0,
      originalBytes: typeof stats.original_size === 'number' ? stats.original_size : 0,
      deduplicatedBytes: typeof stats.deduplicated_size === 'number' ? stats.deduplicated_size : 0,
    };
  } catch {
    return null;
  }
}

export interface BorgArchive {
  name: string;
  /** ISO 8601 UTC. */
  time: string;
}

/** `borg list --json REPO`, run with TZ=UTC (borg prints naive local times). */
export function parseArchiveList(text: string): BorgArchive[] {
  const value: unknown = JSON.parse(text);
  if (!isRecord(value) || !Array.isArray(value.archives)) throw new Error('borg list --json printed no archives list');
  return value.archives.filter(isRecord).flatMap((archive) => {
    if (typeof archive.name !== 'string') return [];
    const listed =
      typeof archive.start === 'string' ? archive.start : typeof archive.time === 'string' ? archive.time : '';
    return [{ name: archive.name, time: timeOfArchive(archive.name) ?? naiveUtcToIso(listed) }];
  });
}

/**
 * Archive names this service makes: the backup's start in UTC to the millisecond, `20261129T100001500Z`, so names
 * sort by time, are unique per repository (one job per site at a time) and fit the API's restore point ids.
 */
export function archiveNameFor(date: Date): string {
  return date.toISOString().replace(/[-:.]/g, '');
}

/** The time an archive name of ours encodes, or null for another name. */
export function timeOfArchive(name: string): string | null {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z$/.exec(name);
  if (!match) return null;
  const [, y, mo, d, h, mi, s, ms] = match;
  return `${y}-${mo}-${d}T${h}:${mi}:${s}.${ms}Z`;
}

export function toRestorePoints(archives: BorgArchive[]): RestorePoint[] {
  return archives
    .filter((archive) => /^[0-9A-Za-z]{1,40}$/.test(archive.name))
    .map((archive) => {
      const id = `${POINT_PREFIX}${archive.name}`;
      return {
        id,
        provider: 'borg' as const,
        time: archive.time,
        level: 'full' as const,
        chain: [id],
        bytes: null,
        files: null,
        state: 'complete' as const,
      };
    })
    .sort((a, b) => b.time.localeCompare(a.time) || b.id.localeCompare(a.id));
}

export function archiveOf(pointId: string): string | null {
  const match = /^borg-([0-9A-Za-z]{1,40})$/.exec(pointId);
  return match ? match[1] : null;
}

export type BorgErrorKind = 'wrong-passphrase' | 'locked' | 'no-repository' | 'unreachable' | 'other';

export interface BorgError {
  kind: BorgErrorKind;
  message: string;
}

/** Classifies a failed run from the log events it wrote. */
export function classifyError(events: BorgLogEvent[]): BorgError {
  const logs = events.filter((event): event is Extract<BorgLogEvent, { kind: 'log' }> => event.kind === 'log');
  const errors = logs.filter((event) => event.level === 'ERROR' || event.level === 'CRITICAL');
  const main = errors.find((event) => event.msgid) ?? errors.at(-1) ?? logs.at(-1);
  const message = main?.message ?? 'borg failed without a message';
  const msgid = main?.msgid ?? '';
  if (msgid === 'PassphraseWrong') return { kind: 'wrong-passphrase', message };
  if (/^Lock(Timeout|Failed|Error)$|^NotLocked$|^LockErrorT$/.test(msgid)) return { kind: 'locked', message };
  if (msgid === 'Repository.DoesNotExist' || msgid === 'Repository.InvalidRepository') {
    return { kind: 'no-repository', message };
  }
  if (
    /^(ConnectionClosed|ConnectionClosedWithHint|PathNotAllowed|RemoteRepository\.RPCServerOutdated)/.test(msgid) ||
    /Connection closed by remote host|Connection refused|Could not resolve hostname|No route to host/i.test(
      logs.map((event) => event.message).join('\n'),
    )
  ) {
    return { kind: 'unreachable', message };
  }
  return { kind: 'other', message };
}

export interface BorgLockHolder {
  /** `hostname@nodeid` as borg writes it. */
  host: string;
  pid: number;
}

/** The entries of a local repository's `lock.exclusive` directory: `host@nodeid.pid-thread`. */
export function parseLockEntries(names: string[]): BorgLockHolder[] {
  return names.flatMap((name) => {
    const match = /^(.+)\.(\d+)-\d+$/.exec(name);
    return match ? [{ host: match[1], pid: Number(match[2]) }] : [];
  });
}

function naiveUtcToIso(time: string): string {
  const parsed = new Date(/[zZ]|[+-]\d\d:\d\d$/.test(time) ? time : `${time}Z`);
  return Number.isNaN(parsed.getTime()) ? time : parsed.toISOString();
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `ls -l` mode text (`drwxr-sr-x`, `-rwsr-x--T`) to permission bits with setuid/setgid/sticky. */
export function modeBitsOf(text: string): number | null {
  if (!/^.[r-][w-][xsS-][r-][w-][xsS-][r-][w-][xtT-]$/.test(text)) return null;
  let bits = 0;
  const perm = text.slice(1);
  for (let i = 0; i < 9; i++) {
    const c = perm[i];
    if (c !== '-' && c !== 'S' && c !== 'T') bits |= 1 << (8 - i);
  }
  if (/[sS]/.test(perm[2])) bits |= 0o4000;
  if (/[sS]/.test(perm[5])) bits |= 0o2000;
  if (/[tT]/.test(perm[8])) bits |= 0o1000;
  return bits;
}

/** One line of `borg list --json-lines REPO::ARCHIVE` (run with TZ=UTC), as an entry under `root`, or null. */
export function parseListLine(line: string, root: string): PointFileEntry | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (!isRecord(value) || typeof value.path !== 'string') return null;
  const place = placeInRoot(value.path, root);
  if (!place) return null;
  const type = value.type === '-' ? 'file' : value.type === 'd' ? 'dir' : value.type === 'l' ? 'symlink' : 'other';
  return {
    ...place,
    type,
    size: type === 'file' && typeof value.size === 'number' ? value.size : null,
    mode: typeof value.mode === 'string' ? modeBitsOf(value.mode) : null,
    uid: typeof value.uid === 'number' ? value.uid : null,
    gid: typeof value.gid === 'number' ? value.gid : null,
    mtime: typeof value.mtime === 'string' ? naiveUtcToIso(value.mtime) : null,
    target: type === 'symlink' && typeof value.linktarget === 'string' ? value.linktarget : null,
  };
}
