import type { PointFile, RestorePoint } from '../backup-provider';

/*
 * Parsers for restic 0.14's output, built from captured runs (test/fixtures/restic). `backup --json` writes one JSON
 * object a line on stdout (`status` while it runs, `summary` at the end); `snapshots --json` one array; failures are
 * plain text on stderr (`Fatal: …`, or the lock message), and the exit code is 1 for all of them (3: a snapshot was
 * made but some files could not be read).
 */

/** The tag every snapshot this service makes carries, so `snapshots` never lists someone else's. */
export const RESTIC_TAG = 'apiscp-backup-api';
const POINT_PREFIX = 'restic-';

export type ResticBackupEvent =
  | { kind: 'status'; percent: number | null; bytesDone: number | null; totalBytes: number | null }
  | { kind: 'summary'; snapshotId: string; filesProcessed: number; bytesProcessed: number; dataAdded: number }
  | { kind: 'error'; message: string }
  | { kind: 'other' };

/** One line of `restic backup --json`. Lines that are not JSON (never seen on stdout) are `other`. */
export function parseBackupLine(line: string): ResticBackupEvent {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { kind: 'other' };
  }
  if (!isRecord(value)) return { kind: 'other' };
  switch (value.message_type) {
    case 'status':
      return {
        kind: 'status',
        percent: typeof value.percent_done === 'number' ? Math.round(value.percent_done * 100) : null,
        bytesDone: numberOrNull(value.bytes_done),
        totalBytes: numberOrNull(value.total_bytes),
      };
    case 'summary':
      return {
        kind: 'summary',
        snapshotId: typeof value.snapshot_id === 'string' ? value.snapshot_id : '',
        filesProcessed: numberOrNull(value.total_files_processed) ?? 0,
        bytesProcessed: numberOrNull(value.total_bytes_processed) ?? 0,
        dataAdded: numberOrNull(value.data_added) ?? 0,
      };
    case 'error': {
      const error = isRecord(value.error) ? value.error.message : undefined;
      const item = typeof value.item === 'string' ? `${value.item}: ` : '';
      return { kind: 'error', message: `${item}${typeof error === 'string' ? error : JSON.stringify(value)}` };
    }
    default:
      return { kind: 'other' };
  }
}

export interface ResticSnapshot {
  id: string;
  time: string;
  hostname: string;
  tags: string[];
  paths: string[];
}

/** `restic snapshots --json`: an array (or `null` in some versions when empty). Throws on anything else. */
export function parseSnapshots(text: string): ResticSnapshot[] {
  const value: unknown = JSON.parse(text.trim() || '[]');
  if (value === null) return [];
  if (!Array.isArray(value)) throw new Error('restic snapshots --json did not print an array');
  return value.filter(isRecord).flatMap((item) =>
    typeof item.id === 'string' && typeof item.time === 'string'
      ? [
          {
            id: item.id,
            time: item.time,
            hostname: typeof item.hostname === 'string' ? item.hostname : '',
            tags: Array.isArray(item.tags) ? item.tags.filter((tag): tag is string => typeof tag === 'string') : [],
            paths: Array.isArray(item.paths) ? item.paths.filter((p): p is string => typeof p === 'string') : [],
          },
        ]
      : [],
  );
}

/** Every snapshot is a whole tree: a `full` point whose chain is itself. Newest first. */
export function toRestorePoints(snapshots: ResticSnapshot[]): RestorePoint[] {
  return snapshots
    .map((snapshot) => {
      const id = pointIdOf(snapshot.id);
      return {
        id,
        provider: 'restic' as const,
        time: isoMillis(snapshot.time),
        level: 'full' as const,
        chain: [id],
        bytes: null,
        files: null,
        state: 'complete' as const,
      };
    })
    .sort((a, b) => b.time.localeCompare(a.time) || b.id.localeCompare(a.id));
}

export function pointIdOf(snapshotId: string): string {
  return `${POINT_PREFIX}${snapshotId}`;
}

/** The snapshot id behind a restore point id, or null when it is not one of ours. */
export function snapshotIdOf(pointId: string): string | null {
  const match = /^restic-([0-9a-f]{8,64})$/.exec(pointId);
  return match ? match[1] : null;
}

export type ResticErrorKind =
  'wrong-password' | 'locked' | 'no-repository' | 'unreachable' | 'already-exists' | 'other';

export interface ResticError {
  kind: ResticErrorKind;
  /** The tool's own words, shortened to what explains the failure. */
  message: string;
}

/** Classifies restic's stderr after a failed run. */
export function classifyError(stderr: string): ResticError {
  const lines = stderr
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  const text = lines.join('\n');
  const fatal = lines.find((line) => line.startsWith('Fatal:')) ?? lines.at(-1) ?? 'restic failed without a message';
  if (/wrong password or no key found/i.test(text)) return { kind: 'wrong-password', message: fatal };
  if (/repository is already locked/i.test(text)) {
    const lock = lines.find((line) => /already locked/.test(line)) ?? fatal;
    const created = lines.find((line) => line.startsWith('lock was created at')) ?? '';
    return {
      kind: 'locked',
      message: [lock.replace(/^unable to create lock in backend: /, ''), created].filter(Boolean).join('; '),
    };
  }
  if (/config file already exists/i.test(text)) return { kind: 'already-exists', message: fatal };
  if (/Is there a repository at the following location/i.test(text)) {
    // A missing repository and an unreachable one print the same question; the cause line tells them apart.
    return /no such file or directory|does not exist|404 Not Found/i.test(text)
      ? { kind: 'no-repository', message: fatal }
      : { kind: 'unreachable', message: fatal };
  }
  if (/connection refused|no route to host|i\/o timeout|dial tcp|ssh: |subprocess ssh|Connection closed/i.test(text)) {
    return { kind: 'unreachable', message: fatal };
  }
  return { kind: 'other', message: lines.slice(-3).join(' / ') || fatal };
}

export interface ResticLock {
  time: string;
  exclusive: boolean;
  hostname: string;
  pid: number;
}

/** `restic cat lock ID`: the lock's holder, or null when it is not a lock. */
export function parseLock(text: string): ResticLock | null {
  try {
    const value: unknown = JSON.parse(text);
    if (!isRecord(value) || typeof value.hostname !== 'string' || typeof value.pid !== 'number') return null;
    return {
      time: typeof value.time === 'string' ? value.time : '',
      exclusive: value.exclusive === true,
      hostname: value.hostname,
      pid: value.pid,
    };
  } catch {
    return null;
  }
}

/** restic writes nanoseconds; the API's times are ISO 8601 with milliseconds. */
export function isoMillis(time: string): string {
  const parsed = new Date(time);
  return Number.isNaN(parsed.getTime()) ? time : parsed.toISOString();
}

/**
 * restic's --include/--exclude take glob patterns (`*`, `?`, `[…]`, `\` escapes); a tenant's file name with those
 * characters must match only itself.
 */
export function literalPattern(path: string): string {
  return path.replace(/[\\*?[\]]/g, (character) => `\\${character}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function numberOrNull(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** One entry of a restore point, as the browsing routes serve it (link targets come from symlinkTargets). */
export type PointFileEntry = PointFile;

/** `path` (absolute, or relative to `/`) split against `root`; null when it is the root or outside it. */
export function placeInRoot(path: string, root: string): { dir: string; name: string } | null {
  const absolute = `/${path.replace(/^\/+/, '')}`;
  const base = root === '/' ? '' : root.replace(/\/+$/, '');
  if (!absolute.startsWith(`${base}/`)) return null;
  const relative = absolute.slice(base.length + 1);
  if (!relative) return null;
  const slash = relative.lastIndexOf('/');
  return slash < 0 ? { dir: '', name: relative } : { dir: relative.slice(0, slash), name: relative.slice(slash + 1) };
}

/** Go's os.FileMode bits for setuid, setgid and sticky, and the permission bits. */
const GO_SETUID = 1 << 23;
const GO_SETGID = 1 << 22;
const GO_STICKY = 1 << 20;

/** One line of `restic ls --json <snapshot>`, as an entry under `root`, or null (the snapshot line, outside `root`). */
export function parseLsLine(line: string, root: string): PointFileEntry | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (!isRecord(value) || value.struct_type !== 'node' || typeof value.path !== 'string') return null;
  const place = placeInRoot(value.path, root);
  if (!place) return null;
  const goMode = typeof value.mode === 'number' ? value.mode : null;
  const mode =
    goMode === null
      ? null
      : (goMode & 0o777) |
        (goMode & GO_SETUID ? 0o4000 : 0) |
        (goMode & GO_SETGID ? 0o2000 : 0) |
        (goMode & GO_STICKY ? 0o1000 : 0);
  const type =
    value.type === 'file' ? 'file' : value.type === 'dir' ? 'dir' : value.type === 'symlink' ? 'symlink' : 'other';
  return {
    ...place,
    type,
    size: type === 'file' ? numberOrNull(value.size) : null,
    mode,
    uid: numberOrNull(value.uid),
    gid: numberOrNull(value.gid),
    mtime: typeof value.mtime === 'string' ? isoMillis(value.mtime) : null,
    target: null,
  };
}

/** A link line of `restic ls -l`: `Lrwxrwxrwx <uid> <gid> <size> <date> <time> <path> -> <target>`. */
const LS_LINK_LINE = /^L\S{9}\s+\d+\s+\d+\s+\d+\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (.*)$/s;

/**
 * Symlink targets, which restic 0.14's `ls --json` leaves out, from the lines of `restic ls -l` of the same snapshot.
 * Both walk the snapshot in the same order, so the n-th link line belongs to the n-th symlink node; a line is taken
 * only when it starts with that node's exact path and " -> " (a path itself holding " -> " cannot be mistaken for
 * another). A name or target with a newline breaks its line: that link's target stays unknown, and the next lines
 * find their nodes again by path.
 */
export function symlinkTargets(lines: Iterable<string>, linkPaths: string[]): Map<string, string> {
  const targets = new Map<string, string>();
  let next = 0;
  for (const line of lines) {
    if (next >= linkPaths.length) break;
    const rest = LS_LINK_LINE.exec(line)?.[1];
    if (rest === undefined) continue;
    for (let k = next; k < linkPaths.length; k++) {
      const prefix = `${linkPaths[k]} -> `;
      if (rest.startsWith(prefix)) {
        targets.set(linkPaths[k], rest.slice(prefix.length));
        next = k + 1;
        break;
      }
    }
  }
  return targets;
}

/** The absolute path restic records for an entry under `root`. */
export function pathInRoot(root: string, entry: { dir: string; name: string }): string {
  const base = root === '/' ? '' : root.replace(/\/+$/, '');
  return `${base}/${entry.dir ? `${entry.dir}/` : ''}${entry.name}`;
}
