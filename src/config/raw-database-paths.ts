import { readdirSync, realpathSync } from 'node:fs';
import { posix } from 'node:path';

/** Raw database directories: never backed up as files (the seed's "direct file-level backups are dangerous"). */
export const RAW_DATABASE_DIRS = ['/var/lib/mysql', '/var/lib/pgsql', '/var/lib/postgresql'];

const SEGMENT_LIMIT = 10_000;

function segmentRegex(segment: string): RegExp {
  return new RegExp(
    `^${segment
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
}

function segmentsOf(path: string): string[] {
  return posix.normalize(path).split('/').filter(Boolean);
}

/** Whether the first segments of a (glob) pattern can match the whole of `dir`: the pattern may name it or inside it. */
function patternReaches(pattern: string[], dir: string[]): boolean {
  if (pattern.length < dir.length) return false;
  return dir.every((segment, index) => segmentRegex(pattern[index]).test(segment));
}

/** Whether a (glob) pattern could name an ancestor of `dir`, so what it names would carry `dir`. */
function patternContains(pattern: string[], dir: string[]): boolean {
  if (pattern.length >= dir.length) return false;
  return pattern.every((segment, index) => segmentRegex(segment).test(dir[index]));
}

/** Expands `*` and `?` per segment against the filesystem now (synchronously: configuration is read at start-up). */
function expandNow(pattern: string[]): string[] {
  let matches = ['/'];
  for (const segment of pattern) {
    const regex = segmentRegex(segment);
    const next: string[] = [];
    for (const base of matches) {
      let entries: string[];
      try {
        entries = readdirSync(base);
      } catch {
        continue;
      }
      for (const entry of entries) if (regex.test(entry)) next.push(posix.join(base, entry));
      if (next.length > SEGMENT_LIMIT) break;
    }
    matches = next;
  }
  return matches;
}

function realOrSame(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * Problems with SERVER_BACKUP_EXTRA_PATHS entries that would copy a live database directory: compared after
 * normalising (`/var/lib//mysql/x`), as glob patterns (`/var/lib/mysq?/shop`), as ancestors (`/var/lib`), and after
 * expanding the globs and resolving links on the real filesystem (a link to `/var/lib/mysql`, or a raw directory that
 * is itself a link elsewhere).
 */
export function rawDatabasePathProblems(paths: readonly string[]): string[] {
  const raws = RAW_DATABASE_DIRS.flatMap((dir) => [...new Set([dir, realOrSame(dir)])]).map(segmentsOf);
  const problems: string[] = [];
  for (const path of paths) {
    const pattern = segmentsOf(path);
    const candidates = [pattern, ...expandNow(pattern).map((match) => segmentsOf(realOrSame(match)))];
    const inside = raws.find((raw) => candidates.some((candidate) => patternReaches(candidate, raw)));
    const holds = raws.find((raw) => candidates.some((candidate) => patternContains(candidate, raw)));
    const why = inside ? `is inside /${inside.join('/')}` : holds ? `holds /${holds.join('/')}` : undefined;
    if (why) {
      problems.push(
        `SERVER_BACKUP_EXTRA_PATHS: ${path} ${why}, a live database directory. Copying it is not atomic and yields ` +
          'corrupt backups; databases are exported logically instead (see POST /v1/exports).',
      );
    }
  }
  return problems;
}
