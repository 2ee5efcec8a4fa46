import type { Stats } from 'node:fs';
import { MAX_TREE_DEPTH, type OpenedDir } from './opened-dir';
import { isErrno, SafeFsError } from './safe-fs-error';

export interface WalkEntry {
  /** Path relative to the walked directory, `/`-separated (`www/html/index.php`). */
  path: string;
  name: string;
  /** lstat taken through `parent`'s descriptor: a symlink is reported as one, never followed. */
  stats: Stats;
  /** The opened directory holding the entry, open until the walk moves past it: open files through it. */
  parent: OpenedDir;
}

export interface WalkOptions {
  /** Deeper entries are refused with a SafeFsError (default MAX_TREE_DEPTH). */
  maxDepth?: number;
  /** Called for each directory before the walk enters it; `false` skips its contents. */
  descend?: (entry: WalkEntry) => boolean;
}

/**
 * Walks a tree depth first, in name order, from an opened directory: every subdirectory is opened by descriptor with
 * `O_NOFOLLOW`, so a directory swapped for a link while the walk runs is skipped (it is no longer a directory), never
 * followed. Directories are yielded before their contents. Entries that vanish meanwhile are left out.
 */
export async function* walk(root: OpenedDir, options: WalkOptions = {}): AsyncGenerator<WalkEntry> {
  yield* walkBelow(root, '', 0, options);
}

async function* walkBelow(
  dir: OpenedDir,
  prefix: string,
  depth: number,
  options: WalkOptions,
): AsyncGenerator<WalkEntry> {
  if (depth > (options.maxDepth ?? MAX_TREE_DEPTH)) {
    throw new SafeFsError('not-a-directory', dir.label, `${dir.label} is nested too deeply`);
  }
  for (const { name, stats } of await dir.list()) {
    const entry: WalkEntry = { path: prefix + name, name, stats, parent: dir };
    yield entry;
    if (!stats.isDirectory() || (options.descend && !options.descend(entry))) continue;
    let child: OpenedDir;
    try {
      child = await dir.openDir(name);
    } catch (error) {
      // Swapped for a link or removed since it was listed: nothing of it is walked.
      if (isErrno(error, 'ENOENT') || (error instanceof SafeFsError && error.reason === 'not-a-directory')) continue;
      throw error;
    }
    try {
      yield* walkBelow(child, `${entry.path}/`, depth + 1, options);
    } finally {
      await child.close();
    }
  }
}
