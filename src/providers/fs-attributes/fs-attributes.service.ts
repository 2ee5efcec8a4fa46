import { Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdtemp, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, posix, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { AppError } from '../../common/errors/app-error';
import { ErrorCode } from '../../common/errors/error-code';
import { ProcessRunner, type RunResult } from '../../common/process/process-runner';
import { systemPython } from '../../common/process/system-python';
import {
  blockPath,
  canonicalRelativePath,
  DumpBlockReader,
  DumpBlockSplitter,
  formatBlock,
  isMangledName,
  isWithinAny,
  restorableBlock,
  WarningList,
  type DumpBlock,
} from './attribute-dump';
import { ATTRIBUTE_WALKER_SCRIPT } from './attribute-walker';
import { BufferedFileWriter } from './buffered-file-writer';

export interface CaptureOptions {
  /** The directory the paths are relative to (a site root), trusted; everything below it is walked by descriptor. */
  root: string;
  /** Relative to `root`, e.g. `['shadow', 'info']`. */
  paths: string[];
  /** Relative to `root`; these and everything under them stay out of the manifest, e.g. `['shadow/var/lib']`. */
  exclude: string[];
  /**
   * Where the manifest goes, in a directory only the service writes (its temporary file is made beside it, and a
   * killed capture's leftover is removed from there).
   */
  manifestFile: string;
  /**
   * Only symlinks' own attributes: for an engine that keeps files' and directories' attributes itself but drops a
   * link's (restic 0.14). The walk still visits every directory, but reads no attribute of anything else.
   */
  symlinksOnly?: boolean;
  signal?: AbortSignal;
}

export interface CaptureResult {
  /** Files and directories with at least one attribute, i.e. blocks in the manifest. */
  entries: number;
  warnings: string[];
}

export interface ApplyOptions {
  /** The restored tree: the manifest's paths are relative to it. */
  root: string;
  manifestFile: string;
  /** Relative to `root`: re-apply only these subtrees (a partial restore); everything when absent. */
  onlyPaths?: string[];
  /** Where the filtered manifest is written for setfattr (a job's scratch directory); the OS temp dir by default. */
  workDir?: string;
  signal?: AbortSignal;
}

export interface ApplyResult {
  /** Files whose attributes were set. */
  applied: number;
  warnings: string[];
}

/**
 * Processes that share one capture's walk (see parallel_walk in attribute-walker.ts): a 100,000-file site's walk is
 * about half a second of one core, all of it before the engine can start.
 */
const WALK_WORKERS = Math.max(1, Math.min(4, availableParallelism()));

/** How many directories the symlink guard remembers as checked; the dump comes in walk order, so few are enough. */
const CHECKED_DIRECTORIES_LIMIT = 10_000;

/**
 * Keeps extended attributes and POSIX ACLs across a backup engine that drops them (duplicity 0.8 restores neither, and
 * writes each ACL's mask into the group mode bits). `capture` writes them, ACLs included as their
 * `system.posix_acl_access`/`system.posix_acl_default` xattrs, into a manifest in getfattr's dump format (so
 * `setfattr --restore` can also apply it by hand); `apply` sets them again on the restored tree. Setting
 * `system.posix_acl_access` also resets the group mode bits to the mask, which undoes the engine's widening.
 * Files without an ACL are never widened (their mode's group bits are their own), so they need no entry.
 */
@Injectable()
export class FsAttributesService {
  constructor(private readonly runner: ProcessRunner) {}

  async capture(options: CaptureOptions): Promise<CaptureResult> {
    const paths = canonicalPaths(options.paths, 'paths');
    if (paths.length === 0) throw new AppError(ErrorCode.ValidationFailed, 'capture needs at least one path');
    await requireDirectory(options.root);
    await removeStaleTemporaries(options.manifestFile);
    const tempFile = join(
      dirname(options.manifestFile),
      `${temporaryPrefixOf(options.manifestFile)}${randomBytes(6).toString('hex')}.tmp`,
    );
    // A manifest kept inside the tree (so the backup carries it) must not describe itself or its temporary name.
    const exclude = [
      ...canonicalPaths(options.exclude, 'exclude'),
      ...[options.manifestFile, tempFile]
        .map((file) => relativeInside(options.root, file))
        .filter((p) => p !== undefined),
    ];

    const warnings = new WarningList();
    const writer = new BufferedFileWriter(tempFile);
    let entries = 0;
    const blocks = new DumpBlockSplitter((block) => {
      const path = blockPath(block);
      if (path === undefined || isWithinAny(path, exclude)) return;
      if (isMangledName(path)) {
        warnings.add(`${JSON.stringify(path)}: file name is not valid UTF-8; its attributes are not captured`);
        return;
      }
      writer.write(restorableBlock(block));
      entries++;
    });

    try {
      const result = await this.runner.run({
        // A descriptor-based walk, never getfattr: see attribute-walker.ts for why and what it prints.
        command: systemPython(),
        // -I -S: standard library only, no site-packages set-up (a third of the walk of a 100,000-file site went
        // there) and no PYTHON* variable from the environment.
        args: ['-I', '-S', '-c', ATTRIBUTE_WALKER_SCRIPT],
        input: JSON.stringify({
          root: options.root,
          paths,
          exclude,
          symlinks_only: options.symlinksOnly === true,
          workers: WALK_WORKERS,
        }),
        signal: options.signal,
        stdoutTo: blocks,
        onLine: (stream, line) => {
          if (stream === 'stderr') warnings.add(line);
        },
      });
      options.signal?.throwIfAborted();
      if (result.stdoutError) {
        throw new AppError(ErrorCode.Internal, `writing the attribute manifest failed: ${result.stdoutError}`);
      }
      // Exit 1 means some files could not be read (one vanished or was swapped for a link mid-walk, a path is
      // missing): the others are fine.
      if (result.exitCode !== 0 && result.exitCode !== 1) throw toolFailure('the attribute walk', result);
      writer.close();
      await rename(tempFile, options.manifestFile);
    } catch (error) {
      writer.abandon();
      await unlink(tempFile).catch(() => undefined);
      throw error;
    }
    return { entries, warnings: warnings.toArray() };
  }

  async apply(options: ApplyOptions): Promise<ApplyResult> {
    const onlyPaths = options.onlyPaths === undefined ? undefined : canonicalPaths(options.onlyPaths, 'onlyPaths');
    await requireDirectory(options.root);
    const warnings = new WarningList();
    for (const directory of await this.directoriesWithDefaultAcl(options.root, onlyPaths, options.signal)) {
      warnings.add(
        `${JSON.stringify(directory)} has a default ACL: files the engine created under it inherited ACLs the source may not have had (use prepareRestoreDestination before restoring)`,
      );
    }
    const scratch = await mkdtemp(join(options.workDir ?? tmpdir(), 'fs-attributes-'));
    try {
      const filtered = join(scratch, 'restore.dump');
      const selected = await this.selectEntries(options, onlyPaths, filtered, warnings);
      if (selected === 0) return { applied: 0, warnings: warnings.toArray() };

      const failedPaths = new Set<string>();
      const result = await this.runner.run({
        command: 'setfattr',
        // --no-dereference: set a symlink's own attributes, as they were read.
        args: ['--no-dereference', `--restore=${filtered}`],
        cwd: options.root,
        signal: options.signal,
        onLine: (stream, line) => {
          if (stream !== 'stderr') return;
          warnings.add(line);
          // "setfattr: PATH: reason"
          const path = /^setfattr: (.*): [^:]+$/.exec(line)?.[1];
          if (path !== undefined) failedPaths.add(path);
        },
      });
      options.signal?.throwIfAborted();
      // Exit 1: some attributes could not be set (reported above); the rest were.
      if (result.exitCode !== 0 && result.exitCode !== 1) throw toolFailure('setfattr', result);
      if (result.exitCode === 1 && failedPaths.size === 0) {
        warnings.add('setfattr exited 1 without naming a file: some attributes may not have been set');
      }
      return { applied: selected - failedPaths.size, warnings: warnings.toArray() };
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  }

  /**
   * Removes every ACL, default ACL included, from an empty directory an engine is about to restore into. Files created
   * under a default ACL inherit it, and duplicity restores no ACL that would replace it: a file that had no ACL would
   * come back with one (and e.g. `u:1001:rwx` access for someone the source never allowed).
   */
  async prepareRestoreDestination(directory: string, signal?: AbortSignal): Promise<void> {
    await requireDirectory(directory);
    const result = await this.runner.run({
      command: 'setfacl',
      args: ['--remove-all', '--remove-default', '--', directory],
      signal,
    });
    signal?.throwIfAborted();
    if (result.exitCode !== 0) throw toolFailure('setfacl', result);
  }

  /** The root, or the directories holding the `onlyPaths`, that carry a default ACL (absolute). */
  private async directoriesWithDefaultAcl(
    root: string,
    onlyPaths: string[] | undefined,
    signal: AbortSignal | undefined,
  ): Promise<string[]> {
    // The restored tree is the service's own (root-owned 0700, no tenant reaches it), so nothing races these reads;
    // but it can hold links restored from the backup: a parent reached through one is not looked at.
    const guard = new DirectoryGuard(root);
    const parents: string[] = [];
    for (const parent of new Set(['.', ...(onlyPaths ?? []).map((path) => posix.dirname(path))])) {
      if (parent === '.' || (await guard.check(`${parent}/.`)) === undefined) parents.push(parent);
    }
    const found: string[] = [];
    const reader = new DumpBlockReader();
    const take = (block: DumpBlock | undefined): void => {
      if (block) found.push(join(root, block.path));
    };
    // Exit 1 only means a directory is missing, which the selection below reports for the files in it.
    await this.runner.run({
      command: 'getfattr',
      args: ['--dump', '--no-dereference', '--match=^system\\.posix_acl_default$', '--', ...parents],
      cwd: root,
      signal,
      onLine: (stream, line) => {
        if (stream === 'stdout') take(reader.push(line));
      },
    });
    take(reader.end());
    signal?.throwIfAborted();
    return found;
  }

  /**
   * Streams the manifest into `filtered`, keeping the blocks to apply: inside `onlyPaths`, present on disk, and
   * reached through real directories only. The last check matters for a restore into a live tree: the manifest's
   * `a/b/file` must not land on `/etc/file` because a site user replaced `a/b` with a symlink to `/etc`.
   */
  private async selectEntries(
    options: ApplyOptions,
    onlyPaths: string[] | undefined,
    filtered: string,
    warnings: WarningList,
  ): Promise<number> {
    const writer = new BufferedFileWriter(filtered);
    const reader = new DumpBlockReader();
    const guard = new DirectoryGuard(options.root);
    let selected = 0;
    const consider = async (block: DumpBlock | undefined): Promise<void> => {
      if (!block) return;
      const path = canonicalRelativePath(block.path);
      if (path === undefined) {
        warnings.add(`${JSON.stringify(block.path)}: not a path inside the restored tree; skipped`);
        return;
      }
      if (onlyPaths && !isWithinAny(path, onlyPaths)) return;
      const problem = await guard.check(path);
      if (problem) {
        warnings.add(`${JSON.stringify(path)}: ${problem}; its attributes were not re-applied`);
        return;
      }
      writer.write(formatBlock(block));
      selected++;
    };

    const lines = createInterface({ input: createReadStream(options.manifestFile, 'utf8'), crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        options.signal?.throwIfAborted();
        await consider(reader.push(line));
      }
      await consider(reader.end());
      if (reader.strayLines > 0) {
        warnings.add(`${options.manifestFile}: ${reader.strayLines} line(s) outside any "# file:" block were ignored`);
      }
      writer.close();
    } catch (error) {
      writer.abandon();
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new AppError(ErrorCode.Internal, `attribute manifest ${options.manifestFile} does not exist`);
      }
      throw error;
    } finally {
      lines.close();
    }
    return selected;
  }
}

/** Answers "may attributes be set on root/path?": it must exist, and every directory above it must be a real one. */
class DirectoryGuard {
  private readonly checked = new Set<string>();

  constructor(private readonly root: string) {}

  async check(path: string): Promise<string | undefined> {
    const parts = path === '.' ? [] : path.split('/');
    for (let depth = 1; depth < parts.length; depth++) {
      const directory = parts.slice(0, depth).join('/');
      if (this.checked.has(directory)) continue;
      const info = await lstat(join(this.root, directory)).catch(() => undefined);
      if (!info) return 'no longer exists';
      if (!info.isDirectory()) return `${JSON.stringify(directory)} is not a directory (a symlink?)`;
      if (this.checked.size >= CHECKED_DIRECTORIES_LIMIT) this.checked.clear();
      this.checked.add(directory);
    }
    const exists = await lstat(join(this.root, path)).then(
      () => true,
      () => false,
    );
    return exists ? undefined : 'no longer exists';
  }
}

function canonicalPaths(paths: readonly string[], field: string): string[] {
  return paths.map((path) => {
    const canonical = canonicalRelativePath(path);
    if (canonical === undefined) {
      throw new AppError(
        ErrorCode.ValidationFailed,
        `${field}: ${JSON.stringify(path)} is not a path inside the root`,
        {
          errors: [{ field, messages: [`${JSON.stringify(path)} must be relative, without ".." steps`] }],
        },
      );
    }
    return canonical;
  });
}

/** `file` relative to `root` when it lies inside it. */
function relativeInside(root: string, file: string): string | undefined {
  const path = relative(resolve(root), resolve(file));
  return path === '' || path === '..' || path.startsWith('../') || isAbsolute(path)
    ? undefined
    : canonicalRelativePath(path);
}

async function requireDirectory(root: string): Promise<void> {
  const info = await stat(root).catch(() => undefined);
  if (!info?.isDirectory()) throw new AppError(ErrorCode.Internal, `${root} is not a directory`);
}

/** A capture writes `.<manifest name>.<12 hex digits>.tmp` beside the manifest, then renames it over the manifest. */
function temporaryPrefixOf(manifestFile: string): string {
  return `.${basename(manifestFile)}.`;
}

/** Removes what captures killed with the service left beside the manifest (only names of that exact form). */
async function removeStaleTemporaries(manifestFile: string): Promise<void> {
  const dir = dirname(manifestFile);
  const prefix = temporaryPrefixOf(manifestFile);
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (name.startsWith(prefix) && /^[0-9a-f]{12}\.tmp$/.test(name.slice(prefix.length))) {
      await unlink(join(dir, name)).catch(() => undefined);
    }
  }
}

function toolFailure(tool: string, result: RunResult): AppError {
  const how = result.signal ? `killed by ${result.signal}` : `exit ${result.exitCode}`;
  return new AppError(ErrorCode.Internal, `${tool} failed (${how}): ${result.stderrTail || 'no message'}`);
}
