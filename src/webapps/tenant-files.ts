import { constants, type Stats } from 'node:fs';
import { close, fstat, mkdir, open, read, readdir } from 'node:fs';
import { promisify } from 'node:util';

const openAsync = promisify(open);
const closeAsync = promisify(close);
const fstatAsync = promisify(fstat);
const readAsync = promisify(read);
const mkdirAsync = promisify(mkdir);
const readdirAsync = promisify(readdir);

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
const FILE_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** A name the service will look up inside a tenant directory: one component, no dot-dot, no slash. */
export function isPlainName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && name !== '.' && name !== '..' && !/[/\0]/.test(name);
}

/** `/proc/self/fd/<fd>/<name>`: `name` resolved inside the opened directory, never by walking a path again. */
export function inDir(fd: number, name: string): string {
  return `/proc/self/fd/${fd}/${name}`;
}

/** An opened directory (O_NOFOLLOW at every component) and what fstat said about it. */
export interface OpenedDir {
  fd: number;
  stats: Stats;
  close(): Promise<void>;
}

/**
 * Opens `base` (a trusted path the service owns, e.g. a site root) and then each of `parts` below it, one component
 * at a time from the previous descriptor, refusing symlinks anywhere below `base`. Undefined when any part is missing
 * or not a directory.
 */
export async function openDirBelow(base: string, parts: readonly string[]): Promise<OpenedDir | undefined> {
  let fd: number;
  try {
    fd = await openAsync(base, DIR_FLAGS);
  } catch {
    return undefined;
  }
  for (const part of parts) {
    if (!isPlainName(part)) {
      await closeAsync(fd);
      return undefined;
    }
    let next: number;
    try {
      next = await openAsync(inDir(fd, part), DIR_FLAGS);
    } catch {
      await closeAsync(fd);
      return undefined;
    }
    await closeAsync(fd);
    fd = next;
  }
  const stats = await fstatAsync(fd);
  let closed = false;
  return {
    fd,
    stats,
    close: async () => {
      if (closed) return;
      closed = true;
      await closeAsync(fd);
    },
  };
}

/** Runs `work` with the directory opened by openDirBelow; undefined when it cannot be opened. */
export async function withDirBelow<T>(
  base: string,
  parts: readonly string[],
  work: (dir: OpenedDir) => Promise<T>,
): Promise<T | undefined> {
  const dir = await openDirBelow(base, parts);
  if (!dir) return undefined;
  try {
    return await work(dir);
  } finally {
    await dir.close();
  }
}

/**
 * Reads a tenant file below an opened directory: every component opened without following links, the file opened
 * O_NONBLOCK (a FIFO cannot hang the read) and fstat'ed; undefined unless it is a regular file of at most `maxBytes`.
 */
export async function readTenantFile(dirFd: number, relative: string, maxBytes: number): Promise<string | undefined> {
  const parts = relative.split('/');
  const name = parts.pop()!;
  if (!isPlainName(name)) return undefined;
  let parentFd = dirFd;
  let owned: number | undefined;
  try {
    for (const part of parts) {
      if (!isPlainName(part)) return undefined;
      const next = await openAsync(inDir(parentFd, part), DIR_FLAGS).catch(() => undefined);
      if (next === undefined) return undefined;
      if (owned !== undefined) await closeAsync(owned);
      owned = next;
      parentFd = next;
    }
    const fd = await openAsync(inDir(parentFd, name), FILE_FLAGS).catch(() => undefined);
    if (fd === undefined) return undefined;
    try {
      const stats = await fstatAsync(fd);
      if (!stats.isFile() || stats.size > maxBytes) return undefined;
      const buffer = Buffer.alloc(Math.min(stats.size, maxBytes));
      let filled = 0;
      while (filled < buffer.length) {
        const { bytesRead } = await readAsync(fd, buffer, filled, buffer.length - filled, filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return buffer.subarray(0, filled).toString('utf8');
    } finally {
      await closeAsync(fd);
    }
  } finally {
    if (owned !== undefined) await closeAsync(owned);
  }
}

/** Whether a regular file or directory (not a link) named `relative` exists below the opened directory. */
export async function existsBelow(dirFd: number, relative: string, kind: 'file' | 'dir'): Promise<boolean> {
  const parts = relative.split('/');
  const name = parts.pop()!;
  const parent = parts.length ? await openDirBelow(inDir(dirFd, '.'), parts) : undefined;
  const baseFd = parent ? parent.fd : dirFd;
  if (parts.length && !parent) return false;
  try {
    const fd = await openAsync(inDir(baseFd, name), kind === 'dir' ? DIR_FLAGS : FILE_FLAGS).catch(() => undefined);
    if (fd === undefined) return false;
    try {
      const stats = await fstatAsync(fd);
      return kind === 'dir' ? stats.isDirectory() : stats.isFile();
    } finally {
      await closeAsync(fd);
    }
  } finally {
    await parent?.close();
  }
}

/** The sub-directories of an opened directory (names only; links and files left out), at most `limit`. */
export async function subdirectories(dirFd: number, limit: number): Promise<string[]> {
  const entries = await readdirAsync(inDir(dirFd, '.'), { withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isDirectory() && isPlainName(entry.name))
    .map((entry) => entry.name)
    .sort()
    .slice(0, limit);
}

/**
 * Makes (or opens) `name` inside an opened directory for the service's own use: created with `mode` when missing, then
 * opened without following a link and checked: a directory owned by `uid`, writable by nobody else. Anything else (a
 * planted link, a tenant's directory) is refused with an Error.
 */
export async function ensureOwnedDir(parentFd: number, name: string, mode: number, uid: number): Promise<OpenedDir> {
  if (!isPlainName(name)) throw new Error(`not a plain name: ${JSON.stringify(name)}`);
  await mkdirAsync(inDir(parentFd, name), { mode }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error;
  });
  const fd = await openAsync(inDir(parentFd, name), DIR_FLAGS);
  const stats = await fstatAsync(fd);
  if (!stats.isDirectory() || stats.uid !== uid || (stats.mode & 0o022) !== 0) {
    await closeAsync(fd);
    throw new Error(
      `${name} is not a directory owned by uid ${uid} and writable by it alone (uid ${stats.uid}, mode ${(stats.mode & 0o7777).toString(8)})`,
    );
  }
  let closed = false;
  return {
    fd,
    stats,
    close: async () => {
      if (closed) return;
      closed = true;
      await closeAsync(fd);
    },
  };
}
