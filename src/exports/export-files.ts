import { createHash } from 'node:crypto';
import { relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { OpenedDir, SafeFsError, withDir } from '../common/safe-fs';
import { ExportError } from './export-error';
import type { DatabaseEngine } from './export.model';

export const PARTIAL_SUFFIX = '.partial';

export const EXPORT_EXTENSION: Record<DatabaseEngine, string> = { mysql: 'sql.gz', pgsql: 'dump' };

/** `20261126T023000.123Z`: UTC, sortable as text, with milliseconds so quick successive exports never collide. */
export function exportStamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '');
}

export function stampToIso(stamp: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z$/.exec(stamp);
  return m ? `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z` : stamp;
}

/**
 * A database name as a file name component: PostgreSQL allows `/`, `.` and anything else in names, so everything but
 * `[A-Za-z0-9_$-]` is percent-encoded (ApisCP's `shop1_db` names pass through unchanged).
 */
export function fileToken(database: string): string {
  return Array.from(Buffer.from(database, 'utf8'))
    .map((byte) => {
      const char = String.fromCharCode(byte);
      return /[A-Za-z0-9_$-]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
}

export function exportFileName(engine: DatabaseEngine, database: string, stamp: string): string {
  return `${fileToken(database)}.${stamp}.${EXPORT_EXTENSION[engine]}`;
}

export interface ParsedExportName {
  token: string;
  stamp: string;
  extension: string;
}

export function parseExportFileName(name: string): ParsedExportName | undefined {
  const m = /^([^.]+)\.(\d{8}T\d{6}\.\d{3}Z)\.(sql\.gz|dump)$/.exec(name);
  return m ? { token: m[1], stamp: m[2], extension: m[3] } : undefined;
}

export function partialNameOf(finalName: string): string {
  return `.${finalName}${PARTIAL_SUFFIX}`;
}

export function isPartialName(name: string): boolean {
  return name.startsWith('.') && name.endsWith(PARTIAL_SUFFIX);
}

/**
 * Opens `root/relativeDir` by descriptor, creating what is missing (the last `privateDepth` components root-owned 0700,
 * the others 0755), each component opened `O_DIRECTORY|O_NOFOLLOW`. A symlink on the way, or a private component a
 * site owner owns or can write, is refused: the site's shadow is theirs, and root's writes must not be pointed
 * elsewhere nor land in a directory whose entries they can change.
 */
export async function openPrivateDir(root: string, relativeDir: string, privateDepth: number): Promise<OpenedDir> {
  if (relativeDir.split('/').includes('..')) {
    throw new ExportError('unsafe-path', `refusing a path with '..': ${relativeDir}`);
  }
  try {
    return await withDir(OpenedDir.openTrusted(root), (site) => site.ensurePath(relativeDir, privateDepth));
  } catch (error) {
    throw asExportError(error);
  }
}

/** A refusal of the safe filesystem layer as an export failure (`unsafe-path`); anything else unchanged. */
export function asExportError(error: unknown): unknown {
  if (error instanceof SafeFsError) {
    return new ExportError('unsafe-path', `refusing to use ${error.path}: ${error.message}`);
  }
  return error;
}

/**
 * Size and SHA-256 of a regular file in an opened directory, reading no more than the size fstat gave when it was
 * opened: links, FIFOs, devices and hard-linked files are refused (see OpenedDir.openRegularFile).
 */
export async function sha256Regular(dir: OpenedDir, name: string): Promise<{ sha256: string; bytes: number }> {
  const { handle, stats } = await dir.openRegularFile(name, { maxBytes: Number.MAX_SAFE_INTEGER });
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    if (stats.size > 0) {
      await pipeline(
        handle.createReadStream({ start: 0, end: stats.size - 1, autoClose: false }),
        async (source: AsyncIterable<Buffer>) => {
          for await (const chunk of source) {
            hash.update(chunk);
            bytes += chunk.length;
          }
        },
      );
    }
  } finally {
    await handle.close();
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** `path` relative to `root`, with `/` separators: how the manifest and the API name files. */
export function relativeTo(root: string, path: string): string {
  return relative(root, path).split(sep).join('/');
}
