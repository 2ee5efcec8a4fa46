import { mkdir, rename } from 'node:fs/promises';
import { basename, dirname, posix } from 'node:path';
import { isErrno, OpenedDir, removeServiceTree, SafeFsError, withDir } from '../common/safe-fs';

/** Directories no restore replaces: raw database files live there and are never in a backup. */
export const PRESERVED = ['shadow/var/lib'];

/** Where the previous copy goes once every path is in place: renaming the aside directory there commits the swap. */
function discardedOf(asideDir: string): string {
  return `${asideDir}.discarded`;
}

/**
 * The three trees a swap works on, opened by descriptor: the live site (its owner can change it at any moment), the
 * restored copy and the aside directory (both root-owned 0700 siblings under VIRTUAL_ROOT, but the restored copy holds
 * whatever the backup held, links included). Every step below is a rename or removal of one name inside an opened
 * directory, every directory on the way opened with O_NOFOLLOW: a link anywhere in the live site or in the restored
 * tree is moved as a link or refused, never followed.
 */
interface SwapTrees {
  site: OpenedDir;
  restored: OpenedDir;
  aside: OpenedDir;
}

function splitPath(path: string): { parent: string; leaf: string } {
  return { parent: posix.dirname(path) === '.' ? '' : posix.dirname(path), leaf: posix.basename(path) };
}

async function openTrees(siteRoot: string, restored: string, asideDir: string): Promise<SwapTrees> {
  await mkdir(asideDir, { mode: 0o700 }).catch((error: unknown) => {
    if (!isErrno(error, 'EEXIST')) throw error;
  });
  const site = await OpenedDir.openTrusted(siteRoot);
  try {
    const restoredDir = await OpenedDir.openTrusted(restored);
    try {
      return { site, restored: restoredDir, aside: await OpenedDir.openTrusted(asideDir) };
    } catch (error) {
      await restoredDir.close();
      throw error;
    }
  } catch (error) {
    await site.close();
    throw error;
  }
}

async function closeTrees(trees: SwapTrees): Promise<void> {
  await trees.site.close();
  await trees.restored.close();
  await trees.aside.close();
}

/**
 * Moves each restored path from `restored` into `siteRoot`, keeping the live copy aside until every path is in place,
 * so a failure part-way puts the old data back instead of leaving a half-restored site. A process killed part-way
 * leaves `asideDir` behind, and `recoverInterruptedSwap` puts the old data back from it.
 */
export async function swapIntoSite(
  siteRoot: string,
  restored: string,
  paths: string[],
  asideDir: string,
): Promise<void> {
  const trees = await openTrees(siteRoot, restored, asideDir);
  try {
    const moved: Array<{ path: string; hadLive: boolean }> = [];
    try {
      for (const path of paths) {
        const hadLive = await swapOne(trees, path);
        if (hadLive !== undefined) moved.push({ path, hadLive });
      }
    } catch (error) {
      // A path that had no live copy has nothing aside to tell it apart from a live one: take it out first.
      for (const { path } of moved.filter((entry) => !entry.hadLive)) {
        const { parent, leaf } = splitPath(path);
        await withDir(trees.site.openDir(parent), (live) =>
          withDir(trees.restored.ensurePath(parent, 0), (incoming) => live.rename(leaf, incoming, leaf)),
        ).catch(() => undefined);
      }
      await undoSwap(trees, paths);
      throw error;
    }
  } finally {
    await closeTrees(trees);
  }
  await rename(asideDir, discardedOf(asideDir));
  await removeServiceTree(discardedOf(asideDir));
}

/** Swaps one path in; `undefined` when the restore holds nothing at that path, else whether a live copy existed. */
async function swapOne(trees: SwapTrees, path: string): Promise<boolean | undefined> {
  const { parent, leaf } = splitPath(path);
  const incoming = await trees.restored.tryOpenDir(parent);
  if (!incoming) return undefined;
  try {
    if (!(await incoming.lstat(leaf))) return undefined;
    // Refused (SafeFsError) when a component of the live parent is a link: the restore fails and the site is put back.
    const live = await trees.site.ensurePath(parent, 0);
    try {
      // Carry preserved subtrees of the live copy into the restored one before the swap.
      await carryPreserved(path, live, incoming, true);
      const hadLive = (await live.lstat(leaf)) !== undefined;
      if (hadLive) {
        // rename() moves the name itself: a live path the owner replaced by a link goes aside as that link.
        await withDir(trees.aside.ensurePath(parent, 0), (aside) => live.rename(leaf, aside, leaf));
      }
      await incoming.rename(leaf, live, leaf);
      return hadLive;
    } finally {
      await live.close();
    }
  } finally {
    await incoming.close();
  }
}

/**
 * After a crash during an in-place restore: when the swap had not committed, puts the live copy of every path back
 * (with the preserved raw database files the swap had carried into the restored copy), then removes the restored
 * copy and the aside directory. Returns what it found.
 */
export async function recoverInterruptedSwap(
  siteRoot: string,
  restored: string,
  paths: string[],
  asideDir: string,
): Promise<'rolled-back' | 'committed' | 'not-started'> {
  let found: 'rolled-back' | 'committed' | 'not-started' = 'not-started';
  if (await exists(asideDir)) {
    await mkdir(restored, { mode: 0o700 }).catch(() => undefined);
    const trees = await openTrees(siteRoot, restored, asideDir);
    try {
      await undoSwap(trees, paths);
    } finally {
      await closeTrees(trees);
    }
    found = 'rolled-back';
  } else if (await exists(discardedOf(asideDir))) {
    found = 'committed';
  }
  await removeServiceTree(discardedOf(asideDir));
  await removeServiceTree(asideDir);
  await removeServiceTree(restored);
  return found;
}

/** Puts back every path found aside, from the state on disk alone, so it works for a live failure and after a crash. */
async function undoSwap(trees: SwapTrees, paths: string[]): Promise<void> {
  for (const path of paths) {
    const { parent, leaf } = splitPath(path);
    const aside = await trees.aside.tryOpenDir(parent).catch(() => undefined);
    try {
      if (aside && (await aside.lstat(leaf))) {
        await withDir(trees.site.ensurePath(parent, 0), async (live) => {
          if (await live.lstat(leaf)) {
            // The restored copy was swapped in and holds the live preserved subtrees: hand them back first.
            await carryPreserved(path, live, aside, false);
            await withDir(trees.restored.ensurePath(parent, 0), async (incoming) => {
              await incoming.removeTree(leaf);
              await live.rename(leaf, incoming, leaf);
            });
          }
          await aside.rename(leaf, live, leaf);
        });
      }
    } finally {
      await aside?.close();
    }
    // Preserved subtrees carried into the restored copy before the live one moved aside go back too.
    const live = await trees.site.tryOpenDir(parent).catch(() => undefined);
    const incoming = await trees.restored.tryOpenDir(parent).catch(() => undefined);
    try {
      if (live && incoming && (await live.lstat(leaf))) await carryPreserved(path, incoming, live, false);
    } finally {
      await live?.close();
      await incoming?.close();
    }
  }
}

/**
 * Moves each preserved subtree below `path` (e.g. `var/lib` below `shadow`) from `from/<leaf>` to `to/<leaf>`, both
 * opened parents of `path`. Nothing is carried out of a source reached through a link (the site holds no raw database
 * directory there); a destination reached through a link is refused. `replace`: an existing destination is removed
 * first (the restored copy's own, from a backup that should not have held it); otherwise it is kept.
 */
async function carryPreserved(path: string, from: OpenedDir, to: OpenedDir, replace: boolean): Promise<void> {
  const { leaf } = splitPath(path);
  for (const keep of PRESERVED) {
    if (!keep.startsWith(`${path}/`)) continue;
    const { parent: relParent, leaf: relLeaf } = splitPath(keep.slice(path.length + 1));
    const source = await from.tryOpenDir(posix.join(leaf, relParent)).catch((error: unknown) => {
      if (error instanceof SafeFsError) return undefined;
      throw error;
    });
    if (!source) continue;
    try {
      if (!(await source.lstat(relLeaf))) continue;
      await withDir(to.openDir(leaf), (top) =>
        withDir(top.ensurePath(relParent, 0), async (target) => {
          if (await target.lstat(relLeaf)) {
            if (!replace) return;
            await target.removeTree(relLeaf);
          }
          await source.rename(relLeaf, target, relLeaf);
        }),
      );
    } finally {
      await source.close();
    }
  }
}

async function exists(path: string): Promise<boolean> {
  return await withDir(
    OpenedDir.openTrusted(dirname(path)),
    async (parent) => (await parent.lstat(basename(path))) !== undefined,
  );
}
