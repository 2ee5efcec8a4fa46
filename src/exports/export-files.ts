import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, lstat, mkdir, open, rename, rm } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
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
 * Creates `root/relativeDir` (the last `privateDepth` components 0700, others 0755) and refuses to follow a symlink on
 * the way: the site's shadow is writable by its owner, who must not be able to point root's writes elsewhere.
 */
export async function ensurePrivateDir(root: string, relativeDir: string, privateDepth: number): Promise<string> {
  const parts = relativeDir.split('/').filter((part) => part.length > 0 && part !== '.');
  if (parts.includes('..')) throw new ExportError('unsafe-path', `refusing a path with '..': ${relativeDir}`);
  let current = root;
  for (const [index, part] of parts.entries()) {
    current = join(current, part);
    const isPrivate = index >= parts.length - privateDepth;
    try {
      await mkdir(current, { mode: isPrivate ? 0o700 : 0o755 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const stat = await lstat(current);
    if (stat.isSymbolicLink() || !stat.isDirectory()) {
      throw new ExportError('unsafe-path', `refusing to write exports through ${current}: not a plain directory`);
    }
    // mkdir's mode is filtered by the umask, and an existing directory keeps whatever mode it had.
    if (isPrivate && (stat.mode & 0o777) !== 0o700) await chmod(current, 0o700);
  }
  return current;
}

/** Makes a rename (or unlink) in `dir` durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `data` to `path` atomically and durably: a 0600 partial file, fsync, rename, fsync of the directory. */
export async function writeFileAtomic(dir: string, name: string, data: string): Promise<void> {
  const partial = join(dir, partialNameOf(name));
  const handle = await open(partial, 'w', 0o600);
  try {
    await handle.writeFile(data, 'utf8');
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(partial, { force: true });
    throw error;
  }
  await handle.close();
  await rename(partial, join(dir, name));
  await fsyncDir(dir);
}

export async function sha256File(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  await pipeline(createReadStream(path), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) {
      hash.update(chunk);
      bytes += chunk.length;
    }
  });
  return { sha256: hash.digest('hex'), bytes };
}

/** `path` relative to `root`, with `/` separators: how the manifest and the API name files. */
export function relativeTo(root: string, path: string): string {
  return relative(root, path).split(sep).join('/');
}
