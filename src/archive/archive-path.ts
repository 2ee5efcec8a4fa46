import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';

/** The parts of a site that may be downloaded: what a site backup holds. */
const ARCHIVE_ROOTS = ['shadow', 'info'];
/** Raw database files: never part of a download, whatever directory is asked for. */
export const NEVER_ARCHIVED = ['shadow', 'var', 'lib'];

/**
 * Splits a site-relative directory path into components, refusing anything that could leave the site or reach
 * what a download must never hold: absolute paths, `.`/`..`, empty or control-character components, paths outside
 * `shadow` and `info`, and `shadow/var/lib`.
 */
export function parseArchivePath(path: string): string[] {
  const invalid = (why: string) =>
    new AppError(ErrorCode.ArchivePathInvalid, `path ${JSON.stringify(path.slice(0, 200))} ${why}.`);
  if (path.length === 0 || path.length > 4096) throw invalid('must be 1 to 4096 characters');
  if (path.startsWith('/')) throw invalid('must be relative to the site (e.g. shadow/var/www)');
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(path)) throw invalid('must not hold control characters');
  const parts = path.replace(/\/+$/, '').split('/');
  if (parts.some((part) => part === '' || part === '.' || part === '..')) {
    throw invalid('must not hold empty, "." or ".." components');
  }
  if (parts.some((part) => Buffer.byteLength(part) > 255)) throw invalid('has a component longer than 255 bytes');
  if (!ARCHIVE_ROOTS.includes(parts[0])) throw invalid(`must be inside ${ARCHIVE_ROOTS.join(' or ')}`);
  if (NEVER_ARCHIVED.every((part, i) => parts[i] === part))
    throw invalid('is inside shadow/var/lib (raw database files)');
  return parts;
}

/**
 * The `--exclude` member name (relative to the archived directory, as GNU tar names members: `./…`) that keeps
 * `shadow/var/lib` out of an archive of `parts`, or undefined when the archived directory does not contain it.
 */
export function excludedMember(parts: string[]): string | undefined {
  if (parts.length >= NEVER_ARCHIVED.length) return undefined;
  if (!parts.every((part, i) => NEVER_ARCHIVED[i] === part)) return undefined;
  return ['.', ...NEVER_ARCHIVED.slice(parts.length)].join('/');
}

/**
 * A restore point id has the shape every provider gives it (`duplicity-20261126T110204Z`, `bacula-12`); anything
 * else is a 404 before the point lookup, which would scan a site's points into the catalog on its first use.
 */
export function assertPointIdShape(id: string): void {
  if (!/^[a-z][a-z0-9]{0,30}-[0-9A-Za-z]{1,40}$/.test(id)) {
    throw new AppError(ErrorCode.RestorePointNotFound, `No restore point ${JSON.stringify(id.slice(0, 80))}.`);
  }
}
