import { constants, type Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { isErrno, SafeFsError } from './safe-fs-error';

const { O_RDONLY, O_WRONLY, O_DIRECTORY, O_NOFOLLOW, O_CREAT, O_EXCL, O_NONBLOCK, O_NOCTTY } = constants;

const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW;
/** O_NONBLOCK: a FIFO opens at once (and is then refused by fstat) instead of hanging a libuv thread. */
const READ_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY;
const CREATE_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;

/** Deeper trees are refused: each level holds one descriptor while it is walked or removed. */
export const MAX_TREE_DEPTH = 1024;
/** How often `ensureDir` creates and opens a name that vanishes in between before it gives up. */
const ENSURE_ATTEMPTS = 5;

export interface ReadLimits {
  /** Refuse files larger than this (bytes). */
  maxBytes: number;
  /** Give up reading after this long (ms); default 10 s. */
  timeoutMs?: number;
  /** Accept a file with several hard links (default false: it may be another file linked into the tree). */
  allowHardlinks?: boolean;
}

export interface OpenedRegularFile {
  handle: FileHandle;
  /** fstat of what was opened: the facts to trust, not a path's. */
  stats: Stats;
}

export interface DirEntry {
  name: string;
  /** lstat of the name inside this opened directory (never follows a link). */
  stats: Stats;
}

/**
 * A directory opened by descriptor. Every name is resolved against the descriptor (`/proc/self/fd/<fd>/<name>`), so
 * a tenant who swaps a parent directory for a symlink after it was opened cannot redirect anything: the walk is never
 * repeated. Names are single components; `openDir` walks several, each with `O_DIRECTORY|O_NOFOLLOW`.
 *
 * Close every OpenedDir (`withDir` does it).
 */
export class OpenedDir {
  private closed = false;

  private constructor(
    private readonly handle: FileHandle,
    /** The path it was opened as, for messages only: never use it to reach the directory again. */
    readonly label: string,
  ) {}

  /**
   * Opens a directory the operator controls (`VIRTUAL_ROOT/siteN`, `DATA_DIR/...`): links in that path are trusted.
   * Everything below it is then opened with `openDir`, which trusts nothing.
   */
  static async openTrusted(path: string): Promise<OpenedDir> {
    return new OpenedDir(await open(path, O_RDONLY | O_DIRECTORY), path);
  }

  get fd(): number {
    if (this.closed) throw new Error(`${this.label} is closed`);
    return this.handle.fd;
  }

  /** Whether the directory itself is gone (no name links to it any more), though this descriptor still holds it. */
  async isRemoved(): Promise<boolean> {
    return this.stat().then(
      (stats) => stats.nlink === 0,
      () => false,
    );
  }

  /** `/proc/self/fd/<fd>`: this directory, for a child's `cwd` or a tool's argument. */
  get procPath(): string {
    return `/proc/self/fd/${this.fd}`;
  }

  /** `/proc/self/fd/<fd>/<name>`: `name` inside this directory, without walking any path again. */
  entryPath(name: string): string {
    assertName(name, this.label);
    return `${this.procPath}/${name}`;
  }

  private labelOf(name: string): string {
    return `${this.label}/${name}`;
  }

  /** fstat of this directory. */
  stat(): Promise<Stats> {
    return this.handle.stat();
  }

  /**
   * Opens `relative` (one or more `/`-separated components) below this directory, each component with
   * `O_DIRECTORY|O_NOFOLLOW`: a symlink anywhere fails with a `not-a-directory` refusal. ENOENT passes through.
   */
  async openDir(relative: string): Promise<OpenedDir> {
    return await this.descend(splitRelative(relative, this.label), (dir, part) => dir.openChildDir(part));
  }

  /** Like `openDir`, but `undefined` when a component does not exist. */
  async tryOpenDir(relative: string): Promise<OpenedDir | undefined> {
    try {
      return await this.openDir(relative);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return undefined;
      throw error;
    }
  }

  /** A second descriptor of this same directory (closed independently). */
  async reopen(): Promise<OpenedDir> {
    return new OpenedDir(await open(this.procPath, O_RDONLY | O_DIRECTORY), this.label);
  }

  private async openChildDir(name: string): Promise<OpenedDir> {
    try {
      return new OpenedDir(await open(this.entryPath(name), DIR_FLAGS), this.labelOf(name));
    } catch (error) {
      if (isErrno(error, 'ELOOP', 'ENOTDIR')) {
        throw new SafeFsError('not-a-directory', this.labelOf(name), `${this.labelOf(name)} is not a plain directory`);
      }
      throw error;
    }
  }

  /** Opens `name`, creating it (mode `mode`, minus the umask) when missing; a symlink or file there is refused. */
  async ensureDir(name: string, mode = 0o755): Promise<OpenedDir> {
    // Someone renaming the name away between the mkdir and the open makes the open miss it: try again, a few times.
    for (let attempt = 0; attempt < ENSURE_ATTEMPTS; attempt++) {
      try {
        await mkdir(this.entryPath(name), { mode });
      } catch (error) {
        if (!isErrno(error, 'EEXIST')) throw error;
      }
      try {
        return await this.openChildDir(name);
      } catch (error) {
        if (!isErrno(error, 'ENOENT')) throw error;
      }
    }
    throw new SafeFsError('unstable', this.labelOf(name), `${this.labelOf(name)} kept vanishing while it was opened`);
  }

  /**
   * Opens `name` as a directory only this process's user can use: created 0700 when missing; an existing one must
   * belong to this user and be writable by nobody else (a wider but not writable mode is narrowed on the descriptor).
   * Anything else is refused, so nobody can change its entries under root.
   */
  async ensurePrivateDir(name: string): Promise<OpenedDir> {
    const dir = await this.ensureDir(name, 0o700);
    try {
      const stats = await dir.stat();
      if (stats.uid !== process.geteuid!() || (stats.mode & 0o022) !== 0) {
        throw new SafeFsError(
          'not-private',
          dir.label,
          `${dir.label} belongs to uid ${stats.uid} with mode ${(stats.mode & 0o7777).toString(8)}: root writes only into its own 0700 directories`,
        );
      }
      if ((stats.mode & 0o7777) !== 0o700) await dir.handle.chmod(0o700);
      return dir;
    } catch (error) {
      await dir.close();
      throw error;
    }
  }

  /**
   * Walks `relative` from this directory creating what is missing: the last `privateDepth` components through
   * `ensurePrivateDir`, the others through `ensureDir` (0755). No component may be a symlink.
   */
  async ensurePath(relative: string, privateDepth: number): Promise<OpenedDir> {
    const parts = splitRelative(relative, this.label);
    return await this.descend(parts, (dir, part, index) =>
      index >= parts.length - privateDepth ? dir.ensurePrivateDir(part) : dir.ensureDir(part),
    );
  }

  /** Steps through `parts` from this directory, closing each intermediate descriptor; a new one for no parts. */
  private async descend(
    parts: string[],
    step: (dir: OpenedDir, part: string, index: number) => Promise<OpenedDir>,
  ): Promise<OpenedDir> {
    let current: OpenedDir | undefined;
    try {
      for (const [index, part] of parts.entries()) {
        const next = await step(current ?? this, part, index);
        await current?.close();
        current = next;
      }
    } catch (error) {
      await current?.close();
      throw error;
    }
    return current ?? this.reopen();
  }

  /**
   * Creates `name` as a new file (`O_CREAT|O_EXCL|O_NOFOLLOW`): whatever already has that name (a file, a planted
   * symlink or hardlink) makes it fail with EEXIST, so the file written is always one this call made.
   */
  createFile(name: string, mode = 0o600): Promise<FileHandle> {
    return open(this.entryPath(name), CREATE_FLAGS, mode);
  }

  /**
   * Opens `name` for reading only if it is a regular file (fstat of what was opened): symlinks, FIFOs, sockets and
   * device nodes are refused without blocking, and so are hard-linked files unless allowed and files over the limit.
   */
  async openRegularFile(name: string, limits: ReadLimits): Promise<OpenedRegularFile> {
    // A cheap look first so a device node is never opened at all (opening some has side effects); fstat decides.
    const before = await lstat(this.entryPath(name));
    if (before.isSymbolicLink())
      throw new SafeFsError('symlink', this.labelOf(name), `${this.labelOf(name)} is a symlink`);
    if (!before.isFile()) {
      throw new SafeFsError('not-regular', this.labelOf(name), `${this.labelOf(name)} is not a regular file`);
    }
    let handle: FileHandle;
    try {
      handle = await open(this.entryPath(name), READ_FLAGS);
    } catch (error) {
      if (isErrno(error, 'ELOOP')) {
        throw new SafeFsError('symlink', this.labelOf(name), `${this.labelOf(name)} is a symlink`);
      }
      throw error;
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) {
        throw new SafeFsError('not-regular', this.labelOf(name), `${this.labelOf(name)} is not a regular file`);
      }
      if (stats.nlink > 1 && !limits.allowHardlinks) {
        throw new SafeFsError('hardlinked', this.labelOf(name), `${this.labelOf(name)} has ${stats.nlink} hard links`);
      }
      if (stats.size > limits.maxBytes) {
        throw new SafeFsError(
          'too-large',
          this.labelOf(name),
          `${this.labelOf(name)} holds ${stats.size} bytes, more than the ${limits.maxBytes} accepted`,
        );
      }
      return { handle, stats };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  /** Reads a whole regular file within `limits` (see `openRegularFile`); a file that grows past the limit is refused. */
  async readRegularFile(name: string, limits: ReadLimits): Promise<Buffer> {
    const { handle } = await this.openRegularFile(name, limits);
    try {
      return await readBounded(handle, limits, this.labelOf(name));
    } finally {
      await handle.close();
    }
  }

  /** lstat of `name` in this directory; `undefined` when it does not exist. */
  async lstat(name: string): Promise<Stats | undefined> {
    try {
      return await lstat(this.entryPath(name));
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return undefined;
      throw error;
    }
  }

  /** The names in this directory, sorted (no `.` or `..`). */
  async names(): Promise<string[]> {
    return (await readdir(this.procPath)).sort();
  }

  /** Every entry with its lstat; entries that vanish meanwhile are left out. */
  async list(): Promise<DirEntry[]> {
    const entries: DirEntry[] = [];
    for (const name of await this.names()) {
      const stats = await this.lstat(name);
      if (stats) entries.push({ name, stats });
    }
    return entries;
  }

  /** Renames `name` here to `toName` in `to` (which may be this directory); neither side is walked again. */
  rename(name: string, to: OpenedDir, toName: string): Promise<void> {
    return rename(this.entryPath(name), to.entryPath(toName));
  }

  /** Removes one non-directory entry (a link itself, never its target); a missing name is fine. */
  async unlink(name: string): Promise<void> {
    try {
      await unlink(this.entryPath(name));
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) throw error;
    }
  }

  /**
   * Removes `name` and everything below it without following any link: each directory is opened by descriptor and
   * emptied through it, links are unlinked themselves. A missing name is fine. Entries a tenant keeps adding or
   * swapping meanwhile are retried a few times, then the error is thrown.
   */
  async removeTree(name: string, depth = 0): Promise<void> {
    if (depth > MAX_TREE_DEPTH) {
      throw new SafeFsError('not-a-directory', this.labelOf(name), `${this.labelOf(name)} is nested too deeply`);
    }
    for (let attempt = 0; ; attempt++) {
      try {
        const stats = await this.lstat(name);
        if (!stats) return;
        if (!stats.isDirectory()) {
          await this.unlink(name);
          return;
        }
        const child = await this.openChildDir(name);
        try {
          for (const entry of await child.names()) await child.removeTree(entry, depth + 1);
        } finally {
          await child.close();
        }
        await rmdir(this.entryPath(name));
        return;
      } catch (error) {
        const raced =
          isErrno(error, 'ENOTDIR', 'EISDIR', 'ENOTEMPTY', 'EEXIST') ||
          (error instanceof SafeFsError && error.reason === 'not-a-directory' && error.path === this.labelOf(name));
        if (isErrno(error, 'ENOENT')) return;
        if (!raced || attempt >= 4) throw error;
      }
    }
  }

  /** fsync of this directory: makes renames and unlinks in it durable. */
  sync(): Promise<void> {
    return this.handle.sync();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

/**
 * Runs `work` with an opened directory and closes it afterwards, whatever happens. A tenant who can write to the
 * directory's parent can remove it while it is held (renaming another directory over it): creating a name in it then
 * fails with ENOENT, which is reported as the refusal it is rather than as an unexplained error.
 */
export async function withDir<T>(opening: Promise<OpenedDir>, work: (dir: OpenedDir) => Promise<T>): Promise<T> {
  const dir = await opening;
  try {
    return await work(dir);
  } catch (error) {
    if (isErrno(error, 'ENOENT') && (await dir.isRemoved())) {
      throw new SafeFsError(
        'removed',
        dir.label,
        `${dir.label} was removed while in use (whoever can write to the directory above it can do that): nothing was written anywhere else`,
      );
    }
    throw error;
  } finally {
    await dir.close();
  }
}

/** Reads at most `limits.maxBytes` from an opened file, giving up after `limits.timeoutMs`. */
export async function readBounded(handle: FileHandle, limits: ReadLimits, label: string): Promise<Buffer> {
  const deadline = Date.now() + (limits.timeoutMs ?? 10_000);
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    if (Date.now() > deadline) throw new SafeFsError('timeout', label, `reading ${label} took too long`);
    const buffer = Buffer.alloc(Math.min(64 * 1024, limits.maxBytes + 1 - total));
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, total);
    if (bytesRead === 0) break;
    chunks.push(buffer.subarray(0, bytesRead));
    total += bytesRead;
    if (total > limits.maxBytes) {
      throw new SafeFsError('too-large', label, `${label} holds more than the ${limits.maxBytes} bytes accepted`);
    }
  }
  return Buffer.concat(chunks, total);
}

function assertName(name: string, where: string): void {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new SafeFsError('bad-name', `${where}/${name}`, `not a single file name: ${JSON.stringify(name)}`);
  }
}

function splitRelative(relative: string, where: string): string[] {
  const parts = relative.split('/').filter((part) => part !== '' && part !== '.');
  for (const part of parts) assertName(part, where);
  return parts;
}
